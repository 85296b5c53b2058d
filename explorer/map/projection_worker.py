"""One background thread, and behind it one child process, for every slow projection fit
(UMAP, t-SNE).

UMAP compiles and runs numba code that must never run in two threads at once, so the whole
application shares one ``ProjectionWorker``.  Each request names its ``client`` (a map's
``LiveLayout``; the comparison's maps share one worker): requests are tagged with increasing ids,
each client's newest pending request replaces its older one, the clients' requests run in the
order they first came, and a result whose id is no longer its client's newest is dropped.  The fit itself runs in a child process
(``engine.projection_service``), so it never holds the GUI's interpreter lock and closing never
waits for it: ``shutdown()`` kills the child and returns at once.  The layout comes back as a
``FittedLayout`` (the local inverse for dragging), built on the worker thread.

```python
worker = ProjectionWorker()
worker.warm_up()                               # as soon as the window is up: compile umap in the child
worker.computed.connect(lambda result: ...)    # (request id, fitted projection, xy N×2)
request_id = worker.request("umap", codes, client=me, init=previous_xy)
...
worker.shutdown()                              # before the application quits; never waits for a fit
```
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from explorer.tasks import register_thread

#: how long shutdown waits for the worker thread once the child is killed
SHUTDOWN_WAIT_MS = 1000


@dataclass(frozen=True)
class ProjectionRequest:
    """One fit: ``make_projection(name, **params).fit(codes)``, then the layout of ``codes``."""

    id: int
    name: str
    codes: np.ndarray
    params: dict = field(default_factory=dict)


class _Fitter(QObject):
    """Lives on the worker thread; runs the newest pending request each time it is woken."""

    done = Signal(object)     # (id, name, projection, xy, seconds)
    failed = Signal(object)   # (id, message)
    warmed = Signal(object)   # seconds the warm-up took (None when it could not run)

    def __init__(self, take_pending, has_pending, process):
        super().__init__()
        self._take_pending = take_pending
        self._has_pending = has_pending
        self._process = process
        self._compile_later = False
        self._compiled = False

    @Slot()
    def warm_up(self) -> None:
        """t-SNE first (a second); then umap's import and compilation, unless a fit is waiting:
        that goes first (a t-SNE map need not wait for umap, a UMAP fit compiles it anyway)."""
        from engine.projection_service import ProjectionClosed, ProjectionFailed
        try:
            seconds = self._process.warm_up(("tsne",))
            if self._has_pending():
                self._compile_later = True
                return
            seconds += self._process.warm_up(("umap",))
            self._compiled = True
        except (ProjectionClosed, ProjectionFailed, OSError):
            seconds = None
        self.warmed.emit(seconds)

    def _compile_if_idle(self, name: str) -> None:
        self._compiled = self._compiled or name == "umap"
        if self._compile_later and not self._has_pending():
            self._compile_later = False
            if not self._compiled:
                self.warm_up()
            else:
                self.warmed.emit(0.0)

    @Slot()
    def run_pending(self) -> None:
        request = self._take_pending()
        if request is None:  # an earlier wake-up already took it
            return
        from engine.projection import FittedLayout
        from engine.projection_service import ProjectionClosed

        start = time.perf_counter()
        try:
            try:
                xy = self._process.fit(request.name, request.codes, **request.params)
            except OSError:  # no child process can start here: fit in this thread (the only one that fits)
                from engine.projection import make_projection
                xy = make_projection(request.name, **request.params).fit_transform(request.codes)
            projection = FittedLayout(request.name, request.codes, xy)
        except ProjectionClosed as exc:
            if not self._process.closed:
                self.failed.emit((request.id, f"The {_title(request.name)} map could not be computed: {exc}"))
        except Exception as exc:  # noqa: BLE001 — a failed fit must reach the GUI as one sentence
            self.failed.emit((request.id, f"The {_title(request.name)} map could not be computed: {exc}"))
        else:
            self.done.emit((request.id, request.name, projection, projection.xy.copy(), time.perf_counter() - start))
        self._compile_if_idle(request.name)


def _abandon(thread: QThread, process, *_) -> None:
    process.close()
    try:
        thread.quit()
        thread.wait(SHUTDOWN_WAIT_MS)
    except RuntimeError:  # at interpreter exit the thread's C++ object may already be gone
        pass


def _title(name: str) -> str:
    return {"umap": "UMAP", "tsne": "t-SNE"}.get(name, name.upper())


class ProjectionWorker(QObject):
    """Fits projections on one background QThread (in a child process); each client's newest
    request wins, and every client gets its turn."""

    computed = Signal(object)  # (request id, projection, xy N×2) for each client's newest request only
    failed = Signal(object)    # (request id, message)
    busy_changed = Signal(bool)
    warmed = Signal(object)    # the warm-up ended: seconds (None when it could not run)
    _wake = Signal()           # queued to the fitter: run the pending request
    _warm = Signal()           # queued to the fitter: compile umap in the child

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        from engine.projection_service import ProjectionProcess

        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[object, ProjectionRequest] = {}   # client -> its newest request not yet begun
        self._latest: dict[object, int] = {}                  # client -> the id of its newest request
        self._client_of: dict[int, object] = {}               # the ids whose results are awaited
        self._newest = 0
        self._busy = False
        self._closed = False
        self._warm_state = "cold"   # "cold" -> "warming" -> "warm"
        #: seconds the last fit took, as the GUI saw it (None before the first)
        self.last_fit_seconds: float | None = None
        self.process = ProjectionProcess()
        self._thread = register_thread(QThread(), "projection")   # closing and the tests' fixture see it
        self._fitter = _Fitter(self._take_pending, self._has_pending, self.process)
        self._fitter.moveToThread(self._thread)
        self._wake.connect(self._fitter.run_pending)  # queued: the slot runs on the worker thread
        self._warm.connect(self._fitter.warm_up)
        self._fitter.done.connect(self._on_done)
        self._fitter.failed.connect(self._on_failed)
        self._fitter.warmed.connect(self._on_warmed)
        self._thread.finished.connect(self._fitter.deleteLater)
        # a worker deleted without shutdown() (its view went away) still ends its thread and child:
        # a QThread destroyed while it runs aborts the process
        self.destroyed.connect(functools.partial(_abandon, self._thread, self.process))

    @property
    def latest_id(self) -> int:
        """The id of the newest request of any client (0 before the first)."""
        return self._newest

    def latest_id_for(self, client) -> int:
        """The id of ``client``'s newest request (0 when it has none, or it was cancelled)."""
        return self._latest.get(client, 0)

    def is_busy(self) -> bool:
        """True from a request until its result (or its client's newer one's) has arrived, for
        any client."""
        return self._busy

    def is_warm(self) -> bool:
        """True once umap has been compiled in the child (its first fit is then quick)."""
        return self._warm_state == "warm"

    def is_warming(self) -> bool:
        return self._warm_state == "warming"

    def warm_up(self) -> None:
        """Start the child and compile umap there on a tiny fit, in the background (a no-op when
        it has begun, or after shutdown)."""
        if self._closed or self._warm_state != "cold":
            return
        self._warm_state = "warming"
        self._start_thread()
        self._warm.emit()

    def request(self, name: str, codes: np.ndarray, *, client=None, **params) -> int:
        """Ask for ``make_projection(name, **params).fit(codes)`` on behalf of ``client`` (any
        hashable: its newer request replaces this one); returns the request's id (0, and nothing
        happens, once the worker has been shut down)."""
        if self._closed:
            return 0
        request_id = next(self._ids)
        request = ProjectionRequest(request_id, name, np.array(codes, dtype=np.float32, copy=True), dict(params))
        with self._lock:
            self._pending[client] = request   # a client already waiting keeps its place in the queue
            self._forget(client)
            self._latest[client] = self._newest = request_id
            self._client_of[request_id] = client
        self._start_thread()
        self._set_busy(True)
        self._wake.emit()
        return request_id

    def cancel(self, client=...) -> None:
        """Forget ``client``'s pending request and drop its result under way (every client's
        when none is named)."""
        with self._lock:
            clients = list(self._latest) if client is ... else [client]
            for c in clients:
                self._pending.pop(c, None)
                self._forget(c)
                self._latest.pop(c, None)
            busy = bool(self._client_of)
        self._set_busy(busy)

    def _forget(self, client) -> None:
        """(Under the lock.) No longer await ``client``'s newest result."""
        self._client_of.pop(self._latest.get(client, 0), None)

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> bool:
        """Drop pending work, kill the child (a fit under way is abandoned: a projection is never
        worth waiting for) and end the thread; True when it ended in time."""
        self.cancel()
        self._closed = True
        self.process.close()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    def _start_thread(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    def _has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def _take_pending(self) -> ProjectionRequest | None:
        """The request of the client that has waited longest (None when there is none)."""
        with self._lock:
            if not self._pending:
                return None
            return self._pending.pop(next(iter(self._pending)))

    def _settle(self, request_id: int) -> bool:
        """The result of ``request_id`` has come: True when its client still awaits it."""
        with self._lock:
            awaited = request_id in self._client_of
            self._client_of.pop(request_id, None)
            busy = bool(self._client_of)
        self._set_busy(busy)
        return awaited

    def _on_done(self, result) -> None:
        request_id, name, projection, xy, seconds = result
        self.last_fit_seconds = seconds
        if name == "umap":
            self._warm_state = "warm"   # a UMAP fit compiles umap as well as the warm-up does
        if self._settle(request_id):
            self.computed.emit((request_id, projection, xy))

    def _on_failed(self, result) -> None:
        if self._settle(result[0]):
            self.failed.emit(result)

    def _on_warmed(self, seconds) -> None:
        self._warm_state = "warm" if seconds is not None else "cold"
        self.warmed.emit(seconds)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
