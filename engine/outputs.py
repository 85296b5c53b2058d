"""Where an export may write: the check every export makes before it computes anything, so a
wrong name, a missing folder or a file that would be overwritten is one sentence and no work is
wasted, and the temporary output of an export in progress, removed when it fails or the process
is told to stop.  (Light: no torch, so the GUI's figure module can use it without importing the
export machinery at start-up.)

The rule for every export (CLI exports, compare's figure and table): an existing output is
refused unless the caller says to replace it (the CLI's ``--force``; the window's file dialogs
ask first), and a replaced file is replaced in one step (written beside it, then renamed over it).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from engine.errors import UserError

#: what the CLI tells a person to add to replace an existing output
FORCE_HINT = "add --force to replace it"


def refuse_existing(path: str | Path, replace: bool, hint: str = FORCE_HINT) -> Path:
    """``path`` (``~`` expanded) unless it exists and ``replace`` is false: then UserError
    "<path> already exists; choose another name, or <hint>." (a folder where a file should
    go is refused even with ``replace``)."""
    path = Path(path).expanduser()
    if path.is_dir() and path.suffix:
        raise UserError(f"{path} is a folder; choose a file name for the export.")
    if not replace and (path.exists() or path.is_symlink()):
        raise UserError(f"{path} already exists; choose another name, or {hint}.")
    return path


def output_target(path: str | Path, suffixes: tuple[str, ...], what: str, use: str | None = None,
                  replace: bool = True) -> Path:
    """``path`` with ``~`` expanded, when its suffix (in any case) is one of ``suffixes`` and its
    folder exists; otherwise UserError "Cannot write <what> to <name>: use <use>." (``use``: the
    suffixes joined by "or") or "The folder … does not exist.".  With ``replace=False`` an
    existing file is refused too (``refuse_existing``)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise UserError(f"Cannot write {what} to {path.name}: use {use or ' or '.join(suffixes)}.")
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    return refuse_existing(path, replace)


# -- temporary outputs, removed on failure and when the process is told to stop -----------------
class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP once ``stop_cleanly_on_signals`` is installed,
    so every ``temporary_output`` block (and every atomic write) unwinds and removes its
    temporary file or folder.  A BaseException: no ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def temporary_output(path: str | Path) -> Iterator[Path]:
    """The temporary file or folder ``path`` an export is writing: removed when the block
    raises (a failure, Ctrl-C, or ``Terminated`` from SIGTERM) and whenever the block ends with
    it still there; the block moves it into place when it succeeds."""
    path = Path(path)
    try:
        yield path
    finally:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def _terminate(signum, frame) -> None:
    raise Terminated(signum)


def stop_cleanly_on_signals() -> None:
    """SIGTERM (and SIGHUP) raise ``Terminated`` in the main thread instead of ending the
    process at once, so exports in progress remove their temporary outputs (as Ctrl-C's
    KeyboardInterrupt does).  Only from the main thread; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, _terminate)
