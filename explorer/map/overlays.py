"""The interpolation drawn on the latent map: a dashed line from A to B whose ends can be dragged.

``InterpolationLine(view, endpoints)`` puts its items on a ``LatentView`` and follows an
``InterpolationEndpoints`` (explorer/insights/interpolation.py).  An end that is a probe image sits
on that image's point; an end that is a code sits where the map's projection puts it (raw and
PCA maps; on a UMAP map only image ends are drawn, since UMAP has no exact place for a code).
Dragging an end (the latent map asks ``hit`` on a left press) moves it to the code under the
pointer, so the interpolation row follows.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

END_RADIUS_PX = 9
LINE_COLOUR = "#e8590c"


class InterpolationLine:
    def __init__(self, view, endpoints):
        self.view, self.endpoints = view, endpoints
        self.line = pg.PlotDataItem(pen=pg.mkPen(LINE_COLOUR, width=2, style=Qt.PenStyle.DashLine))
        self.ends = pg.ScatterPlotItem(size=2 * END_RADIUS_PX, pen=pg.mkPen("white", width=2),
                                       brush=pg.mkBrush(LINE_COLOUR), symbol="o")
        self.labels = {k: pg.TextItem(k.upper(), color=LINE_COLOUR, anchor=(-0.3, 1.2)) for k in ("a", "b")}
        for z, item in ((15, self.line), (16, self.ends), *((17, t) for t in self.labels.values())):
            item.setZValue(z)
            view.plot.addItem(item, ignoreBounds=True)
        self.positions: dict[str, tuple[float, float]] = {}
        self.dragging: str | None = None
        self.shown = True   # only while the Interpolation view is on show (the main window says)
        endpoints.changed.connect(lambda _: self.update())
        self.update()

    def set_shown(self, shown: bool) -> None:
        """Draw the line (and let its ends be dragged) or leave the map to the codes."""
        if shown != self.shown:
            self.shown = shown
            self.dragging = None
            self.update()

    def _place(self, end) -> tuple[float, float] | None:
        view = self.view
        xy, projection = view._xy, view.fitted_projection
        if end is None or projection is None:
            return None
        if end.image is not None and 0 <= end.image < len(xy):
            return float(xy[end.image, 0]), float(xy[end.image, 1])
        dim = view.state.model.latent_dim if view.state is not None and view.state.model is not None else -1
        if projection.exact and end.code.shape == (dim,):
            x, y = projection.transform(end.code[None])[0]
            return float(x), float(y)
        return None

    def update(self) -> None:
        """Draw the ends where the map shows them now (after a new layout, a new endpoint)."""
        self.positions = {}
        for key in ("a", "b") if self.shown else ():
            where = self._place(getattr(self.endpoints, key))
            if where is not None and np.isfinite(where).all():
                self.positions[key] = where
        shown = [self.positions[k] for k in ("a", "b") if k in self.positions]
        self.ends.setData(pos=shown)
        if len(shown) == 2:
            self.line.setData([shown[0][0], shown[1][0]], [shown[0][1], shown[1][1]])
        self.line.setVisible(len(shown) == 2)
        self.ends.setVisible(bool(shown))
        for key, text in self.labels.items():
            text.setVisible(key in self.positions)
            if key in self.positions:
                text.setPos(*self.positions[key])

    def hit(self, x: float, y: float) -> str | None:
        """Which end ("a" or "b") is under map point (x, y), if any."""
        pw, ph = self.view.view.viewPixelSize()
        best, best_d = None, None
        for key, (ex, ey) in self.positions.items():
            d = np.hypot((x - ex) / pw, (y - ey) / ph)
            if d <= END_RADIUS_PX + 2 and (best_d is None or d < best_d):
                best, best_d = key, d
        return best

    def drag_to(self, which: str, x: float, y: float) -> None:
        code = self.view.map_to_code(x, y)
        if code is not None:
            self.endpoints.set_end(which, code)
