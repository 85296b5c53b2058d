"""The latent map's class legend, in a column of its own beside the points' box: inside the view
it covered the points in the top-right corner.  It takes as many columns as the map's height
needs (at most 12 rows), so a short map (the comparison window's) shows every class."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGraphicsWidget

MAX_ROWS = 12
GAP_PX = 4   # between the points' box (or the colour bar) and the legend


class ClassLegend(pg.LegendItem):
    """One coloured dot and name per class, beside ``plot_item``'s view, in layout column ``column``."""

    def __init__(self, plot_item: pg.PlotItem, palette: QPalette, column: int):
        super().__init__(offset=None, labelTextColor=palette.color(QPalette.ColorRole.Text),
                         brush=pg.mkBrush(palette.color(QPalette.ColorRole.Base)))
        self.plot_item = plot_item
        self.names: list[str] = []
        self._room = QGraphicsWidget()   # the column the layout keeps free for the legend
        plot_item.layout.addItem(self._room, 2, column)
        self.setParentItem(plot_item)
        self.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-2, 2))
        self._fitting = False
        plot_item.vb.sigResized.connect(self.fit)
        self._reserve()

    def set_classes(self, names: list[str], colours) -> None:
        """One entry per name, in ``colours`` (any pyqtgraph colour) order."""
        if list(names) == self.names:
            return
        self.names = list(names)
        self.clear()
        self.setColumnCount(1)
        for name, colour in zip(names, colours):
            self.addItem(pg.ScatterPlotItem(symbol="o", size=9, pen=None, brush=pg.mkBrush(colour)), name)
        self.fit()

    def setVisible(self, visible: bool) -> None:  # noqa: N802 — Qt's name
        super().setVisible(visible)
        self._reserve()

    def fit(self, *_) -> None:
        """As many columns as the view's height needs; the layout's column as wide as the legend."""
        if self._fitting:
            return
        self._fitting = True
        try:
            n = len(self.items)
            if n:
                rows_now = math.ceil(n / self.columnCount)
                row_h = max(self.boundingRect().height() / rows_now, 1.0) if self.isVisible() else 22.0
                room = max(1, int((self.plot_item.vb.height() - 20) // row_h))
                columns = max(1, math.ceil(n / min(MAX_ROWS, room)))
                if columns != self.columnCount:
                    self.setColumnCount(columns)
            self._reserve()
        finally:
            self._fitting = False

    def _reserve(self) -> None:
        room = getattr(self, "_room", None)
        if room is None:
            return
        width = self.boundingRect().width() + GAP_PX if self.isVisible() and self.items else 0.0
        room.setMinimumWidth(width)
        room.setMaximumWidth(width)
