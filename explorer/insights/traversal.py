"""Traversals: the cursor's code with one latent dimension at a time swept over a range, decoded.

Rows are dimensions, columns steps.  The range is ±3 prior standard deviations around the prior
mean for a standard-normal prior, and ±3 marginal standard deviations around the mean of the
probe codes otherwise (the map's points; the fitted code Gaussian before the first probe).  The
other dimensions stay at the cursor's code, so the grid follows the cursor and re-decodes when
the weights change.  Large latents show the most active dimensions first: by the closed-form KL
of each dimension where the model has a posterior and the probe images are loaded, by the
variance of the probe codes otherwise.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.probe_sets import fits, point_images
from explorer.insights.common import (
    ChunkedDecoder,
    FigurePane,
    FrameThrottle,
    class_name,
    control_rows,
    prior_kind,
    run_file_stem,
)
from explorer.insights.figure import GridFigure
from explorer.session import LatentCursor, RunState, rebind

DEFAULT_ROWS = 10
KL_IMAGES = 512        # probe images the KL ranking is measured on (a few ms on the GUI thread)
ORDERS = {"active": "most active first", "index": "in index order"}


def parse_dimensions(text: str, latent_dim: int) -> list[int]:
    """'0, 3, 5-7' -> [0, 3, 5, 6, 7]; ValueError with one sentence for anything else."""
    dims: list[int] = []
    for part in filter(None, re.split(r"[,\s]+", text.strip())):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"Dimensions are whole numbers from 0 to {latent_dim - 1}, like 0, 3, 5-7.")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo or hi >= latent_dim:
            raise ValueError(f"This model's dimensions run from 0 to {latent_dim - 1}; {part} is outside.")
        dims.extend(d for d in range(lo, hi + 1) if d not in dims)
    return dims


class TraversalView(QWidget):
    """A grid of decoded traversals of the cursor's code, for one run."""

    rendered = Signal(object)   # the GridFigure just shown

    def __init__(self, state: RunState | None, cursor: LatentCursor, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("traversalView")
        self.setAccessibleName("traversalView")
        self.state: RunState | None = None
        self.cursor = cursor
        self.activity = np.zeros(0)
        self.activity_words = ""
        self.dims_error = ""

        self.rows_spin = QSpinBox(self, minimum=1, maximum=1, value=1)
        self.rows_spin.setToolTip("How many dimensions to show")
        self.order_combo = QComboBox(self)
        for key, words in ORDERS.items():
            self.order_combo.addItem(words, key)
        self.only_edit = QLineEdit(self)
        self.only_edit.setPlaceholderText("which: e.g. 0, 3, 5-7")
        self.only_edit.setToolTip("Show only these dimensions, in this order (empty: by the order chosen)")
        self.steps_spin = QSpinBox(self, minimum=3, maximum=21, value=9)
        self.span_spin = QDoubleSpinBox(self, minimum=0.5, maximum=6.0, value=3.0, singleStep=0.5, decimals=1)
        self.span_spin.setPrefix("±")
        self.span_spin.setSuffix(" sd")
        controls = control_rows(self, (("Dimensions", self.rows_spin), (None, self.order_combo), (None, self.only_edit)),
                                (("Steps", self.steps_spin), ("Range", self.span_spin)))
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.throttle = FrameThrottle(self, self.refresh)
        self.decoder = ChunkedDecoder(self)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, "traversals"),
                               (self.throttle.flush, self.decoder.finish_now), note=self.note)
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.pane, 1)

        for signal in (self.rows_spin.valueChanged, self.order_combo.currentIndexChanged, self.steps_spin.valueChanged,
                       self.span_spin.valueChanged, self.only_edit.editingFinished):
            signal.connect(self.throttle.request)
        cursor.moved.connect(self.throttle.request)
        cursor.label_changed.connect(self.throttle.request)
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    def figure(self) -> GridFigure | None:
        """What the view shows now (rendered first if a redraw is waiting)."""
        return self.pane.figure()

    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self.throttle.request,
                                                "probe_changed": self._on_probe})
        dim = self._model.latent_dim if self._model is not None else 1
        self.rows_spin.blockSignals(True)
        self.rows_spin.setMaximum(dim)
        self.rows_spin.setValue(min(DEFAULT_ROWS, dim))
        self.rows_spin.blockSignals(False)
        self._on_probe(None)

    def ranges(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(centre, sd, words) of each dimension's sweep."""
        model, state = self._model, self.state
        d = model.latent_dim
        if prior_kind(state) == "standard_normal":
            return np.zeros(d), np.ones(d), "prior sd (N(0, I))"
        probe = state.probe
        if probe is not None and len(probe.codes) > 1 and probe.codes.shape[1] == d and np.isfinite(probe.codes).all():
            codes = probe.codes.astype(np.float64)
            return codes.mean(axis=0), np.maximum(codes.std(axis=0), 1e-6), f"marginal sd of the {len(codes)} probe codes"
        chol = model.code_chol.detach().cpu().double().numpy()   # Σ = L Lᵀ: the marginal sd are L's row norms
        return (model.code_mean.detach().cpu().double().numpy(), np.sqrt((chol ** 2).sum(axis=1)),
                "marginal sd of the fitted code Gaussian")

    def dimensions(self) -> list[int]:
        """The dimensions shown, top row first."""
        model = self._model
        if model is None:
            return []
        d = model.latent_dim
        text = self.only_edit.text()
        self.dims_error = ""
        if text.strip():
            try:
                dims = parse_dimensions(text, d)
            except ValueError as exc:
                self.dims_error = str(exc)
            else:
                if dims:
                    return dims
        if self.order_combo.currentData() == "active" and len(self.activity) == d:
            order = [int(i) for i in np.argsort(-self.activity, kind="stable")]
        else:
            order = list(range(d))
        return order[:self.rows_spin.value()]

    def refresh(self) -> None:
        """Decode the grid now."""
        self.throttle.pending = False
        model = self._model
        if model is None:
            self.decoder.cancel()
            self.pane.show_figure(None, "No model")
            return
        centre, sd, words = self.ranges()
        dims = self.dimensions()
        code = self.cursor.code
        if code is None or code.shape != (model.latent_dim,):
            code = centre.astype(np.float32)
        steps, span = self.steps_spin.value(), self.span_spin.value()
        t = np.linspace(-span, span, steps)
        codes = np.repeat(code[None].astype(np.float64), len(dims) * steps, axis=0)
        marks = set()
        captions = []
        for r, k in enumerate(dims):
            values = centre[k] + t * sd[k]
            codes[r * steps:(r + 1) * steps, k] = values
            captions.append([f"{v:.2f}" for v in values])
            nearest = int(np.argmin(np.abs(values - code[k])))
            if abs(values[nearest] - code[k]) <= span * sd[k] / max(steps - 1, 1):
                marks.add((r, nearest))
        label = self.cursor.label if model.is_conditional else None
        what = f" decoded as class {class_name(self.state.class_names, label)}" if label is not None else ""
        title = (f"{self.state.name}: each row sweeps one dimension over ±{span:g} {words}, "
                 f"the others at the cursor's code{what}")
        # the unit on the outer columns only: "+0.75 sd" under every column made nine columns wider than a laptop's dock
        col_labels = [(f"{v:+.3g}" if v else "0") + (" sd" if i in (0, len(t) - 1) else "") for i, v in enumerate(t)]

        def show(images: np.ndarray) -> None:
            cells = [list(images[r * steps:(r + 1) * steps]) for r in range(len(dims))]
            self.pane.show_figure(GridFigure(cells, title=title, row_labels=[f"z{k}" for k in dims], col_labels=col_labels,
                                  captions=captions, marks=marks))

        ordered = self.order_combo.currentData() == "active" and self.activity_words
        note = f"{len(dims)} of {model.latent_dim} dimensions" if len(dims) < model.latent_dim else ""
        if ordered and not self.only_edit.text().strip():
            note = f"{note}, ordered by {self.activity_words}." if note else f"Ordered by {self.activity_words}."
        self.note.setText(self.dims_error or note)
        self.decoder.start(model, codes, label, show)

    # -- internals ------------------------------------------------------------------------------------
    @property
    def _model(self):
        return self.state.model if self.state is not None else None

    def _on_probe(self, probe) -> None:
        self.activity, self.activity_words = self._measure_activity()
        self.throttle.request()

    @torch.no_grad()
    def _measure_activity(self) -> tuple[np.ndarray, str]:
        model, state = self._model, self.state
        if model is None:
            return np.zeros(0), ""
        probe = state.probe
        if probe is None or len(probe.codes) < 2 or probe.codes.shape[1] != model.latent_dim:
            return np.zeros(0), ""
        posterior = getattr(model, "posterior", None)
        dataset = state.dataset
        if posterior is not None and dataset is not None:
            idx, splits = probe.indices[:KL_IMAGES], probe.splits[:KL_IMAGES]
            if len(idx) and fits(dataset, splits, idx):   # each image from its own split (engine/probe_sets.py)
                images, labels = point_images(dataset, splits, idx)
                x = images.float().div_(255.0)
                y = labels if model.is_conditional else None
                mu, logvar = posterior(x, y)
                kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0).double().numpy()
                if np.isfinite(kl).all():
                    return kl, f"KL per dimension (nats per image, mean over {len(idx)} probe images)"
        codes = probe.codes.astype(np.float64)
        return codes.var(axis=0), f"variance of the {len(codes)} probe codes"

