"""The comparison's picture panels: the same inputs through every model (with each image's
error), and every model's samples from the same noise.

Both are drawn into one ``QImage`` (a row per model, its name at the left), shown at its pixel
size in a scroll area, and redrawn on request or, while a run trains, at most once a second.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.compare import sample_images, shared_noise
from explorer.runs_panel import short_name
from explorer.session import RunState
from explorer.widgets import to_qimage

MIN_CELL_PX = 48        # an image's longer side on screen, at least (8×8 digits: 6×, MNIST: 2×)
MIN_SCALE = 2
NAME_WIDTH = 150
ERROR_HEIGHT = 14
REFRESH_MS = 1000


def cell_scale(h: int, w: int) -> int:
    """Screen pixels per image pixel: whole, at least ``MIN_SCALE``, and enough that the image's
    longer side is ``MIN_CELL_PX`` or more (8×8 digits were 16 px: unreadable)."""
    return max(MIN_SCALE, -(-MIN_CELL_PX // max(h, w, 1)))


def draw_rows(rows: list[tuple[str, np.ndarray | None, list[str] | None]], colours: list[str] | None = None,
              note: str = "") -> QImage:
    """One picture of labelled rows of images (each N×C×H×W in [0, 1], or None: "not available"),
    each image with an optional caption under it."""
    shapes = [r[1].shape for r in rows if r[1] is not None and len(r[1])]
    n = max((s[0] for s in shapes), default=0)
    h, w = (shapes[0][2], shapes[0][3]) if shapes else (28, 28)
    scale = cell_scale(h, w)
    cell_w, cell_h = w * scale + 6, h * scale + 4
    captioned = any(r[2] for r in rows)
    row_h = cell_h + (ERROR_HEIGHT if captioned else 0) + 4
    top = 18 if note else 0
    image = QImage(NAME_WIDTH + max(n, 1) * cell_w + 8, top + len(rows) * row_h + 4, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    font = QFont()
    font.setPixelSize(11)
    painter.setFont(font)
    if note:
        painter.setPen(QColor("#495057"))
        painter.drawText(QRect(4, 2, image.width() - 8, 16), Qt.AlignmentFlag.AlignLeft, note)
    for r, (name, images, captions) in enumerate(rows):
        y = top + r * row_h + 2
        painter.setPen(QColor(colours[r]) if colours and r < len(colours) and colours[r] else QColor("black"))
        painter.drawText(QRect(4, y, NAME_WIDTH - 8, cell_h), Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextWordWrap,
                         name)
        if images is None:
            painter.setPen(QColor("#868e96"))
            painter.drawText(QRect(NAME_WIDTH, y, image.width() - NAME_WIDTH, cell_h), Qt.AlignmentFlag.AlignVCenter,
                             "not available for this run")
            continue
        for i, picture in enumerate(images):
            x = NAME_WIDTH + i * cell_w
            painter.drawImage(QRect(x, y, w * scale, h * scale), to_qimage(picture))
            if captions and i < len(captions):
                painter.setPen(QColor("#343a40"))
                painter.drawText(QRect(x - 2, y + cell_h - 2, cell_w, ERROR_HEIGHT), Qt.AlignmentFlag.AlignHCenter,
                                 captions[i])
    painter.end()
    return image


class _PicturePanel(QWidget):
    """A picture in a scroll area, controls above it, redrawn lazily while runs train."""

    def __init__(self, states: list[RunState], colours: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.states, self.colours = states, colours
        self.picture = QImage()
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.label.setBackgroundRole(QPalette.ColorRole.Base)
        scroll = QScrollArea()
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        self.controls = QHBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.controls.addWidget(refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(self.controls)
        layout.addWidget(scroll, 1)
        self._timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._timer.timeout.connect(self._refresh_if_shown)
        for state in states:
            state.decoder_changed.connect(self._schedule)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _refresh_if_shown(self) -> None:
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        self.picture = self.draw()
        self.label.setPixmap(QPixmap.fromImage(self.picture))

    def draw(self) -> QImage:
        raise NotImplementedError


class ReconstructionsPanel(_PicturePanel):
    """The same N validation images (random, or the maps' selection) and each model's reconstruction,
    each with its squared error summed over pixels (intensities in [0, 1])."""

    def __init__(self, states, colours, parent=None):
        super().__init__(states, colours, parent)
        self.source = QComboBox()
        self.source.setObjectName("compareReconSource")
        self.source.addItem("Random images", "random")
        self.source.addItem("The selection", "selection")
        self.source.currentIndexChanged.connect(self.refresh)
        self.count = QSpinBox()
        self.count.setRange(1, 32)
        self.count.setValue(12)
        self.count.setPrefix("N = ")
        self.count.valueChanged.connect(self.refresh)
        self.seed = 0
        again = QPushButton("New random images")
        again.clicked.connect(self._reroll)
        for widget in (self.source, self.count, again):
            self.controls.insertWidget(self.controls.count() - 1, widget)
        self.controls.addStretch(1)
        self.selection = np.zeros(0, np.int64)

    def set_selection(self, images: np.ndarray) -> None:
        self.selection = np.asarray(images, np.int64)
        if self.source.currentData() == "selection" and self.isVisible():
            self.refresh()

    def _reroll(self) -> None:
        self.seed += 1
        self.source.setCurrentIndex(0)
        self.refresh()

    def chosen_images(self, n_val: int) -> np.ndarray:
        n = min(self.count.value(), n_val)
        if self.source.currentData() == "selection" and len(self.selection):
            return self.selection[self.selection < n_val][:n]
        return np.sort(np.random.default_rng(self.seed).choice(n_val, size=n, replace=False))

    @torch.no_grad()
    def draw(self) -> QImage:
        first = next((s.ensure_dataset() for s in self.states if s.ensure_dataset() is not None), None)
        if first is None:
            return draw_rows([], note="The runs' dataset is not available here, so there are no inputs to show.")
        indices = self.chosen_images(len(first.val))
        x = torch.as_tensor(first.val.images[indices]).float() / 255.0
        labels = torch.as_tensor(first.val.labels[indices])
        rows = [("input", x.numpy(), None)]
        for state in self.states:
            model = state.model
            if model is None or tuple(model.image_shape) != tuple(x.shape[1:]):
                rows.append((short_name(state.name), None, None))
                continue
            recon = model.reconstruct(x, labels if model.is_conditional else None).cpu().numpy()
            errors = ((recon - x.numpy()) ** 2).reshape(len(x), -1).sum(axis=1)
            rows.append((short_name(state.name), recon, [f"{e:.1f}" for e in errors]))
        what = "the selection" if self.source.currentData() == "selection" and len(self.selection) else "random images"
        return draw_rows(rows, [""] + self.colours,
                         note=f"Validation images ({what}: {', '.join(map(str, indices[:12]))}"
                              f"{'…' if len(indices) > 12 else ''}); under each reconstruction its squared error "
                              "summed over pixels (intensities in [0, 1]).")


class SamplesPanel(_PicturePanel):
    """Each model's samples; runs of the same latent size with a standard-normal prior decode the same z."""

    def __init__(self, states, colours, parent=None):
        super().__init__(states, colours, parent)
        self.count = QSpinBox()
        self.count.setRange(1, 32)
        self.count.setValue(12)
        self.count.setPrefix("N = ")
        self.count.valueChanged.connect(self.refresh)
        self.controls.insertWidget(self.controls.count() - 1, self.count)
        self.controls.addStretch(1)

    @torch.no_grad()
    def draw(self) -> QImage:
        ready = [s for s in self.states if s.model is not None]
        n = self.count.value()
        noise = shared_noise([s.model for s in ready], [s.model_cfg.variant for s in ready], n)
        by_state = dict(zip(map(id, ready), noise))
        rows = []
        for state in self.states:
            if state.model is None:
                rows.append((short_name(state.name), None, None))
                continue
            z = by_state[id(state)]
            images = sample_images(state.model, z, n).numpy()
            words = "same z" if z is not None else "own prior"
            rows.append((f"{short_name(state.name)} ({words})", images, None))
        return draw_rows(rows, self.colours, note="Samples: runs of the same latent size with an N(0, I) prior decode "
                                                  "the same noise; the others sample their own prior (seeded).")
