"""Small widgets shared by several views: a NumPy image as a QImage, a canvas that paints one, a one-line label."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics, QImage, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


def to_qimage(image) -> QImage:
    """A QImage (owning its pixels) of one C×H×W float image in [0, 1], C = 1 or 3 (a NumPy array)."""
    import numpy as np  # here: the status bar's label comes from this module before NumPy is needed (launch)
    pixels = np.clip(np.asarray(image, dtype=np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    c, h, w = pixels.shape
    if c == 1:
        data = np.ascontiguousarray(pixels[0])
        return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    data = np.ascontiguousarray(pixels[:3].transpose(1, 2, 0))
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageCanvas(QWidget):
    """Paints one image scaled by whole device pixels (nearest neighbour), centred, aspect kept."""

    painted = Signal(float)  # time.perf_counter() at the end of each paint

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("imageCanvas")
        self.setAccessibleName("imageCanvas")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        #: said where there is no image (a decoder without a model; a strip before its first hover)
        self.placeholder = "No model"

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def minimumSizeHint(self) -> QSize:
        return QSize(96, 96)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def image_rect(self) -> QRectF:
        """Where the image lands, in logical pixels: the largest whole-device-pixel scale that fits."""
        if self._image is None or self._image.isNull():
            return QRectF()
        ratio = self.devicePixelRatioF()
        w, h = self._image.width(), self._image.height()
        fit = min(self.width() * ratio / w, self.height() * ratio / h)
        scale = math.floor(fit) if fit >= 1 else fit
        tw, th = w * scale / ratio, h * scale / ratio
        # Snap the corner to a device pixel so every image pixel covers the same number of them.
        x = round((self.width() - tw) / 2 * ratio) / ratio
        y = round((self.height() - th) / 2 * ratio) / ratio
        return QRectF(x, y, tw, th)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Window))
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            target = self.image_rect()
            painter.drawImage(target, self._image)
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 0))
            painter.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
        else:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        painter.end()
        self.painted.emit(time.perf_counter())


class ElidedLabel(QLabel):
    """A one-line label that never widens the window: too long a text is elided, the whole in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 — Qt's name
        self._full = text
        self.setToolTip(text if text else "")
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width() - 4, 20)
        super().setText(QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideRight, width))
