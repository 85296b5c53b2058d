"""The decoder canvas: the image the active run's decoder makes of the latent cursor's code.

Every cursor move is decoded at once in the GUI thread (one image of the GUI's own decoder
copy costs well under a millisecond for the MLP bodies) and painted pixel-exact.  Beside the
image: one slider per latent dimension that follows the cursor and moves it, a label picker
for conditional models, and how far the code lies from the nearest probe code compared with
the usual spacing of the probe codes (on or off the data manifold).
"""

from __future__ import annotations

import math

import numpy as np
import shiboken6 as shiboken
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.history import ProbeCodes
from engine.models import has_standard_normal_prior
from explorer.session import LatentCursor, RunState, Session, rebind
from explorer.tasks import BackgroundTask
from explorer.widgets import ImageCanvas, to_qimage

MAX_SLIDERS = 64
SLIDER_STEPS = 1000
#: a code farther than this many median nearest-neighbour spacings from every probe code is off the manifold
OFF_MANIFOLD_RATIO = 3.0
#: slider half-range for models with a standard-normal prior (the VAE family, the WAE)
PRIOR_RANGE = 3.0
#: codes whose typical spacing is measured on the GUI thread (~3 ms at 5,000); more: in the background
SPACING_AT_ONCE_MAX = 10_000


class NearestCodes:
    """How far a code lies from the nearest of N codes, by brute force in float32.

    A KD-tree is slower at the sizes the map carries: building one over 70,000 64-D codes takes
    ~120 ms and a query far from the data up to ~14 ms, where a matrix-vector pass takes ~1.5 ms
    with nothing to build (``einsum`` rather than BLAS, whose threaded GEMV stalls for ~8 ms on a
    busy 2-core machine).
    """

    def __init__(self, codes: np.ndarray):
        self.codes = np.ascontiguousarray(codes, dtype=np.float32)
        self.norms = np.einsum("nd,nd->n", self.codes, self.codes)

    def distance(self, code: np.ndarray) -> float:
        """Euclidean distance from ``code`` to the nearest code."""
        c = np.asarray(code, dtype=np.float32).reshape(-1)
        nearest = int(np.argmin(self.norms - 2.0 * np.einsum("nd,d->n", self.codes, c)))
        return float(np.linalg.norm(self.codes[nearest].astype(np.float64) - c))

    def typical_spacing(self, samples: int = 128, chunk: int = 16) -> float:
        """Median distance from a code to its nearest other code, estimated on ``samples`` codes
        (``chunk`` of them a pass: 16 keeps a pass over 70,000 codes in the cache, 3x faster than 64)."""
        x, n = self.codes, len(self.codes)
        if n < 2:
            return math.nan
        picks = np.unique(np.linspace(0, n - 1, min(samples, n)).astype(np.int64))
        nearest = []
        for start in range(0, len(picks), chunk):
            rows = picks[start:start + chunk]
            d2 = x[rows] @ x.T
            d2 *= -2.0
            d2 += self.norms
            d2[np.arange(len(rows)), rows] = np.inf  # not itself
            nearest.append(np.sqrt(np.maximum(d2.min(axis=1) + self.norms[rows], 0.0)))
        return float(np.median(np.concatenate(nearest)))


class _SliderRow:
    """One latent dimension: a name, a slider over [lo, hi] and the exact value."""

    def __init__(self, grid: QGridLayout, dim: int, on_moved):
        self.dim = dim
        self.lo, self.hi = -PRIOR_RANGE, PRIOR_RANGE
        self.name = QLabel(f"z{dim}")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(f"latentSlider{dim}")
        self.slider.setAccessibleName(f"latent dimension {dim}")
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.valueChanged.connect(lambda value: on_moved(dim, self.value_at(value)))
        self.readout = QLabel("0.00")
        self.readout.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # A fixed width: a readout that changes its size hint would re-lay the window out on every move.
        self.readout.setFixedWidth(self.readout.fontMetrics().horizontalAdvance("-000.00") + 4)
        for column, widget in enumerate((self.name, self.slider, self.readout)):
            grid.addWidget(widget, dim, column)

    def value_at(self, position: int) -> float:
        return self.lo + (self.hi - self.lo) * position / SLIDER_STEPS

    def show_value(self, value: float) -> None:
        """Move the slider to ``value`` without emitting, and print the exact value.  A value beyond
        the range widens it (with a margin), so the handle always shows the value it reads."""
        if math.isfinite(value) and not self.lo <= value <= self.hi:
            margin = 0.1 * (self.hi - self.lo) or 1.0
            self.lo, self.hi = min(self.lo, value - margin), max(self.hi, value + margin)
        position = round((value - self.lo) / (self.hi - self.lo) * SLIDER_STEPS) if self.hi > self.lo else 0
        self.slider.blockSignals(True)
        self.slider.setValue(min(max(position, 0), SLIDER_STEPS))
        self.slider.blockSignals(False)
        self.readout.setText(f"{value:.2f}")


class DecoderCanvas(QWidget):
    """The decoded image of the latent cursor, with sliders, label picker and manifold distance."""

    painted = Signal(float)  # forwarded from the image widget

    def __init__(self, session: Session, parent: QWidget | None = None, *, state: RunState | None = None,
                 cursor: LatentCursor | None = None):
        """``state``: decode with this run's model, always (by default the canvas follows the
        session's active run); ``cursor``: the latent cursor it decodes (the session's by default)."""
        super().__init__(parent)
        self.setObjectName("decoderCanvas")
        self.setAccessibleName("decoderCanvas")
        self.session = session
        self.cursor = cursor if cursor is not None else session.cursor
        self.state: RunState | None = None
        self._image: np.ndarray | None = None
        self._nearest: NearestCodes | None = None
        self._typical_spacing = math.nan
        self._spacing_task: BackgroundTask | None = None   # measuring the spacing of many codes
        self._rows: list[_SliderRow] = []
        self._cursor_origin = "reset"   # who moved the cursor last ("reset": no person yet)

        self.image_widget = ImageCanvas(self)
        self.image_widget.painted.connect(self.painted)
        self.distance_label = QLabel(self)
        self.distance_label.setObjectName("manifoldDistance")
        self.distance_label.setAccessibleName("manifoldDistance")
        self.distance_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label_combo = QComboBox(self)
        self.label_combo.setObjectName("decoderLabel")
        self.label_combo.setAccessibleName("decoderLabel")
        self.label_combo.currentIndexChanged.connect(self._on_label_picked)
        self._label_row = QWidget(self)
        label_form = QFormLayout(self._label_row)
        label_form.setContentsMargins(0, 0, 0, 0)
        label_form.addRow("Decode as class", self.label_combo)
        self.cap_note = QLabel(self)
        self.cap_note.setWordWrap(True)
        self._slider_host = QWidget()
        self._grid = QGridLayout(self._slider_host)
        self._grid.setColumnStretch(1, 1)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("latentSliders")
        self.scroll.setAccessibleName("latentSliders")
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self._slider_host)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        layout = QVBoxLayout(self)
        layout.addWidget(self.image_widget, 3)
        layout.addWidget(self.distance_label)
        layout.addWidget(self._label_row)
        layout.addWidget(self.cap_note)
        layout.addWidget(self.scroll, 2)

        if state is None:
            session.active_changed.connect(self._bind)
        self.cursor.moved.connect(self._on_cursor_moved)
        self.cursor.label_changed.connect(self._on_label_changed)
        self._bind(state if state is not None else session.active)

    # -- public ---------------------------------------------------------------------------------
    def current_image(self) -> np.ndarray | None:
        """The last decoded image, C×H×W float in [0, 1] (None before the first decode)."""
        return None if self._image is None else self._image.copy()

    def nearest_data_distance(self, code: np.ndarray) -> float:
        """Euclidean distance from ``code`` to the nearest probe code (NaN without probe codes)."""
        return math.nan if self._nearest is None else self._nearest.distance(code)

    def focus_chain(self) -> list[QWidget]:
        """The widgets Tab reaches here, in order; the sliders follow the last of them."""
        return [self.label_combo]

    @property
    def sliders(self) -> list[QSlider]:
        return [row.slider for row in self._rows]

    # -- binding to the active run --------------------------------------------------------------------
    def _bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self.redecode, "probe_changed": self._on_probe})
        self._rebuild_sliders()
        self._rebuild_labels()
        self._on_probe(state.probe if state is not None else None)
        model = state.model if state is not None else None
        if model is None:
            self._image = None
            self.image_widget.set_image(None)
            self.distance_label.clear()   # "on the manifold" of a run no longer shown meant nothing here
            return
        code = self.cursor.code
        if code is None or not self._fits(code):
            probe = state.probe
            start = probe.codes.mean(axis=0) if probe is not None and len(probe.codes) else np.zeros(model.latent_dim)
            self.cursor.set_code(start, "reset")
        else:
            self._on_cursor_moved(code, "bind")

    def _rebuild_sliders(self) -> None:
        for row in self._rows:
            for widget in (row.name, row.slider, row.readout):
                # out of the grid and the window's focus chain now, not at the next event loop pass
                self._grid.removeWidget(widget)
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        self._rows = []
        dim = self.state.model.latent_dim if self.state is not None and self.state.model is not None else 0
        shown = min(dim, MAX_SLIDERS)
        previous = self.label_combo
        for i in range(shown):
            self._rows.append(_SliderRow(self._grid, i, self._on_slider_moved))
            QWidget.setTabOrder(previous, self._rows[-1].slider)   # Tab: the label, then the sliders in order
            previous = self._rows[-1].slider
        self.cap_note.setText(f"Sliders for the first {shown} of {dim} dimensions." if dim > shown else "")
        self.cap_note.setVisible(dim > shown)

    def _rebuild_labels(self) -> None:
        conditional = self.state is not None and self.state.model is not None and self.state.model.is_conditional
        self._label_row.setVisible(conditional)
        self.label_combo.blockSignals(True)
        self.label_combo.clear()
        if conditional:
            names = self.state.class_names or [str(i) for i in range(self.state.model.n_classes)]
            self.label_combo.addItems(names)
            self.label_combo.setCurrentIndex(min(self.cursor.label, len(names) - 1))
        self.label_combo.blockSignals(False)

    def _on_probe(self, probe: ProbeCodes | None) -> None:
        """New probe codes: new nearest-code search, typical spacing and slider ranges."""
        codes = probe.codes if probe is not None else np.zeros((0, 0), np.float32)
        if len(codes) == 0 or not np.isfinite(codes).all():
            self._nearest, self._typical_spacing = None, math.nan
        else:
            self._nearest = NearestCodes(codes)
            self._measure_spacing(self._nearest)
        standard = self.state is not None and self.state.model is not None and has_standard_normal_prior(self.state.model)
        cursor = self.cursor
        if self._nearest is not None and self._cursor_origin == "reset" and cursor.code is not None \
                and self._fits(cursor.code):
            # nobody has moved the cursor yet: start it among the codes (before the first codes
            # came it sat at zero, which may lie outside every code's range)
            cursor.set_code(codes.mean(axis=0), "reset")
        if self._nearest is not None and self._rows:   # one pass over the codes, not two a dimension
            lows, highs = codes.min(axis=0), codes.max(axis=0)
        for row in self._rows:
            if self._nearest is not None:
                lo, hi = float(lows[row.dim]), float(highs[row.dim])
                margin = 0.1 * (hi - lo) or 1.0
                lo, hi = lo - margin, hi + margin
                if standard:   # the sliders reach ±3 prior sd even where the codes do not (yet)
                    lo, hi = min(lo, -PRIOR_RANGE), max(hi, PRIOR_RANGE)
            else:
                lo, hi = -PRIOR_RANGE, PRIOR_RANGE
            row.lo, row.hi = lo, hi
        if cursor.code is not None:
            self._sync(cursor.code)

    def _measure_spacing(self, nearest: NearestCodes) -> None:
        """The codes' typical spacing (what "on/off the manifold" is judged by): at once for a few
        thousand codes, in the background above ``SPACING_AT_ONCE_MAX`` (70,000 codes took ~50 ms of
        the GUI thread at every probe update: drags stalled up to 66 ms).  The previous probe
        update's spacing is kept until the new one comes (it changes little between two)."""
        if len(nearest.codes) <= SPACING_AT_ONCE_MAX:
            self._typical_spacing = nearest.typical_spacing()
            return

        def measured(spacing: float) -> None:
            if shiboken.isValid(self) and self._nearest is nearest:   # not for codes replaced since
                self._typical_spacing = spacing
                if self.cursor.code is not None:
                    self._sync(self.cursor.code)

        def ended() -> None:   # the finished task goes (one a probe update would pile up otherwise)
            if not shiboken.isValid(task):   # the canvas (its parent) was closed meanwhile
                return
            task.wait(1000)
            task.deleteLater()
            if self._spacing_task is task:
                self._spacing_task = None

        task = self._spacing_task = BackgroundTask(lambda _progress: nearest.typical_spacing(), self,
                                                   owner=self, name="spacing")
        task.finished.connect(measured)
        task.thread.finished.connect(ended)
        task.start()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Wait for a spacing measurement under way (a closing view, tests); True when none runs."""
        task = self._spacing_task
        return task is None or not shiboken.isValid(task) or task.wait(timeout_ms)

    # -- decoding -----------------------------------------------------------------------------
    def redecode(self) -> None:
        """Decode the cursor's code again (after new decoder weights or a new label)."""
        code = self.cursor.code
        if code is not None:
            self._decode(code)

    def _fits(self, code: np.ndarray) -> bool:
        """Whether ``code`` is a code of the active run's model."""
        model = self.state.model if self.state is not None else None
        return model is not None and code.shape == (model.latent_dim,)

    def _decode(self, code: np.ndarray) -> None:
        state = self.state
        if not self._fits(code):
            return
        label = self.cursor.label if state.model.is_conditional else None
        self._image = state.decode(code[None], label)[0]
        self.image_widget.set_image(to_qimage(self._image))

    def _on_cursor_moved(self, code: np.ndarray, origin: str) -> None:
        self._cursor_origin = origin
        self._decode(code)
        self._sync(code)

    def _sync(self, code: np.ndarray) -> None:
        """Sliders and the manifold readout follow the code."""
        if not self._fits(code):
            return
        for row in self._rows:
            row.show_value(float(code[row.dim]))
        distance = self.nearest_data_distance(code)
        if math.isnan(distance):
            self.distance_label.setText("nearest data: –")
            return
        where = ""
        if math.isfinite(self._typical_spacing) and self._typical_spacing > 0:
            off = distance > OFF_MANIFOLD_RATIO * self._typical_spacing
            where = " — off the manifold" if off else " — on the manifold"
        self.distance_label.setText(f"nearest data: {distance:.2f}{where}")

    # -- user input ---------------------------------------------------------------------------
    def _on_slider_moved(self, dim: int, value: float) -> None:
        code = self.cursor.code
        if code is None:
            return
        code = code.copy()
        code[dim] = value
        self.cursor.set_code(code, "slider")

    def _on_label_picked(self, index: int) -> None:
        if index >= 0:
            self.cursor.set_label(index)

    def _on_label_changed(self, label: int) -> None:
        if self.label_combo.currentIndex() != label and label < self.label_combo.count():
            self.label_combo.blockSignals(True)
            self.label_combo.setCurrentIndex(label)
            self.label_combo.blockSignals(False)
        self.redecode()
