"""Where an export may write: the check every export makes before it computes anything, so a
wrong name or a missing folder is one sentence and no work is wasted.  (Light: no torch, so the
GUI's figure module can use it without importing the export machinery at start-up.)"""

from __future__ import annotations

from pathlib import Path

from engine.errors import UserError


def output_target(path: str | Path, suffixes: tuple[str, ...], what: str, use: str | None = None) -> Path:
    """``path`` with ``~`` expanded, when its suffix (in any case) is one of ``suffixes`` and its
    folder exists; otherwise UserError "Cannot write <what> to <name>: use <use>." (``use``: the
    suffixes joined by "or") or "The folder … does not exist."."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise UserError(f"Cannot write {what} to {path.name}: use {use or ' or '.join(suffixes)}.")
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    return path
