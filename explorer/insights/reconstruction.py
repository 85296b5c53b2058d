"""Reconstructions: validation images beside what the model makes of them, with each image's
error, sorted worst first (or best first, or in dataset order).

The errors of up to ``EVALUATED`` images are computed on the GUI thread (the GUI's own model
copy is only ever touched there) in chunks sized to take about ``CHUNK_BUDGET_S`` each, one
chunk per event-loop pass, so the window never stalls for more than a few milliseconds.  New
weights during a pass mark it stale; the next pass starts when it ends.  The run's images are
loaded in the background when a saved run does not have them yet.
"""

from __future__ import annotations

import time

import numpy as np
import shiboken6
import torch
import torch.nn.functional as F
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QVBoxLayout, QWidget

from explorer.insights.common import FigurePane, FrameThrottle, class_name, control_rows, model_device, run_file_stem
from explorer.insights.figure import GridFigure
from explorer.session import RunState, rebind

EVALUATED = 1000          # validation images whose errors are measured (the map's images: all of them)
CHUNK_BUDGET_S = 0.004    # GUI-thread time per chunk
PER_ROW = 6   # images a row: eight captions "#1234 (7)" were wider than a laptop's 440 px dock
KEEP_PIXELS = 2 ** 25     # a pass keeps its reconstructions (uint8) when they hold at most this many values
ERRORS = {"squared_error": "squared error per image, summed over pixels (values in [0, 1])",
          "bce": "binary cross-entropy per image, summed over pixels"}
ERROR_TITLES = {"squared_error": "squared error", "bce": "binary cross-entropy"}
ORDERS = {"worst": "worst first", "best": "best first", "index": "in dataset order"}
SOURCES = {"val": "validation images", "probe": "the map's images"}


@torch.no_grad()
def image_errors(model, x: torch.Tensor, y: torch.Tensor | None, kind: str) -> tuple[np.ndarray, torch.Tensor]:
    """(errors per image, reconstructions) of float images x in [0, 1]."""
    recon = model.reconstruct(x, y if model.is_conditional else None).float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy(recon.clamp(1e-6, 1 - 1e-6), x, reduction="none")
    else:
        per_pixel = (recon - x).pow(2)
    return per_pixel.flatten(1).sum(dim=1).double().cpu().numpy(), recon


class ReconstructionView(QWidget):
    """Inputs and reconstructions of one run, each with its error, sortable."""

    rendered = Signal(object)   # the GridFigure just shown

    def __init__(self, state: RunState | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("reconstructionView")
        self.setAccessibleName("reconstructionView")
        self.state: RunState | None = None
        self.rows = np.zeros(0, np.int64)        # validation-set indices of the last finished pass
        self._rows = self.rows                   # those of the pass under way
        self.errors = np.zeros(0)                # their errors, in the order of ``rows``
        self.recons: np.ndarray | None = None    # their reconstructions (uint8), when small enough to keep
        self._recons: np.ndarray | None = None
        self._position = 0
        self._chunk = 8   # grows with the measured cost per image
        self._noted = 0.0
        self._stale = False
        self.load_failure = ""
        self._waiting_for: RunState | None = None   # the run whose images were asked for

        self.source_combo, self.error_combo, self.order_combo = QComboBox(self), QComboBox(self), QComboBox(self)
        for combo, items in ((self.source_combo, SOURCES), (self.error_combo, ERROR_TITLES),
                             (self.order_combo, ORDERS)):
            for key, words in items.items():
                combo.addItem(words, key)
        self.count_spin = QSpinBox(self, minimum=1, maximum=128, value=32)
        controls = control_rows(self, (("Images", self.source_combo), ("Error", self.error_combo)),
                                (("Order", self.order_combo), ("Show", self.count_spin)))
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.throttle = FrameThrottle(self, self.refresh)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, "reconstructions"),
                               (self.throttle.flush, self.finish_now), note=self.note)
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.pane, 1)

        self.chunk_timer = QTimer(self, interval=0)
        self.chunk_timer.timeout.connect(self._next_chunk)
        self.source_combo.currentIndexChanged.connect(self.throttle.request)
        self.error_combo.currentIndexChanged.connect(self.throttle.request)
        self.order_combo.currentIndexChanged.connect(lambda _: self._show_sorted())
        self.count_spin.valueChanged.connect(lambda _: self._show_sorted())
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    @property
    def computing(self) -> bool:
        return self.chunk_timer.isActive()

    @property
    def loading(self) -> bool:
        return self.state is not None and self.state.is_loading_dataset()

    def figure(self) -> GridFigure | None:
        """What the view shows now (the pass under way run to its end first)."""
        return self.pane.figure()

    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self._on_weights, "probe_changed": self._on_probe})
        self.chunk_timer.stop()
        self.rows, self.errors, self.recons, self.load_failure = np.zeros(0, np.int64), np.zeros(0), None, ""
        self._rows = self.rows
        self._stale = False
        self.throttle.request()

    def order(self) -> np.ndarray:
        """Positions into ``rows``/``errors`` in the order shown."""
        key = self.order_combo.currentData()
        if key == "index":
            return np.arange(len(self.errors))
        order = np.argsort(self.errors, kind="stable")
        return order[::-1] if key == "worst" else order

    def refresh(self) -> None:
        """Start a pass over the images with the current weights."""
        self.throttle.pending = False
        model = self._model
        if model is None:
            self._show(None, "No model")
            return
        split = self.state.dataset
        if split is None:
            self._load_images()
            return
        if self.source_combo.currentData() == "probe" and self.state.probe is not None:
            probe = self.state.probe   # its validation points (a probe set may hold training images too)
            rows = np.asarray(probe.indices[probe.splits == 0], np.int64)
        else:
            rows = np.arange(min(EVALUATED, len(split.val)), dtype=np.int64)
        self._rows = rows[rows < len(split.val)]
        self._errors = np.zeros(len(self._rows))
        keep = len(self._rows) * int(np.prod(split.val.shape)) <= KEEP_PIXELS
        self._recons = np.zeros((len(self._rows), *split.val.shape), np.uint8) if keep else None
        self._position, self._stale, self._noted = 0, False, time.perf_counter()
        if len(self._rows) == 0:
            self._show(None, "No images to reconstruct.")
            return
        self.chunk_timer.start()

    def finish_now(self) -> None:
        """Run the pass in progress to its end (an export, a test)."""
        while self.chunk_timer.isActive():
            self._next_chunk()

    # -- the pass ------------------------------------------------------------------------------------
    def _next_chunk(self) -> None:
        model, split = self._model, self.state.dataset if self.state is not None else None
        if model is None or split is None:
            self.chunk_timer.stop()
            return
        start = time.perf_counter()
        idx = torch.as_tensor(self._rows[self._position:self._position + self._chunk])
        x = split.val.images[idx].to(model_device(model)).float().div_(255.0)
        y = split.val.labels[idx].to(x.device)
        errors, recon = image_errors(model, x, y, self.error_combo.currentData())
        self._errors[self._position:self._position + len(idx)] = errors
        if self._recons is not None:
            self._recons[self._position:self._position + len(idx)] = \
                recon.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
        self._position += len(idx)
        elapsed = time.perf_counter() - start
        # the next chunk: as many images as the budget holds at this chunk's cost, at most twice as many
        fits = int(CHUNK_BUDGET_S * len(idx) / elapsed) if elapsed > 0 else 2 * self._chunk
        self._chunk = max(1, min(fits, 2 * self._chunk, 4096))
        if time.perf_counter() - self._noted > 0.25:   # a progress line a few times a second, not a repaint a chunk
            self._noted = time.perf_counter()
            self.note.setText(f"Measuring errors: {self._position:,} of {len(self._rows):,} images…")
        if self._position >= len(self._rows):
            self.chunk_timer.stop()
            self.rows, self.errors, self.recons = self._rows, self._errors, self._recons
            self._show_sorted()
            if self._stale:
                self.throttle.request()

    @torch.no_grad()
    def _show_sorted(self) -> None:
        model, split = self._model, self.state.dataset if self.state is not None else None
        if model is None or split is None or len(self.errors) != len(self.rows) or not len(self.errors):
            return
        kind = self.error_combo.currentData()
        shown = self.order()[:self.count_spin.value()]
        idx = torch.as_tensor(self.rows[shown])
        x = split.val.images[idx].float().div_(255.0)
        if self.recons is not None and len(self.recons) == len(self.rows):   # the pass's own
            errors, outputs = self.errors[shown], self.recons[shown].astype(np.float32) / 255.0
        else:   # too many to keep: the shown ones again
            errors, recon = image_errors(model, x.to(model_device(model)), split.val.labels[idx].to(model_device(model)), kind)
            self.errors[shown] = errors
            outputs = recon.cpu().numpy()
        inputs = x.numpy()
        cells, captions, labels = [], [], []
        names = self.state.class_names
        for s in range(0, len(shown), PER_ROW):
            part = range(s, min(s + PER_ROW, len(shown)))
            cells += [[inputs[i] for i in part], [outputs[i] for i in part]]
            captions += [[self._image_words(int(self.rows[shown[i]]), split, names) for i in part],
                         [f"{errors[i]:.2f}" for i in part]]
            labels += ["input", "output"]
        source = "validation images" if self.source_combo.currentData() == "val" else "map images"
        title = (f"{self.state.name}: {len(shown)} of {len(self.rows):,} {source}, "
                 f"{ORDERS[self.order_combo.currentData()]}, by {ERRORS[kind]}")
        mean = float(np.mean(self.errors))
        self.note.setText(f"Mean {ERROR_TITLES[kind]} over the {len(self.rows):,} images: {mean:.2f} per image.")
        self._show(GridFigure(cells, title=title, row_labels=labels, captions=captions))

    @staticmethod
    def _image_words(row: int, split, names) -> str:
        label = int(split.val.labels[row])
        return f"#{row} ({class_name(names, label)})"

    # -- loading and following the run -------------------------------------------------------------
    def _load_images(self) -> None:
        """Ask the run for its images (the app's one dataset cache reads them in the background)."""
        if self.load_failure:
            self._show(None, f"The run's images are not available: {self.load_failure}")
            return
        self._show(None, "Loading the run's images…")
        if self._waiting_for is self.state:   # asked already: the images come with _on_loaded
            return
        state = self._waiting_for = self.state
        state.ensure_dataset_in_background(lambda split: self._on_loaded(state, split))

    def _on_loaded(self, state: RunState, split) -> None:
        if not shiboken6.isValid(self):   # the view closed while the images loaded
            return
        if self._waiting_for is state:
            self._waiting_for = None
        if state is not self.state:
            return
        if split is None:
            self.load_failure = state.dataset_failure or "it could not be loaded here."
            self._show(None, f"The run's images are not available: {self.load_failure}")
        else:
            self.throttle.request()

    def _on_weights(self) -> None:
        if self.computing:
            self._stale = True
        else:
            self.throttle.request()

    def _on_probe(self, probe) -> None:
        if self.source_combo.currentData() == "probe":
            self._on_weights()

    @property
    def _model(self):
        return self.state.model if self.state is not None else None

    def _show(self, figure: GridFigure | None, placeholder: str | None = None) -> None:
        if figure is None and placeholder:
            self.note.setText("")
        self.pane.show_figure(figure, placeholder)
