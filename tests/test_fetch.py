"""fetch against a local HTTP server serving bzip2 zips built from the tiny synthetic set."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fmareport.cli import main
from fmareport.data.fetch import FetchError, fetch
from fmareport.data.fma import ARCHIVES


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, (2017, 4, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def files_of(root) -> dict[str, bytes]:
    return {p.relative_to(root.parent).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def archives(tiny_data) -> dict[str, bytes]:
    """fma_metadata.zip and fma_small.zip of the tiny set, laid out as the official ones."""
    return {f"{top}.zip": make_zip(files_of(tiny_data / top)) for top in ("fma_metadata", "fma_small")}


def sha1s(archives: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha1(data).hexdigest() for name, data in archives.items()}


class Server:
    """Serves `files` (name -> bytes) on 127.0.0.1 with HTTP Range support.

    Names in `drop_once` get half their body on the first request, then the
    connection closes. `requests` records (name, Range header) of each request.
    """

    def __init__(self, files: dict[str, bytes], drop_once: set[str] = frozenset()):
        self.files, self.drop_once, self.requests = files, set(drop_once), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name, wanted = self.path.rsplit("/", 1)[-1], self.headers.get("Range")
                server.requests.append((name, wanted))
                if name not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[name], 0
                if wanted:
                    start = int(wanted.removeprefix("bytes=").removesuffix("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.drop_once:
                    server.drop_once.discard(name)
                    body = body[: len(body) // 2]  # then the connection closes: a short body
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fma/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(files, drop_once=frozenset()):
        servers.append(Server(files, drop_once))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".extracting")))


def test_fetch_extracts_the_verified_tree(tmp_path, tiny_data, archives, serve):
    server = serve(archives)
    fetch(tmp_path, server.url, sha1s=sha1s(archives), progress=False)
    for top in ("fma_metadata", "fma_small"):
        assert files_of(tmp_path / top) == files_of(tiny_data / top)
        assert (tmp_path / f"{top}.zip").read_bytes() == archives[f"{top}.zip"]
    assert leftovers(tmp_path) == []
    n = len(server.requests)
    fetch(tmp_path, server.url, sha1s=sha1s(archives), progress=False)  # already there: no request
    assert len(server.requests) == n


def test_a_dropped_connection_resumes(tmp_path, tiny_data, archives, serve):
    server = serve(archives, drop_once={"fma_small.zip"})
    fetch(tmp_path, server.url, only="small", sha1s=sha1s(archives), progress=False)
    size = len(archives["fma_small.zip"])
    assert server.requests == [("fma_small.zip", None), ("fma_small.zip", f"bytes={size // 2}-")]
    assert files_of(tmp_path / "fma_small") == files_of(tiny_data / "fma_small")


def test_a_part_file_from_an_earlier_run_resumes(tmp_path, tiny_data, archives, serve):
    (tmp_path / "fma_metadata.zip.part").write_bytes(archives["fma_metadata.zip"][:1000])
    server = serve(archives)
    fetch(tmp_path, server.url, only="metadata", sha1s=sha1s(archives), progress=False)
    assert server.requests == [("fma_metadata.zip", "bytes=1000-")]
    assert files_of(tmp_path / "fma_metadata") == files_of(tiny_data / "fma_metadata")


def test_a_wrong_sha1_is_refused(tmp_path, archives, serve):
    server = serve(archives)
    wrong = {**sha1s(archives), "fma_small.zip": "0" * 40}
    with pytest.raises(FetchError) as err:
        fetch(tmp_path, server.url, sha1s=wrong, progress=False)
    got = sha1s(archives)["fma_small.zip"]
    assert f"fma_small.zip: SHA1 mismatch: expected {'0' * 40}, got {got}" in str(err.value)
    assert (tmp_path / "fma_metadata").is_dir()  # the good archive is in place
    assert not (tmp_path / "fma_small").exists() and not (tmp_path / "fma_small.zip").exists()
    assert leftovers(tmp_path) == []


def test_an_archive_with_a_wrong_sha1_already_there_is_kept_aside_not_deleted(tmp_path, tiny_data, archives, serve):
    """A fma_metadata.zip in the data folder that is not the official file may be the user's: it is
    renamed to .sha1-mismatch (same bytes), the official one is downloaded; a second one is refused."""
    mine = b"my own zip, not FMA's"
    (tmp_path / "fma_metadata.zip").write_bytes(mine)
    server = serve(archives)
    fetch(tmp_path, server.url, only="metadata", sha1s=sha1s(archives), progress=False)
    assert (tmp_path / "fma_metadata.zip.sha1-mismatch").read_bytes() == mine
    assert (tmp_path / "fma_metadata.zip").read_bytes() == archives["fma_metadata.zip"]
    assert files_of(tmp_path / "fma_metadata") == files_of(tiny_data / "fma_metadata")

    (tmp_path / "fma_small.zip").write_bytes(mine)
    (tmp_path / "fma_small.zip.sha1-mismatch").write_bytes(b"older")
    with pytest.raises(FetchError, match=r"fma_small.zip: SHA1 \w+ is not the official \w+, and fma_small.zip."
                       r"sha1-mismatch is already there: move one of them away"):  # fmt: skip
        fetch(tmp_path, server.url, only="small", sha1s=sha1s(archives), progress=False)
    assert (tmp_path / "fma_small.zip").read_bytes() == mine
    assert (tmp_path / "fma_small.zip.sha1-mismatch").read_bytes() == b"older"


@pytest.mark.parametrize("evil", ["../x", "fma_small/../../x", "/x", "fma_metadata/x"])
def test_an_entry_outside_the_folder_is_refused(tmp_path, serve, evil):
    data_dir = tmp_path / "data"
    archive = make_zip({"fma_small/checksums": b"", "fma_small/000/000002.mp3": b"mp3", evil: b"pwned"})
    server = serve({"fma_small.zip": archive})
    with pytest.raises(FetchError, match=rf"fma_small.zip: refusing entry '{evil}'"):
        fetch(
            data_dir,
            server.url,
            only="small",
            sha1s={"fma_small.zip": hashlib.sha1(archive).hexdigest()},
            progress=False,
        )
    assert not any(p.name == "x" for p in tmp_path.rglob("*")) and not (tmp_path.parent / "x").exists()
    assert not (data_dir / "fma_small").exists() and leftovers(data_dir) == []


def test_a_file_that_does_not_match_checksums_is_refused(tmp_path, tiny_data, serve):
    entries = files_of(tiny_data / "fma_small")
    victim = next(name for name in entries if name.endswith(".mp3") and entries[name])
    entries[victim] = entries[victim][:-1] + b"\0"
    archive = make_zip(entries)
    server = serve({"fma_small.zip": archive})
    with pytest.raises(FetchError, match=rf"checksums: 1 of \d+ files do not match: {victim.split('/', 1)[1]}"):
        fetch(
            tmp_path,
            server.url,
            only="small",
            sha1s={"fma_small.zip": hashlib.sha1(archive).hexdigest()},
            progress=False,
        )
    assert not (tmp_path / "fma_small").exists() and leftovers(tmp_path) == []


def test_cli_checks_the_official_sha1(tmp_path, archives, serve, capsys):
    server = serve(archives)
    assert main(["fetch", str(tmp_path), "--base-url", server.url, "--only", "metadata"]) == 1
    err = capsys.readouterr().err
    assert f"fma_metadata.zip: SHA1 mismatch: expected {ARCHIVES['fma_metadata.zip']}" in err
    assert not (tmp_path / "fma_metadata").exists() and leftovers(tmp_path) == []
