"""File → Export from the window (the map as PNG/SVG, its coordinates as CSV, the training movie,
TensorBoard), the insight tabs beside the decoder following the active run and the map's clicks,
and datasets loading in the background while the event loop turns."""

import csv
import time

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt, QTimer
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.history import ProbeCodes

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def click_map(w, x, y, release_at=None):
    view = w.latent_view
    vp = view.plot.viewport()
    pos = QPointF(view.plot.mapFromScene(view.view.mapViewToScene(QPointF(x, y))))
    end = QPointF(view.plot.mapFromScene(view.view.mapViewToScene(QPointF(*release_at)))) if release_at else pos
    QApplication.sendEvent(vp, QMouseEvent(QEvent.Type.MouseButtonPress, pos, vp.mapToGlobal(pos), LEFT, LEFT,
                                           Qt.KeyboardModifier.NoModifier))
    if release_at:
        for t in np.linspace(0, 1, 6)[1:]:
            p = pos + (end - pos) * float(t)
            QApplication.sendEvent(vp, QMouseEvent(QEvent.Type.MouseMove, p, vp.mapToGlobal(p), NONE, LEFT,
                                                   Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(vp, QMouseEvent(QEvent.Type.MouseButtonRelease, end, vp.mapToGlobal(end), LEFT, NONE,
                                           Qt.KeyboardModifier.NoModifier))


def test_the_map_exports_to_png_svg_and_csv(window, run_paths, tmp_path, qtbot):
    state = window.open_run(run_paths[0])
    qtbot.waitUntil(lambda: window.latent_view.points.n_points == len(state.probe.codes), timeout=10_000)
    png = window.exports.export_map(str(tmp_path / "map.png"))
    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 1000
    pixels = np.array([[image.pixel(x, y) for x in range(0, image.width(), 17)] for y in range(0, image.height(), 17)])
    assert len(np.unique(pixels)) > 5, "the PNG shows coloured points, not a blank plot"
    svg = window.exports.export_map(str(tmp_path / "map.svg")).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    window.latent_view.colouring.set_kind("reconstruction_error")
    qtbot.waitUntil(lambda: window.latent_view.colouring.values is not None, timeout=20_000)
    path = window.exports.export_map_csv(str(tmp_path / "map.csv"))
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(state.probe.codes)
    assert list(rows[0]) == ["index", "label", "class", "x", "y", "reconstruction_error"]
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    np.testing.assert_allclose(xy, window.latent_view._xy, rtol=1e-5, atol=1e-6)
    assert [int(r["index"]) for r in rows] == state.probe.indices.tolist()
    assert window.exports.export_map_csv(str(tmp_path / "map.txt")) is None and "csv" in window.message_box.text().lower()


def test_the_movie_and_tensorboard_export_from_the_window(window, run_paths, tmp_path, qtbot):
    state = window.open_run(run_paths[0])
    for i in range(3):   # a few frames, as a live run records them
        state.movie.add(ProbeCodes(state.probe.codes * (1 + i), state.probe.labels, state.probe.indices,
                                   step=state.probe.step + 10 * (i + 1)))
    task = window.exports.export_movie(str(tmp_path / "movie.gif"))
    assert task is not None
    qtbot.waitUntil(lambda: window.state_label.text() == f"Wrote {tmp_path / 'movie.gif'}", timeout=60_000)
    import imageio.v3 as iio
    frames = iio.imread(tmp_path / "movie.gif", index=None)
    assert len(frames) == len(state.movie) >= 2
    task = window.exports.export_tensorboard(str(tmp_path / "logs"))
    assert window.state_label.text() == "Writing the TensorBoard logs…"   # not the movie's "Wrote …" any more
    written = tmp_path / "logs" / state.run.name
    qtbot.waitUntil(lambda: window.state_label.text() == f"Wrote {written}", timeout=120_000)
    assert any(written.rglob("events.out.tfevents.*")) and any(written.rglob("projector_config.pbtxt"))


def test_the_insight_tabs_follow_the_active_run(window, run_paths, qtbot):
    tabs = window.insight_tabs
    assert window.insights_dock.widget().widget() is tabs
    vae = window.open_run(run_paths[0])
    assert all(view.state is vae for view in tabs.views)
    ae = window.open_run(run_paths[1])
    assert all(view.state is ae for view in tabs.views)
    window.session.set_active(vae)
    assert all(view.state is vae for view in tabs.views)


def test_map_clicks_pick_the_interpolation_and_its_line_ends_drag(window, run_paths, qtbot):
    state = window.open_run(run_paths[0])
    qtbot.waitUntil(lambda: window.latent_view.points.n_points == len(state.probe.codes), timeout=10_000)
    line = window.latent_view.interpolation_line
    QApplication.processEvents()
    assert not line.ends.isVisible() and not line.line.isVisible(), "no line over the map until its view shows"
    window.insights_dock.raise_()
    window.insight_tabs.setCurrentWidget(window.insight_tabs.interpolation)
    QApplication.processEvents()
    ends = window.insight_tabs.endpoints
    xy = window.latent_view._xy
    i, j = int(np.argmin(xy[:, 0])), int(np.argmax(xy[:, 0]))
    click_map(window, *xy[i])
    click_map(window, *xy[j])
    assert ends.a.image == i and ends.b.image == j
    line = window.latent_view.interpolation_line
    assert line.line.isVisible() and set(line.positions) == {"a", "b"}
    np.testing.assert_allclose(line.positions["a"], xy[i])
    rendered = []
    window.insight_tabs.interpolation.rendered.connect(rendered.append)
    target = (float(np.mean(xy[:, 0])), float(np.mean(xy[:, 1])))
    click_map(window, *xy[i], release_at=target)   # drag end A to the middle of the map
    assert ends.a.image is None and ends.b.image == j
    np.testing.assert_allclose(ends.a.code, target, atol=0.05 * np.ptp(xy))
    np.testing.assert_allclose(line.positions["a"], ends.a.code, atol=1e-4)
    qtbot.waitUntil(lambda: bool(rendered), timeout=5000)
    window.insight_tabs.setCurrentWidget(window.insight_tabs.traversals)
    QApplication.processEvents()
    assert not line.ends.isVisible() and not line.line.isVisible(), "another view: the map is the codes' again"


def test_a_dataset_loads_in_the_background_while_the_event_loop_turns(window, qtbot, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=rng.integers(0, 256, (40_000, 28, 28), dtype=np.uint8),
                        y=rng.integers(0, 10, 40_000))
    p = window.training_panel
    p.dataset.setCurrentIndex(p.dataset.findData("npz"))
    p.path.setText(str(path))
    p.model.setCurrentIndex(p.model.findData("ae"))
    p.hidden.setText("16")
    p.epochs.setValue(1)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    p.start.click()
    assert window.training.is_loading_dataset() and p.load_row.isVisible() and not window.session.runs
    qtbot.waitUntil(lambda: bool(window.session.runs), timeout=60_000)
    timer.stop()
    assert len(ticks) >= 3, "the GUI thread turned while the dataset loaded"
    assert not p.load_row.isVisible()
    state = window.session.active
    assert state.dataset is not None and len(state.dataset.train) + len(state.dataset.val) == 40_000
    qtbot.waitUntil(lambda: not state.is_training, timeout=120_000)


def test_file_export_writes_what_the_insight_view_shows(window, run_paths, tmp_path, qtbot):
    """File → Export → Samples was engine.export's bare 82×82 grid of 8×8 digits without a word;
    now it is the Samples view's figure: each image at the view's export size (96 px), with its title."""
    window.open_run(run_paths[0])
    view = window.insight_tabs.samples
    assert view.pane.export_bar.cell_px == 96
    path = window.exports.export_figure("samples", str(tmp_path / "samples.png"))
    image = QImage(str(path))
    assert image.width() >= 8 * 48, image.size()
    figure = view.figure()
    assert figure.title
    # the title's line, above the first row of images: dark text pixels on the white ground
    title_band = [image.pixelColor(x, y).lightness() for y in range(0, 14) for x in range(image.width())]
    assert min(title_band) < 100, "no title drawn above the samples"
    view.pane.export_bar.size_combo.setCurrentIndex(view.pane.export_bar.size_combo.findData(32))
    smaller = QImage(str(window.exports.export_figure("samples", str(tmp_path / "small.png"))))
    assert smaller.width() < image.width()
    for what in ("recon", "traversal", "interpolation"):
        written = window.exports.export_figure(what, str(tmp_path / f"{what}.svg"))
        assert written is not None and "<svg" in written.read_text(), what
