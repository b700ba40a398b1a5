"""`fmareport fetch DIR` (`fetch`): download, verify and extract FMA (fma_metadata.zip, fma_small.zip).

For each archive whose folder is not yet in DIR (the zips are kept):
  1. `download` BASE_URL/<name> to DIR/<name>.part, resuming (HTTP Range) after a dropped connection;
  2. check its SHA1 against the published value (fma.ARCHIVES); a mismatch deletes the .part;
  3. `extract` it into DIR/.<top>.extracting/, refusing the whole archive for one unsafe entry;
  4. check every file <top>/checksums lists, then rename <top>/ into DIR: whole or not at all.
The archives refused: docs/faults.md, case 9.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import stat
import time
import zipfile
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from ..files import file_digest, mark_owned, remove_owned
from ..progress import tqdm
from .fma import ARCHIVES, BASE_URL

log = logging.getLogger(__name__)

EXTRACTING_MARKER = ".fmareport-extracting"  # inside the temporary extraction folder fetch makes
CHUNK = 1 << 20  # bytes per read: 1 MiB
RETRIES = 5  # resumes after a dropped connection, waiting 0, 2, 4, ... s before each
TIMEOUT = 60  # s without data before a connection counts as dropped


MISMATCH_SUFFIX = ".sha1-mismatch"  # where an archive already in the data folder goes when its SHA1 is wrong


class FetchError(RuntimeError):
    """A download or an archive we refuse; the message says which file and why."""


def download(url: str, dest: Path, sha1: str, progress: bool = True) -> Path:
    """Download url to dest (via dest.part, resumable) and check its SHA1; return dest."""
    if dest.is_file():
        got = file_digest(dest)
        if got == sha1:
            return dest
        # Not necessarily ours (a copy put there by hand, another version): kept, never deleted.
        aside = dest.with_name(dest.name + MISMATCH_SUFFIX)
        if aside.exists():
            raise FetchError(
                f"{dest}: SHA1 {got} is not the official {sha1}, and {aside.name} is already there: "
                f"move one of them away (fetch deletes neither), then run `fmareport fetch` again"
            )
        dest.rename(aside)
        log.warning(
            "%s: SHA1 %s is not the official %s: moved to %s (delete it yourself when you no longer need it); "
            "downloading it again",
            dest,
            got,
            sha1,
            aside.name,
        )
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(RETRIES + 1):
        have = part.stat().st_size if part.is_file() else 0
        try:
            _get(url, part, have, progress)
            break
        except HTTPError as err:
            if err.code == 416 and have:  # Range not satisfiable: the .part is already whole
                break
            raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
        except (URLError, OSError, http.client.HTTPException) as err:  # dropped, timed out, refused...
            if attempt == RETRIES:
                raise FetchError(
                    f"{url}: download failed after {RETRIES + 1} tries ({err}); "
                    f"run `fmareport fetch` again to resume from {part}"
                ) from None
            log.info("%s: %s at %d bytes; resuming", url, err, part.stat().st_size if part.is_file() else 0)
            time.sleep(2 * attempt)
    got = file_digest(part)
    if got != sha1:
        size = part.stat().st_size
        part.unlink()
        raise FetchError(
            f"{dest.name}: SHA1 mismatch: expected {sha1}, got {got} ({size} bytes from {url}). "
            "The download was deleted; run `fmareport fetch` again (if this repeats, the server "
            "does not send the official file)"
        )
    part.rename(dest)
    return dest


def _get(url: str, part: Path, have: int, progress: bool) -> None:
    """Append url's bytes from offset `have` to part; raise ConnectionError if the body ends short."""
    request = Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urlopen(request, timeout=TIMEOUT) as response:
        if have and response.status != 206:  # the server ignored Range: start over
            have = 0
        elif have and not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            raise FetchError(
                f"{url}: asked for bytes {have}- and got Content-Range "
                f"{response.headers.get('Content-Range')!r}; delete {part} and fetch again"
            )
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f, _bytes_bar(total, part.stem, progress, have) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                bar.update(len(block))
            size = f.tell()
    if total is not None and size < total:
        raise ConnectionError(f"connection closed after {size} of {total} bytes")


def _bytes_bar(total: int | None, desc: str, progress: bool, initial: int = 0) -> tqdm:
    """A progress bar of bytes (shown in KiB, MiB, ...); `progress` False: a silent one."""
    return tqdm(
        total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress
    )


def _entry_problem(name: str, top: str) -> str | None:
    """Why a zip entry must not be extracted (None: it may)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        return "absolute path"
    if ".." in parts:
        return "'..' would leave the extraction folder"
    if not parts or parts[0] != top:
        return f"outside the archive's top folder {top}/"
    return None


def _entry_kind_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry's kind is refused: only files and folders are extracted (no links, devices...)."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix file type recorded (a plain entry)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return "not a plain file or folder (a symbolic link or a device)"
    return None


def _entry_clash(infos: list[zipfile.ZipInfo]) -> str | None:
    """Two entries that cannot both be extracted: the same path twice, or a file that another
    entry needs as a folder (a/b as a file and a/b/c)."""
    files, folders = set(), set()
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        path = "/".join(parts)
        if path in files or (not info.is_dir() and path in folders):
            return f"{path!r} appears twice, or as both a file and a folder"
        (folders if info.is_dir() else files).add(path)
        folders.update("/".join(parts[:k]) for k in range(1, len(parts)))
    both = files & folders
    return f"{sorted(both)[0]!r} is a file in the archive and also a folder of another entry" if both else None


def verify_checksums(folder: Path) -> int:
    """Check every `<sha1>  <path>` line of folder/checksums (paths relative to folder); return the count."""
    listing = folder / "checksums"
    if not listing.is_file():
        return 0
    bad = []
    lines = [line.split(maxsplit=1) for line in listing.read_text().splitlines() if line.strip()]
    for sha1, rel in lines:
        path = folder / rel
        if _entry_problem(f"{folder.name}/{rel}", folder.name):
            bad.append(f"{rel} (unsafe path)")
        elif not path.is_file():
            bad.append(f"{rel} (missing)")
        elif (got := file_digest(path)) != sha1:
            bad.append(f"{rel} (SHA1 {got}, expected {sha1})")
    if bad:
        raise FetchError(
            f"{listing}: {len(bad)} of {len(lines)} files do not match: "
            + ", ".join(bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
    return len(lines)


def extract(zip_path: Path, data_dir: Path, progress: bool = True) -> Path:
    """Extract zip_path (one top folder, named as the zip) into data_dir atomically; return the folder."""
    top = zip_path.name.removesuffix(".zip")
    final = data_dir / top
    if final.exists():
        raise FetchError(f"{final} already exists; move it away to extract {zip_path.name} again")
    tmp = data_dir / f".{top}.extracting"
    if tmp.exists() and not remove_owned(tmp, EXTRACTING_MARKER):  # a killed extraction's leftovers are ours
        raise FetchError(f"{tmp} exists and was not left by `fmareport fetch`: move it away")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            for info in infos:  # refuse the whole archive before writing anything
                problem = _entry_problem(info.filename, top) or _entry_kind_problem(info)
                if problem:
                    raise FetchError(f"{zip_path.name}: refusing entry {info.filename!r}: {problem}")
            clash = _entry_clash(infos)
            if clash:
                raise FetchError(f"{zip_path.name}: refusing the archive: {clash}; nothing was extracted")
            mark_owned(tmp, EXTRACTING_MARKER)
            with _bytes_bar(sum(i.file_size for i in infos), f"extract {zip_path.name}", progress) as bar:
                for info in infos:
                    target = tmp / info.filename
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:  # zipfile checks each CRC
                        shutil.copyfileobj(src, dst, CHUNK)
                    bar.update(info.file_size)
        n = verify_checksums(tmp / top)
        log.info("%s: %d entries extracted, %d checksums verified", zip_path.name, len(infos), n)
        (tmp / top).rename(final)
    except zipfile.BadZipFile as err:
        raise FetchError(f"{zip_path}: not a valid zip ({err}); delete it and fetch again") from None
    except OSError as err:  # a full disk, a permission: nothing half-extracted is left behind
        raise FetchError(f"{zip_path.name}: extraction into {data_dir} failed: {err}") from None
    finally:
        remove_owned(tmp, EXTRACTING_MARKER)
    return final


def fetch(
    data_dir: str | Path,
    base_url: str = BASE_URL,
    only: str | None = None,
    sha1s: dict[str, str] | None = None,
    progress: bool = True,
) -> Path:
    """Download, check and extract FMA into data_dir; return it.

    only: "metadata" or "small" (default: both). sha1s: archive name -> expected SHA1
    (default: fma.ARCHIVES, the published values; tests serve their own zips).
    """
    data_dir = Path(data_dir)
    blocked = next((p for p in (data_dir, *data_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise FetchError(f"{data_dir}: cannot be a folder, {blocked} is a file: choose another folder")
    sha1s = ARCHIVES if sha1s is None else sha1s
    names = [f"fma_{only}.zip"] if only else list(ARCHIVES)
    for name in names:
        if (data_dir / name.removesuffix(".zip")).is_dir():
            log.info("%s: already extracted in %s", name, data_dir)
            continue
        zip_path = download(base_url.rstrip("/") + "/" + name, data_dir / name, sha1s[name], progress)
        extract(zip_path, data_dir, progress)
    return data_dir
