"""What the latent map draws over its points: the interpolation line, a posterior's ellipses and the
density contours of the aggregate posterior against the prior.

The interpolation: a dashed line from A to B whose ends can be dragged.

``InterpolationLine(view, endpoints)`` puts its items on a ``LatentView`` and follows an
``InterpolationEndpoints`` (explorer/insights/interpolation.py).  An end that is a probe image sits
on that image's point; an end that is a code sits where the map's projection puts it (raw and
PCA maps; on a UMAP map only image ends are drawn, since UMAP has no exact place for a code).
Dragging an end (the latent map asks ``hit`` on a left press) moves it to the code under the
pointer, so the interpolation row follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from engine.latent_geometry import aggregate_posterior_density, posterior_ellipse, standard_normal_density

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


ELLIPSE_COLOUR = "#212529"
POSTERIOR_COLOUR = "#1c7ed6"
PRIOR_COLOUR = "#e8590c"
DENSITY_GRID = 48            # grid points a side for the contours (48² × the codes' Gaussians, ~10 ms)
DENSITY_CODES = 400          # probe images whose posteriors make the aggregate (a seeded subsample)
MASS_LEVELS = (0.5, 0.9)     # each contour encloses this much of its density's mass


class PosteriorEllipses:
    """The ±1 σ and ±2 σ ellipses of one point's posterior N(μ, diag σ²) on a linear map: exact for a
    2-D latent's raw map, through the projection's linear map for PCA and the raw map of two of
    several dimensions.  ``show(mu, logvar, W, mean)`` draws, ``clear()`` hides."""

    def __init__(self, plot):
        self.items = [pg.PlotCurveItem(pen=pg.mkPen(ELLIPSE_COLOUR, width=w, style=style))
                      for w, style in ((1.5, Qt.PenStyle.SolidLine), (1.0, Qt.PenStyle.DashLine))]
        for item in self.items:
            item.setZValue(18)
            plot.addItem(item, ignoreBounds=True)
            item.hide()
        self.polygons: list[np.ndarray] = []

    def show(self, mu, logvar, W, mean=None) -> None:
        self.polygons = [posterior_ellipse(mu, logvar, W, mean, n_sigma=n) for n in (1.0, 2.0)]
        for item, poly in zip(self.items, self.polygons):
            item.setData(poly[:, 0], poly[:, 1])
            item.show()

    def clear(self) -> None:
        self.polygons = []
        for item in self.items:
            item.hide()


def mass_level(density: np.ndarray, cell: float, mass: float) -> float:
    """The density level whose superlevel set holds ``mass`` of the grid's total mass."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values) * cell
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return float("inf")
    return float(values[min(np.searchsorted(cumulative, mass * total), len(values) - 1)])


@dataclass
class ContourSet:
    """The densities on the grid and their contour lines in map coordinates: what ``DensityContours``
    draws, computed without Qt (so off the GUI thread).  ``lines``: (colour, dashed, width, M×2 points
    with NaN rows between separate pieces)."""

    xs: np.ndarray
    ys: np.ndarray
    posterior: np.ndarray
    prior: np.ndarray | None
    lines: list[tuple[str, bool, float, np.ndarray]]


def density_contours(mus: np.ndarray, logvars: np.ndarray, W: np.ndarray, mean: np.ndarray,
                     bounds: tuple[float, float, float, float], prior: bool = True) -> ContourSet:
    """The aggregate posterior's (and the prior's) density over ``bounds`` (xmin, xmax, ymin, ymax)
    and their contours at ``MASS_LEVELS``."""
    x0, x1, y0, y1 = bounds
    xs, ys = np.linspace(x0, x1, DENSITY_GRID), np.linspace(y0, y1, DENSITY_GRID)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    posterior = aggregate_posterior_density(mus, logvars, W, xs, ys, mean)
    prior_density = standard_normal_density(W, xs, ys, mean) if prior else None
    lines = []
    for density, colour, dashed in ((posterior, POSTERIOR_COLOUR, False), (prior_density, PRIOR_COLOUR, True)):
        for mass in MASS_LEVELS if density is not None else ():
            level = mass_level(density, dx * dy, mass)
            pieces = [np.asarray(piece, dtype=np.float64) for piece in
                      pg.functions.isocurve(density.T, level, connected=True, extendToEdge=True) if len(piece)]
            if pieces:   # grid indices to map coordinates, a NaN row between pieces
                joined = np.concatenate([np.vstack([piece, [[np.nan, np.nan]]]) for piece in pieces])[:-1]
                lines.append((colour, dashed, 1.5 if mass == MASS_LEVELS[0] else 1.0,
                              joined * [dx, dy] + [x0, y0]))
    return ContourSet(xs, ys, posterior, prior_density, lines)


class DensityContours:
    """Contours of the aggregate posterior q(z) = mean of the codes' posteriors (solid, blue) and of
    the prior N(0, I) (dashed, orange) on a linear map, each at the levels that enclose half and
    nine tenths of its mass: where q's contours leave the prior's, decoding leaves the data."""

    def __init__(self, plot):
        self.plot = plot
        self.curves: list[pg.PlotCurveItem] = []
        self.grid: tuple[np.ndarray, np.ndarray] | None = None
        self.posterior: np.ndarray | None = None
        self.prior: np.ndarray | None = None

    def clear(self) -> None:
        for item in self.curves:
            self.plot.removeItem(item)
        self.curves = []
        self.posterior = self.prior = None

    def show(self, mus: np.ndarray, logvars: np.ndarray, W: np.ndarray, mean: np.ndarray,
             bounds: tuple[float, float, float, float], prior: bool = True) -> None:
        """Compute and draw over ``bounds`` (xmin, xmax, ymin, ymax: the map's points, padded)."""
        self.draw(density_contours(mus, logvars, W, mean, bounds, prior))

    def draw(self, contours: ContourSet) -> None:
        """Draw contours computed by ``density_contours`` (a few curves: ~1 ms on the GUI thread)."""
        self.clear()
        self.grid = (contours.xs, contours.ys)
        self.posterior, self.prior = contours.posterior, contours.prior
        for colour, dashed, width, points in contours.lines:
            style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
            item = pg.PlotCurveItem(points[:, 0], points[:, 1], connect="finite",
                                    pen=pg.mkPen(colour, width=width, style=style))
            item.setZValue(12)
            self.plot.addItem(item, ignoreBounds=True)
            self.curves.append(item)
