"""Samples: a grid decoded from the model's prior, drawn again from the same noise whenever the
weights change, so a person watches the same samples sharpen as the model learns.

The codes come from ``model.prior_sample`` (N(0, I), the model's chosen prior, or the Gaussian
fitted to the training codes: the registry's ``prior`` says which) under a fixed seed, in a
forked random state so nothing else's randomness moves.  The temperature scales the codes
about the prior's centre (0, or the fitted mean).  Conditional models get a row per class; the
columns share their noise, so a column holds one "style" in every class.  A prior that depends
on the label (a label-informed mixture) gets a row per class too, each from its own component.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from engine.models import AutoencoderModel
from explorer.insights.common import (
    PRIOR_WORDS,
    ChunkedDecoder,
    FigurePane,
    FrameThrottle,
    class_name,
    control_rows,
    model_device,
    prior_kind,
    run_file_stem,
)
from explorer.insights.figure import GridFigure
from explorer.session import RunState, rebind

DEFAULT_COUNT = 64
DEFAULT_PER_CLASS = 8


@torch.no_grad()
def sample_codes(model: AutoencoderModel, n: int, seed: int, temperature: float, prior: str,
                 labels: np.ndarray | None = None) -> np.ndarray:
    """``n`` codes (n×D) from the model's prior with the noise of ``seed``, at ``temperature``.
    ``labels`` go to a chosen prior that takes them (a label-informed mixture)."""
    device = model_device(model)
    params = inspect.signature(model.prior_sample).parameters
    kwargs = {}
    if labels is not None and "labels" in params:
        kwargs["labels"] = torch.as_tensor(labels, device=device).long()
    if "temperature" in params:
        kwargs["temperature"] = temperature
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        z = model.prior_sample(n, device, **kwargs).float()
    if "temperature" not in params and temperature != 1.0:
        centre = model.code_mean.to(z) if prior == "fitted" else torch.zeros_like(z[0])
        z = centre + temperature * (z - centre)
    return z.cpu().numpy()


@torch.no_grad()
def prior_uses_labels(model: AutoencoderModel) -> bool:
    """Whether the model's prior depends on the label (a label-informed mixture): the same noise
    under two labels gives different codes.  Asked of the model's behaviour, not its variant."""
    if model.n_classes < 2 or "labels" not in inspect.signature(model.prior_sample).parameters:
        return False
    device = model_device(model)
    codes = []
    for label in (0, 1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            codes.append(model.prior_sample(4, device, labels=torch.full((4,), label, device=device)))
    return not torch.allclose(codes[0], codes[1])


class SamplesView(QWidget):
    """A grid of samples of one run, from the same noise at every snapshot."""

    rendered = Signal(object)   # the GridFigure just shown

    def __init__(self, state: RunState | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("samplesView")
        self.setAccessibleName("samplesView")
        self.state: RunState | None = None
        self.noise_codes = np.zeros((0, 0), np.float32)   # the codes of the last grid
        self.per_class = False          # a row per class: a conditional model, or a prior that depends on the label
        self._prior_labelled = False

        self.count_label = QLabel("Samples", self)
        self.count_spin = QSpinBox(self, minimum=1, maximum=256, value=DEFAULT_COUNT)
        self.temperature_spin = QDoubleSpinBox(self, minimum=0.05, maximum=3.0, value=1.0, singleStep=0.1, decimals=2)
        self.temperature_spin.setToolTip("Scales the codes about the prior's centre: below 1 nearer the typical "
                                         "image, above 1 farther out")
        self.seed_spin = QSpinBox(self, minimum=0, maximum=2**31 - 1, value=0)
        self.seed_spin.setToolTip("The noise the samples are drawn from; it stays the same as the model trains")
        self.new_noise = QPushButton("New noise", self)
        controls = control_rows(self, ((None, self.count_label), (None, self.count_spin),
                                       ("Temperature", self.temperature_spin)),
                                (("Seed", self.seed_spin), (None, self.new_noise)))
        self.throttle = FrameThrottle(self, self.refresh)
        self.decoder = ChunkedDecoder(self)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, "samples"),
                               (self.throttle.flush, self.decoder.finish_now))
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.pane, 1)

        for signal in (self.count_spin.valueChanged, self.temperature_spin.valueChanged, self.seed_spin.valueChanged):
            signal.connect(self.throttle.request)
        self.new_noise.clicked.connect(lambda: self.seed_spin.setValue(self.seed_spin.value() + 1))
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    def figure(self) -> GridFigure | None:
        """What the view shows now (rendered first if a redraw is waiting)."""
        return self.pane.figure()

    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self.throttle.request})
        model = self._model
        self._prior_labelled = model is not None and prior_uses_labels(model)
        self.per_class = model is not None and (model.is_conditional or self._prior_labelled)
        self.count_label.setText("Per class" if self.per_class else "Samples")
        self.count_spin.blockSignals(True)
        self.count_spin.setValue(DEFAULT_PER_CLASS if self.per_class else DEFAULT_COUNT)
        self.count_spin.blockSignals(False)
        self.throttle.request()

    def refresh(self) -> None:
        self.throttle.pending = False
        model = self._model
        if model is None:
            self.decoder.cancel()
            self.pane.show_figure(None, "No model")
            return
        prior, seed, temperature = prior_kind(self.state), self.seed_spin.value(), self.temperature_spin.value()
        n = self.count_spin.value()
        if self.per_class:
            classes = np.arange(model.n_classes)
            labels = np.repeat(classes, n)
            if self._prior_labelled:
                codes = sample_codes(model, len(labels), seed, temperature, prior, labels)
            else:   # the same noise in every row
                codes = np.tile(sample_codes(model, n, seed, temperature, prior), (len(classes), 1))
            decode_labels = labels if model.is_conditional else None
            names = self.state.class_names
            rows = [class_name(names, c) for c in classes]
            what = f"{n} per class, a row per class{'' if self._prior_labelled else ', the same noise in each row'}"
        else:
            codes = sample_codes(model, n, seed, temperature, prior)
            rows, what, decode_labels = [], f"{n} samples", None
        self.noise_codes = codes
        title = (f"{self.state.name}: {what} from {PRIOR_WORDS.get(prior, prior)}, temperature {temperature:g}, "
                 f"noise seed {seed}")
        width = n if self.per_class else math.ceil(math.sqrt(n))

        def show(images: np.ndarray) -> None:
            cells = [list(images[s:s + width]) for s in range(0, len(images), width)]
            self.pane.show_figure(GridFigure(cells, title=title, row_labels=rows))

        self.decoder.start(model, codes, decode_labels, show)

    # -- internals ------------------------------------------------------------------------------------
    @property
    def _model(self):
        return self.state.model if self.state is not None else None
