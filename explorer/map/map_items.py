"""The latent map's own graphics: the handle a person drags, and a view box whose right button pans."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPalette, QPen
from PySide6.QtWidgets import QGraphicsItem


class Handle(pg.GraphicsObject):
    """The dragged point: a ring with four ticks, a fixed size on screen."""

    RADIUS = 9.0

    def __init__(self, palette: QPalette):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setZValue(20)
        self._outline = palette.color(QPalette.ColorRole.Base)
        self._stroke = palette.color(QPalette.ColorRole.Text)

    def boundingRect(self) -> QRectF:
        r = self.RADIUS + 8
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option=None, widget=None) -> None:
        r = self.RADIUS
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for color, width in ((self._outline, 4.0), (self._stroke, 2.0)):
            pen = QPen(color, width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            painter.setPen(pen)
            painter.drawEllipse(QPointF(0, 0), r, r)
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                painter.drawLine(QPointF(dx * (r - 4), dy * (r - 4)), QPointF(dx * (r + 6), dy * (r + 6)))


class MapViewBox(pg.ViewBox):
    """A ViewBox whose right-button drag pans like the middle button (the left belongs to the handle)."""

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.MouseButton.RightButton or axis is not None:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        delta = self.mapToView(ev.lastPos()) - self.mapToView(ev.pos())
        self.translateBy(x=delta.x(), y=delta.y())
        self.sigRangeChangedManually.emit(self.state["mouseEnabled"])
