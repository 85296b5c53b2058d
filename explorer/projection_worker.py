"""One background thread for every slow projection fit (UMAP).

UMAP compiles and runs numba code that must never run in two threads at once, so the whole
application shares one ``ProjectionWorker``: requests are tagged with increasing ids, only the
newest pending request runs (older pending ones are replaced), and a result whose id is no
longer the newest is dropped.  ``engine.projection`` (and with it umap) is imported inside
the worker thread on the first request, never at application start.

```python
worker = ProjectionWorker()
worker.computed.connect(lambda result: ...)   # (request id, fitted projection, xy N×2)
request_id = worker.request("umap", codes, init=previous_xy)
...
worker.shutdown()                               # before the application quits
```
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot


@dataclass(frozen=True)
class ProjectionRequest:
    """One fit: ``make_projection(name, **params).fit(codes)``, then the layout of ``codes``."""

    id: int
    name: str
    codes: np.ndarray
    params: dict = field(default_factory=dict)


class _Fitter(QObject):
    """Lives on the worker thread; runs the newest pending request each time it is woken."""

    done = Signal(object)    # (id, projection, xy)
    failed = Signal(object)  # (id, message)

    def __init__(self, take_pending):
        super().__init__()
        self._take_pending = take_pending

    @Slot()
    def run_pending(self) -> None:
        request = self._take_pending()
        if request is None:  # an earlier wake-up already took it
            return
        try:
            from engine.projection import make_projection

            projection = make_projection(request.name, **request.params)
            xy = np.asarray(projection.fit_transform(request.codes), dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 — a failed fit must reach the GUI as one sentence
            self.failed.emit((request.id, f"The {request.name.upper()} map could not be computed: {exc}"))
        else:
            self.done.emit((request.id, projection, xy))


class ProjectionWorker(QObject):
    """Fits projections on one background QThread; newest request wins."""

    computed = Signal(object)  # (request id, projection, xy N×2) for the newest request only
    failed = Signal(object)    # (request id, message)
    busy_changed = Signal(bool)
    _wake = Signal()           # queued to the fitter: run the pending request

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: ProjectionRequest | None = None
        self._latest = 0
        self._busy = False
        self._closed = False
        self._thread = QThread()
        self._thread.setObjectName("ProjectionThread")
        self._fitter = _Fitter(self._take_pending)
        self._fitter.moveToThread(self._thread)
        self._wake.connect(self._fitter.run_pending)  # queued: the slot runs on the worker thread
        self._fitter.done.connect(self._on_done)
        self._fitter.failed.connect(self._on_failed)
        self._thread.finished.connect(self._fitter.deleteLater)

    @property
    def latest_id(self) -> int:
        """The id of the newest request (0 before the first)."""
        return self._latest

    def is_busy(self) -> bool:
        """True from a request until its result (or the newest one's) has arrived."""
        return self._busy

    def request(self, name: str, codes: np.ndarray, **params) -> int:
        """Ask for ``make_projection(name, **params).fit(codes)``; returns the request's id
        (0, and nothing happens, once the worker has been shut down)."""
        if self._closed:
            return 0
        request_id = next(self._ids)
        request = ProjectionRequest(request_id, name, np.array(codes, dtype=np.float32, copy=True), dict(params))
        with self._lock:
            self._pending = request
            self._latest = request_id
        if not self._thread.isRunning():
            self._thread.start()
        self._set_busy(True)
        self._wake.emit()
        return request_id

    def cancel(self) -> None:
        """Forget the pending request and drop whatever result is under way."""
        with self._lock:
            self._pending = None
            self._latest = next(self._ids)
        self._set_busy(False)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Drop pending work, let a running fit finish, and end the thread; True when it ended in time."""
        self.cancel()
        self._closed = True
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    def _take_pending(self) -> ProjectionRequest | None:
        with self._lock:
            request, self._pending = self._pending, None
        return request

    def _on_done(self, result) -> None:
        if result[0] == self._latest:
            self._set_busy(False)
            self.computed.emit(result)

    def _on_failed(self, result) -> None:
        if result[0] == self._latest:
            self._set_busy(False)
            self.failed.emit(result)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)
