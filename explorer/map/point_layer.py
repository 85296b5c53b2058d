"""A fast scatter layer for pyqtgraph: tens of thousands of coloured points at a fixed pixel size.

Stock ``pg.ScatterPlotItem.setData`` spends ~250 ms on 70,000 points with per-point brushes,
because it builds Python objects per point. ``PointLayer`` keeps only NumPy arrays:

* ``set_points`` stores the coordinates and one premultiplied ARGB32 colour per point (a
  palette lookup), so a full update costs about a millisecond.
* ``paint`` rasterises on the CPU with NumPy: it maps the points to device pixels with the
  painter's transform, stamps a small disc (precomputed pixel offsets) into a uint32 buffer
  with one fancy-indexed assignment, wraps the buffer in a ``QImage`` and draws it once.
  Points keep their index order, so a later point is drawn over an earlier one and no class
  systematically hides another. For 70k points of 3 px that is ~4 ms per paint, several times
  faster than ``QPainter.drawPoints`` with a wide round pen (~90 ms) or pixmap fragments (~20 ms).
* Above ``DILATE_ABOVE`` visible points (a whole dataset, an embeddings file of a million codes)
  each point sets one pixel and whole-buffer shifts grow the pixels into discs: 1M points pan in
  about a third of the time (benchmarks/bench_point_layer.py --points 1000000).
* Vector devices (SVG, PDF, QPicture) get real round points via ``drawPoints`` instead, so
  exported figures stay crisp.
"""

from __future__ import annotations

import colorsys
import functools
import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph import functions as fn
from pyqtgraph.Qt import QtCore, QtGui

__all__ = ["PointLayer", "palette_for", "value_colors"]

_TAB10 = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
# The light half of matplotlib's tab20, darkened to mid lightness so it reads on white and on black.
_TAB20_LIGHT = (
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
_GOLDEN = 0.618033988749895
_ENGINE = QtGui.QPaintEngine.Type
_VECTOR_ENGINES = {_ENGINE.SVG, _ENGINE.Pdf, _ENGINE.Picture}
_ARGB32 = QtGui.QImage.Format.Format_ARGB32_Premultiplied


def _mid_tone(color: str, lightness: float = 0.62) -> QtGui.QColor:
    h, _, s = colorsys.rgb_to_hls(*(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)))
    return QtGui.QColor.fromRgbF(*colorsys.hls_to_rgb(h, lightness, min(1.0, s * 0.9)))


def palette_for(n: int) -> list[QtGui.QColor]:
    """Return ``n`` distinct colours readable on light and dark backgrounds.

    tab10 for n <= 10, tab10 plus mid-tone tab20 companions for n <= 20, and beyond that hues
    spaced by the golden ratio with alternating lightness and saturation.
    """
    if n <= 0:
        return []
    if n <= 10:
        return [QtGui.QColor(c) for c in _TAB10[:n]]
    if n <= 20:
        return [QtGui.QColor(c) for c in _TAB10] + [_mid_tone(c) for c in _TAB20_LIGHT[: n - 10]]
    colors = []
    for i in range(n):
        hue = (0.58 + i * _GOLDEN) % 1.0
        lightness = (0.45, 0.58, 0.52)[i % 3]
        saturation = (0.75, 0.6)[(i // 3) % 2]
        colors.append(QtGui.QColor.fromRgbF(*colorsys.hls_to_rgb(hue, lightness, saturation)))
    return colors


def _argb(color: QtGui.QColor) -> int:
    """Premultiplied ARGB32 value of a colour, as QImage stores it."""
    r, g, b, a = color.red(), color.green(), color.blue(), color.alpha()
    return (a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255)


@functools.lru_cache(maxsize=16)
def _disc_offsets(size: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixel offsets (dx, dy) of a disc of diameter ``size`` px and its integer radius."""
    radius = max(size, 1.0) / 2
    k = int(math.ceil(radius - 0.5))
    dy, dx = np.mgrid[-k:k + 1, -k:k + 1]
    inside = dx**2 + dy**2 <= radius**2 + 0.25
    return dx[inside].astype(np.int64), dy[inside].astype(np.int64), k


#: above this many visible points a paint stamps one pixel per point and grows every pixel into
#: the disc with whole-buffer shifts, instead of writing the disc of every point: 1,000,000 points
#: pan in ~25 ms instead of ~70 ms; overlapping discs then show the point drawn last at each
#: centre, and their rims may mix (at such densities the discs cover each other anyway)
DILATE_ABOVE = 150_000


def _stamp_dilated(buffer: np.ndarray, base: np.ndarray, argb: np.ndarray, offsets: np.ndarray) -> None:
    """Each point's colour at its centre pixel (later points win), then every coloured pixel grown
    into the disc of ``offsets`` (flat buffer offsets; the margin keeps every shift inside)."""
    centre = np.zeros_like(buffer)
    centre[base] = argb
    n = len(buffer)
    for o in sorted((int(v) for v in offsets), key=lambda v: v == 0):   # the centre last: it wins
        if o >= 0:
            source, target = centre[: n - o], buffer[o:]
        else:
            source, target = centre[-o:], buffer[: n + o]
        np.copyto(target, source, where=source != 0)


class PointLayer(pg.GraphicsObject):
    """Scatter of N labelled points, drawn at a fixed pixel size in data coordinates.

    Add it to a ``pg.PlotWidget``/``ViewBox`` with ``addItem``. ``set_points`` replaces all
    points at once; ``nearest`` answers hit tests with a lazily built KD-tree.
    """

    def __init__(self, point_size: float = 3.0) -> None:
        super().__init__()
        self._size = float(point_size)
        self._x = np.empty(0)
        self._y = np.empty(0)
        self._argb = np.empty(0, dtype=np.uint32)
        self._labels = np.empty(0, dtype=np.int64)
        self._colors: list[QtGui.QColor] = []
        self._bounds: tuple[float, float, float, float] | None = None  # xmin, xmax, ymin, ymax
        self._selected: int | None = None
        self._tree = None  # scipy cKDTree over the finite points, built on first nearest()
        self._tree_index: np.ndarray | None = None
        self._polygons: list[tuple[QtGui.QColor, QtGui.QPolygonF]] | None = None  # vector path only
        self._buffer = np.empty(0, dtype=np.uint32)

    # ----------------------------------------------------------------- data
    @property
    def n_points(self) -> int:
        return len(self._x)

    def set_points(self, xy: np.ndarray, labels: np.ndarray, colors: list[QtGui.QColor] | None = None) -> None:
        """Replace all points. ``xy`` is N×2 (data coordinates), ``labels`` N ints in 0..K-1.

        ``colors`` gives one colour per label (default ``palette_for(K)``). Non-finite
        coordinates are kept (indices stay aligned) but never drawn or hit.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(xy):
            raise ValueError(f"{len(xy)} points but {len(labels)} labels")
        if len(labels) and labels.min() < 0:
            raise ValueError("labels must be non-negative")
        n_labels = int(labels.max()) + 1 if len(labels) else 0
        if colors is None:
            colors = palette_for(n_labels)
        elif len(colors) < n_labels:
            raise ValueError(f"{len(colors)} colours for {n_labels} labels")
        self._colors = [QtGui.QColor(c) for c in colors]
        lut = np.array([_argb(c) for c in self._colors] or [0], dtype=np.uint32)
        self.prepareGeometryChange()
        self._x = np.ascontiguousarray(xy[:, 0])
        self._y = np.ascontiguousarray(xy[:, 1])
        self._labels = labels
        self._argb = lut[labels]
        finite = np.isfinite(self._x) & np.isfinite(self._y)
        if finite.any():
            fx, fy = self._x[finite], self._y[finite]
            self._bounds = (float(fx.min()), float(fx.max()), float(fy.min()), float(fy.max()))
        else:
            self._bounds = None
        self._tree = self._tree_index = self._polygons = None
        if self._selected is not None and self._selected >= len(xy):
            self._selected = None
        self.informViewBoundsChanged()
        self.update()

    def set_point_size(self, px: float) -> None:
        """Diameter of every point in logical (device-independent) pixels, like a cosmetic pen."""
        self.prepareGeometryChange()
        self._size = float(px)
        self.informViewBoundsChanged()
        self.update()

    def set_selected(self, index: int | None) -> None:
        """Highlight one point (drawn larger with an outline), or none."""
        if index is not None and not 0 <= index < self.n_points:
            index = None
        if index != self._selected:
            self._selected = index
            self.update()

    def selected(self) -> int | None:
        return self._selected

    def nearest(self, x: float, y: float, max_dist: float | None = None) -> int | None:
        """Index of the point nearest to (x, y) in data coordinates, or None.

        None when there are no (finite) points or the nearest is farther than ``max_dist``.
        """
        if self._tree is None:
            finite = np.flatnonzero(np.isfinite(self._x) & np.isfinite(self._y))
            if len(finite) == 0:
                return None
            from scipy.spatial import cKDTree

            self._tree = cKDTree(np.column_stack([self._x[finite], self._y[finite]]))
            self._tree_index = finite
        bound = np.inf if max_dist is None else float(max_dist)
        dist, i = self._tree.query([x, y], distance_upper_bound=bound)
        if not np.isfinite(dist):
            return None
        return int(self._tree_index[i])

    # ------------------------------------------------------------- geometry
    def pixelPadding(self) -> float:
        """Extra pixels the ViewBox keeps around the data when auto-ranging."""
        return self._size / 2 + (6 if self._selected is not None else 0)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: tuple[float, float] | None = None):
        """(min, max) of the data along axis ``ax`` (0 = x, 1 = y), for ``ViewBox.autoRange``."""
        if self._bounds is None:
            return None, None
        if frac >= 1.0 and orthoRange is None:
            return self._bounds[2 * ax: 2 * ax + 2]
        values, other = (self._x, self._y) if ax == 0 else (self._y, self._x)
        mask = np.isfinite(values) & np.isfinite(other)
        if orthoRange is not None:
            mask &= (other >= orthoRange[0]) & (other <= orthoRange[1])
        values = values[mask]
        if len(values) == 0:
            return None, None
        if frac >= 1.0:
            return float(values.min()), float(values.max())
        return tuple(float(v) for v in np.percentile(values, [50 * (1 - frac), 50 * (1 + frac)]))

    def boundingRect(self) -> QtCore.QRectF:
        """Data bounds plus the points' pixel radius (converted to data units)."""
        if self._bounds is None:
            return QtCore.QRectF()
        xmin, xmax, ymin, ymax = self._bounds
        pad_x = pad_y = 0.0
        px, py = self.pixelVectors()
        if px is not None:
            pixels = self.pixelPadding() + 1
            pad_x = pixels * math.hypot(px.x(), px.y())
            pad_y = pixels * math.hypot(py.x(), py.y())
        # A small data margin keeps a single point (zero-size bounds) a valid rectangle.
        pad_x = max(pad_x, 1e-9 * max(1.0, abs(xmin), abs(xmax)))
        pad_y = max(pad_y, 1e-9 * max(1.0, abs(ymin), abs(ymax)))
        return QtCore.QRectF(xmin - pad_x, ymin - pad_y, xmax - xmin + 2 * pad_x, ymax - ymin + 2 * pad_y)

    def viewTransformChanged(self) -> None:
        # The pixel padding in boundingRect depends on the zoom.
        self.prepareGeometryChange()
        super().viewTransformChanged()

    # --------------------------------------------------------------- paint
    def paint(self, painter: QtGui.QPainter, option=None, widget=None) -> None:
        if self._bounds is None:
            return
        engine = painter.paintEngine()
        if engine is not None and engine.type() in _VECTOR_ENGINES:
            self._paint_vector(painter)
        else:
            self._paint_raster(painter)
        if self._selected is not None:
            self._paint_selection(painter)

    def _device_rect(self, painter: QtGui.QPainter, transform: QtGui.QTransform, system: QtGui.QTransform,
                     k: int) -> QtCore.QRect:
        """Device-pixel rectangle that needs drawing: (data bounds + k px) ∩ clip ∩ device.
        ``system`` maps the painter's untransformed coordinates to device pixels (the device's
        own rectangle may sit at an offset there, inside a real window's backing store)."""
        device = painter.device()
        rect = system.mapRect(QtCore.QRectF(0, 0, device.width(), device.height())).toAlignedRect()
        bounds = transform.mapRect(self.boundingRect()).toAlignedRect()
        rect = rect.intersected(bounds.adjusted(-k - 1, -k - 1, k + 1, k + 1))
        if painter.hasClipping():
            rect = rect.intersected(transform.mapRect(painter.clipBoundingRect()).toAlignedRect())
        return rect

    def _paint_raster(self, painter: QtGui.QPainter) -> None:
        transform = painter.deviceTransform()  # item -> physical device pixels
        ratio = painter.device().devicePixelRatioF()  # physical pixels per logical pixel
        dx, dy, k = _disc_offsets(round(self._size * ratio, 2))
        # world -> device is world · system; system carries the device pixel ratio and any offset
        world_inverse, ok = painter.worldTransform().inverted()
        system = world_inverse * transform if ok else QtGui.QTransform.fromScale(ratio, ratio)
        rect = self._device_rect(painter, transform, system, k)
        if rect.isEmpty():
            return
        # The buffer is the rect plus a 2k margin: points centred up to k pixels outside the
        # rect still show their inner part, and no stamp can fall off the buffer.
        pad = 2 * k
        w, h = rect.width(), rect.height()
        stride, rows = w + 2 * pad, h + 2 * pad
        px = transform.m11() * self._x + (transform.m31() - rect.x() + pad)
        py = transform.m22() * self._y + (transform.m32() - rect.y() + pad)
        if transform.m21() != 0 or transform.m12() != 0:  # rotated views
            px += transform.m21() * self._y
            py += transform.m12() * self._x
        visible = (px >= k) & (px < stride - k) & (py >= k) & (py < rows - k)  # False for NaN
        base = py[visible].astype(np.int64) * stride + px[visible].astype(np.int64)
        if len(self._buffer) < stride * rows:
            self._buffer = np.empty(stride * rows, dtype=np.uint32)
        buffer = self._buffer[: stride * rows]
        buffer.fill(0)
        offsets = dy * stride + dx
        if len(base) > DILATE_ABOVE:
            _stamp_dilated(buffer, base, self._argb[visible], offsets)
        else:
            # Point-major stamp order: a later point covers an earlier one entirely.
            buffer[(base[:, None] + offsets).ravel()] = np.repeat(self._argb[visible], len(offsets))
        image = QtGui.QImage(buffer, stride, rows, stride * 4, _ARGB32)
        painter.save()
        # Draw in device pixels.  Not resetTransform(): the painter may carry a system offset (the
        # viewport's place in a real window's backing store) that the world transform does not hold,
        # and resetting would draw everything shifted by it.  With the world set to system⁻¹,
        # painter coordinates are device pixels.
        painter.setWorldTransform(system.inverted()[0])
        painter.drawImage(QtCore.QRectF(rect), image, QtCore.QRectF(pad, pad, w, h))
        painter.restore()

    def _paint_vector(self, painter: QtGui.QPainter) -> None:
        """Round points via drawPoints, one call per colour (for SVG/PDF export)."""
        if self._polygons is None:
            self._polygons = []
            finite = np.isfinite(self._x) & np.isfinite(self._y)
            for label, color in enumerate(self._colors):
                mask = finite & (self._labels == label)
                if not mask.any():   # an empty QPolygonF's array is read-only: the assignment below
                    continue         # raised inside paint(), which killed the app (value colours: empty bins)
                polygon = fn.create_qpolygonf(int(mask.sum()))
                array = fn.ndarray_from_qpolygonf(polygon)
                array[:, 0], array[:, 1] = self._x[mask], self._y[mask]
                self._polygons.append((color, polygon))
        painter.save()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        for color, polygon in self._polygons:
            pen = QtGui.QPen(color, self._size)
            pen.setCosmetic(True)
            pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            painter.drawPoints(polygon)
        painter.restore()

    def _paint_selection(self, painter: QtGui.QPainter) -> None:
        i = self._selected
        x, y = float(self._x[i]), float(self._y[i])
        if not (math.isfinite(x) and math.isfinite(y)):
            return
        center = painter.transform().map(QtCore.QPointF(x, y))
        radius = self._size / 2 + 3
        color = self._colors[self._labels[i]] if self._colors else QtGui.QColor("white")
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(color)  # the point, enlarged, in a white ring inside a black one
        painter.setPen(QtGui.QPen(QtGui.QColor("white"), 2))
        painter.drawEllipse(center, radius, radius)
        painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
        painter.setPen(QtGui.QPen(QtGui.QColor("black"), 1.5))
        painter.drawEllipse(center, radius + 1.75, radius + 1.75)
        painter.restore()


#: the colour of a point whose value is missing (NaN: a diverged code, a point with no value yet)
MISSING_COLOR = "#9a9a9a"


def value_colors(values: np.ndarray, colormap: str = "viridis", bins: int = 256,
                 levels: tuple[float, float] | None = None) -> tuple[np.ndarray, list[QtGui.QColor], tuple[float, float]]:
    """Colour points by a continuous value: (labels, colours, (low, high)) for ``PointLayer.set_points``.

    The values are cut into ``bins`` equal steps between ``levels`` (default: the 1st and 99th
    percentiles of the finite values, so one outlier does not grey out the rest); label ``bins`` is
    the grey of a missing (non-finite) value.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = np.isfinite(values)
    if levels is None:
        if finite.any():
            low, high = (float(v) for v in np.percentile(values[finite], [1, 99]))
        else:
            low, high = 0.0, 1.0
    else:
        low, high = float(levels[0]), float(levels[1])
    if not high > low:
        high = low + (abs(low) * 1e-6 or 1.0)
    scaled = np.clip((np.where(finite, values, low) - low) / (high - low), 0.0, 1.0)
    labels = np.minimum((scaled * bins).astype(np.int64), bins - 1)
    labels[~finite] = bins
    table = pg.colormap.get(colormap).getLookupTable(0.0, 1.0, bins, alpha=False)
    colors = [QtGui.QColor(int(r), int(g), int(b)) for r, g, b in table] + [QtGui.QColor(MISSING_COLOR)]
    return labels, colors, (low, high)
