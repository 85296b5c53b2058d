"""The loss plot's curves and their legend keys: the fixed colour of each term, a term's three
curves (smoothed, raw, validation) and the keys the legend draws for them."""

from __future__ import annotations

import zlib

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from explorer.loss.series import TOTAL, LossSeries

# Readable on light and dark backgrounds; "total" is the strongest.  Unknown terms get a
# spare colour chosen by a stable hash of their name.
TERM_COLOURS = {TOTAL: "#e03131", "reconstruction": "#1c7ed6", "kl": "#2f9e44", "neg_elbo": "#f08c00",
                "sparsity": "#ae3ec9", "contraction": "#1098ad", "adversarial": "#e8590c", "mmd": "#7048e8"}
SPARE_COLOURS = ("#d6336c", "#74b816", "#4263eb", "#f59f00", "#0ca678", "#9c36b5")
# Overlaid runs: strong colours none of the terms use, drawn 2 px wide and dashed
OVERLAY_COLOURS = ("#0b7285", "#c2255c", "#5c940d", "#364fc7", "#d9480f", "#495057")
OVERLAY_DASHES = (Qt.PenStyle.DashLine, Qt.PenStyle.DashDotLine, Qt.PenStyle.DotLine)

def term_colour(name: str) -> QColor:
    """The fixed colour of a loss term."""
    return QColor(TERM_COLOURS.get(name) or SPARE_COLOURS[zlib.crc32(name.encode()) % len(SPARE_COLOURS)])



class ValidationSample(pg.ItemSample):
    """The legend's key for validation markers: a dashed line with a marker in the colour of each
    shown term, as the markers on the plot are (one grey key matched none of them)."""

    def __init__(self, item, colours):
        super().__init__(item)
        self.colours = colours   # () -> list[QColor] of the terms whose markers show

    def paint(self, p, *args):
        if not self.item.isVisible():
            super().paint(p, *args)   # pyqtgraph's "hidden" eye
            return
        colours = self.colours()[:3] or [QColor("#868e96")]
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(pg.mkPen(colours[0], width=1, style=Qt.PenStyle.DashLine))
        p.drawLine(QPointF(0, 11), QPointF(20, 11))
        step = 20 / (len(colours) + 1)
        for i, colour in enumerate(colours, start=1):
            p.setPen(pg.mkPen(colour))
            p.setBrush(pg.mkBrush(colour))
            p.drawEllipse(QPointF(i * step, 11), 3, 3)


class TermSample(pg.ItemSample):
    """A term's legend key.  A term left off the plot because it equals the total keeps a dotted
    line in its colour; pyqtgraph's crossed eye would say that the person had hidden it."""

    def __init__(self, item, same_as_total):
        super().__init__(item)
        self.same_as_total = same_as_total   # () -> bool

    def paint(self, p, *args):
        if self.item.isVisible() or not self.same_as_total():
            super().paint(p, *args)
            return
        pen = pg.mkPen(self.item.opts["pen"])
        pen.setStyle(Qt.PenStyle.DotLine)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(pen)
        p.drawLine(QPointF(0, 11), QPointF(20, 11))


class SideLegend(pg.LegendItem):
    """A legend that tells its owner when its size changes (the plot keeps room for it beside the data)."""

    def __init__(self, on_resize, **kwargs):
        self._on_resize = None
        super().__init__(**kwargs)
        self._on_resize = on_resize

    def updateSize(self):  # noqa: N802
        super().updateSize()
        if self._on_resize is not None:
            self._on_resize()


class TermCurves:
    """The curves of one term of the active run: smoothed (in the legend), raw (faint) and validation."""

    def __init__(self, plot: pg.PlotItem, series: LossSeries):
        self.series = series
        self.same_as_total = False   # every value so far equals the total's (a VAE's neg_elbo): not drawn twice
        colour = term_colour(series.name)
        faint = QColor(colour)
        faint.setAlpha(70)
        self.raw = step_curve(pg.mkPen(faint, width=1))
        self.smooth = step_curve(pg.mkPen(colour, width=2 if series.name == TOTAL else 1))
        self.val = pg.PlotDataItem(pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine), symbol="o", symbolSize=6,
                                   symbolPen=pg.mkPen(colour), symbolBrush=colour, antialias=True)
        for z, item in enumerate(self.items()):
            item.setZValue(z)
            plot.addItem(item)

    def items(self) -> tuple[pg.PlotDataItem, pg.PlotDataItem, pg.PlotDataItem]:
        return self.raw, self.smooth, self.val

    def redraw(self) -> None:
        """Hand the series' arrays to the curves (the raw ones only while they are shown)."""
        s, history = self.series, self.series.history
        if self.raw.isVisible():
            self.raw.setData(s.steps, s.raw)
        self.smooth.setData(s.steps, s.smoothed)
        val = history.val.get(s.name, [])
        n = min(len(val), len(history.epoch_steps))
        self.val.setData(np.asarray(history.epoch_steps[len(history.epoch_steps) - n:], float),
                         np.asarray(val[len(val) - n:], float))


def step_curve(pen: QPen) -> pg.PlotDataItem:
    """A per-step curve.  The plot downsamples (peak) and clips to the view; about two points per
    pixel are drawn, and never antialiased: Qt's antialiased stroking of a dense zigzag (raw
    losses, peak-downsampled) can take seconds per frame."""
    return pg.PlotDataItem(pen=pen, antialias=False, autoDownsampleFactor=1.0)
