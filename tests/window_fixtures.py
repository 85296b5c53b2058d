"""The main window as the GUI and e2e tests open it, and its background work ended after each test
(both conftests import ``window`` from here)."""

import pytest

from explorer.window.main_window import MainWindow


def open_window(qtbot, runs_dir, size: tuple[int, int] = (1400, 900), settings=None) -> MainWindow:
    """The window on ``runs_dir``, shown at ``size`` and exposed (remembering in ``settings``, a QSettings)."""
    w = MainWindow(runs_dir=runs_dir, settings=settings)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w


def close_window(w: MainWindow) -> None:
    """End what a test may have left under way: exports, the map's colouring, the queue (paused, so
    nothing more starts), metrics, trainings, and the projection worker."""
    for task in list(w.exports.tasks):
        task.wait(60_000)
    w.latent_view.colouring.wait()
    w.train_queue.set_paused(True)
    w.metrics_runner.cancel()
    w.metrics_runner.wait(10_000)
    w.session.stop_all(10_000)
    w.latent_view.shutdown()
    from explorer.dataset_cache import datasets
    datasets().wait()   # a dataset still loading for this window


@pytest.fixture
def window(qtbot, tmp_path):
    """The window on an empty runs folder, 1400×900."""
    w = open_window(qtbot, tmp_path / "runs")
    yield w
    close_window(w)
