"""Picking groups of points on a map: Shift+drag draws a box, Ctrl+Shift+drag a lasso, and the
points inside are selected; a Shift+click clears the selection.

The pieces both kinds of map share: ``points_in_polygon`` (the test), ``AreaDrag`` (the gesture's
polygon as the pointer moves) and ``SelectionOutline`` (its dashed outline on the plot).  The
comparison's linked maps (explorer/compare/maps.py) select validation images across runs with
them; ``MapSelection`` is the main map's own: its selected points are ringed, and the actions
"Selection → group A" and "→ group B" hand two selections to the Attributes view
(``groups_chosen(a, b)``: probe positions, the points' indices in the run's probe codes).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QAction, QMouseEvent, QPainterPath
from PySide6.QtWidgets import QGraphicsPathItem

SELECTION_COLOUR = "#f03e3e"
SELECTED_RING_PX = 9


def points_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """A boolean mask of the points (N×2) inside the closed polygon (M×2), by ray casting."""
    x, y = xy[:, 0][:, None], xy[:, 1][:, None]
    px, py = polygon[:, 0][None, :], polygon[:, 1][None, :]
    qx, qy = np.roll(px, -1, axis=1), np.roll(py, -1, axis=1)
    crosses = (py > y) != (qy > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = (qx - px) * (y - py) / (qy - py) + px
    return (np.count_nonzero(crosses & (x < at), axis=1) % 2 == 1) & np.isfinite(xy).all(axis=1)


def starts_area_drag(event: QMouseEvent) -> bool:
    """A left press with Shift held: a box (with Ctrl too: a lasso) starts."""
    return event.type() == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton \
        and bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)


class AreaDrag:
    """One box or lasso drag in map coordinates: the press, then each move."""

    def __init__(self, start: tuple[float, float], lasso: bool):
        self.lasso = lasso
        self.points = [start]

    @classmethod
    def from_press(cls, event: QMouseEvent, start: tuple[float, float]) -> AreaDrag:
        return cls(start, lasso=bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier))

    def move_to(self, point: tuple[float, float]) -> None:
        if self.lasso:
            self.points.append(point)
        else:
            self.points[1:] = [point]

    def polygon(self) -> np.ndarray | None:
        """The box's four corners or the lasso's path (M×2); None for a click (no area)."""
        points = np.asarray(self.points, dtype=np.float64)
        if len(points) < 2:
            return None
        if not self.lasso:
            (x0, y0), (x1, y1) = points[0], points[-1]
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return points if len(points) >= 3 else None


class SelectionOutline:
    """The dashed outline of a box or lasso being drawn on a plot."""

    def __init__(self, plot):
        self.item = QGraphicsPathItem()
        self.item.setPen(pg.mkPen(SELECTION_COLOUR, width=1, style=Qt.PenStyle.DashLine, cosmetic=True))
        self.item.setZValue(40)
        self.item.hide()
        plot.addItem(self.item, ignoreBounds=True)

    def draw(self, polygon: np.ndarray | None) -> None:
        if polygon is None:
            self.item.hide()
            return
        path = QPainterPath(QPointF(*polygon[0]))
        for x, y in polygon[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
        self.item.setPath(path)
        self.item.show()

    def hide(self) -> None:
        self.item.hide()


class MapSelection(QObject):
    """The main map's box and lasso selection (``view``: a LatentView) and its two groups."""

    changed = Signal(object)               # probe positions selected (np.ndarray, sorted)
    groups_chosen = Signal(object, object)  # (group A, group B): probe positions, once both are chosen

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.positions = np.zeros(0, np.int64)
        self.groups: dict[str, np.ndarray] = {}
        self._drag: AreaDrag | None = None
        self.outline = SelectionOutline(view.plot)
        self.rings = pg.ScatterPlotItem(size=SELECTED_RING_PX, pen=pg.mkPen(SELECTION_COLOUR, width=1.5),
                                        brush=None, symbol="o", pxMode=True)
        self.rings.setZValue(25)
        view.plot.addItem(self.rings, ignoreBounds=True)
        self.to_a = QAction("Selection → group A", self)
        self.to_a.setObjectName("selectionToGroupA")
        self.to_b = QAction("Selection → group B", self)
        self.to_b.setObjectName("selectionToGroupB")
        self.clear_action = QAction("Clear selection", self)
        for which, action in (("A", self.to_a), ("B", self.to_b)):
            action.setToolTip(f"The selected points become group {which} of the Attributes view's direction A → B")
            action.triggered.connect(lambda _=False, w=which: self.make_group(w))
        self.clear_action.triggered.connect(lambda: self.select([]))
        self._enable()
        view.plot.viewport().installEventFilter(self)   # after the map's pointer: called before it

    def actions(self) -> list[QAction]:
        return [self.to_a, self.to_b, self.clear_action]

    def select(self, positions) -> None:
        """Select these probe positions (an empty list clears the selection)."""
        self.positions = np.unique(np.asarray(positions, dtype=np.int64))
        self.redraw()
        self._enable()
        self.changed.emit(self.positions.copy())

    def select_in(self, polygon: np.ndarray) -> None:
        """Select the points inside ``polygon`` (map coordinates, M×2)."""
        xy = self.view.map_state.xy
        self.select(np.flatnonzero(points_in_polygon(xy, polygon)) if len(xy) else [])

    def make_group(self, which: str) -> None:
        """The selection becomes group ``which`` ("A" or "B"); with both chosen, ``groups_chosen``."""
        if len(self.positions) == 0:
            return
        self.groups[which] = self.positions.copy()
        if "A" in self.groups and "B" in self.groups:
            self.groups_chosen.emit(self.groups["A"].copy(), self.groups["B"].copy())

    def reset(self) -> None:
        """Another run: its points are others, so the selection and the groups go."""
        self.groups = {}
        self.select([])

    def redraw(self) -> None:
        """Ring the selected points where the map shows them now."""
        xy = self.view.map_state.xy
        shown = self.positions[self.positions < len(xy)]
        if len(shown):
            self.rings.setData(xy[shown, 0], xy[shown, 1])
        else:
            self.rings.setData([], [])

    def _enable(self) -> None:
        for action in (self.to_a, self.to_b, self.clear_action):
            action.setEnabled(len(self.positions) > 0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 — Qt's name
        if not isinstance(event, QMouseEvent):
            return False
        if starts_area_drag(event):
            self._drag = AreaDrag.from_press(event, self.view._map_point(event.position()))
            self.view._hide_tooltip()
            return True
        if self._drag is None:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseMove:
            self._drag.move_to(self.view._map_point(event.position()))
            self.outline.draw(self._drag.polygon())
            return True
        if kind == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            polygon = self._drag.polygon()
            self._drag = None
            self.outline.hide()
            if polygon is None:
                self.select([])   # a Shift+click clears the selection
            else:
                self.select_in(polygon)
            return True
        return False
