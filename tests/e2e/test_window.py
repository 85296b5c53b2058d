"""The real window, offscreen, driven the way a person drives it."""

import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from explorer.window.main_window import MainWindow

KEY_WIDGETS = ["trainingPanel", "datasetCombo", "modelCombo", "latentDimSpin", "epochsSpin", "startButton",
               "pauseButton", "stopButton", "lossPlot", "latentView", "decoderCanvas", "runsList"]


def configure(w, model="vae", epochs=200, latent=2, hidden="64, 32"):
    p = w.training_panel
    p.dataset.setCurrentIndex(p.dataset.findData("digits"))
    p.model.setCurrentIndex(p.model.findData(model))
    p.latent.setValue(latent)
    p.hidden.setText(hidden)
    p.epochs.setValue(epochs)
    p.batch.setValue(64)


def drag_on_map(w, qtbot, fx, fy):
    vp = w.latent_view.plot.viewport()
    pos = QPointF(vp.width() * fx, vp.height() * fy)
    for kind, buttons in ((QMouseEvent.MouseButtonPress, Qt.LeftButton), (QMouseEvent.MouseMove, Qt.LeftButton)):
        QApplication.sendEvent(vp, QMouseEvent(kind, pos, vp.mapToGlobal(pos), Qt.LeftButton, buttons, Qt.NoModifier))
    QApplication.sendEvent(vp, QMouseEvent(QMouseEvent.MouseButtonRelease, pos, vp.mapToGlobal(pos), Qt.LeftButton,
                                           Qt.NoButton, Qt.NoModifier))
    qtbot.wait(20)
    return w.decoder_canvas.current_image().copy()


def test_key_widgets_have_stable_names(window):
    for name in KEY_WIDGETS:
        widget = window.findChild(QWidget, name)
        assert widget is not None, name
        assert widget.accessibleName(), name


def test_train_watch_drag_pause_stop(window, qtbot):
    configure(window)
    assert window.training_panel.start.isEnabled()
    window.training_panel.start.click()
    state = window.session.active
    assert state is not None and state.status == "running"
    qtbot.waitUntil(lambda: len(state.history.steps) >= 40 and state.probe is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.latent_view.points.n_points == len(state.probe.codes), timeout=10_000)
    first = drag_on_map(window, qtbot, 0.2, 0.2)
    second = drag_on_map(window, qtbot, 0.8, 0.8)
    assert first.shape == second.shape and not np.allclose(first, second), "dragging changes the decoded pixels"

    window.training_panel.pause.click()
    assert state.status == "paused" and window.training_panel.pause.text() == "Resume"
    qtbot.wait(300)
    step = state.step
    qtbot.wait(400)
    assert state.step == step, "no progress while paused"
    window.training_panel.pause.click()
    qtbot.waitUntil(lambda: state.step > step, timeout=30_000)
    window.training_panel.stop.click()
    qtbot.waitUntil(lambda: state.status == "stopped", timeout=30_000)
    qtbot.waitUntil(lambda: not state.is_training, timeout=10_000)
    assert state.run.file("weights.safetensors").exists()


def test_closing_during_training_stops_and_saves_quickly(qtbot, tmp_path):
    w = MainWindow(runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.show()
    configure(w)
    w.training_panel.start.click()
    state = w.session.active
    qtbot.waitUntil(lambda: state.step >= 10, timeout=60_000)
    t0 = time.perf_counter()
    w.close()
    elapsed = time.perf_counter() - t0
    assert not state.is_training and state.status == "stopped"
    assert elapsed < 2.0, elapsed
    assert state.run.file("weights.safetensors").exists()


def test_a_saved_run_opens_and_is_explorable(window, qtbot, tmp_path):
    from engine.training import Trainer
    from tests.engine.helpers import DIGITS, quick_train, small_model
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=2), run_parent=tmp_path / "saved")
    trainer.run_to_end()
    state = window.open_run(trainer.run.path)
    assert state is window.session.active and state.probe is not None
    qtbot.waitUntil(lambda: window.latent_view.points.n_points == len(state.probe.codes), timeout=10_000)
    a = drag_on_map(window, qtbot, 0.25, 0.3)
    b = drag_on_map(window, qtbot, 0.75, 0.7)
    assert not np.allclose(a, b)
    assert window.runs_panel.findChild(QWidget, "runsList").model().rowCount() == 1


def test_a_corrupt_run_folder_is_one_message(window, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{ nope")
    assert window.open_run(tmp_path / "bad") is None
    assert window.message_box is not None and "damaged" in window.message_box.text()
    assert window.isVisible()


def test_bad_data_is_one_message_and_the_window_stays_usable(window, qtbot, tmp_path):
    p = window.training_panel
    p.dataset.setCurrentIndex(p.dataset.findData("folder"))
    p.path.setText(str(tmp_path))  # an empty folder
    p.start.click()   # a folder loads in the background: its error arrives as the load ends
    qtbot.waitUntil(lambda: window.message_box is not None, timeout=10_000)
    assert str(tmp_path) in window.message_box.text() and not window.training.is_loading_dataset()
    assert not window.session.runs and not p.load_row.isVisible()


def test_invalid_values_are_refused_inline(window):
    p = window.training_panel
    p.hidden.setText("512, lots")
    assert not p.start.isEnabled() and "Hidden widths" in p.error.text()
    p.hidden.setText("64")
    p.lr.setText("-1")
    assert not p.start.isEnabled() and "learning rate" in p.error.text()
    p.lr.setText("1e-3")
    assert p.start.isEnabled()


def test_variant_parameters_show_only_when_they_apply(window):
    p = window.training_panel
    p.model.setCurrentIndex(p.model.findData("beta_vae"))
    assert "beta" in p.params.editors and p.params.editors["beta"].isVisibleTo(p)
    assert p.params.editors["warmup_epochs"].text() == "0"   # not 0.0000
    p.model.setCurrentIndex(p.model.findData("ae"))
    assert not p.params.editors and p.params.visible_names() == []
    p.model.setCurrentIndex(p.model.findData("denoising_ae"))
    assert set(p.params.editors) == {"noise", "level"}
    noise = p.params.editors["noise"]
    assert noise.currentText() == "Gaussian" and noise.currentData() == "gaussian"   # words shown, key stored
    noise.setCurrentIndex(noise.findData("salt_pepper"))
    assert noise.currentText() == "Salt and pepper" and p.configs()[1].params.noise == "salt_pepper"
    p.model.setCurrentIndex(p.model.findData("sparse_ae"))
    penalty = p.params.editors["penalty"]
    assert penalty.currentData() == "l1" and "target" not in p.params.visible_names()   # ρ only for KL
    assert not p.params.editors["target"].isVisibleTo(p)
    penalty.setCurrentIndex(penalty.findData("kl"))
    assert "target" in p.params.visible_names() and p.params.editors["target"].isVisibleTo(p)


def test_variant_fields_line_up_with_the_rest(window):
    """The variant's own fields are rows of the model form: their editors start where the others do."""
    p = window.training_panel
    p.model.setCurrentIndex(p.model.findData("beta_vae"))
    window.resize(1280, 770)
    QApplication.processEvents()
    x_of = lambda w: w.mapTo(p, w.rect().topLeft()).x()  # noqa: E731
    assert x_of(p.params.editors["beta"]) == x_of(p.latent) == x_of(p.hidden)


def test_layout_and_choices_are_restored(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(settings=settings, runs_dir=tmp_path)
    qtbot.addWidget(w)
    configure(w, model="sparse_ae", latent=5)
    w.docks["runs"].hide()
    w.close()
    again = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat), runs_dir=tmp_path)
    qtbot.addWidget(again)
    assert again.training_panel.model.currentData() == "sparse_ae"
    assert again.training_panel.latent.value() == 5
    assert again.docks["runs"].isHidden()
    again.close()


def focus_chain_from(window, qtbot, start, presses: int = 60) -> list:
    start.setFocus()
    qtbot.waitUntil(start.hasFocus)
    seen = []
    for _ in range(presses):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    return seen


def test_tab_moves_between_the_widgets_and_leaves_the_runs_table(window, qtbot, run_paths):
    """Tab entered the runs table and never left it, moving cell by cell and switching the shown
    run at each row; now it goes panel → map → decoder → loss controls → runs → Open/Resume."""
    for path in run_paths:
        window.open_run(path)
    qtbot.wait(50)   # new sliders show at the next pass of the event loop
    active = window.session.active
    seen = focus_chain_from(window, qtbot, window.training_panel.start)
    names = [w.objectName() for w in seen]
    for name in ("latentPlot", "latentSlider0", "lossSmoothing", "runsList", "openRunButton"):
        assert name in names, (name, names)
    i = names.index("runsList")
    assert names[i + 1] != "runsList"   # one Tab into the table, the next one out of it
    assert names.index("projectionCombo") < names.index("latentSlider0") < names.index("lossSmoothing") < i
    assert window.session.active is active   # tabbing through switched no run


def test_focus_stays_where_the_person_was_after_resume(window, qtbot, run_paths):
    state = window.open_run(run_paths[0])
    resume = window.runs_panel.resume_button
    resume.setFocus()
    qtbot.waitUntil(resume.hasFocus)
    resume.click()
    dialog = window.resume_dialog   # how many more epochs?
    assert dialog is not None and dialog.isVisible()
    dialog.setIntValue(1)
    dialog.accept()
    assert state.is_training
    assert QApplication.focusWidget() is not window.loss_plot.smoothing
    assert window.runs_panel.isAncestorOf(QApplication.focusWidget())
    qtbot.waitUntil(lambda: not state.is_training, timeout=60_000)


def test_a_long_message_is_a_dialog_and_a_short_status(window):
    message = ("MNIST is not in /home/someone/.local/share/latent-explorer/data/MNIST/raw: place "
               "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
               "t10k-labels-idx1-ubyte there (plain or .gz), or press Download.")
    width = window.width()
    window.show_error(message, "The dataset could not be loaded")
    assert window.message_box.text() == message
    shown = window.state_label.text()
    assert len(shown) < len(message) and window.state_label.toolTip() == message
    assert window.state_label.fontMetrics().horizontalAdvance(shown) <= window.state_label.width()
    assert window.width() == width


def test_title_names_the_active_run_and_the_window_has_an_icon(window, run_paths):
    assert window.windowTitle() == "Latent Explorer" and not window.windowIcon().isNull()
    state = window.open_run(run_paths[0])
    assert state.name in window.windowTitle()


def test_help_lists_the_shortcuts_and_about_shows_the_version(window):
    from explorer.window.status_bar import app_version
    rows = dict((what, keys) for keys, what in window.menu_actions.shortcut_rows())
    for what in ("Raw 2-D", "PCA", "UMAP", "Zoom map to fit", "Resume run", "Start", "Keyboard shortcuts"):
        assert what in rows, (what, rows)
    assert rows["PCA"] == "Ctrl+2" and rows["Resume run"] == "Ctrl+R"
    keys = [keys for keys, _ in window.menu_actions.shortcut_rows()]
    assert keys.index("Ctrl+1") < keys.index("Ctrl+2") < keys.index("Ctrl+3")   # by key, not by action name
    assert keys.index("F5") < keys.index("F6") < keys.index("Shift+F5")
    gestures = " ".join(keys)
    for gesture in ("Left drag", "Shift+drag", "Ctrl+Shift+drag", "Wheel", "Right / middle drag", "Hover"):
        assert gesture in gestures, gesture
    window.menu_actions.show_shortcuts()
    assert "Ctrl+2" in window.message_box.text() and "lasso" in window.message_box.text()
    window.menu_actions.about()
    assert app_version() in window.message_box.text() and app_version()[0].isdigit()


def test_the_projection_shortcut_switches_the_map(window, run_paths):
    window.open_run(run_paths[0])
    action = next(a for a in window.latent_view.projection_actions() if a.objectName() == "projection_pca")
    action.trigger()
    assert window.latent_view.projection == "pca" and window.latent_view.projection_combo.currentData() == "pca"
    window.latent_view.set_projection("raw")
    assert not action.isChecked()


def test_projection_and_loss_dock_size_are_restored_on_relaunch(qtbot, tmp_path):
    path = str(tmp_path / "settings.ini")
    w = MainWindow(settings=QSettings(path, QSettings.IniFormat), runs_dir=tmp_path)
    qtbot.addWidget(w)
    w.resize(1280, 760)
    w.show()
    qtbot.waitExposed(w)
    w.latent_view.set_projection("pca")
    w.resizeDocks([w.docks["loss"]], [320], Qt.Vertical)
    QApplication.processEvents()
    height = w.docks["loss"].height()
    w.close()
    again = MainWindow(settings=QSettings(path, QSettings.IniFormat), runs_dir=tmp_path)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    QApplication.processEvents()
    assert again.latent_view.projection == "pca"
    assert abs(again.docks["loss"].height() - height) <= 2, (again.docks["loss"].height(), height)
    again.close()


def test_the_idle_status_bar_keeps_no_stale_rate(window, qtbot):
    configure(window, epochs=200)
    window.training_panel.start.click()
    state = window.session.active
    qtbot.waitUntil(lambda: bool(window.speed_label.text()), timeout=60_000)
    assert "samples/s" in window.speed_label.text() and window.eta_label.text().startswith("ETA")
    window.training_panel.stop.click()
    qtbot.waitUntil(lambda: not state.is_training, timeout=30_000)
    # the run's end reaches the status bar through the thread's queued last signals: wait for them, then
    # the rate must be gone (a stale one stayed before) and stay gone
    qtbot.waitUntil(lambda: state.status != "running", timeout=10_000)
    qtbot.wait(300)
    assert window.speed_label.text() == "" and window.eta_label.text() == ""


def test_the_window_shows_before_torch_is_imported(tmp_path):
    """The frame, its menus and placeholders come up before torch is imported (torch alone takes
    about 2 s); the views are built behind it.  With settings, as the app runs: the queue file's
    name came from the queue module, which imports torch (the window showed after 1.4 s)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    code = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from PySide6.QtCore import QSettings
from explorer.window.main_window import MainWindow
w = MainWindow(deferred=True, settings=QSettings(sys.argv[1], QSettings.Format.IniFormat))
w.show(); app.processEvents()
assert 'torch' not in sys.modules, 'torch imported before the window was shown'
assert w.isVisible() and w.menuBar().actions()
done = []
w.build_views_in_background(then=lambda: (done.append(w.training_panel.isVisible()), app.quit()))
app.exec()
assert done == [True] and 'torch' in sys.modules
print('ok')
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "settings.ini")], cwd=root, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
                              "XDG_DATA_HOME": str(tmp_path)})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


@pytest.mark.parametrize("bad", [None, "a string"])
def test_a_run_with_a_bad_validation_value_does_not_crash_the_window(tmp_path, run_paths, bad):
    """It segfaulted in the runs table's paint (exit 139) when the history held a null or a string
    among its validation losses: in a child process, so a crash fails this test and not the run."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    run = tmp_path / run_paths[0].name
    shutil.copytree(run_paths[0], run)
    from engine.runs import Run
    history_path = Run.open(run).file("history.json")
    history = json.loads(history_path.read_text())
    history["val"]["total"][0] = bad
    history_path.write_text(json.dumps(history))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "main.py"), str(run)], cwd=root, capture_output=True, text=True,
                         timeout=180, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
                                           "XDG_DATA_HOME": str(tmp_path), "LATENT_EXPLORER_LAUNCH_PROBE": "1"})
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert "built" in out.stdout


def test_an_image_folder_with_unreadable_files_trains_and_the_panel_counts_them(window, qtbot, tmp_path):
    """Issue 11: one unreadable file no longer aborts the dataset; the panel says how many were skipped."""
    from PIL import Image
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / label / f"{i}.png")
    (folder / "a" / "broken.png").write_bytes(b"not a png")
    (folder / "b" / "notes.txt").write_text("not an image file, so not counted")
    p = window.training_panel
    configure(window, epochs=1, hidden="16")
    p.dataset.setCurrentIndex(p.dataset.findData("folder"))
    p.path.setText(str(folder))
    p.start.click()
    qtbot.waitUntil(lambda: window.session.active is not None and window.session.active.status in ("completed",
                                                                                                   "running"),
                    timeout=60_000)
    qtbot.waitUntil(lambda: "skipped" in p.notice.text(), timeout=10_000)
    assert "1 file skipped: not images PIL can read (broken.png)" in p.notice.text(), p.notice.text()
    window.session.stop_all(10_000)
