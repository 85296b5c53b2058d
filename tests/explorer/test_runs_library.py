"""The runs library: the runs folder's runs from an earlier launch, newest first; check boxes for
Compare; rename and delete (after a confirmation, never a run that trains); load a run's settings
into the panel; metrics on request and after a run finishes."""

import json
import os
import shutil
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from explorer.runs_panel import COLUMNS, short_name
from explorer.window.main_window import MainWindow
from tests.window_fixtures import close_window, open_window


@pytest.fixture
def runs_dir(tmp_path, run_paths):
    """A runs folder as an earlier launch left it: the VAE, then the AE (newer)."""
    folder = tmp_path / "runs"
    folder.mkdir()
    for i, path in enumerate(run_paths):
        copy = shutil.copytree(path, folder / path.name)
        stamp = time.time() - 100 + i
        os.utime(copy / "config.json", (stamp, stamp))
        os.utime(copy, (stamp, stamp))
    return folder


@pytest.fixture
def window(qtbot, runs_dir):
    """The window on the runs folder of an earlier launch, 1280×770."""
    w = open_window(qtbot, runs_dir, (1280, 770))
    yield w
    close_window(w)


def cell(window, row, column, role=Qt.ItemDataRole.DisplayRole):
    return window.runs_panel.model.index(row, COLUMNS.index(column)).data(role)


def test_the_library_lists_runs_from_an_earlier_launch_newest_first(window, run_paths):
    model = window.runs_panel.model
    assert model.rowCount() == 2 and window.session.active is None   # nothing is shown until chosen
    assert [cell(window, r, "Name") for r in range(2)] == [short_name(run_paths[1].name), short_name(run_paths[0].name)]
    assert cell(window, 0, "Variant") == "Autoencoder" and cell(window, 1, "Variant") == "Variational autoencoder"
    assert cell(window, 1, "Status") == "completed" and cell(window, 1, "Latent") == "2"
    assert run_paths[0].name in cell(window, 1, "Name", Qt.ItemDataRole.ToolTipRole)   # the full name
    assert cell(window, 1, "NLL") == "—" and "No metrics" in cell(window, 1, "NLL", Qt.ItemDataRole.ToolTipRole)
    window.runs_panel.table.selectRow(1)
    assert window.session.active is model.state_at(1) and window.session.active.dataset is not None
    again = window.open_run(model.state_at(1).run.path)   # opening a run of the library shows it, no second row
    assert again is model.state_at(1) and model.rowCount() == 2


def test_an_interrupted_run_says_at_which_step(qtbot, run_paths, tmp_path):
    folder = tmp_path / "runs"
    path = shutil.copytree(run_paths[0], folder / "killed")
    cfg = json.loads((path / "config.json").read_text())
    cfg["status"] = "running"   # as kill -9 leaves it
    (path / "config.json").write_text(json.dumps(cfg))
    w = MainWindow(runs_dir=folder)
    qtbot.addWidget(w)
    assert cell(w, 0, "Status") == f"interrupted at step {cfg['step']}"
    w.latent_view.shutdown()


def test_check_boxes_say_which_runs_to_compare(window, qtbot):
    panel, model = window.runs_panel, window.runs_panel.model
    seen = []
    panel.checked_changed.connect(seen.append)
    assert model.flags(model.index(0, 0)) & Qt.ItemFlag.ItemIsUserCheckable
    model.setData(model.index(1, 0), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    model.setData(model.index(0, 0), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert panel.checked_runs() == [model.state_at(0), model.state_at(1)] and seen[-1] == panel.checked_runs()
    assert cell(window, 0, "Name", Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    model.setData(model.index(0, 0), Qt.CheckState.Unchecked.value, Qt.ItemDataRole.CheckStateRole)
    assert panel.checked_runs() == [model.state_at(1)]


def test_rename_moves_the_folder_and_refuses_a_taken_name(window, qtbot, runs_dir):
    panel = window.runs_panel
    state = panel.model.state_at(1)
    old = state.run.path
    window.session.set_active(state)
    panel.rename(state)
    panel.rename_dialog.setTextValue("my-vae")
    panel.rename_dialog.accept()
    assert state.run.path == runs_dir / "my-vae" and (runs_dir / "my-vae" / "config.json").is_file()
    assert not old.exists() and cell(window, 1, "Name") == "my-vae" and "my-vae" in window.windowTitle()
    other = panel.model.state_at(0)
    panel.rename(other)
    panel.rename_dialog.setTextValue("my-vae")
    panel.rename_dialog.accept()
    assert "already a run" in window.message_box.text() and other.run.path.exists()
    window.message_box.close()
    panel.rename(other)
    panel.rename_dialog.setTextValue("a/b")
    panel.rename_dialog.accept()
    assert "without slashes" in window.message_box.text()


def test_delete_asks_first_and_never_removes_a_training_run(window, qtbot):
    panel = window.runs_panel
    state = panel.model.state_at(0)
    path = state.run.path
    window.session.set_active(state)
    panel.delete(state)
    box = panel.delete_box
    assert box.isVisible() and path.name in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert path.exists() and panel.model.rowCount() == 2
    panel.delete(state)
    panel.delete_box.button(QMessageBox.StandardButton.Yes).click()
    assert not path.exists() and panel.model.rowCount() == 1 and state not in window.session.runs
    assert window.session.active is None and "Deleted" in window.state_label.text()

    survivor = panel.model.state_at(0)
    window.session.set_active(survivor)
    window.resume_run(survivor, more_epochs=50)
    assert survivor.is_training
    panel.delete(survivor)
    assert panel.delete_box is None or not panel.delete_box.isVisible()
    assert "training" in window.message_box.text() and survivor.run.path.exists()
    survivor.stop()
    qtbot.waitUntil(lambda: not survivor.is_training, timeout=60_000)


def test_load_settings_into_the_panel(window):
    state = window.runs_panel.model.state_at(1)   # the VAE
    window.session.set_active(state)
    window.runs_panel.load_settings_action.trigger()
    p = window.training_panel
    assert window.session.active is None and p.is_editable()
    assert p.model.currentData() == state.model_cfg.variant and p.latent.value() == state.model_cfg.latent_dim
    assert p.hidden.text() == ", ".join(map(str, state.model_cfg.hidden))


def test_evaluate_on_request_shows_the_nll_in_the_background(window, qtbot):
    state = window.runs_panel.model.state_at(1)   # the VAE: it has a density
    window.session.set_active(state)
    window.runs_panel.evaluate_action.trigger()
    assert window.metrics_runner.is_busy() and cell(window, 1, "NLL") == "…"   # not on the GUI thread
    qtbot.waitUntil(lambda: not window.metrics_runner.is_busy(), timeout=60_000)
    nll = float(cell(window, 1, "NLL"))
    assert nll == pytest.approx(state.run.load_metrics()["nll"], abs=0.01) and nll > 0
    assert "K = 200" in cell(window, 1, "NLL", Qt.ItemDataRole.ToolTipRole)
    assert "nats per image" in window.state_label.text()
    ae = window.runs_panel.model.state_at(0)
    window.training.evaluate_run(ae)
    qtbot.waitUntil(lambda: not window.metrics_runner.is_busy(), timeout=60_000)
    assert cell(window, 0, "NLL") == "—" and ae.metrics is not None   # an AE has no density: no NLL


def test_an_evaluation_can_be_cancelled_and_writes_nothing(window, qtbot):
    state = window.runs_panel.model.state_at(1)
    window.metrics_runner.nll_samples = 100_000   # long enough to be stopped midway
    window.training.evaluate_run(state)
    window.metrics_runner.cancel()
    qtbot.waitUntil(lambda: not window.metrics_runner.is_busy(), timeout=60_000)
    assert not (state.run.path / "metrics.json").exists() and state.metrics is None
    assert "stopped" in state.metrics_note


def test_metrics_appear_after_a_run_finishes(window, qtbot):
    p = window.training_panel
    window.new_run()
    p.dataset.setCurrentIndex(p.dataset.findData("digits"))
    p.model.setCurrentIndex(p.model.findData("vae"))
    p.hidden.setText("32")
    p.epochs.setValue(1)
    p.batch.setValue(64)
    p.start.click()
    state = window.session.active
    qtbot.waitUntil(lambda: state.status == "completed" and not state.is_training, timeout=60_000)
    qtbot.waitUntil(lambda: state.metrics is not None, timeout=60_000)
    assert window.runs_panel.model.state_at(0) is state and float(cell(window, 0, "NLL")) > 0
    assert (state.run.path / "metrics.json").is_file()


def test_the_app_reads_its_library_behind_the_shown_window(qtbot, runs_dir, tmp_path):
    """At launch (a deferred window) runs join the library as they are read on a background
    thread; a broken folder is named, and closing while it reads ends the thread."""
    (runs_dir / "broken").mkdir()
    (runs_dir / "broken" / "config.json").write_text("{")
    w = MainWindow(runs_dir=tmp_path / "empty")
    qtbot.addWidget(w)
    w.library.runs_dir = runs_dir
    w.library.load(background=True)
    assert w.library.loading() and w.state_label.full_text().startswith("Reading 3 saved run(s)")
    qtbot.waitUntil(lambda: not w.library.loading(), timeout=30_000)
    from engine.runs import list_runs
    assert w.runs_panel.model.rowCount() == 2
    assert [w.runs_panel.model.state_at(r).run.path for r in range(2)] == \
        [p for p in list_runs(runs_dir) if p.name != "broken"], "newest first, as when read at once"
    assert "1 folder(s)" in w.state_label.full_text() and "broken" in w.state_label.toolTip()
    shutil.rmtree(runs_dir / "broken")
    w.library.runs_dir = tmp_path / "again"
    shutil.copytree(runs_dir, w.library.runs_dir)
    w.library.load(background=True)   # and closed at once, while it reads
    w.close()
    assert not w.library.task.is_running()
    close_window(w)


def test_a_run_opened_from_another_folder_is_listed_after_a_relaunch_until_forgotten(qtbot, tmp_path, runs_dir,
                                                                                      run_paths):
    """File → Open run on a CLI --out folder: the library remembers it (QSettings) and lists it at the
    next launch; "Forget this run" takes it off the list and leaves its folder on disk."""
    from PySide6.QtCore import QSettings
    elsewhere = shutil.copytree(run_paths[0], tmp_path / "cli-out" / "vae-elsewhere").resolve()
    ini = str(tmp_path / "settings" / "latent-explorer.ini")

    def launch():
        return open_window(qtbot, runs_dir, settings=QSettings(ini, QSettings.Format.IniFormat))

    def listed(w):
        model = w.runs_panel.model
        return [model.state_at(r).run.path.resolve() for r in range(model.rowCount())]

    w = launch()
    w.open_run(elsewhere)
    close_window(w)
    w.close()
    w = launch()
    assert elsewhere in listed(w) and len(listed(w)) == 3, "the two of the runs folder and the opened one"
    panel = w.runs_panel
    w.session.set_active(w.session.find(runs_dir / run_paths[1].name))
    panel._update_menu()
    assert not panel.forget_action.isEnabled(), "a run of the runs folder is listed by its folder: nothing to forget"
    w.session.set_active(w.session.find(elsewhere))
    panel._update_menu()
    assert panel.forget_action.isEnabled()
    panel.forget_action.trigger()
    assert elsewhere not in listed(w) and "Forgot vae-elsewhere" in w.state_label.full_text()
    close_window(w)
    w.close()
    w = launch()
    assert elsewhere not in listed(w) and len(listed(w)) == 2
    assert (elsewhere / "config.json").is_file(), "forgetting deletes nothing"
    close_window(w)


def test_a_remembered_run_folder_that_has_gone_is_dropped_with_a_note(qtbot, tmp_path, runs_dir, run_paths):
    from PySide6.QtCore import QSettings
    elsewhere = shutil.copytree(run_paths[0], tmp_path / "cli-out" / "gone-soon").resolve()
    settings = QSettings(str(tmp_path / "settings" / "latent-explorer.ini"), QSettings.Format.IniFormat)
    w = open_window(qtbot, runs_dir, settings=settings)
    w.open_run(elsewhere)
    close_window(w)
    w.close()
    shutil.rmtree(elsewhere)
    w = open_window(qtbot, runs_dir, settings=settings)
    assert w.runs_panel.model.rowCount() == 2 and not w.message_box, "dropped without a dialog"
    assert "no longer exist" in w.state_label.full_text() and str(elsewhere) in w.state_label.toolTip()
    assert not w.library.folders(), "and off the list for good"
    close_window(w)


def test_settings_nested_too_deeply_are_ignored_at_launch(qtbot, tmp_path, runs_dir):
    """Fault 2 in the settings: a last-configs or folders value nested 100,000 deep raised RecursionError
    while the window restored itself; now the defaults stay and the window comes up."""
    from PySide6.QtCore import QSettings
    settings = QSettings(str(tmp_path / "settings" / "nested.ini"), QSettings.Format.IniFormat)
    nested = "[" * 100_000 + "]" * 100_000
    settings.setValue("last_configs", nested)
    settings.setValue("library/folders", nested)
    settings.sync()
    w = open_window(qtbot, runs_dir, settings=settings)
    qtbot.waitUntil(lambda: w.views_built, timeout=30_000)
    w.layout_settings.restore()
    assert w.library.folders() == []
    close_window(w)
