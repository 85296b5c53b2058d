"""Run one plain function on a QThread (a dataset download, say) and report back in the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import UserError


class _Runner(QObject):
    progressed = Signal(object)  # (done, total)
    finished = Signal(object)    # the function's result
    failed = Signal(str)         # one sentence

    def __init__(self, function: Callable):
        super().__init__()
        self.function = function

    @Slot()
    def run(self) -> None:
        try:
            result = self.function(lambda done, total: self.progressed.emit((done, total)))
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 — the GUI must survive and say what happened
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(result)
        finally:
            # ended from its own thread: quit() queued to the GUI thread (a connection to
            # thread.quit) would never run while the GUI thread sits in wait(), at closing say
            QThread.currentThread().quit()


class BackgroundTask(QObject):
    """``BackgroundTask(lambda progress: ...)``; connect ``progressed``/``finished``/``failed``, then ``start()``.
    The function receives a ``progress(done, total)`` callback."""

    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, function: Callable, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.runner = _Runner(function)
        self.runner.moveToThread(self.thread)
        self.thread.started.connect(self.runner.run)
        self.runner.progressed.connect(self.progressed)
        self.runner.finished.connect(self.finished)
        self.runner.failed.connect(self.failed)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self.thread.wait(timeout_ms)
