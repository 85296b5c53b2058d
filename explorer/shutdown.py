"""What the main window ends as it closes: the helper threads that libraries leave behind.

- tqdm starts a ``tqdm_monitor`` thread with its first progress bar (UMAP's nearest-neighbour
  search makes one) and keeps it for the life of the process.
- Python registers a ``_DummyThread`` ("Dummy-1", ...) for every thread it did not start (a
  QThread) the first time code on it asks for the current thread, and never forgets it: it
  reports itself alive for ever.  Those whose operating-system thread has ended are forgotten.
"""

from __future__ import annotations

import os
import sys
import threading
import time


def end_library_threads(timeout_s: float = 1.0) -> None:
    """Stop tqdm's monitor thread and forget the dummy threads of QThreads that have ended."""
    if "tqdm" in sys.modules:
        from tqdm._monitor import TMonitor
        for monitor in [t for t in threading.enumerate() if isinstance(t, TMonitor)]:
            monitor.exit()   # sets its stop flag and joins it
            if getattr(monitor.tqdm_cls, "monitor", None) is monitor:   # each tqdm class (std, auto, ...) has its own
                monitor.tqdm_cls.monitor = None
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if not isinstance(thread, threading._DummyThread):
            continue
        while _os_thread_alive(thread.native_id) and time.monotonic() < deadline:
            time.sleep(0.005)   # a QThread that wait() saw finish may still be unwinding
        if _os_thread_alive(thread.native_id) is False:
            with threading._active_limbo_lock:
                threading._active.pop(thread.ident, None)


def _os_thread_alive(native_id: int | None) -> bool | None:
    """Whether the process still has that OS thread (None where the system cannot tell)."""
    if native_id is None or not os.path.isdir("/proc/self/task"):
        return None
    return os.path.exists(f"/proc/self/task/{native_id}")
