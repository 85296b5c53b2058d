"""The point layer draws coloured points at a fixed pixel size, picks the nearest one, and
reports its bounds so the view can auto-range."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from pyqtgraph.Qt import QtGui, QtWidgets  # noqa: E402

from explorer.map.point_layer import PointLayer, palette_for  # noqa: E402


@pytest.fixture()
def plot(qtbot):
    widget = pg.PlotWidget()
    widget.setBackground("w")
    widget.resize(400, 300)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture()
def layer(plot):
    item = PointLayer(point_size=4)
    plot.addItem(item)
    return item


def grab_rgb(widget) -> np.ndarray:
    """The widget's pixels as an H×W×3 uint8 array."""
    image = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    array = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def count_colour(pixels: np.ndarray, color: QtGui.QColor) -> int:
    return int(np.all(pixels == (color.red(), color.green(), color.blue()), axis=-1).sum())


def three_blobs(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])[labels] + rng.normal(size=(n, 2))
    return xy, labels


def test_points_appear_in_their_class_colours(qtbot, plot, layer):
    xy, labels = three_blobs()
    layer.set_points(xy, labels)
    plot.autoRange()
    pixels = grab_rgb(plot)
    for color in palette_for(3):
        assert count_colour(pixels, color) > 100
    # the fourth palette colour was never used
    assert count_colour(pixels, palette_for(4)[3]) == 0


def test_custom_colours_and_point_size_change_the_pixels(qtbot, plot, layer):
    xy, labels = three_blobs(200)
    colors = [QtGui.QColor(255, 0, 0), QtGui.QColor(0, 160, 0), QtGui.QColor(0, 0, 255)]
    layer.set_points(xy, labels, colors)
    plot.autoRange()
    small = count_colour(grab_rgb(plot), colors[2])
    layer.set_point_size(8)
    big = count_colour(grab_rgb(plot), colors[2])
    assert 0 < small < big


def test_points_keep_their_pixel_size_when_zooming(qtbot, plot, layer):
    layer.set_points(np.array([[0.0, 0.0]]), np.array([0]), [QtGui.QColor(255, 0, 0)])
    sizes = []
    for half_width in (1.0, 100.0):
        plot.setRange(xRange=(-half_width, half_width), yRange=(-half_width, half_width), padding=0)
        sizes.append(count_colour(grab_rgb(plot), QtGui.QColor(255, 0, 0)))
    assert sizes[0] == sizes[1] > 0


def test_nearest_returns_the_closest_index(layer):
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [np.nan, 0.0]])
    layer.set_points(xy, np.array([0, 1, 2, 0]))
    assert layer.nearest(0.9, 1.2) == 1
    assert layer.nearest(4.0, 4.0) == 2
    assert layer.nearest(3.0, 3.0, max_dist=0.5) is None
    layer.set_points(xy[:2] + 10, np.array([0, 1]))  # the tree is rebuilt for new points
    assert layer.nearest(10.1, 10.0) == 0


def test_set_points_twice_with_different_sizes_and_empty(qtbot, plot, layer):
    xy, labels = three_blobs(1000)
    layer.set_points(xy, labels)
    grab_rgb(plot)
    layer.set_selected(999)
    layer.set_points(xy[:10], labels[:10])
    assert layer.n_points == 10 and layer.selected() is None
    grab_rgb(plot)
    layer.set_points(np.zeros((0, 2)), np.zeros(0, int))
    assert layer.n_points == 0
    assert layer.nearest(0.0, 0.0) is None
    assert layer.boundingRect().isEmpty()
    assert layer.dataBounds(0) == (None, None)
    grab_rgb(plot)  # paints nothing, raises nothing


def test_data_bounds_and_bounding_rect(layer):
    xy = np.array([[-1.0, 2.0], [3.0, -4.0], [0.5, 0.5]])
    layer.set_points(xy, np.array([0, 1, 2]))
    assert layer.dataBounds(0) == (-1.0, 3.0)
    assert layer.dataBounds(1) == (-4.0, 2.0)
    assert layer.dataBounds(0, orthoRange=(0.0, 3.0)) == (-1.0, 0.5)  # only points with 0 <= y <= 3
    rect = layer.boundingRect()
    assert rect.left() <= -1.0 and rect.right() >= 3.0 and rect.top() <= -4.0 and rect.bottom() >= 2.0


def test_view_auto_ranges_to_the_points(qtbot, plot, layer):
    layer.set_points(np.array([[100.0, 200.0], [110.0, 260.0]]), np.array([0, 1]))
    plot.autoRange()
    (x0, x1), (y0, y1) = plot.getViewBox().viewRange()
    assert x0 <= 100 <= 110 <= x1 and y0 <= 200 <= 260 <= y1
    assert x1 - x0 < 20 and y1 - y0 < 100


def test_selected_point_is_outlined(qtbot, plot, layer):
    layer.set_points(np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([0, 0]), [QtGui.QColor(255, 0, 0)])
    plot.setRange(xRange=(-10, 10), yRange=(-10, 10))
    before = grab_rgb(plot).astype(int)
    layer.set_selected(1)
    assert layer.selected() == 1
    after = grab_rgb(plot).astype(int)
    changed = np.argwhere(np.abs(after - before).sum(axis=-1) > 60)
    assert len(changed) > 20  # a ring larger than the 4-px point
    assert (after.sum(axis=-1) < 250).sum() > (before.sum(axis=-1) < 250).sum()  # a dark outline
    layer.set_selected(7)  # out of range: nothing selected
    assert layer.selected() is None


def test_mismatched_labels_are_refused(layer):
    with pytest.raises(ValueError):
        layer.set_points(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(ValueError):
        layer.set_points(np.zeros((3, 2)), np.array([0, 1, 2]), [QtGui.QColor("red")])


def test_vector_devices_get_round_points(qtbot, layer):
    xy, labels = three_blobs(50)
    layer.set_points(xy, labels)
    picture = QtGui.QPicture()
    painter = QtGui.QPainter(picture)
    layer.paint(painter)
    painter.end()
    assert not picture.boundingRect().isEmpty()


@pytest.mark.parametrize("n", [1, 3, 10, 17, 20, 40, 100])
def test_palette_is_distinct(n):
    colors = palette_for(n)
    assert len(colors) == n
    assert len({c.rgb() for c in colors}) == n
    for color in colors:  # neither near-white nor near-black
        assert 0.25 < color.lightnessF() < 0.8


def paint_into_image(layer: PointLayer, ratio: float) -> np.ndarray:
    """Paint the layer alone into a 100×100 (logical) image, data (0, 0) at its centre."""
    image = QtGui.QImage(int(100 * ratio), int(100 * ratio), QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(ratio)
    image.fill(0)
    painter = QtGui.QPainter(image)
    painter.translate(50, 50)
    painter.scale(10, -10)
    layer.paint(painter)
    painter.end()
    array = np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width())
    return array.copy()


def test_point_size_is_in_logical_pixels_on_high_dpi_devices(qtbot):
    layer = PointLayer(point_size=4)
    layer.set_points(np.array([[0.0, 0.0], [4.0, 2.0]]), np.array([0, 0]), [QtGui.QColor(255, 0, 0)])
    normal, retina = paint_into_image(layer, 1.0), paint_into_image(layer, 2.0)
    assert 3 * (normal != 0).sum() < (retina != 0).sum() < 5 * (normal != 0).sum()
    for pixels, ratio in ((normal, 1.0), (retina, 2.0)):
        ys, xs = np.nonzero(pixels)
        near = xs < 70 * ratio  # the point at (0, 0) lands at logical (50, 50), the one at (4, 2) at (90, 30)
        assert abs(xs[near].mean() - 50 * ratio) <= 1 and abs(ys[near].mean() - 50 * ratio) <= 1
        assert abs(xs[~near].mean() - 90 * ratio) <= 1 and abs(ys[~near].mean() - 30 * ratio) <= 1


def test_points_land_in_place_when_the_plot_sits_inside_a_window(qtbot):
    """A real window paints the plot's viewport with a system offset (its place in the window);
    the points must move with the plot, not be shifted twice or clipped."""
    box = QtWidgets.QWidget()
    qtbot.addWidget(box)
    box.resize(500, 400)
    plot = pg.PlotWidget(box)
    plot.setGeometry(100, 50, 300, 200)
    box.show()
    layer = PointLayer(8)
    plot.addItem(layer)
    layer.set_points(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 0]), [QtGui.QColor(255, 0, 0)])
    plot.setXRange(-1, 2, padding=0)
    plot.setYRange(-1, 2, padding=0)
    qtbot.wait(10)

    def red_pixels(image: QtGui.QImage):
        rgb = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
        arr = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine() // 4, 4)
        ys, xs = np.nonzero((arr[..., 2] > 200) & (arr[..., 1] < 60) & (arr[..., 0] < 60))
        return xs.mean(), ys.mean(), len(xs)

    ix, iy, n_inner = red_pixels(plot.grab().toImage())
    ox, oy, n_outer = red_pixels(box.grab().toImage())
    assert n_outer == n_inner > 0
    assert abs(ox - ix - 100) < 1 and abs(oy - iy - 50) < 1


def test_the_dense_path_draws_what_the_exact_path_draws_where_discs_do_not_overlap():
    """Above DILATE_ABOVE visible points a paint grows one pixel per point into its disc; for points
    whose discs do not touch that is the exact stamp, and where two share a centre the later wins."""
    from explorer.map.point_layer import _disc_offsets, _stamp_dilated
    stride, rows = 64, 48
    dx, dy, k = _disc_offsets(3.0)
    offsets = dy * stride + dx
    ys, xs = np.mgrid[4:rows - 4:5, 4:stride - 4:5]
    base = (ys * stride + xs).ravel().astype(np.int64)
    argb = (np.arange(len(base), dtype=np.uint32) + 1) | np.uint32(0xFF000000)
    exact = np.zeros(stride * rows, np.uint32)
    exact[(base[:, None] + offsets).ravel()] = np.repeat(argb, len(offsets))
    dense = np.zeros_like(exact)
    _stamp_dilated(dense, base, argb, offsets)
    assert np.array_equal(dense, exact)
    same = np.array([base[0], base[0]])
    twice = np.zeros_like(exact)
    _stamp_dilated(twice, same, np.array([argb[0], argb[1]]), offsets)
    assert twice[base[0]] == argb[1] and (twice != 0).sum() == len(offsets)


def test_a_million_points_paint_through_the_dense_path(qtbot, monkeypatch):
    import explorer.map.point_layer as point_layer
    calls = []
    original = point_layer._stamp_dilated
    monkeypatch.setattr(point_layer, "_stamp_dilated", lambda *a: (calls.append(len(a[1])), original(*a)))
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    layer = point_layer.PointLayer(point_size=3)
    widget.addItem(layer)
    rng = np.random.default_rng(0)
    layer.set_points(rng.normal(size=(1_000_000, 2)), rng.integers(0, 10, 1_000_000))
    widget.show()
    qtbot.waitExposed(widget)
    image = widget.grab().toImage()
    assert calls and calls[-1] > point_layer.DILATE_ABOVE
    centre = image.pixelColor(image.width() // 2, image.height() // 2)
    assert centre != widget.backgroundBrush().color()
