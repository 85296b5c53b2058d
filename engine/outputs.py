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
import os
import shutil
import signal
import tempfile
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


def move_folder_into_place(source: Path, target: Path, replace: bool = False) -> None:
    """Move a finished folder into place; a target that appeared meanwhile is refused, unless
    ``replace``: then the old folder is renamed aside, the new one renamed into place and only
    then the old one removed (a failure between the two renames puts the old one back)."""
    old = None
    try:
        if replace and target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rename(target, old / target.name)
        try:
            os.rename(source, target)
        except BaseException:
            if old is not None:
                os.rename(old / target.name, target)
            raise
    except OSError as exc:
        raise UserError(f"Cannot move the export into {target} ({exc.strerror}).") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# -- temporary outputs, removed on failure and when the process is told to stop -----------------
class Terminated(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP inside ``signals_stop_cleanly``,
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


@contextlib.contextmanager
def signals_stop_cleanly() -> Iterator[None]:
    """For the block, SIGTERM (and SIGHUP) raise ``Terminated`` in the main thread instead of
    ending the process at once, so exports in progress remove their temporary outputs (as
    Ctrl-C's KeyboardInterrupt does); the previous handlers are put back after it.  Outside
    the main thread it changes nothing."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, _terminate)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
