"""The comparison: linked maps (hover, drag, box selection), reconstructions, samples, the
metrics table, the overlaid loss curves and the figure, on small trained runs."""

import csv

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.errors import UserError
from engine.training import Trainer
from explorer.compare.maps import points_in_polygon
from explorer.compare.view import CompareView
from explorer.session import RunState, Session
from tests.engine.helpers import DIGITS, quick_train, small_model

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """A trained 3-D VAE (a latent size the other runs do not have)."""
    trainer = Trainer(DIGITS, small_model("vae", latent_dim=3), quick_train(epochs=1),
                      run_parent=tmp_path_factory.mktemp("vae3"))
    trainer.run_to_end()
    return trainer.run.path


def open_compare(qtbot, paths):
    session = Session()
    states = [session.add(RunState.open(p)) for p in paths]
    view = CompareView(session, states)
    qtbot.addWidget(view)
    view.resize(1200, 760)
    view.show()
    qtbot.waitExposed(view)
    return session, states, view


def send(view, kind, pos: QPoint, button=NONE, buttons=NONE, modifiers=Qt.KeyboardModifier.NoModifier):
    viewport = view.plot.viewport()
    event = QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(viewport, event)


def pixel_of(view, x: float, y: float) -> QPoint:
    return view.plot.mapFromScene(view.view.mapViewToScene(QPointF(x, y)))


def test_objects_are_named_for_automation(qtbot, run_paths):
    session, states, view = open_compare(qtbot, run_paths)
    assert view.objectName() == "compareView"
    assert len(view.findChildren(type(view.columns[0].map), "compareMap")) == 2
    assert len(view.findChildren(type(view.columns[0].decoder), "compareDecoder")) == 2
    assert view.findChild(type(view.metrics.table), "compareMetricsTable") is view.metrics.table
    view.close()


def test_hover_highlights_the_same_image_in_both_maps_and_fills_the_strip(qtbot, run_paths):
    session, states, view = open_compare(qtbot, run_paths)
    a, b = view.columns
    position = 7
    image = int(states[0].probe.indices[position])
    x, y = a.map.map_state.xy[position]
    send(a.map, QEvent.Type.MouseMove, pixel_of(a.map, x, y))
    assert a.hovered_position() == position
    assert b.hovered_position() == b.position_of(image)
    assert states[1].probe.indices[b.hovered_position()] == image
    assert view.strip.canvases[0]._image is not None and view.strip.canvases[2]._image is not None
    view.close()


def test_a_drag_in_one_map_decodes_in_every_model(qtbot, run_paths):
    session, states, view = open_compare(qtbot, run_paths)
    a, b = view.columns
    a.map.view.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    before = [c.decoder.image_widget.grab().toImage() for c in view.columns]
    images_before = [c.decoder.current_image() for c in view.columns]
    path = [pixel_of(a.map, -2.5 + 5 * t, -2.5 + 5 * t) for t in np.linspace(0, 1, 6)]
    send(a.map, QEvent.Type.MouseButtonPress, path[0], LEFT, LEFT)
    for p in path[1:]:
        send(a.map, QEvent.Type.MouseMove, p, NONE, LEFT)
    send(a.map, QEvent.Type.MouseButtonRelease, path[-1], LEFT, NONE)
    np.testing.assert_allclose(b.cursor.code, a.cursor.code)   # the same latent size: the same code
    for column, pixels, image in zip(view.columns, before, images_before):
        assert np.abs(column.decoder.current_image() - image).max() > 0.02
        assert column.decoder.image_widget.grab().toImage() != pixels
    assert b.map.handle_position() == pytest.approx(a.map.handle_position(), abs=1e-4)
    view.close()


def test_a_run_of_another_latent_size_shows_the_nearest_data_point(qtbot, run_paths, wide_run):
    session, states, view = open_compare(qtbot, [run_paths[0], wide_run])
    a, wide = view.columns
    code = states[0].probe.codes[5] + 1e-3
    a.cursor.set_code(code, "slider")
    assert "≠" in wide.note.text() and "nearest data point" in wide.note.text()
    image = int(states[0].probe.indices[5])
    np.testing.assert_allclose(wide.cursor.code, states[1].probe.codes[wide.position_of(image)])
    view.close()


def test_box_selection_lights_up_the_same_images_everywhere_and_exports(qtbot, run_paths, tmp_path):
    session, states, view = open_compare(qtbot, run_paths)
    a, b = view.columns
    xy = a.map.map_state.xy
    lo, hi = np.percentile(xy, 30, axis=0), np.percentile(xy, 70, axis=0)
    start, end = pixel_of(a.map, lo[0], lo[1]), pixel_of(a.map, hi[0], hi[1])
    send(a.map, QEvent.Type.MouseButtonPress, start, LEFT, LEFT, SHIFT)
    send(a.map, QEvent.Type.MouseMove, end, NONE, LEFT, SHIFT)
    send(a.map, QEvent.Type.MouseButtonRelease, end, LEFT, NONE, SHIFT)
    inside = (xy >= np.minimum(lo, hi) - 0.05).all(axis=1) & (xy <= np.maximum(lo, hi) + 0.05).all(axis=1)
    selected = view.links.selection
    assert 0 < len(selected) <= inside.sum()
    assert len(b.selected_rings.data) == len(selected) == len(a.selected_rings.data)
    path = view.export_selection(tmp_path / "selection.csv")
    rows = list(csv.DictReader(path.open()))
    assert [int(r["validation_index"]) for r in rows] == list(selected)
    with pytest.raises(UserError):
        view.export_selection(tmp_path / "selection.txt")
    view.close()


def test_points_in_polygon():
    xy = np.array([[0.5, 0.5], [2.0, 2.0], [0.1, 0.9], [np.nan, 0.5]])
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    assert points_in_polygon(xy, square).tolist() == [True, False, True, False]


def test_the_pictures_table_loss_and_figure(qtbot, run_paths, tmp_path):
    session, states, view = open_compare(qtbot, run_paths)
    view.tabs.setCurrentWidget(view.reconstructions)
    picture = view.reconstructions.picture
    assert picture.width() > 200 and picture.height() > 3 * 28
    view.tabs.setCurrentWidget(view.samples)
    assert view.samples.picture.height() > 2 * 28
    view.tabs.setCurrentWidget(view.metrics)
    table = view.metrics.table
    assert table.columnCount() == 3 and table.rowCount() >= 3   # metric + both runs
    keys = [table.item(r, 0).text() for r in range(table.rowCount())]
    best = table.item(keys.index("best_val"), 1 + view.metrics.best_marked()["best_val"])
    assert table.item(keys.index("best_val_is"), 1).text().startswith("best validation")   # what the number is
    assert best.text().startswith("★") and best.font().bold()
    table.sortItems(1)
    view.metrics.export_csv(tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").read_text().startswith("run,")   # tidy: a row per run
    view.tabs.setCurrentWidget(view.loss)
    terms = view.loss.terms()
    assert "total" in terms and len(terms) > 1
    view.loss.term.setCurrentText([t for t in terms if t != "total"][0])
    view.loss.axis.setCurrentIndex(1)
    assert all(len(train.getData()[0]) > 0 for train, _ in view.loss.curves)
    png = view.export_figure(tmp_path / "comparison.png")
    image = QImage(str(png))
    assert image.width() > 1000 and image.height() > 600
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.array([[grey.pixelColor(x, y).value() for x in range(0, grey.width(), 7)]
                       for y in range(0, grey.height(), 7)])
    assert pixels.min() < 100 and (pixels < 250).mean() > 0.02   # not blank
    svg = view.export_figure(tmp_path / "comparison.svg")
    assert "<svg" in svg.read_text()[:500] and svg.stat().st_size > 10_000
    with pytest.raises(UserError):
        view.export_figure(tmp_path / "comparison.gif")
    view.close()


def test_fewer_than_two_runs_is_refused_in_one_sentence(qtbot, run_paths):
    session = Session()
    state = session.add(RunState.open(run_paths[0]))
    with pytest.raises(UserError, match="Check 2 to 6 runs"):
        CompareView(session, [state])


def test_the_window_opens_the_comparison_from_its_action(qtbot, run_paths, tmp_path):
    from PySide6.QtGui import QAction

    from explorer.window.main_window import MainWindow
    window = MainWindow(runs_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    for path in run_paths:
        window.open_run(path)
    action = window.findChild(QAction, "compareAction")
    assert action.shortcut().toString() == "Ctrl+K" and action.isEnabled()
    states = window.session.runs
    window.runs_panel.model.set_checked(states[0], True)
    action.trigger()   # one run: refused in one sentence
    assert window.compare_view is None and "Check 2 to 6 runs" in window.message_box.text()
    window.message_box.close()
    window.runs_panel.model.set_checked(states[1], True)
    action.trigger()
    view = window.compare_view
    assert view is not None and view.objectName() == "compareView" and view.isVisible()
    assert len(view.findChildren(type(view.columns[0].map), "compareMap")) == 2
    window.close()
    assert window.compare_view is None


def test_every_map_gets_its_own_slow_layout_from_the_shared_worker(qtbot, run_paths):
    """The maps share one projection worker; each gets its t-SNE (before, only the last asker's came)."""
    from explorer.map.projection_worker import ProjectionWorker
    session = Session()
    states = [session.add(RunState.open(p)) for p in run_paths]
    worker = ProjectionWorker()
    view = CompareView(session, states, worker=worker)
    qtbot.addWidget(view)
    view.show()
    try:
        for column in view.columns:
            column.map.set_projection("tsne")
        qtbot.waitUntil(lambda: all(c.map.live.layout("tsne") is not None for c in view.columns), timeout=120_000)
        for column in view.columns:
            assert not column.map.shows_placeholder
    finally:
        view.close()
        assert worker.shutdown()


def test_a_map_of_every_image_links_only_its_validation_images(qtbot, run_paths):
    from engine.history import ProbeCodes
    session, states, view = open_compare(qtbot, run_paths)
    a, b = view.columns
    probe = states[1].probe
    n = len(probe.indices)
    # the second run's map now also holds training images with the same indices (the "all" set)
    both = ProbeCodes(np.concatenate([probe.codes, probe.codes]), np.concatenate([probe.labels, probe.labels]),
                      np.concatenate([probe.indices, probe.indices]), probe.step,
                      np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8)]))
    states[1].probe = both
    states[1].probe_changed.emit(both)
    image = int(both.indices[3])
    assert b.position_of(image) == 3, "the validation image, not the training image of the same index"
    assert b.image_at(n + 3) is None and b.image_at(3) == image
    view.close()


def test_five_runs_fit_a_laptop_screen_and_their_maps_scroll(qtbot, run_paths):
    # each column is ~490 px at its narrowest: three runs or more made the window wider than 1280 px
    session = Session()
    states = [session.add(RunState.open(p)) for p in [*run_paths, *run_paths, run_paths[0]]]
    view = CompareView(session, states)
    qtbot.addWidget(view)
    assert view.minimumSizeHint().width() <= 1240
    view.resize(1240, 740)
    view.show()
    qtbot.waitExposed(view)
    assert view.width() <= 1240
    bar = view.columns_scroll.horizontalScrollBar()
    assert bar.maximum() > 0   # the fifth map is reached by scrolling, not off the screen
    bar.setValue(bar.maximum())
    last = view.columns[-1]
    right_edge = last.mapTo(view.columns_scroll.viewport(), last.rect().topRight()).x()
    assert right_edge <= view.columns_scroll.viewport().width()
