"""The errors a user can act on, and the exit status each gives (docs/faults.md, case 14).

An `FmareportError`'s message is one line naming the file, key or option and the fix; its class
says `fmareport`'s exit status: 2 `ConfigError`, 1 any other, 127 `CommandNotFound` (the shell's),
130 Ctrl-C (`Interrupted`: a KeyboardInterrupt, so no `except Exception` swallows it). `cli.main`
and the notebook (`short_tracebacks`) show them as that line (docs/contracts.md, "Errors").
This module imports nothing of the project's, so every module may raise these.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_FOUND = 127
EXIT_INTERRUPTED = 130  # 128 + SIGINT (2)


class FmareportError(Exception):
    """An error the user can act on; its message is the one line to show."""

    exit_status = EXIT_FAILED


class ConfigError(FmareportError, ValueError):
    """A params file, papermill parameter or argument we refuse; names the file or option, the key and
    what is allowed."""

    exit_status = EXIT_BAD_INPUT


class BookError(FmareportError, RuntimeError):
    """The book cannot be made: no results, a page that failed, a Sphinx warning."""


class CommandError(FmareportError, RuntimeError):
    """A step that failed for a reason the user can act on; the message says what to do."""


class StorageError(FmareportError, OSError):
    """A folder a run writes to is not writable or has no room; the message names it and the bytes needed."""


class CommandNotFound(FmareportError):
    """`fmareport on-gpu -- CMD`: CMD is not an executable file nor a name on PATH."""

    exit_status = EXIT_NOT_FOUND


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says where a rerun of the same command resumes."""

    exit_status = EXIT_INTERRUPTED


INTERRUPTED = "interrupted (Ctrl-C): rerun the same command to go on (training resumes from its last checkpoint)"


@contextlib.contextmanager
def interrupt_after():
    """Hold a Ctrl-C (SIGINT) that arrives inside the block and raise it as KeyboardInterrupt as the
    block ends: what the block writes (a checkpoint) is written whole, never cut into a misleading
    error (torch.save reports a cut write as "enforce fail ... unexpected pos"). Main thread only; an
    ignored SIGINT (a shell's background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def exit_status(err: BaseException) -> int:
    """The exit status of `fmareport` for an error that reached the boundary."""
    return EXIT_INTERRUPTED if isinstance(err, KeyboardInterrupt) else getattr(err, "exit_status", EXIT_FAILED)


def one_line(err: BaseException) -> str:
    """The line to show for an error at the boundary: its message (a bare Ctrl-C gets INTERRUPTED)."""
    text = str(err).strip()
    if isinstance(err, KeyboardInterrupt) and not text:
        return INTERRUPTED
    return " ".join(text.splitlines()) or type(err).__name__


def short_tracebacks(shell) -> None:
    """In IPython (the experiment notebook): show an FmareportError or a Ctrl-C as `Name: its line`,
    every other error (a bug) with its full traceback. The cell still fails (IPython's own error
    display, exception_only), so papermill stops and its log, the workflow's, carries that line.

    A Ctrl-C to papermill reaches the kernel as the interrupt papermill sends it as it shuts it down,
    after papermill stopped reading the kernel's output: in a kernel, the line of a Ctrl-C
    (`Interrupted: interrupted at seed S epoch E: rerun the same command to resume ...`) is also
    written to the kernel's own stderr, papermill's terminal (or the workflow's cell log), and the
    kernel's tracebacks about the sockets papermill closed as it left are not shown."""
    kernel = getattr(shell, "kernel", None)  # an IPython kernel's shell (papermill, Jupyter), not a terminal's
    interrupted = []  # once a Ctrl-C was shown: True

    def show(shell, etype, value, tb, tb_offset=None) -> None:
        shell.showtraceback((etype, value, tb), exception_only=True)
        if kernel is not None and issubclass(etype, KeyboardInterrupt):
            interrupted.append(True)
            _write_stderr(f"\n{etype.__name__}: {one_line(value)}\n")  # on a line of its own, after a bar

    shell.set_custom_exc((FmareportError, KeyboardInterrupt), show)
    if kernel is not None and hasattr(kernel, "log"):
        kernel.log.addFilter(lambda record: not (interrupted and _socket_error(record)))


def _write_stderr(text: str) -> None:
    """`text` on this process's own stderr: under ipykernel, sys.stderr is the notebook's output stream
    and its fileno() a copy of the stderr the kernel was started with."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a stream without one
            continue
        os.write(fd, text.encode("utf-8", "replace"))
        return


def _socket_error(record) -> bool:
    """A log record of the kernel's about a ZMQ socket (zmq.error.ZMQError: closed by its client)."""
    return bool(record.exc_info) and type(record.exc_info[1]).__module__.startswith("zmq")
