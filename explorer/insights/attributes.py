"""Attributes: a direction in latent space from group A to group B, walked from the cursor's code.

Latent Space Cartography's attribute vectors: the direction d = mean(codes of B) − mean(codes of A)
(``engine.latent_geometry.attribute_direction``).  A and B are groups of the map's points: a class
each (the probe images' labels), or the points picked on a comparison map (``set_groups``).  The
row shows the cursor's code moved along d, from −span·d to +span·d with the cursor itself in the
middle, decoded: the analogy "what A→B does to this image".  Export it like every insight.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from engine.latent_geometry import along, attribute_direction
from explorer.insights.common import ChunkedDecoder, FigurePane, FrameThrottle, class_name, control_rows, run_file_stem
from explorer.insights.figure import GridFigure
from explorer.session import LatentCursor, RunState, rebind

DEFAULT_STEPS = 9


class AttributesView(QWidget):
    """The cursor's code walked along the direction from group A to group B, decoded."""

    rendered = Signal(object)

    def __init__(self, state: RunState | None, cursor: LatentCursor, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("attributesView")
        self.setAccessibleName("attributesView")
        self.state: RunState | None = None
        self.cursor = cursor
        self.direction: np.ndarray | None = None
        self.groups: tuple[np.ndarray, np.ndarray, str, str] | None = None   # picked points, not classes
        self.a_combo, self.b_combo = QComboBox(self), QComboBox(self)
        self.a_combo.setToolTip("Group A: the map's points of this class")
        self.b_combo.setToolTip("Group B: the map's points of this class; the direction runs from A's mean code to B's")
        self.steps_spin = QSpinBox(self, minimum=3, maximum=21, value=DEFAULT_STEPS)
        self.span_spin = QDoubleSpinBox(self, minimum=0.25, maximum=4.0, value=1.0, singleStep=0.25, decimals=2)
        self.span_spin.setPrefix("±")
        self.span_spin.setSuffix(" × (B − A)")
        controls = control_rows(self, (("A", self.a_combo), ("→ B", self.b_combo)),
                                (("Steps", self.steps_spin), ("Range", self.span_spin)))
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.throttle = FrameThrottle(self, self.refresh)
        self.decoder = ChunkedDecoder(self)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, "attribute"),
                               (self.throttle.flush, self.decoder.finish_now), note=self.note)
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.pane, 1)
        for signal in (self.a_combo.currentIndexChanged, self.b_combo.currentIndexChanged):
            signal.connect(self._classes_chosen)
        for signal in (self.steps_spin.valueChanged, self.span_spin.valueChanged):
            signal.connect(self.throttle.request)
        cursor.moved.connect(self.throttle.request)
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self.throttle.request,
                                                "probe_changed": self._on_probe})
        self.groups = None
        self._fill_classes()
        self.throttle.request()

    def figure(self) -> GridFigure | None:
        return self.pane.figure()

    def set_groups(self, a: np.ndarray, b: np.ndarray, a_name: str = "selection A", b_name: str = "selection B") -> None:
        """Groups of probe positions (points picked on a map) instead of two classes."""
        self.groups = (np.asarray(a, np.int64), np.asarray(b, np.int64), a_name, b_name)
        self.throttle.request()

    def refresh(self) -> None:
        self.throttle.pending = False
        model = self.state.model if self.state is not None else None
        probe = self.state.probe if self.state is not None else None
        if model is None or probe is None or len(probe.codes) < 2 or probe.codes.shape[1] != model.latent_dim:
            self.direction = None
            self.decoder.cancel()
            self.pane.show_figure(None, "No model" if model is None else "The map's points come at the first probe update.")
            return
        a, b, a_name, b_name = self._group_positions()
        if len(a) == 0 or len(b) == 0:
            self.direction = None
            self.pane.show_figure(None, f"{a_name if len(a) == 0 else b_name} has no points on the map.")
            return
        self.direction = attribute_direction(probe.codes, a, b)
        code = self.cursor.code
        if code is None or np.shape(code) != (model.latent_dim,):
            code = probe.codes[a].mean(0)
        steps, span = self.steps_spin.value(), self.span_spin.value()
        codes = along(code, self.direction, steps, span)
        t = np.linspace(-span, span, steps)
        label = self.cursor.label if model.is_conditional else None
        title = (f"{self.state.name}: the cursor's code moved along {a_name} → {b_name} "
                 f"(mean code of {len(b)} points minus that of {len(a)})")
        norm = float(np.linalg.norm(self.direction))
        self.note.setText(f"|B − A| = {norm:.3g} in latent units; the middle image is the cursor's code.")

        def show(images: np.ndarray) -> None:
            self.pane.show_figure(GridFigure([list(images)], title=title, row_labels=[f"{a_name}→{b_name}"],
                                             col_labels=[f"{v:+.2g}" for v in t], marks={(0, steps // 2)}))

        self.decoder.start(model, codes, label, show)

    # -- internals ------------------------------------------------------------------------------------
    def _group_positions(self) -> tuple[np.ndarray, np.ndarray, str, str]:
        if self.groups is not None:
            return self.groups
        labels = self.state.probe.labels
        a, b = self.a_combo.currentData(), self.b_combo.currentData()
        names = self.state.class_names
        a_name = class_name(names, a) if a is not None else "A"
        b_name = class_name(names, b) if b is not None else "B"
        return (np.flatnonzero(labels == a) if a is not None else np.zeros(0, np.int64),
                np.flatnonzero(labels == b) if b is not None else np.zeros(0, np.int64), a_name, b_name)

    def _classes_chosen(self) -> None:
        self.groups = None
        self.throttle.request()

    def _on_probe(self, probe) -> None:
        if self.a_combo.count() == 0:
            self._fill_classes()
        self.throttle.request()

    def _fill_classes(self) -> None:
        labels = sorted({int(v) for v in self.state.probe.labels}) \
            if self.state is not None and self.state.probe is not None else []
        names = self.state.class_names if self.state is not None else []
        for combo, pick in ((self.a_combo, 0), (self.b_combo, 1)):
            combo.blockSignals(True)
            combo.clear()
            for label in labels:
                combo.addItem(class_name(names, label), label)
            combo.setCurrentIndex(min(pick, combo.count() - 1))
            combo.blockSignals(False)
