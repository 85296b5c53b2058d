"""The app's one background-task mechanism: a function or a generator on its own QThread, with
pause and stop, its ``progressed`` / ``finished`` / ``failed`` signals delivered on the GUI thread,
and one registry of every thread the app runs (closing the window and the tests' fixture see them
all).

```python
task = BackgroundTask(lambda progress: work(progress), self, owner=self)   # progress(done, total)
task.finished.connect(on_result); task.failed.connect(on_sentence)         # slots of the GUI thread
task.start()          # cancels this owner's previous task if it still runs
task.pause(); task.resume(); task.stop(); task.wait(10_000)
```

- A function's return value arrives as ``finished``; ``progress(done, total)`` sends
  ``progressed((done, total))``.  A generator's yielded values arrive as ``progressed`` and its
  return value as ``finished``; pause and stop act between two of its yields.  A function that can
  stop early reads ``task.stopping`` (a ``threading.Event``).
- ``failed`` carries one sentence: a ``UserError``'s message, or the exception's type and message.
- ``cancel()`` is ``stop()`` whose results are dropped: no signal of it arrives afterwards.  A
  task made with an ``owner`` cancels, as it starts, that owner's task still running (the shape of
  Orange3's ``ConcurrentMixin.start`` and superqt's ``thread_worker``).
- ``TrainingTask(trainer)`` runs ``Trainer.updates()``; its pause/resume/stop set the trainer's
  thread-safe flags, which act between two optimizer steps.  The trainer lowers its own thread's
  priority (``engine.training.TRAIN_NICENESS``) as it starts.
- A long-lived thread that is not a task (the projection service's) joins the registry with
  ``register_thread``.  ``live_threads()`` lists every registered thread still running;
  ``wait_for_tasks()`` waits for every task: a QThread must never be destroyed while it runs (an
  abort).

A task's thread ends itself as its work ends (``quit()`` from that thread): a ``quit()`` queued to
the GUI thread would never run while the GUI thread sits in ``wait()``, at closing say.  PySide6
6.12.0 aborts when a QObject worker on a QThread emits to the GUI thread, which is this pattern:
tests/explorer/test_pyside_regression.py guards the pin below 6.12.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from collections.abc import Callable

import shiboken6 as shiboken
from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import UserError


class _Runner(QObject):
    """Lives on the task's thread: runs the work once, then ends its thread."""

    progressed = Signal(object)
    finished = Signal(object)
    failed = Signal(object)

    def __init__(self, function: Callable, stopping: threading.Event, unpaused: threading.Event,
                 describe_failure: Callable[[Exception], str]):
        super().__init__()
        self.function = function
        self.stopping = stopping
        self.unpaused = unpaused
        self.describe_failure = describe_failure

    @Slot()
    def run(self) -> None:
        try:
            result = self.function(lambda done, total: self.progressed.emit((done, total)))
            if inspect.isgenerator(result):
                result = self._drain(result)
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 — the GUI must survive and say what happened
            self.failed.emit(self.describe_failure(exc))
        else:
            self.finished.emit(result)
        finally:
            QThread.currentThread().quit()

    def _drain(self, generator):
        """Each yielded value as ``progressed``; the generator's return value (None when stopped)."""
        while True:
            self.unpaused.wait()   # paused: wait here, between two yields
            if self.stopping.is_set():
                generator.close()
                return None
            try:
                value = next(generator)
            except StopIteration as end:
                return end.value
            self.progressed.emit(value)


class BackgroundTask(QObject):
    """One function or generator on its own QThread; see the module's docstring.  ``name`` names
    the thread and is the task's kind in ``live_threads(kind)``."""

    progressed = Signal(object)   # (done, total) from a function's progress(); a generator's values
    finished = Signal(object)     # the result
    failed = Signal(object)       # one sentence (str)

    def __init__(self, function: Callable, parent: QObject | None = None, *, owner=None, name: str = "task"):
        super().__init__(parent)
        self.owner = owner
        self.stopping = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._cancelled = False
        self.thread = QThread()
        self.thread.setObjectName(name)
        self.runner = _Runner(function, self.stopping, self._unpaused, self.describe_failure)
        self.runner.moveToThread(self.thread)
        self.thread.started.connect(self.runner.run)
        self.runner.progressed.connect(self._relay_progressed)   # queued: these slots run on the GUI thread
        self.runner.finished.connect(self._relay_finished)
        self.runner.failed.connect(self._relay_failed)
        self.thread.finished.connect(self._ended)

    @property
    def name(self) -> str:
        return self.thread.objectName()

    def describe_failure(self, exc: Exception) -> str:
        """The sentence ``failed`` carries for an unexpected exception (called on the task's thread)."""
        return f"{type(exc).__name__}: {exc}"

    # -- control --------------------------------------------------------------------------------
    def start(self) -> None:
        """Run the work on the task's thread; first cancel the same owner's task still running."""
        if self.owner is not None:
            for other in list(_running.values()):
                if other is not self and other.owner is self.owner:
                    other.cancel()
        _running[self.thread] = self
        self.thread.start()

    def pause(self) -> None:
        self._unpaused.clear()

    def resume(self) -> None:
        self._unpaused.set()

    def is_paused(self) -> bool:
        return not self._unpaused.is_set()

    def stop(self) -> None:
        """Ask the work to end early (a generator at its next yield; a function that reads
        ``stopping``); what it returns still arrives."""
        self.stopping.set()
        self._unpaused.set()

    def cancel(self) -> None:
        """``stop()``, and drop whatever the task would still report."""
        self._cancelled = True
        self.stop()

    def is_cancelled(self) -> bool:
        return self._cancelled

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Wait for the thread to end; True when it has (or never started)."""
        return self.thread.wait(timeout_ms)

    def stop_and_wait(self, timeout_ms: int = 10_000) -> bool:
        self.stop()
        return self.wait(timeout_ms)

    # -- the GUI thread's side --------------------------------------------------------------------
    @Slot(object)
    def _relay_progressed(self, value) -> None:
        if not self._cancelled:
            self.progressed.emit(value)

    @Slot(object)
    def _relay_finished(self, value) -> None:
        if not self._cancelled:
            self.finished.emit(value)

    @Slot(object)
    def _relay_failed(self, message) -> None:
        if not self._cancelled:
            self.failed.emit(message)

    @Slot()
    def _ended(self) -> None:
        if _running.get(self.thread) is self:
            del _running[self.thread]


class TrainingTask(BackgroundTask):
    """A ``Trainer`` on its own QThread: ``progressed`` with each ``TrainingUpdate`` (kind
    "progress" or "epoch"), ``finished`` with the last one (kind "finished"), ``failed`` with one
    sentence.  Pause, resume and stop set the trainer's flags, so they act between two optimizer
    steps while the thread is busy in its loop; a stopped run saves and still ``finished``."""

    def __init__(self, trainer, parent: QObject | None = None, *, owner=None):
        super().__init__(lambda _progress: _training_updates(trainer), parent, owner=owner, name="training")
        self.trainer = trainer

    def describe_failure(self, exc: Exception) -> str:
        return f"Training stopped on an unexpected error: {type(exc).__name__}: {exc}"

    def pause(self) -> None:
        self.trainer.pause()

    def resume(self) -> None:
        self.trainer.resume_training()

    def is_paused(self) -> bool:
        return bool(self.trainer.paused)

    def stop(self) -> None:
        self.trainer.stop()   # the trainer ends its loop and saves; the last update still arrives


def _training_updates(trainer):
    """``trainer.updates()`` with its last update ("finished") as the generator's return value."""
    for update in trainer.updates():
        if update.kind == "finished":
            return update
        yield update
    return None


# -- the registry ------------------------------------------------------------------------------
#: every task whose thread was started and has not been seen to finish (kept alive meanwhile)
_running: dict[QThread, BackgroundTask] = {}
#: the long-lived threads that joined with ``register_thread``
_services: weakref.WeakSet[QThread] = weakref.WeakSet()


def register_thread(thread: QThread, name: str) -> QThread:
    """Add a long-lived QThread that is not a task (a service's) to the registry, named ``name``."""
    thread.setObjectName(name)
    _services.add(thread)
    return thread


def live_threads(name: str | None = None) -> list[QThread]:
    """Every registered thread still running (only those named ``name``: "training", "projection",
    "preload", "task", ...)."""
    for thread, task in list(_running.items()):   # a task deleted (deleteLater) before its _ended slot ran
        if not _is_running(thread) and not shiboken.isValid(task):
            _running.pop(thread, None)
    threads = [*_running, *_services]
    return [t for t in threads if _is_running(t) and (name is None or t.objectName() == name)]


def running_tasks() -> list[BackgroundTask]:
    """The tasks whose threads still run."""
    return [task for thread, task in list(_running.items()) if _is_running(thread)]


def wait_for_tasks(timeout_ms: int = 10_000) -> bool:
    """Wait for every task's thread; True when all have ended.  (A service's thread ends with the
    service's own shutdown, which waits for it: closing shuts the services down first.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    for task in running_tasks():
        task.wait(max(0, round((deadline - time.monotonic()) * 1000)))
    return not running_tasks()


def _is_running(thread: QThread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:   # its C++ object is gone, so is its thread
        return False
