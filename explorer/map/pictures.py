"""The pictures the latent map shows: a hover card (a probe point's input beside its
reconstruction) and the tiles of the manifold overlay."""

from __future__ import annotations

import base64
import html
import math

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPoint, Qt
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QToolTip, QWidget

from engine.probe_sets import point_images
from explorer.session import RunState
from explorer.widgets import to_qimage

TOOLTIP_PX = 72              # logical size of each tooltip thumbnail


def png_data_uri(image: np.ndarray, size_px: int) -> str:
    """A ``data:`` URI of a C×H×W [0, 1] image, upscaled by whole pixels to at least ``size_px``."""
    c, h, w = image.shape
    factor = max(1, math.ceil(size_px / max(h, w)))
    qimage = to_qimage(np.repeat(np.repeat(image, factor, axis=1), factor, axis=2))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    qimage.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(bytes(data)).decode("ascii")


def probe_tooltip(state: RunState, index: int, size_px: int = TOOLTIP_PX, ratio: float = 1.0) -> str:
    """Rich-text tooltip of probe point ``index``: its input (when the data is loaded) beside its
    reconstruction, and its class name.  ``ratio`` is the screen's device pixel ratio."""
    probe = state.probe
    label = int(probe.labels[index])
    names = state.class_names
    name = names[label] if 0 <= label < len(names) else str(label)
    recon = state.decode(probe.codes[index], label)[0]
    cells = []
    if state.dataset is not None:   # the image from the point's split (engine/probe_sets.py)
        images, _ = point_images(state.dataset, probe.splits[index:index + 1], probe.indices[index:index + 1])
        cells.append(("input", images[0].numpy().astype(np.float32) / 255.0))
    cells.append(("reconstruction", recon))
    pixels = round(size_px * ratio)
    images = "".join(f'<td align="center"><img src="{png_data_uri(img, pixels)}" width="{size_px}" '
                     f'height="{size_px}"><br><small>{title}</small></td>' for title, img in cells)
    return f"<b>{html.escape(name)}</b> <small>(probe point {index})</small><table><tr>{images}</tr></table>"


def compose_tiles(images: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """Tile M = nx·ny C×H×W images (row-major from the bottom-left) into one RGBA uint8 image
    for a y-up ``pg.ImageItem(axisOrder="row-major")``, each tile framed by a transparent pixel
    so neighbouring tiles stay apart: (H+2)·ny × (W+2)·nx × 4."""
    m, c, h, w = images.shape
    pixels = np.clip(images * 255 + 0.5, 0, 255).astype(np.uint8)[:, :, ::-1]  # each tile upright in y-up
    rgb = np.repeat(pixels, 3, axis=1) if c == 1 else pixels[:, :3]
    tiles = np.zeros((m, h + 2, w + 2, 4), np.uint8)
    tiles[:, 1:-1, 1:-1, :3] = rgb.transpose(0, 2, 3, 1)
    tiles[:, 1:-1, 1:-1, 3] = 255
    return tiles.reshape(ny, nx, h + 2, w + 2, 4).transpose(0, 2, 1, 3, 4).reshape(ny * (h + 2), nx * (w + 2), 4)


class HoverCard(QLabel):
    """A tooltip-like card that stays while the pointer is on its point.

    Qt's own tooltip hides itself after a while and on many application events (any focus change,
    a key press), and the map only showed it again once the pointer had left the point; the card is
    shown and hidden by the map alone: shown on a point, hidden when the pointer leaves it."""

    OFFSET = QPoint(16, 18)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.ToolTip | Qt.WindowType.FramelessWindowHint)
        self.setObjectName("mapHoverCard")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setPalette(QToolTip.palette())
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.Box)
        self.setMargin(4)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.index: int | None = None

    def show_at(self, global_pos: QPoint, html_text: str, index: int) -> None:
        self.index = index
        self.setText(html_text)
        self.adjustSize()
        pos = global_pos + self.OFFSET
        screen = QApplication.screenAt(global_pos) or QApplication.primaryScreen()
        if screen is not None:   # keep it on the screen: to the left of / above the pointer if need be
            room = screen.availableGeometry()
            if pos.x() + self.width() > room.right():
                pos.setX(global_pos.x() - self.OFFSET.x() - self.width())
            if pos.y() + self.height() > room.bottom():
                pos.setY(global_pos.y() - self.OFFSET.y() - self.height())
        self.move(pos)
        self.show()
        self.raise_()

    def dismiss(self) -> None:
        self.index = None
        self.hide()
