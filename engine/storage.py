"""Files on disk: writes that are atomic and say in one sentence why they failed, and the one
reader of every JSON and safetensors file the app reads.

``atomic_write`` writes a temporary file beside the target and moves it over in one
``os.replace``; a failed write leaves the old file as it was and raises ``DiskError`` with one
sentence (a full disk, a read-only file system, no permission).  New files get the mode the
umask gives (not tempfile's 0600).

``read_json`` and ``read_tensors`` read only regular files (after following links) of at most
``MAX_JSON_BYTES`` / ``MAX_TENSOR_BYTES``, and turn every failure (missing, not a regular file,
too large, unreadable, not UTF-8, not JSON, nested too deep, not safetensors) into one sentence
naming the file: a ``UserError``, or the subclass the caller passes (``RunError`` for run folders).
Nothing is ever unpickled.  The value checks (``check_numbers`` ...) say which field of which
file is bad.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.errors import DiskError, RunError, UserError

#: the largest JSON file read (a run's history of a million steps is about 100 MB)
MAX_JSON_BYTES = 512 * 2**20
#: the largest safetensors file read (weights, optimizer state, probe codes, a movie)
MAX_TENSOR_BYTES = 2 * 2**30


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (/proc), else set and put back."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from the umask, as every other tool makes it (tempfile's are 0600)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    return 0o777 & ~_umask()


# -- disk errors as sentences ------------------------------------------------------------------
def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _errno_of(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if code is None:  # safetensors: "... I/O error: No space left on device (os error 28)" or "... Os { code: 28 ..."
        match = re.search(r"os error (\d+)|code: (\d+)", str(exc))
        code = int(match.group(1) or match.group(2)) if match else None
    return code


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def disk_error(exc: BaseException, folder: Path, what: str, needed: int | None = None, keeps: str = "") -> DiskError:
    """One sentence for a failed write of ``what`` into ``folder``: a full disk (how much was
    needed, how much is free), a read-only file system, no permission, or the system's own words;
    ``keeps`` says what is left as it was (", and the run keeps its last checkpoint")."""
    folder = Path(folder)
    code = _errno_of(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        free = _free_bytes(folder)
        need = f"about {_size(needed)} was needed and " if needed else ""
        have = f"{_size(free)} is free" if free is not None else "no space is left"
        return DiskError(f"The disk holding {folder} is full, so {what} could not be written: {need}{have}{keeps}.")
    if code == errno.EROFS:
        return DiskError(f"{folder} is on a read-only file system, so {what} could not be written{keeps}.")
    if code in (errno.EACCES, errno.EPERM):
        return DiskError(f"{folder} may not be written (permission denied), so {what} could not be written{keeps}.")
    reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0][:100]
    return DiskError(f"Could not write {what} into {folder} ({reason}){keeps}.")


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values()) + 1024 * (1 + len(tensors) // 16)


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write(path: Path, write, needed: int | None = None, keeps: str = "") -> None:
    """Call ``write(tmp_path)`` and move the finished file over ``path`` in one step; a failed
    write removes its temporary file and raises ``DiskError`` with one sentence."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, SafetensorError)):
            raise disk_error(exc, path.parent, path.name, needed, keeps) from None
        raise


def dump_json(obj) -> str:
    return json.dumps(obj, indent=1, allow_nan=False)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``source``, or a copy (with the umask's mode) where links fail."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, file_mode())


def write_json(path: Path, obj, keeps: str = "") -> None:
    text = dump_json(obj)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text), len(text.encode()), keeps)


def cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = cpu_tensors(tensors)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), tensor_bytes(tensors))


# -- the one reader ----------------------------------------------------------------------------
def check_file(path: Path, limit: int, what: str, error: type[UserError] = UserError) -> int:
    """The size of ``path`` when it is a regular file (links followed) of at most ``limit`` bytes;
    ``error`` with one sentence naming the file and why otherwise.  A device (/dev/zero), a pipe or
    a folder is never read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path} is missing.") from None
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
        raise error(f"{path} is {kind}, not a regular file, so it is not read as {what}.")
    if info.st_size > limit:
        raise error(f"{path} holds {_size(info.st_size)}, more than the {_size(limit)} a file of {what} may hold, "
                    "so it is not read.")
    return info.st_size


def _read_bytes(path: Path, limit: int, what: str, error: type[UserError]) -> bytes:
    check_file(path, limit, what, error)
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror or type(exc).__name__}).") from None
    if len(data) > limit:   # it grew after the check
        raise error(f"{path} holds more than the {_size(limit)} a file of {what} may hold, so it is not read.")
    return data


def read_json(path: str | os.PathLike, what: str = "JSON", error: type[UserError] = UserError):
    """The JSON value in ``path``; ``error`` (a ``UserError``) with one sentence naming the file when it
    is missing, not a regular file, over ``MAX_JSON_BYTES``, unreadable, not UTF-8 or not JSON (nesting
    too deep for the parser included).  ``what`` names the content in messages ("a training history")."""
    data = _read_bytes(Path(path), MAX_JSON_BYTES, what, error)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise error(f"{path} is damaged and cannot be read as {what} (it is not UTF-8 text).") from None
    except RecursionError:
        raise error(f"{path} is damaged and cannot be read as {what} (it is nested too deeply).") from None
    except ValueError as exc:
        raise error(f"{path} is damaged and cannot be read as {what} ({str(exc)[:80]}).") from None


def read_json_object(path: str | os.PathLike, what: str, error: type[UserError] = UserError) -> dict:
    """``read_json``, and ``error`` unless the file holds a JSON object."""
    obj = read_json(path, what, error)
    if not isinstance(obj, dict):
        raise error(f"{path} does not hold {what}.")
    return obj


def read_tensors(path: str | os.PathLike, error: type[UserError] = RunError) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked as ``read_json`` checks (regular file, at most
    ``MAX_TENSOR_BYTES``); ``error`` with one sentence when it is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path} is missing from the run folder.")
    check_file(path, MAX_TENSOR_BYTES, "tensors", error)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise error(f"{path} is damaged or truncated and cannot be loaded ({str(exc)[:80]}).") from None


def read_tensor_metadata(path: str | os.PathLike, error: type[UserError] = RunError) -> dict[str, str]:
    """The metadata (text to text) of a safetensors file, read from its header only; checked as
    ``read_tensors`` checks the file."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path} is missing from the run folder.")
    check_file(path, MAX_TENSOR_BYTES, "tensors", error)
    from safetensors import safe_open
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise error(f"{path} is damaged or truncated and cannot be loaded ({str(exc)[:80]}).") from None


# -- checking what was read ------------------------------------------------------------------
def is_whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_finite_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def show_value(v) -> str:
    text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def check_numbers(values, where: str, name: str, whole: bool = False, gaps: bool = False) -> None:
    """``gaps``: null stands for a value that was not reported."""
    if not isinstance(values, list):
        raise RunError(f"{where} is malformed: {name} is {show_value(values)}, not a list of numbers.")
    check = is_whole if whole else is_finite_number
    for i, v in enumerate(values):
        if not check(v) and not (gaps and v is None):
            kind = "a whole number" if whole else "a finite number"
            raise RunError(f"{where} is malformed: {name}[{i}] is {show_value(v)}, not {kind}.")


def check_series(d, where: str, name: str, length: int, length_of: str, gaps: bool = False) -> None:
    if not isinstance(d, dict):
        raise RunError(f"{where} is malformed: {name} is {show_value(d)}, not an object of named lists.")
    for key, values in d.items():   # every step and epoch reports its total: only other terms have gaps
        check_numbers(values, where, f"{name}[{key!r}]", gaps=gaps and key != "total")
        if len(values) != length:
            raise RunError(f"{where} is malformed: {name}[{key!r}] holds {len(values)} values but {length_of} "
                           f"holds {length}.")
