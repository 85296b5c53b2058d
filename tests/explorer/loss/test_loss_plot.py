"""The loss plot: the active run's terms per step and per epoch, live appends, log scale,
exports, switching runs, overlays and the crosshair readout."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QFileDialog

from engine.datasets import load_dataset
from engine.errors import UserError
from engine.training import TrainingUpdate
from explorer.loss.curves import term_colour
from explorer.loss.plot import PNG_SCALE, LossPlot, PlainLogAxis
from explorer.loss.series import LossSeries
from explorer.runs_panel import short_name
from explorer.session import RunState, Session
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture
def session_with_runs(qtbot, run_paths):
    session = Session()
    states = [session.add(RunState.open(path), activate=False) for path in run_paths]
    return session, states


@pytest.fixture
def plot(qtbot, session_with_runs):
    session, states = session_with_runs
    widget = LossPlot(session)
    qtbot.addWidget(widget)
    widget.resize(720, 420)
    widget.show()
    session.set_active(states[0])
    return widget


def fake_update(state: RunState, n: int = 10, kind: str = "progress") -> TrainingUpdate:
    start = state.history.steps[-1] + 1
    steps = np.arange(start, start + n)
    terms = {name: np.full(n, 0.5) for name in state.history.terms}
    val = {name: 0.4 for name in state.history.terms} if kind == "epoch" else None
    return TrainingUpdate(kind, state.epoch + (kind == "epoch"), int(steps[-1]), int(steps[-1]) + 100, steps, terms,
                          val_terms=val, train_terms=val)


def test_curves_hold_the_history(plot, session_with_runs):
    history = session_with_runs[1][0].history
    assert history.steps and set(history.terms) >= {"total", "reconstruction", "kl"}
    assert set(plot.curves) == set(history.terms)
    for name, curves in plot.curves.items():
        x, y = curves.smooth.getOriginalDataset()
        np.testing.assert_array_equal(x, history.steps)
        assert y[0] == pytest.approx(history.terms[name][0])   # the debiased average starts at the first value
        vx, vy = curves.val.getOriginalDataset()
        np.testing.assert_array_equal(vx, history.epoch_steps)
        np.testing.assert_allclose(vy, history.val[name])
    assert plot.curves["total"].smooth.opts["pen"].color() == term_colour("total")
    legend_names = [label.text for _, label in plot.legend.items]
    assert legend_names == ["total", *(name if name != "neg_elbo" else "neg_elbo (= total)"
                                       for name in history.terms if name != "total"), "validation"]


def test_a_term_equal_to_the_total_is_not_drawn_twice(plot, session_with_runs):
    """A VAE's neg_elbo (a plain AE's reconstruction) is its total: drawn once, while the total is
    shown, and the legend says so."""
    curves = plot.curves["neg_elbo"]
    assert curves.same_as_total and not curves.smooth.isVisible() and not curves.val.isVisible()
    assert plot.curves["kl"].smooth.isVisible() and not plot.curves["kl"].same_as_total
    plot.set_term_visible("total", False)
    assert curves.smooth.isVisible()          # the total is hidden: its equal takes its place
    plot.set_term_visible("total", True)
    assert not curves.smooth.isVisible()
    sample = next(sample for sample, _ in plot.legend.items if sample.item is curves.smooth)
    assert term_coloured_pixels(sample, "neg_elbo") > 5, "a dotted line in its colour, not the 'hidden' eye"
    kl = next(sample for sample, _ in plot.legend.items if sample.item is plot.curves["kl"].smooth)
    plot.set_term_visible("kl", False)
    assert term_coloured_pixels(kl, "kl") == 0, "a term the person hid shows pyqtgraph's crossed eye"
    plot.set_term_visible("kl", True)
    session_with_runs[0].set_active(session_with_runs[1][1])   # a plain AE's total is its reconstruction
    assert [n for n, c in plot.curves.items() if c.same_as_total] == ["reconstruction"]


def term_coloured_pixels(sample, name: str) -> int:
    """How many pixels of a legend key's 24×24 picture are (nearly) the term's colour."""
    from PySide6.QtGui import QImage, QPainter
    image = QImage(24, 24, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    sample.paint(painter, None, None)
    painter.end()
    want = term_colour(name)
    return sum(1 for x in range(24) for y in range(24)
               if max(abs(image.pixelColor(x, y).red() - want.red()), abs(image.pixelColor(x, y).green() - want.green()),
                      abs(image.pixelColor(x, y).blue() - want.blue())) < 40 and image.pixelColor(x, y).alpha() > 40)


def test_smoothing_is_a_debiased_moving_average(session_with_runs):
    history = session_with_runs[1][0].history
    series = LossSeries(history, "total", 0.8)
    series.sync()
    expected, average = [], 0.0
    for k, v in enumerate(history.terms["total"], start=1):
        average = 0.8 * average + 0.2 * v
        expected.append(average / (1 - 0.8 ** k))
    np.testing.assert_allclose(series.smoothed, expected)
    series.set_smoothing(0.0)
    np.testing.assert_allclose(series.smoothed, history.terms["total"])


def test_the_loss_series_computes_without_qt_or_pyqtgraph():
    """explorer.loss.series imports and smooths with PySide6 and pyqtgraph made unimportable."""
    code = """
import sys
for name in ("PySide6", "PySide6.QtCore", "PySide6.QtGui", "PySide6.QtWidgets", "pyqtgraph"):
    sys.modules[name] = None   # any import of them raises ImportError
from engine.history import History
from explorer.loss.series import TOTAL, LossSeries
history = History()
history.steps.extend([1, 2, 3])
history.terms[TOTAL] = [4.0, 2.0, 1.0]
series = LossSeries(history, TOTAL, 0.0)
series.sync()
assert list(series.smoothed) == [4.0, 2.0, 1.0] and series.value_at(2.5) == 2.0
assert not [m for m in sys.modules if m.startswith(("PySide6", "pyqtgraph")) and sys.modules[m] is not None]
print("qt-free")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[3], env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and "qt-free" in result.stdout, result.stderr


def test_live_updates_append_points(qtbot, plot, session_with_runs):
    state = session_with_runs[1][0]
    before = len(state.history.steps)
    state._on_update(fake_update(state, 10))
    qtbot.waitUntil(lambda: len(plot.curves["total"].smooth.getOriginalDataset()[0]) == before + 10, timeout=2000)
    epochs = len(state.history.epoch_steps)
    state._on_update(fake_update(state, 5, kind="epoch"))
    qtbot.waitUntil(lambda: len(plot.curves["kl"].val.getOriginalDataset()[0]) == epochs + 1, timeout=2000)
    assert plot.curves["kl"].val.getOriginalDataset()[1][-1] == pytest.approx(0.4)


def test_raw_values_and_log_scale(plot):
    curves = plot.curves["total"]
    assert not curves.raw.isVisible()
    plot.raw.setChecked(True)
    assert curves.raw.isVisible()
    assert len(curves.raw.getOriginalDataset()[0]) == len(curves.series.steps)
    plot.log_y.setChecked(True)
    assert plot.plot_item.getAxis("left").logMode and curves.smooth.opts["logMode"] == [False, True]
    plot.log_y.setChecked(False)
    assert not plot.plot_item.getAxis("left").logMode


def test_hiding_a_term_from_the_menu_and_the_legend(qtbot, plot):
    total = plot.curves["total"]
    action = next(a for a in plot.terms_menu.actions() if a.text() == "total")
    action.setChecked(False)
    assert not total.smooth.isVisible() and not total.val.isVisible()
    sample = next(sample for sample, _ in plot.legend.items if sample.item is total.smooth)
    centre = plot.plot.mapFromScene(sample.sceneBoundingRect().center())
    qtbot.mouseClick(plot.plot.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert total.smooth.isVisible() and total.val.isVisible() and action.isChecked()
    key = next(sample for sample, label in plot.legend.items if label.text == "validation")
    centre = plot.plot.mapFromScene(key.sceneBoundingRect().center())
    qtbot.mouseClick(plot.plot.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert not any(curves.val.isVisible() for curves in plot.curves.values()) and total.smooth.isVisible()


def test_export_png_and_svg(plot, tmp_path):
    plot.resize(1500, 230)   # a wide, short dock made a 3000×248 px picture
    on_screen = plot.plot_item.sceneBoundingRect()
    plot.export(tmp_path / "loss.png")
    image = QImage(str(tmp_path / "loss.png"))
    assert image.width() == 1200 * PNG_SCALE and 1.5 <= image.width() / image.height() <= 2.5
    assert plot.plot_item.sceneBoundingRect() == on_screen   # laid out on screen again
    plot.export(tmp_path / "loss.svg")
    assert QSvgRenderer(str(tmp_path / "loss.svg")).isValid()
    with pytest.raises(UserError, match="png or .svg"):
        plot.export(tmp_path / "loss.pdf")
    with pytest.raises(UserError, match="Could not write"):
        plot.export(tmp_path / "missing" / "loss.png")


def test_export_from_the_context_menu(plot, tmp_path, monkeypatch):
    chosen = (str(tmp_path / "figure"), "SVG drawing (*.svg)")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: chosen)
    (action,) = plot.plot.scene().contextMenu   # pyqtgraph adds it to the plot's right-click menu
    assert action.text() == "Export…"
    action.trigger()
    assert QSvgRenderer(str(tmp_path / "figure.svg")).isValid()


def test_switching_the_active_run_replaces_the_curves(plot, session_with_runs):
    session, (vae, ae) = session_with_runs
    session.set_active(ae)
    assert plot.state is ae
    assert set(plot.curves) == set(ae.history.terms) and "kl" not in plot.curves
    np.testing.assert_array_equal(plot.curves["total"].smooth.getOriginalDataset()[0], ae.history.steps)
    items = plot.plot_item.listDataItems()
    assert len(items) == 3 * len(ae.history.terms)
    assert [a.text() for a in plot.terms_menu.actions()] == list(plot.curves)
    session.set_active(None)
    assert plot.curves == {} and plot.plot_item.listDataItems() == []


def test_overlays_add_the_other_runs_total(plot, session_with_runs):
    session, (vae, ae) = session_with_runs
    n_items = len(plot.plot_item.listDataItems())
    plot.set_overlays([vae, ae])   # the active run is never its own overlay
    assert [state for state, _, _ in plot.overlays] == [ae]
    curve = plot.overlays[0][2]
    assert curve in plot.plot_item.listDataItems() and len(plot.plot_item.listDataItems()) == n_items + 1
    np.testing.assert_array_equal(curve.getOriginalDataset()[0], ae.history.steps)
    assert [label.text for _, label in plot.legend.items][-2:] == ["validation", f"{short_name(ae.name)} (total)"]
    session.set_active(ae)   # the overlay becomes the active run, the former active one an overlay
    assert [state for state, _, _ in plot.overlays] == [vae]
    plot.set_overlays([])
    assert plot.overlays == [] and len(plot.plot_item.listDataItems()) == 3 * len(ae.history.terms)


def test_crosshair_reads_the_values_at_the_step(qtbot, plot, session_with_runs):
    state = session_with_runs[1][0]
    view = plot.plot_item.vb
    step = state.history.steps[len(state.history.steps) // 2]
    y = float(np.mean(view.viewRange()[1]))
    plot.plot.scene().sigMouseMoved.emit(view.mapViewToScene(QPointF(step + 0.2, y)))
    text = plot.readout.text()
    assert plot.crosshair.isVisible() and plot.crosshair.value() == pytest.approx(step + 0.2)
    assert f"step <b>{step:,}</b>" in text
    value = plot.curves["total"].series.value_at(step)
    assert f"total {value:.4g}" in text and "kl" in text
    plot.plot.scene().sigMouseMoved.emit(QPointF(-50, -50))
    assert not plot.crosshair.isVisible() and plot.readout.text().startswith("Move over the plot")


def test_the_background_follows_the_palette(plot):
    palette = plot.palette()
    palette.setColor(QPalette.ColorRole.Base, QColor("#202124"))
    plot.setPalette(palette)
    assert plot.plot.backgroundBrush().color() == QColor("#202124")


def test_follows_a_live_training_run(qtbot, tmp_path):
    session = Session()
    plot = LossPlot(session)
    qtbot.addWidget(plot)
    state = session.add(RunState(DIGITS, small_model("vae"), quick_train(epochs=1), dataset=load_dataset(DIGITS)))
    try:
        with qtbot.waitSignal(state.status_changed, check_params_cb=lambda s: s == "completed", timeout=60_000):
            state.start(tmp_path)
    finally:
        assert state.stop_and_wait()

    def drawn_everything():
        assert "total" in plot.curves
        assert len(plot.curves["total"].smooth.getOriginalDataset()[0]) == len(state.history.steps)

    qtbot.waitUntil(drawn_everything)   # the redraw is coalesced, so it may come a little later
    assert len(state.history.steps) > 0 and len(plot.curves["kl"].val.getOriginalDataset()[0]) == 1


def test_grid_lines_are_opaque_and_follow_the_ticks(plot, qtbot):
    """The grid is drawn in opaque colours mixed from the palette (translucent lines made every
    frame several times slower), at the axes' ticks, and it follows log scale."""
    from explorer.loss.plot_grid import mix
    assert not plot.plot_item.getAxis("bottom").grid   # pyqtgraph's translucent grid is off
    base, text = QColor("#ffffff"), QColor("#000000")
    assert mix(base, text, 0.25).getRgb() == pytest.approx((191, 191, 191, 255), abs=1)
    major = plot.grid._pens[0].color()
    assert major.alpha() == 255

    def grid_pixels() -> int:
        image = plot.plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4)
        colour = np.array([major.blue(), major.green(), major.red()])
        return int((np.abs(pixels[..., :3].astype(int) - colour).sum(-1) == 0).sum())

    assert grid_pixels() > 500
    plot.log_y.setChecked(True)
    qtbot.wait(50)
    assert grid_pixels() > 500


def test_the_view_moves_in_steps_while_a_run_trains(qtbot, plot, session_with_runs):
    """The view holds all the data, with room to grow, and it is not refitted at every frame:
    a refit re-renders both axes and the grid, 40% of a frame."""
    from explorer.loss.plot_grid import steady_range
    assert steady_range([0, 100], [0, 125], grow_right=True) == [0, 125]     # fits: kept
    assert steady_range([0, 130], [0, 125], grow_right=True) == [0, 162.5]   # outgrown: room on the right
    assert steady_range([0, 50], [0, 125], grow_right=True) == [0, 62.5]     # too loose: refitted
    assert steady_range([10, 20], [0, 30], grow_right=False) == [8.75, 21.25]
    state = session_with_runs[1][0]
    view = plot.plot_item.vb
    changes = []
    view.sigRangeChanged.connect(lambda *_: changes.append(view.viewRange()))
    for _ in range(40):
        state._on_update(fake_update(state, 2))
        state._emit_frame()
    x_range, y_range = view.viewRange()
    total = plot.curves["total"].series
    assert x_range[0] <= total.steps[0] and total.steps[-1] <= x_range[1]
    assert y_range[0] <= total.smoothed.min() and total.smoothed.max() <= y_range[1]
    assert len(changes) <= 5


def test_ignoring_outliers_keeps_the_first_steps_from_flattening_the_curve(qtbot, plot, session_with_runs):
    """On by default, as in TensorBoard: a few huge early losses fall outside the y axis."""
    state = session_with_runs[1][0]
    plot.smoothing.setValue(0.0)   # raw values: two steps out of some 500
    spike = fake_update(state, 2)
    spike.terms["total"][:] = 1e4
    state._on_update(spike)
    for _ in range(50):
        state._on_update(fake_update(state, 10))
    state._emit_frame()
    view = plot.plot_item.vb
    assert plot.ignore_outliers.isChecked()
    view.updateAutoRange()
    assert view.viewRange()[1][1] < 1e3
    view.disableAutoRange()
    plot.plot_item.autoBtnClicked()   # the "A" button after a pan: still without the outliers
    view.updateAutoRange()
    assert view.viewRange()[1][1] < 1e3
    plot.ignore_outliers.setChecked(False)
    view.updateAutoRange()
    assert view.viewRange()[1][1] >= 1e4


def test_the_legend_covers_no_data(qtbot, plot, session_with_runs):
    """Inside the view the legend covered the newest part of the curves (40% of the plot with two runs)."""
    session, (vae, ae) = session_with_runs
    plot.set_overlays([vae, ae])
    plot.resize(950, 200)
    qtbot.wait(50)
    legend, view = plot.legend.sceneBoundingRect(), plot.plot_item.vb.sceneBoundingRect()
    assert legend.width() > 0 and not legend.intersects(view)
    assert plot.plot_item.sceneBoundingRect().contains(legend)


def test_overlaid_runs_stand_apart_and_the_validation_key_matches_its_markers(plot, session_with_runs):
    session, (vae, ae) = session_with_runs
    plot.set_overlays([vae, ae])
    pen = plot.overlays[0][2].opts["pen"]
    assert pen.widthF() >= 2 and pen.color().alpha() == 255
    assert pen.color().name() not in {term_colour(n).name() for n in plot.curves} | {"#868e96"}   # not a faint grey
    key = next(sample for sample, label in plot.legend.items if label.text == "validation")
    shown = {c.val.opts["symbolBrush"].color().name() if hasattr(c.val.opts["symbolBrush"], "color")
             else QColor(c.val.opts["symbolBrush"]).name() for c in plot.curves.values() if c.val.isVisible()}
    assert {colour.name() for colour in key.colours()} <= shown and key.colours()


def test_log_ticks_are_plain_numbers():
    axis = PlainLogAxis("left")
    assert axis.logTickStrings([np.log10(40), np.log10(0.5), 1.0], 1.0, 1.0) == ["40", "0.5", "10"]
    assert "10" in axis.logTickStrings([9.0], 1.0, 1.0)[0]   # too long for plain digits: a power of ten
