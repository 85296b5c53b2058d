"""One process at a time trains a run: the run folder's ``.lock`` file, held with ``flock`` by the
process that trains it (and, within this process, a registry of the thread that trains it).

A lock nobody holds means the run is free: a run whose config.json says "running" while its lock
is free was interrupted.  Where ``fcntl`` is missing (Windows) there are no advisory locks, and a
live run cannot be told from a dead one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from engine.errors import RunError
from engine.storage import disk_error, file_mode

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a live run cannot be told from a dead one there
    fcntl = None

LOCK = ".lock"

#: run folders locked by this process: real path -> (lock file descriptor, the thread that trains)
_HELD: dict[str, tuple[int, threading.Thread]] = {}
_HELD_GUARD = threading.Lock()


def thread_alive(thread: threading.Thread) -> bool:
    """Whether a thread still runs; for a thread Python did not start (a QThread), whose stand-in
    says it is alive for ever, ask the system where it can tell."""
    if isinstance(thread, threading._DummyThread) and thread.native_id is not None and os.path.isdir("/proc/self/task"):
        return os.path.exists(f"/proc/self/task/{thread.native_id}")
    return thread.is_alive()


def lock_free(path: Path) -> bool:
    """True when no process (this one included) holds the run folder's lock."""
    key = os.path.realpath(path)
    with _HELD_GUARD:
        held = _HELD.get(key)
    if held is not None:
        return not thread_alive(held[1])
    if fcntl is None:
        return True
    try:
        fd = os.open(path / LOCK, os.O_RDONLY)
    except OSError:
        return True   # no lock file: nobody ever trained it with a lock, or it cannot be read
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def lock_holder(path: Path) -> str:
    try:
        with open(path / LOCK, "rb") as lock:   # a pid: a few bytes, whatever the file is (never read whole)
            pid = lock.read(32).decode("ascii", "replace").strip()
    except OSError:
        return "another process"
    return f"process {pid}" if pid.isdigit() else "another process"


def acquire_lock(path: Path) -> int | None:
    """Take the lock of the run folder ``path`` for the current thread (RunError while another
    process or another live training thread holds it); the lock's file descriptor (None without fcntl)."""
    key = os.path.realpath(path)
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and thread_alive(held[1]) and held[1] is not threading.current_thread():
            raise RunError(f"{path} is being trained already in this program; stop that training first.")
        if held is not None:   # its trainer ended on an error without letting go: take the lock over
            fd = held[0]
        else:
            fd = _take_lock(path)
        _HELD[key] = (fd, threading.current_thread())
    return fd


def release_lock(path: Path, fd: int | None) -> None:
    """Let the lock of the run folder ``path`` go (the descriptor registered for it, else ``fd``)."""
    key = os.path.realpath(path)
    with _HELD_GUARD:
        held = _HELD.pop(key, None)
        fd = held[0] if held is not None else fd
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _take_lock(path: Path) -> int | None:
    if fcntl is None:
        return None
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as exc:
        raise disk_error(exc, path, f"its lock file {LOCK}", keeps=", and the run stays as it was") from None
    deadline = time.monotonic() + 0.5   # a reader checking the lock holds it for microseconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() < deadline:
                time.sleep(0.01)
                continue
        os.close(fd)
        raise RunError(f"{path} is being trained by {lock_holder(path)}; wait until it has "
                       "finished (or stop it) before resuming it.") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass   # the pid only makes the message above more precise
    return fd
