"""The Qt bridge: a QObject that runs a ``Trainer`` on a QThread and re-emits its updates.

The only module of the engine that imports Qt, and only QtCore.  Signals are past tense and
carry ``object`` payloads (``TrainingUpdate`` values, which are immutable and hold copies).
``pause``/``resume``/``stop`` are plain methods that set the trainer's thread-safe flags; they
act between two optimizer steps, so they work while the worker's thread is busy in its loop.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import UserError
from engine.training import Trainer


class TrainingWorker(QObject):
    progressed = Signal(object)  # TrainingUpdate (kind "progress" or "epoch")
    finished = Signal(object)    # the last TrainingUpdate (kind "finished")
    failed = Signal(object)      # a one-sentence message (str)

    def __init__(self, trainer: Trainer):
        super().__init__()
        self.trainer = trainer

    @Slot()
    def run(self) -> None:
        try:
            for update in self.trainer.updates():
                if update.kind == "finished":
                    self.finished.emit(update)
                else:
                    self.progressed.emit(update)
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug, but the GUI must survive it and say what happened
            self.failed.emit(f"Training stopped on an unexpected error: {type(exc).__name__}: {exc}")

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume_training()

    def stop(self) -> None:
        self.trainer.stop()


_threads: "weakref.WeakSet[QThread]" = weakref.WeakSet()


def live_threads() -> list[QThread]:
    """Every training QThread that still exists (tests check none is left running)."""
    return list(_threads)


class TrainingThread:
    """A worker on its own QThread: ``start()``, then ``stop_and_wait()`` before it is dropped."""

    def __init__(self, trainer: Trainer):
        self.thread = QThread()
        _threads.add(self.thread)
        self.thread.setObjectName("TrainingThread")
        self.worker = TrainingWorker(trainer)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.finished.connect(self.thread.quit)
        self.worker.failed.connect(self.thread.quit)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def stop_and_wait(self, timeout_ms: int = 10_000) -> bool:
        """Ask the trainer to stop and wait for the thread; True when it ended in time."""
        self.worker.stop()
        self.thread.quit()
        return self.thread.wait(timeout_ms)
