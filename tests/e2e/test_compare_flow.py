"""Issue 9's whole flow in the real window, offscreen: two β-VAEs (β 1 and 4) trained on digits through the
queue, both checked, the comparison opened with Ctrl+K's action, a hover highlighted in both maps, a drag that
changes both decoders' pixels, a metrics table with both runs, and a figure that exports non-blank."""

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from explorer.window.main_window import MainWindow

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


def send(view, kind, pos: QPoint, button=NONE, buttons=NONE):
    viewport = view.plot.viewport()
    QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)), button,
                                                 buttons, Qt.KeyboardModifier.NoModifier))


def pixel_of(view, x: float, y: float) -> QPoint:
    return view.plot.mapFromScene(view.view.mapViewToScene(QPointF(x, y)))


def test_two_beta_vaes_through_the_queue_then_compared(qtbot, tmp_path):
    w = MainWindow(runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    try:
        p = w.training_panel
        p.dataset.setCurrentIndex(p.dataset.findData("digits"))
        p.model.setCurrentIndex(p.model.findData("beta_vae"))
        p.latent.setValue(2)
        p.hidden.setText("32")
        p.epochs.setValue(2)
        p.batch.setValue(64)
        p.sweep_axis.setCurrentIndex(p.sweep_axis.findData("beta"))
        p.sweep_values.setText("1, 4")
        p.sweep_button.click()
        qtbot.waitUntil(lambda: len(w.session.runs) == 2 and not w.session.is_busy() and not w.train_queue.items
                        and not w.metrics_runner.is_busy(), timeout=180_000)
        states = w.session.runs
        assert sorted(s.model_cfg.params.beta for s in states) == [1.0, 4.0]
        for state in states:
            w.runs_panel.model.set_checked(state, True)
        action = w.findChild(QAction, "compareAction")
        assert action.shortcut().toString() == "Ctrl+K"
        action.trigger()
        view = w.compare_view
        assert view is not None and view.objectName() == "compareView"
        qtbot.waitExposed(view)
        a, b = view.columns

        # hover a point of the first map: the same image lights up in the second
        position = 5
        image = int(a.map.state.probe.indices[position])
        x, y = a.map.map_state.xy[position]
        send(a.map, QEvent.Type.MouseMove, pixel_of(a.map, x, y))
        assert a.hovered_position() == position
        assert int(b.map.state.probe.indices[b.hovered_position()]) == image

        # drag across the first map: both decoders' pixels change
        a.map.view.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
        before = [c.decoder.image_widget.grab().toImage() for c in view.columns]
        path = [pixel_of(a.map, -2.5 + 5 * t, 2.5 - 5 * t) for t in np.linspace(0, 1, 6)]
        send(a.map, QEvent.Type.MouseButtonPress, path[0], LEFT, LEFT)
        for point in path[1:]:
            send(a.map, QEvent.Type.MouseMove, point, NONE, LEFT)
        send(a.map, QEvent.Type.MouseButtonRelease, path[-1], LEFT, NONE)
        for column, pixels in zip(view.columns, before):
            assert column.decoder.image_widget.grab().toImage() != pixels

        # the metrics table has both runs; the figure exports, not blank
        table = view.findChild(type(view.metrics.table), "compareMetricsTable")
        headers = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]
        assert all(any(s.run.name[-6:] in h or s.name[-6:] in h for h in headers) for s in states), headers
        figure = view.export_figure(tmp_path / "comparison.png")
        picture = QImage(str(figure))
        assert picture.width() > 200 and picture.height() > 200
        colours = {picture.pixel(x, y) for x in range(0, picture.width(), 17) for y in range(0, picture.height(), 17)}
        assert len(colours) > 20, "the figure holds pictures, not a blank page"
    finally:
        w.train_queue.set_paused(True)
        w.metrics_runner.cancel()
        w.metrics_runner.wait(10_000)
        w.session.stop_all(10_000)
        w.close()
