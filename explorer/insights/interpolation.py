"""Interpolation: the decoded path between two latent codes, as a row of images.

The endpoints are state outside the widget (``InterpolationEndpoints``), so the latent map can
draw them as a line and drag its ends, and a click on the map can pick them (``pick``: the
first click sets A, the next B, and so on).  An endpoint is a code or a probe image (an index
into the probe set, i.e. a point of the map); an image's code is encoded again with the latest
weights whenever they change.  The path is linear, or spherical (slerp, the usual choice for a
standard-normal prior, where a straight line passes through improbably small norms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QCheckBox, QPushButton, QSpinBox, QVBoxLayout, QWidget

from engine.probe_sets import fits, point_images
from explorer.insights.common import (
    ChunkedDecoder,
    FigurePane,
    FrameThrottle,
    class_name,
    control_rows,
    encode_images,
    prior_kind,
    run_file_stem,
)
from explorer.insights.figure import GridFigure
from explorer.session import LatentCursor, RunState, rebind

DEFAULT_STEPS = 10


@dataclass(frozen=True)
class Endpoint:
    """One end of the path: a code (D), and the probe image it is the code of, if any."""

    code: np.ndarray
    image: int | None = None


class InterpolationEndpoints(QObject):
    """The two ends A and B; ``changed`` carries this object after every change."""

    changed = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.a: Endpoint | None = None
        self.b: Endpoint | None = None
        self.next_pick = "a"

    @property
    def complete(self) -> bool:
        return self.a is not None and self.b is not None

    def set_endpoints(self, code_a, code_b) -> None:
        """Both ends as codes (two clicks on the map, say)."""
        self.a, self.b = Endpoint(_code(code_a)), Endpoint(_code(code_b))
        self.next_pick = "a"
        self.changed.emit(self)

    def set_end(self, which: str, code, image: int | None = None) -> None:
        """Move one end ("a" or "b"): a dragged end of the map's line, or a cursor pick."""
        end = Endpoint(_code(code), image)
        if which == "a":
            self.a = end
        elif which == "b":
            self.b = end
        else:
            raise ValueError(f"An endpoint is 'a' or 'b', not {which!r}.")
        self.changed.emit(self)

    def pick(self, code, image: int | None = None) -> str:
        """Set A, then B on the next call, then A again: two clicks give a path.  Returns which end was set."""
        which = self.next_pick
        self.next_pick = "b" if which == "a" else "a"
        self.set_end(which, code, image)
        return which

    def swap(self) -> None:
        self.a, self.b = self.b, self.a
        self.changed.emit(self)

    def clear(self) -> None:
        self.a = self.b = None
        self.next_pick = "a"
        self.changed.emit(self)


def _code(code) -> np.ndarray:
    return np.asarray(code, dtype=np.float32).reshape(-1).copy()


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, spherical: bool) -> np.ndarray:
    """``steps`` codes from a to b (both included): straight, or along the great circle (slerp;
    straight when the two are (anti)parallel or one is zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if spherical:
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 0 and nb > 0:
            omega = float(np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0)))
            if 1e-4 < omega < np.pi - 1e-4:
                return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return (1 - t) * a + t * b


class InterpolationView(QWidget):
    """The decoded path between two endpoints, for one run."""

    rendered = Signal(object)   # the GridFigure just shown

    def __init__(self, state: RunState | None, cursor: LatentCursor, endpoints: InterpolationEndpoints | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("interpolationView")
        self.setAccessibleName("interpolationView")
        self.state: RunState | None = None
        self.cursor = cursor
        self.endpoints = endpoints if endpoints is not None else InterpolationEndpoints(self)
        self.path_codes = np.zeros((0, 0))

        self.pick_a = QPushButton("A ← cursor", self)
        self.pick_b = QPushButton("B ← cursor", self)
        self.pick_a.setToolTip("Take the decoder canvas's code as the path's start")
        self.pick_b.setToolTip("Take the decoder canvas's code as the path's end")
        self.swap_button = QPushButton("Swap", self)
        self.image_a = QSpinBox(self, minimum=0, maximum=0)
        self.image_b = QSpinBox(self, minimum=0, maximum=0)
        self.use_images = QPushButton("Use images", self)
        self.use_images.setToolTip("Interpolate between two of the map's images (indices into the probe set)")
        self.steps_spin = QSpinBox(self, minimum=3, maximum=25, value=DEFAULT_STEPS)
        self.spherical_box = QCheckBox("Spherical", self)
        self.spherical_box.setToolTip("Along the great circle (slerp) rather than a straight line; "
                                      "the default for a standard-normal prior")
        controls = control_rows(self, ((None, self.pick_a), (None, self.pick_b), (None, self.swap_button),
                                       (None, self.spherical_box)),
                                (("Images", self.image_a), (None, self.image_b), (None, self.use_images),
                                 ("Steps", self.steps_spin)))
        self.throttle = FrameThrottle(self, self.refresh)
        self.decoder = ChunkedDecoder(self)
        self.pane = FigurePane(self, lambda: run_file_stem(self.state, "interpolation"),
                               (self.throttle.flush, self.decoder.finish_now))
        self.pane.canvas.placeholder = "Pick two points: A and B from the cursor, two clicks on the map, or two images."
        self.pane.rendered.connect(self.rendered)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.pane, 1)

        self.pick_a.clicked.connect(lambda: self._pick_cursor("a"))
        self.pick_b.clicked.connect(lambda: self._pick_cursor("b"))
        self.swap_button.clicked.connect(self.endpoints.swap)
        self.use_images.clicked.connect(lambda: self.set_images(self.image_a.value(), self.image_b.value()))
        self.steps_spin.valueChanged.connect(self.throttle.request)
        self.spherical_box.toggled.connect(self.throttle.request)
        self.endpoints.changed.connect(self.throttle.request)
        cursor.label_changed.connect(self.throttle.request)
        self.bind(state)

    # -- public -------------------------------------------------------------------------------------
    def figure(self) -> GridFigure | None:
        """What the view shows now (rendered first if a redraw is waiting)."""
        return self.pane.figure()

    def bind(self, state: RunState | None) -> None:
        self.state = rebind(self.state, state, {"decoder_changed": self._on_weights, "probe_changed": self._on_probe})
        self.spherical_box.blockSignals(True)
        self.spherical_box.setChecked(state is not None and prior_kind(state) == "standard_normal")
        self.spherical_box.blockSignals(False)
        self._on_probe(None)
        ends = [e for e in (self.endpoints.a, self.endpoints.b) if e is not None]
        if self._model is not None and (not ends or any(not self._fits(e.code) for e in ends)):
            probe = state.probe
            if probe is not None and len(probe.codes) >= 2:
                self.set_images(0, 1)
            elif ends:
                self.endpoints.clear()
        self.throttle.request()

    def set_endpoints(self, code_a, code_b) -> None:
        self.endpoints.set_endpoints(code_a, code_b)

    def pick_from_map(self, code) -> str:
        """A click on the map: A first, B the next time."""
        return self.endpoints.pick(code)

    def set_images(self, i: int, j: int) -> None:
        """Interpolate between probe images i and j (indices into the probe set)."""
        probe = self.state.probe if self.state is not None else None
        if probe is None or not (0 <= i < len(probe.codes) and 0 <= j < len(probe.codes)):
            return
        codes = self._image_codes([i, j])
        self.endpoints.a, self.endpoints.b = Endpoint(codes[0], i), Endpoint(codes[1], j)
        self.endpoints.next_pick = "a"
        for spin, value in ((self.image_a, i), (self.image_b, j)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self.endpoints.changed.emit(self.endpoints)

    def refresh(self) -> None:
        self.throttle.pending = False
        model, ends = self._model, self.endpoints
        if model is None or not ends.complete or not (self._fits(ends.a.code) and self._fits(ends.b.code)):
            self.decoder.cancel()
            self.pane.show_figure(None, "No model" if model is None else None)
            return
        steps, spherical = self.steps_spin.value(), self.spherical_box.isChecked()
        self.path_codes = interpolate(ends.a.code, ends.b.code, steps, spherical)
        label = self.cursor.label if model.is_conditional else None
        t = np.linspace(0, 1, steps)
        # t under each image without "t=" (ten "t=0.11" captions were wider than a laptop's dock); the title says what it is
        captions = ["A"] + [f"{v:.2f}" for v in t[1:-1]] + ["B"]
        how = "spherical" if spherical else "linear"
        what = f", decoded as class {class_name(self.state.class_names, label)}" if label is not None else ""
        title = f"{self.state.name}: A = {self._words(ends.a)} → B = {self._words(ends.b)} ({how}{what}; t under each image)"
        self.decoder.start(model, self.path_codes, label, lambda images: self.pane.show_figure(GridFigure(
            [list(images)], title=title, row_labels=[how], captions=[captions], marks={(0, 0), (0, steps - 1)})))

    # -- internals ------------------------------------------------------------------------------------
    @property
    def _model(self):
        return self.state.model if self.state is not None else None

    def _fits(self, code: np.ndarray) -> bool:
        return self._model is not None and code.shape == (self._model.latent_dim,)

    def _words(self, end) -> str:
        if end.image is not None and self.state.probe is not None and end.image < len(self.state.probe.labels):
            label = int(self.state.probe.labels[end.image])
            return f"image {end.image} (class {class_name(self.state.class_names, label)})"
        shown = ", ".join(f"{v:.2f}" for v in end.code[:4])
        return f"({shown}{', …' if len(end.code) > 4 else ''})"

    def _pick_cursor(self, which: str) -> None:
        if self.cursor.code is not None and self._fits(self.cursor.code):
            self.endpoints.set_end(which, self.cursor.code)

    @torch.no_grad()
    def _image_codes(self, indices: list[int]) -> np.ndarray:
        """Codes of probe images with the latest weights (the probe's own codes until the images are loaded)."""
        probe, dataset, model = self.state.probe, self.state.dataset, self._model
        rows, splits = probe.indices[indices], probe.splits[indices]
        if dataset is not None and fits(dataset, splits, rows):   # each image from its own split
            return encode_images(model, *point_images(dataset, splits, rows))
        return probe.codes[indices].astype(np.float32)

    def _on_weights(self) -> None:
        self._reencode_images()
        self.throttle.request()

    def _reencode_images(self) -> None:
        """New weights or probe codes: an image endpoint's code moves with the encoder."""
        ends, probe = self.endpoints, self.state.probe if self.state is not None else None
        held = [e for e in (ends.a, ends.b) if e is not None and e.image is not None]
        if not held or probe is None or self._model is None or max(e.image for e in held) >= len(probe.codes):
            return
        if ends.a is not None and ends.a.image is not None:
            ends.a = Endpoint(self._image_codes([ends.a.image])[0], ends.a.image)
        if ends.b is not None and ends.b.image is not None:
            ends.b = Endpoint(self._image_codes([ends.b.image])[0], ends.b.image)
        ends.changed.emit(ends)

    def _on_probe(self, probe) -> None:
        probe = self.state.probe if self.state is not None else None
        top = max(len(probe.codes) - 1, 0) if probe is not None else 0
        for spin in (self.image_a, self.image_b):
            spin.setMaximum(top)
        self.use_images.setEnabled(top > 0)
        if probe is not None and self.state.dataset is None:
            self._reencode_images()   # without the images, their codes are the probe's
