"""Grid lines and a view box for a live pyqtgraph plot that stay cheap to repaint.

pyqtgraph's own grid (``PlotItem.showGrid``) is drawn by the axes as translucent lines, and Qt's
raster engine blends a translucent vertical line pixel by pixel: on a 1500×260 loss plot the
grid took 9 of the 12 ms of every frame, redrawn several times a second while a run trains (and
on 2 cores every millisecond the GUI spends is taken from training).  ``GridLines`` draws the
same lines at the axes' major and minor ticks in *opaque* colours, mixed from the background and
the text colour, which Qt fills as solid spans: the frame costs about 3 ms.

``SteadyViewBox`` auto-ranges in steps.  pyqtgraph fits the view tightly to the data on every
update, so while a run trains both axes move a little in every frame and re-render their tick
labels, and the grid follows: 40% of a loss-plot frame.  Here the range only changes when the
data leaves it (or fills too little of it), and then with room to spare, so most frames reuse
the axes' pictures.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

MIN_MINOR_SPACING_PX = 12   # minor lines closer than this are left out
ROOM = 0.25       # a new auto range leaves this fraction of the data's span free (x: to the right)
MIN_FILL = 0.6    # ... and is kept while the data spans at least this fraction of it
SLACK = 0.02      # ... and overhangs it by at most this fraction (a marker's radius, in view units)


def mix(background: QColor, foreground: QColor, amount: float) -> QColor:
    """The opaque colour of ``foreground`` laid over ``background`` at opacity ``amount``."""
    return QColor.fromRgbF(*(b + (f - b) * amount for b, f in zip(background.getRgbF()[:3], foreground.getRgbF()[:3])))


class GridLines(pg.GraphicsObject):
    """Major and minor grid lines under every curve of ``plot_item``, following its view and log mode."""

    def __init__(self, plot_item: pg.PlotItem, major: float = 0.16, minor: float = 0.07):
        super().__init__()
        self.plot_item = plot_item
        self._strengths = (major, minor)
        self._pens = (QPen(), QPen())
        self.setZValue(-1000)
        plot_item.addItem(self, ignoreBounds=True)

    def set_colours(self, background: QColor, foreground: QColor) -> None:
        self._pens = tuple(pg.mkPen(mix(background, foreground, s)) for s in self._strengths)   # 1 px, cosmetic
        self.update()

    def boundingRect(self) -> QRectF:
        view = self.getViewBox()
        return view.viewRect() if view is not None else QRectF()

    def viewRangeChanged(self) -> None:   # pyqtgraph calls this when the view's range changes
        self.prepareGeometryChange()
        self.update()

    def paint(self, painter: QPainter, *args) -> None:
        view = self.getViewBox()
        if view is None:
            return
        rect = view.viewRect()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for side, vertical in (("bottom", True), ("left", False)):
            lo, hi = (rect.left(), rect.right()) if vertical else (rect.top(), rect.bottom())
            pixels = view.width() if vertical else view.height()
            if not pixels or hi <= lo:
                continue
            levels = self.plot_item.getAxis(side).tickValues(lo, hi, pixels)
            for level, ((_, values), pen) in enumerate(zip(levels, self._pens)):
                if level and len(values) > 1 and min(np.diff(sorted(values))) / (hi - lo) * pixels < MIN_MINOR_SPACING_PX:
                    continue   # (a log axis gives no spacing for its minor level: measure it)
                painter.setPen(pen)
                if vertical:
                    painter.drawLines([QLineF(v, rect.top(), v, rect.bottom()) for v in values])
                else:
                    painter.drawLines([QLineF(rect.left(), v, rect.right(), v) for v in values])


class SteadyViewBox(pg.ViewBox):
    """A ViewBox whose auto range moves in steps, with room for the data to grow: the x range
    grows to the right (the steps of a training run), the y range gets a margin at both ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.setDefaultPadding(0.0)   # the tight range comes to setRange, which adds its own room
        self.y_fraction = 1.0   # the share of each item's y values that auto-ranging keeps in view

    def enableAutoRange(self, axis=None, enable=True, x=None, y=None):
        """As pyqtgraph's, but turning y on (its "A" button, its menu) keeps ``y_fraction``."""
        if enable is True and x is None and y is None and axis in (None, self.XYAxes, "xy"):
            super().enableAutoRange(self.XAxis, True)
            axis = self.YAxis
        if enable is True and axis in (self.YAxis, "y"):
            enable = self.y_fraction
        super().enableAutoRange(axis, enable, x, y)

    def setRange(self, rect=None, xRange=None, yRange=None, *args, disableAutoRange=True, **kwargs):
        if not disableAutoRange:   # the call from updateAutoRange, with the data's tight range
            current = self.viewRange()
            xRange = steady_range(xRange, current[0], grow_right=True) if xRange is not None else None
            yRange = steady_range(yRange, current[1], grow_right=False) if yRange is not None else None
        return super().setRange(rect, xRange, yRange, *args, disableAutoRange=disableAutoRange, **kwargs)


def steady_range(target, current, grow_right: bool) -> list[float]:
    """``current`` when it holds ``target`` and ``target`` fills enough of it; else ``target`` with room."""
    lo, hi = float(target[0]), float(target[1])
    span = hi - lo
    c_lo, c_hi = float(current[0]), float(current[1])
    slack = SLACK * (c_hi - c_lo)
    if c_lo - slack <= lo and hi <= c_hi + slack and span >= MIN_FILL * (c_hi - c_lo):
        return [c_lo, c_hi]
    if span <= 0:
        return [lo, hi]
    if grow_right:
        return [lo, hi + ROOM * span]
    return [lo - ROOM / 2 * span, hi + ROOM / 2 * span]


def paint_plot_onto(plot: pg.PlotWidget, device, size, background=None, relayout=None) -> bool:
    """Paint ``plot``, laid out at ``size``, onto an image or SVG generator with every item in
    pyqtgraph's export mode (markers drawn as shapes, not cached pixmaps), then lay it out on screen
    again; ``relayout()`` runs after each layout (a legend that follows the plot's size).  False when
    the device cannot be painted on."""
    painter = QPainter()
    if not painter.begin(device):
        return False
    target = QRectF(0, 0, size.width(), size.height())
    central = plot.centralWidget
    on_screen = central.geometry()
    items = [item for item in plot.scene().items() if hasattr(item, "setExportMode")]
    try:
        central.setGeometry(target)
        central.layout.activate()
        if relayout is not None:
            relayout()
        for item in items:
            item.setExportMode(True, {"painter": painter, "antialias": True})
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(target, background if background is not None else plot.backgroundBrush())
        plot.scene().render(painter, target, central.mapRectToScene(target))
    finally:
        for item in items:
            item.setExportMode(False)
        central.setGeometry(on_screen)
        central.layout.activate()
        if relayout is not None:
            relayout()
        painter.end()
    return True
