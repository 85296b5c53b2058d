"""The one place the app loads a run's dataset: ``datasets``, keyed by the run's ``DataConfig``.

Before, three places loaded it each on their own (the window's Start, a run's background load,
the reconstruction view's loader), so an opened MNIST run could be read twice at once, and
``RunState.start`` read it on the GUI thread.  Now a load for a configuration already under way
is joined, not repeated, and a dataset some run still holds is handed out again (the cache keeps
no dataset alive by itself: it holds them weakly, so closing runs frees their images).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import DataConfig
from engine.datasets import DatasetSplit, load_dataset

#: sources read in a few milliseconds (scikit-learn's bundled digits): loaded at once, the rest in the background
QUICK_SOURCES = ("digits",)


def loads_quickly(data: DataConfig) -> bool:
    return data.source in QUICK_SOURCES


def _key(config: DataConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=str)


def _while_alive(owner: QObject | None, callback: Callable | None) -> Callable | None:
    """``callback``, called only while ``owner`` (its object) has not been deleted."""
    if owner is None or callback is None:
        return callback
    return lambda value: callback(value) if shiboken6.isValid(owner) else None


class DatasetCache(QObject):
    """Datasets by configuration: ``load`` on this thread, ``load_in_background`` on a task."""

    load_ended = Signal(object)   # the DataConfig whose background load ended (loaded or failed)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._loaded: weakref.WeakValueDictionary[str, DatasetSplit] = weakref.WeakValueDictionary()
        self._tasks: dict[str, object] = {}   # key -> BackgroundTask under way
        self._ended: list = []                 # ended tasks not yet let go (closing waits for their threads)

    def get(self, config: DataConfig) -> DatasetSplit | None:
        """The dataset when it is here already (a run holds it), else None."""
        return self._loaded.get(_key(config))

    def load(self, config: DataConfig) -> DatasetSplit:
        """The dataset, read on this thread unless it is here (UserError with one sentence when it
        cannot be read).  For the bundled digits and the rare synchronous caller (an export)."""
        task = self._tasks.get(_key(config))
        if task is not None:   # read already in the background: wait for that read rather than read twice
            task.wait(10 * 60_000)
        dataset = self.get(config)
        if dataset is None:
            dataset = self._loaded[_key(config)] = load_dataset(config)
        return dataset

    def load_in_background(self, config: DataConfig, then: Callable[[DatasetSplit], None] | None = None,
                           failed: Callable[[str], None] | None = None, owner: QObject | None = None) -> bool:
        """Read the dataset on a background thread, then call ``then(dataset)`` (or ``failed(message)``)
        in the GUI thread, unless ``owner`` (the QObject the callbacks belong to) has been deleted
        meanwhile.  A dataset here already is handed to ``then`` at once (False returned); a load of
        the same configuration under way is joined.  Returns whether a load runs."""
        then, failed = _while_alive(owner, then), _while_alive(owner, failed)
        dataset = self.get(config)
        if dataset is not None:
            if then is not None:
                then(dataset)
            return False
        key = _key(config)
        task = self._tasks.get(key)
        if task is None:
            from explorer.tasks import BackgroundTask
            def read(progress) -> DatasetSplit:
                dataset = self._loaded[key] = load_dataset(config)   # here at once for a caller that waits (load)
                return dataset

            task = self._tasks[key] = BackgroundTask(read, self)
            task.finished.connect(lambda _dataset: self._end(key, task, config))
            task.failed.connect(lambda _message: self._end(key, task, config))
            start = True
        else:
            start = False
        if then is not None:
            task.finished.connect(then)
        if failed is not None:
            task.failed.connect(failed)
        if start:
            task.start()
        return True

    def _end(self, key: str, task, config: DataConfig) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        self._ended.append(task)
        self.load_ended.emit(config)
        QTimer.singleShot(0, self._release_ended)   # once every caller has had the result

    def _release_ended(self) -> None:
        """Let go of ended loads and of their callers' callbacks (which hold their runs, and so
        their datasets: kept, the cache would keep every dataset it ever read)."""
        for task in list(self._ended):
            if not task.wait(50):   # its thread ends itself right after the result: milliseconds
                QTimer.singleShot(50, self._release_ended)
                continue
            self._ended.remove(task)
            for signal in (task.finished, task.failed):   # (each has the cache's own slot at least)
                try:
                    signal.disconnect()
                except (RuntimeError, TypeError):
                    pass   # nothing was connected
            task.deleteLater()

    def is_loading(self, config: DataConfig | None = None) -> bool:
        """Whether this configuration's dataset (any, without one) is being read in the background."""
        if config is None:
            return bool(self._tasks)
        return _key(config) in self._tasks

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Wait for every background load to end (closing, tests, benchmarks); True when none runs."""
        return all(task.wait(timeout_ms) for task in [*self._tasks.values(), *self._ended])


#: the app's one dataset cache (made in the GUI thread on first use: its tasks report there)
_cache: DatasetCache | None = None


def datasets() -> DatasetCache:
    global _cache
    if _cache is None:
        _cache = DatasetCache()
    return _cache
