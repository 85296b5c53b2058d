"""View → Map points: which images' codes the map shows — the validation split (what the trainer
probes by default), the test split (the same images), the training split, or all of them
(``engine.probe_sets``).

A run that trains shows its own probe set (``TrainConfig.probe_set``: the training form's "Map
points", ``train --probe-set``): the trainer encodes it for every probe update.  A run that does not train switches here: its images
are encoded on a ``BackgroundTask`` with a copy of the GUI's model, a chunk at a time (progress in
the status line), and the codes replace the run's probe in memory (``RunState.probe``,
``probe_changed``); nothing in the run folder changes.  A set larger than ``MAP_POINTS_MAX`` is a
seeded choice of that many (the run's seed).
"""

from __future__ import annotations

import copy
import weakref

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup

from engine.config import PROBE_SETS
from engine.history import ProbeCodes
from engine.probe_sets import (
    MAP_POINTS_MAX,
    PROBE_SET_TITLES,
    SPLIT_TRAIN,
    SPLIT_VALIDATION,
    encode_chunks,
    probe_points,
)


def set_of(probe: ProbeCodes | None, default: str = "validation") -> str:
    """The probe set a probe's points come from, read from their splits."""
    if probe is None or not len(probe.splits):
        return default
    has_val, has_train = bool((probe.splits == SPLIT_VALIDATION).any()), bool((probe.splits == SPLIT_TRAIN).any())
    if has_val and has_train:
        return "all"
    return "train" if has_train else (default if default in ("validation", "test") else "validation")


class MapPointSets(QObject):
    """The menu's four sets for the session's active run, and the background encoding of a switch."""

    progressed = Signal(object)   # (images encoded, images in the set)
    switched = Signal(object)     # the RunState whose map now shows another set
    failed = Signal(str)          # one sentence

    def __init__(self, session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._chosen: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # RunState -> the set asked for
        self._task = None
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.actions: dict[str, QAction] = {}
        for name in PROBE_SETS:
            action = QAction(PROBE_SET_TITLES[name], self)
            action.setObjectName(f"mapPoints_{name}")
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, n=name: self.choose(n))
            self.group.addAction(action)
            self.actions[name] = action
        self._task_state = None
        session.active_changed.connect(lambda *_: self.sync())
        session.training_changed.connect(self._on_training_changed)
        self.sync()

    # -- public -------------------------------------------------------------------------------
    def shown_set(self, state) -> str:
        """The set the map shows for ``state``."""
        if state is None:
            return "validation"
        chosen = self._chosen.get(state)
        if chosen is not None and not state.is_training:
            return chosen
        return set_of(state.probe, state.train_cfg.probe_set)

    def is_busy(self) -> bool:
        return self._task is not None

    def choose(self, name: str, state=None) -> bool:
        """Show set ``name`` of ``state`` (the active run); False, with a sentence, when it cannot."""
        state = state if state is not None else self.session.active
        if state is None or state.model is None:
            self.sync()
            return False
        if state.is_training:
            self.failed.emit(f"{state.name} is training: its map shows its probe set "
                             f"({state.train_cfg.probe_set}) until it stops.")
            self.sync()
            return False
        if name == self.shown_set(state) and state.probe is not None:
            return True
        if state.ensure_dataset_in_background(lambda dataset: self._encode(state, name, dataset)):
            self.progressed.emit((0, 0))
        return True

    def sync(self, *_) -> None:
        """Check the active run's set; the entries are off while it trains or has no model."""
        state = self.session.active
        usable = state is not None and state.model is not None and not state.is_training
        self.actions[self.shown_set(state)].setChecked(True)
        for action in self.actions.values():
            action.setEnabled(usable)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = self._task_state = None

    def _on_training_changed(self, state) -> None:
        """A run that starts training shows the trainer's probe set again."""
        if state is not None:
            self._chosen.pop(state, None)
            if self._task_state is state:
                self.cancel()
        self.sync()

    # -- internals ------------------------------------------------------------------------------
    def _encode(self, state, name: str, dataset) -> None:
        if dataset is None:
            self.failed.emit(f"The images of {state.name} are not available here, so the map cannot show "
                             f"its {name} codes: {state.dataset_failure}")
            self.sync()
            return
        from explorer.tasks import BackgroundTask
        model = copy.deepcopy(state.model).eval()   # the GUI's copy may take new weights meanwhile
        points = probe_points(dataset, name, MAP_POINTS_MAX, state.train_cfg.seed)
        step = state.probe.step if state.probe is not None else (state.run.step if state.run is not None else 0)

        def work(_progress):
            codes = yield from encode_chunks(model, points)
            return ProbeCodes(codes, points.labels.numpy().astype("int64"), points.indices, step, points.splits)

        self.cancel()
        task = BackgroundTask(work, self, name="map-points")
        task.progressed.connect(self.progressed)
        task.finished.connect(lambda probe: self._arrived(task, state, name, probe))
        task.failed.connect(lambda message: self._failed(task, message))
        self._task, self._task_state = task, state
        task.start()

    def _arrived(self, task, state, name: str, probe: ProbeCodes | None) -> None:
        if task is not self._task:
            return
        self._task = self._task_state = None
        if probe is None or state.is_training:
            self.sync()
            return
        state.probe = probe
        self._chosen[state] = name
        state.probe_changed.emit(probe)
        self.sync()
        self.switched.emit(state)

    def _failed(self, task, message: str) -> None:
        if task is self._task:
            self._task = self._task_state = None
            self.failed.emit(message)
            self.sync()
