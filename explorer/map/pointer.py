"""The latent map's mouse: pressing the left button puts the handle there and dragging moves it
(or an end of the interpolation line), a click without a drag selects the point under it and
says so (``LatentView.clicked``), and hovering shows the point's input beside its
reconstruction.  The right and middle buttons and the wheel are pyqtgraph's (pan, zoom)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from explorer.map.pictures import probe_tooltip


class MapPointer(QObject):
    """The event filter of ``view``'s (a LatentView's) plot viewport."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self._press: QPoint | None = None
        self._dragged = False
        view.plot.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt's name
        view = self.view
        kind = event.type()
        if not isinstance(event, QMouseEvent):
            if kind in (QEvent.Type.Leave, QEvent.Type.Hide, QEvent.Type.WindowDeactivate):
                view._hide_tooltip()
            return False
        left = event.button() == Qt.MouseButton.LeftButton
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick) and left:
            if not view.view.sceneBoundingRect().contains(view.plot.mapToScene(event.position().toPoint())):
                return False  # on an axis: pyqtgraph pans along it
            self._press, self._dragged = event.position().toPoint(), False
            view._hide_tooltip()
            line = view.interpolation_line
            if line is not None:
                line.dragging = line.hit(*view._map_point(event.position()))
                if line.dragging is not None:
                    return True   # an end of the interpolation line: it is dragged, not the handle
            view.points.set_selected(None)
            view._move_handle(*view._map_point(event.position()), "map")
            return True
        if kind == QEvent.Type.MouseMove and self._press is not None:
            if not event.buttons() & Qt.MouseButton.LeftButton:  # released where we could not see it
                self._press = None
                return False
            if (event.position().toPoint() - self._press).manhattanLength() >= QApplication.startDragDistance():
                self._dragged = True
            if view.interpolation_line is not None and view.interpolation_line.dragging is not None:
                view.interpolation_line.drag_to(view.interpolation_line.dragging, *view._map_point(event.position()))
                return True
            view._move_handle(*view._map_point(event.position()), "map")
            return True
        if kind == QEvent.Type.MouseButtonRelease and left and self._press is not None:
            if view.interpolation_line is not None and view.interpolation_line.dragging is not None:
                view.interpolation_line.dragging = None
            elif not self._dragged:
                x, y = view._map_point(event.position())
                self._select_at(x, y)
                index = view.points.selected()
                code = view._shown_probe().codes[index] if index is not None else view.map_to_code(x, y)
                if code is not None:
                    view.clicked.emit((np.asarray(code, np.float32), index))
            self._press = None
            return True
        if kind == QEvent.Type.MouseMove and event.buttons() == Qt.MouseButton.NoButton:
            self._hover(event)
        return False

    def _select_at(self, x: float, y: float) -> None:
        view = self.view
        index = view._point_near(x, y)
        if index is None:
            return
        view.points.set_selected(index)
        view._move_handle(*view._xy[index], "select", code=view._shown_probe().codes[index])

    def _hover(self, event: QMouseEvent) -> None:
        view = self.view
        index = view._point_near(*view._map_point(event.position())) if view.state is not None else None
        view._set_hovered(index)
        if index is None:
            view._hide_tooltip()
            return
        if index != view.hover_card.index or not view.hover_card.isVisible():
            viewport = view.plot.viewport()
            view.hover_card.show_at(event.globalPosition().toPoint(),
                                    probe_tooltip(view.state, index, ratio=viewport.devicePixelRatioF()), index)
