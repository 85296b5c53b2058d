"""Colour the latent map by a value: class (the default), reconstruction error, KL of each point,
or the distance to the nearest other code (engine/point_values.py), with a colour bar and a
caption that says what the colours show.

The values are computed on a background thread (a copy of the GUI's model, so the weights the
GUI loads meanwhile never change under it), never on the GUI thread; while a run trains they
are computed again for each new probe update, one computation at a time (a probe that arrives
meanwhile is taken up when the current one ends).  ``MapColouring`` owns the menu (a combo box),
the colour bar and the caption; the latent map asks it for the points' colours.
"""

from __future__ import annotations

import copy

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QComboBox

from engine.point_values import available_values, describe, point_values
from engine.probe_sets import point_images
from explorer.map.point_layer import palette_for, value_colors

CLASS = "class"
COLORMAP = "viridis"
TITLES = {CLASS: "Class", "reconstruction_error": "Reconstruction error", "kl": "KL of each point",
          "nearest_distance": "Distance to the nearest code"}
NEEDS_IMAGES = ("reconstruction_error", "kl")


def compute_values(kind: str, model, images, labels, codes) -> np.ndarray:
    """One value per probe point (runs on the background thread)."""
    with torch.no_grad():
        return point_values(kind, model, images, labels, codes=codes)


class MapColouring(QObject):
    """What the map's points are coloured by, and the values behind it."""

    changed = Signal(object)   # this object: the colours to show changed (a new kind, new values)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = None
        self.kind = CLASS
        self.values: np.ndarray | None = None   # of the probe points, in their order
        self.value_step: int | None = None      # the probe step the values were computed for
        self.levels: tuple[float, float] | None = None
        self.caption = ""
        self._task = None
        self._pending = False
        self._request = 0
        self.combo = QComboBox()
        self.combo.setObjectName("colourByCombo")
        self.combo.setAccessibleName("colourByCombo")
        self.combo.setToolTip("What the points' colours show")
        # as wide as its longest item where there is room, but never wider than "Class" needs: a
        # run opened with every kind listed widened the map's toolbar and the window past 1280 px
        self.combo.setMinimumWidth(self.combo.fontMetrics().horizontalAdvance(TITLES[CLASS]) + 44)
        self.combo.currentIndexChanged.connect(lambda i: self.set_kind(self.combo.itemData(i) or CLASS))
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=COLORMAP, interactive=False, width=12)
        self.bar.hide()
        self._fill_combo()

    # -- public ---------------------------------------------------------------------------------
    def bind(self, state) -> None:
        """Follow another run: its values are computed afresh (the kind stays where it applies)."""
        self.state = state
        self.values, self.value_step, self.levels = None, None, None
        self._request += 1
        self._fill_combo()
        self.refresh()

    def kinds(self) -> list[str]:
        model = self.state.model if self.state is not None else None
        return [CLASS, *(available_values(model.variant_key) if model is not None else [])]

    def set_kind(self, kind: str) -> None:
        if kind not in self.kinds():
            raise ValueError(f"The map cannot be coloured by {kind!r} for this run; choose one of {', '.join(self.kinds())}.")
        if kind == self.kind:
            return
        self.kind = kind
        index = self.combo.findData(kind)
        if index != self.combo.currentIndex():
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(index)
            self.combo.blockSignals(False)
        self.values, self.value_step, self.levels = None, None, None
        self._request += 1
        self.refresh()

    def is_busy(self) -> bool:
        return self._task is not None and self._task.is_running()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        return self._task is None or self._task.wait(timeout_ms)

    def colours_for(self, probe, n_classes: int) -> tuple[np.ndarray, list]:
        """(labels, colours) for ``PointLayer.set_points`` of these probe points."""
        if self.kind == CLASS or self.values is None or len(self.values) != len(probe.labels):
            return probe.labels, palette_for(n_classes)
        labels, colours, _ = value_colors(self.values, COLORMAP, levels=self.levels)
        return labels, colours

    def value_column(self) -> tuple[np.ndarray | None, str]:
        """The values shown and a CSV column name for them (None for class colours)."""
        if self.kind == CLASS or self.values is None:
            return None, "value"
        return self.values, self.kind

    def on_probe(self) -> None:
        """A new probe update: compute the values again (when the map shows values)."""
        if self.kind != CLASS:
            self.refresh()

    def refresh(self) -> None:
        """Compute the shown kind's values for the run's latest probe, in the background."""
        state = self.state
        probe = state.probe if state is not None else None
        if self.kind == CLASS or probe is None or state.model is None or len(probe.codes) == 0:
            self._update_caption()
            self.changed.emit(self)
            return
        if self.is_busy():
            self._pending = True
            return
        if self.kind in NEEDS_IMAGES and state.dataset is None:
            if state.is_loading_dataset() or state.ensure_dataset_in_background(lambda _d: self.refresh()):
                self.caption = f"{TITLES[self.kind]}: loading the images…"
                self.changed.emit(self)
                return
            if state.dataset is None:
                self.caption = (f"{TITLES[self.kind]} needs the run's images, and its dataset is not available here: "
                                "only the distance to the nearest code can be shown.")
                self.changed.emit(self)
                return
        from explorer.tasks import BackgroundTask
        kind, request, step = self.kind, self._request, probe.step
        model = copy.deepcopy(state.model).eval()   # the GUI's copy takes new weights meanwhile
        codes = probe.codes.copy()
        images = labels = None
        if kind in NEEDS_IMAGES:
            images, labels = point_images(state.dataset, probe.splits, probe.indices)   # each from its split
        self._task = BackgroundTask(lambda progress: compute_values(kind, model, images, labels, codes), self)
        self._task.finished.connect(lambda values: self._arrived(request, kind, step, values))
        self._task.failed.connect(lambda message: self._failed(request, message))
        self._task.thread.finished.connect(self._next)
        self._update_caption(busy=True)
        self._task.start()
        self.changed.emit(self)   # the caption says "computing…" (it stayed empty without this)

    # -- internals ------------------------------------------------------------------------------
    def _fill_combo(self) -> None:
        kinds = self.kinds()
        if self.kind not in kinds:
            self.kind = CLASS
        self.combo.blockSignals(True)
        self.combo.clear()
        for key in kinds:
            self.combo.addItem(TITLES.get(key, key), key)
        self.combo.setCurrentIndex(kinds.index(self.kind))
        self.combo.blockSignals(False)

    def _arrived(self, request: int, kind: str, step: int, values) -> None:
        if request != self._request or kind != self.kind:
            return   # another run or another kind was chosen meanwhile
        self.values = np.asarray(values, dtype=np.float64)
        self.value_step = step
        _, _, self.levels = value_colors(self.values, COLORMAP)
        self.bar.setLevels(self.levels)
        self._update_caption()
        self.changed.emit(self)

    def _failed(self, request: int, message: str) -> None:
        if request == self._request:
            self.caption = f"{TITLES.get(self.kind, self.kind)} could not be computed: {message}"
            self.changed.emit(self)

    def _next(self) -> None:
        if self._pending:
            self._pending = False
            self.refresh()

    def _update_caption(self, busy: bool = False) -> None:
        if self.kind == CLASS:
            self.caption = ""
        elif self.values is None:
            self.caption = f"{TITLES[self.kind]}: computing…" if busy else ""
        else:
            what = describe(self.kind, self.state.model)
            title = what.title if what.title[:2].isupper() else what.title[0].lower() + what.title[1:]   # KL stays KL
            n = len(self.values)
            self.caption = (f"Colour: {title}, {what.description}, on the map's {n:,} validation "
                            f"images at step {self.value_step:,}")
        self.bar.setVisible(self.kind != CLASS and self.values is not None)
        if self.bar.isVisible():
            self.bar.axis.setLabel(TITLES[self.kind])

    def apply_palette(self, palette: QPalette) -> None:
        text = palette.color(QPalette.ColorRole.Text)
        for name in ("right", "left"):
            axis = self.bar.getAxis(name) if hasattr(self.bar, "getAxis") else None
            if axis is not None:
                axis.setTextPen(text)
