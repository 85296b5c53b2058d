"""A run's dataset is read in one place (explorer/dataset_cache.py), once, and never on the GUI
thread for a source that takes seconds: starting a run, opening one, its reconstructions and
``RunState.start`` of a saved run all ask the same loader.  The bundled digits stand in for a slow
source here (``QUICK_SOURCES`` emptied), so that they too go through the background."""

import shutil
import threading

import pytest

from engine.config import DataConfig
from explorer import dataset_cache
from explorer.session import RunState
from tests.window_fixtures import close_window, open_window


@pytest.fixture
def loads(monkeypatch):
    """Every load_dataset call of the app, as "gui" or "background" (the thread it ran on), with a
    fresh cache and no source counted as quick."""
    calls = []
    real = dataset_cache.load_dataset

    def counted(config):
        calls.append("gui" if threading.current_thread() is threading.main_thread() else "background")
        return real(config)

    monkeypatch.setattr(dataset_cache, "load_dataset", counted)
    monkeypatch.setattr(dataset_cache, "QUICK_SOURCES", ())
    monkeypatch.setattr(dataset_cache, "_cache", None)
    return calls


def show_reconstructions(window):
    window.insights_dock.raise_()
    window.insight_tabs.setCurrentWidget(window.insight_tabs.reconstructions)
    view = window.insight_tabs.reconstructions
    view.refresh()
    return view


def test_an_opened_run_and_its_reconstructions_read_the_dataset_once(qtbot, tmp_path, run_paths, loads):
    w = open_window(qtbot, tmp_path / "runs")
    try:
        state = w.open_run(run_paths[0])   # shown: the window, the map and the reconstructions all want its images
        view = show_reconstructions(w)
        qtbot.waitUntil(lambda: state.dataset is not None and not view.loading, timeout=30_000)
        view.refresh()
        view.finish_now()
        assert view.figure() is not None and len(view.errors) > 0
        assert loads == ["background"], "read once, off the GUI thread"
    finally:
        close_window(w)


def test_a_started_run_and_its_reconstructions_read_the_dataset_once(qtbot, tmp_path, loads):
    w = open_window(qtbot, tmp_path / "runs")
    try:
        p = w.training_panel
        assert p.configs()[0].source == "digits"
        p.epochs.setValue(1)
        p.start.click()
        assert w.training.is_loading_dataset() and not w.session.runs
        qtbot.waitUntil(lambda: bool(w.session.runs), timeout=30_000)
        state = w.session.active
        view = show_reconstructions(w)
        qtbot.waitUntil(lambda: not state.is_training, timeout=120_000)
        view.refresh()
        view.finish_now()
        assert view.figure() is not None and state.status == "completed"
        assert loads == ["background"], "read once, off the GUI thread"
    finally:
        close_window(w)


def test_run_state_start_reads_a_saved_runs_dataset_off_the_gui_thread(qtbot, tmp_path, run_paths, loads):
    path = shutil.copytree(run_paths[1], tmp_path / "ae")
    state = RunState.open(path)
    failures = []
    state.failed.connect(failures.append)
    state.start(tmp_path, epochs=state.epoch + 1)
    assert not state.is_training and state.is_loading_dataset(), "it waits for its images, the GUI thread does not"
    state.start(tmp_path, epochs=state.epoch + 1)   # pressed again meanwhile: still one read
    try:
        qtbot.waitUntil(lambda: state.epoch == 2 and state.status == "completed" and not state.is_training,
                        timeout=60_000)
    finally:
        state.stop_and_wait()
    assert loads == ["background"] and not failures


def test_a_dataset_that_cannot_be_read_is_one_sentence_when_a_saved_run_resumes(qtbot, tmp_path, run_paths, loads):
    path = shutil.copytree(run_paths[1], tmp_path / "ae")
    state = RunState.open(path)
    state.data_cfg = DataConfig(source="folder", path=str(tmp_path / "nowhere"))
    failures = []
    state.failed.connect(failures.append)
    state.start(tmp_path, epochs=state.epoch + 1)
    qtbot.waitUntil(lambda: bool(failures), timeout=30_000)
    assert "could not be loaded" in failures[0] and not state.is_training and state.status == "completed"
    assert loads == ["background"]


def test_a_run_deleted_while_its_dataset_loads_hears_nothing(qtbot, run_paths, loads):
    """A run taken out of the session (deleted) before its images arrive: the load ends quietly
    (it raised "Internal C++ object already deleted" in the event loop)."""
    import shiboken6
    state = RunState.open(run_paths[1])
    heard = []
    assert state.ensure_dataset_in_background(heard.append)
    shiboken6.delete(state)
    qtbot.waitUntil(lambda: not dataset_cache.datasets().is_loading(), timeout=30_000)
    qtbot.wait(100)
    assert heard == [] and loads == ["background"]
