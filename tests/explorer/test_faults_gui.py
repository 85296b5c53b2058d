"""The fault matrix (issue 12), GUI side: tampered run folders open as one message (never a crash,
checked in a child process so that a segfault fails the test, not the run), a run trained by another
process is not resumed, an interrupted run says so, and nothing of ours outlives the window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from engine.runs import Run
from explorer.window.main_window import MainWindow
from tests.engine.test_faults import CONFIG_TAMPERINGS, HISTORY_TAMPERINGS, edit_json, tamper_file

ROOT = Path(__file__).resolve().parents[2]


def copy_run(run_paths, tmp_path, name: str) -> Path:
    return Path(shutil.copytree(run_paths[0], tmp_path / name))


CHILD = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])

    def report():
        windows = [w for w in app.topLevelWidgets() if w.objectName() == "mainWindow"]
        if not windows or not getattr(windows[0], "views_built", False):   # the views come behind the window
            QTimer.singleShot(250, report)
            return
        QTimer.singleShot(1000, finish)

    def finish():
        for widget in app.topLevelWidgets():
            if widget.objectName() == "errorMessage" and widget.isVisible():
                print("DIALOG:", widget.text().replace("\\n", " "), flush=True)
            if widget.objectName() == "mainWindow":
                widget.runs_panel.table.viewport().grab()   # paint the runs table once more
                print("ROWS:", widget.runs_panel.model.rowCount(), flush=True)
                widget.close()
        app.quit()

    QTimer.singleShot(1500, report)
    import main
    sys.exit(main.main(sys.argv[1:]))
""")


def test_a_tampered_history_does_not_crash_the_window(run_paths, tmp_path):
    """`python main.py RUN` with a null or a string among the validation losses used to segfault (139)."""
    good = copy_run(run_paths, tmp_path, "good")
    bad = []
    for case in ("val total null", "val total string", "val empty lists"):
        path = copy_run(run_paths, tmp_path, case.replace(" ", "-"))
        tamper_file(path, "history", HISTORY_TAMPERINGS[case])
        bad.append(path)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(good), *map(str, bad)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode not in (-11, 139), "the window crashed:\n" + proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    dialogs = [line for line in proc.stdout.splitlines() if line.startswith("DIALOG:")]
    assert len(dialogs) == 3, proc.stdout
    for path in bad:
        said = [line for line in dialogs if f"{path}/checkpoint-" in line]
        assert len(said) == 1 and "history.json is malformed: val['total']" in said[0], dialogs
    assert "ROWS: 1" in proc.stdout, "the good run opened beside them"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_every_tampering_is_one_message_and_the_window_stays_usable(window, run_paths, tmp_path, qtbot):
    cases = [("history", c) for c in HISTORY_TAMPERINGS] + [("config", c) for c in CONFIG_TAMPERINGS]
    for i, (which, case) in enumerate(cases):
        path = copy_run(run_paths, tmp_path, f"case{i}")
        tamper_file(path, which, (HISTORY_TAMPERINGS if which == "history" else CONFIG_TAMPERINGS)[case])
        assert window.open_run(path) is None, case
        text = window.message_box.text()
        assert f"{which}.json" in text and "\n" not in text and "Traceback" not in text, (case, text)
        window.message_box.close()
    assert not window.session.runs
    state = window.open_run(copy_run(run_paths, tmp_path, "fine"))
    assert state is not None and window.runs_panel.model.rowCount() == 1
    window.runs_panel.table.viewport().grab()   # the table paints its row without raising


def test_weights_of_another_model_are_one_message(window, run_paths, tmp_path):
    path = copy_run(run_paths, tmp_path, "mixed")
    other = Run.open(run_paths[1])   # an AE: its weights do not fit the VAE
    shutil.copyfile(other.file("weights.safetensors"), Run.open(path).file("weights.safetensors"))
    assert window.open_run(path) is None
    assert "does not fit" in window.message_box.text()


HOLDER = textwrap.dedent("""
    import sys, time
    from engine.runs import Run
    Run.open(sys.argv[1]).begin_training()
    print("holding", flush=True)
    sys.stdin.readline()
""")


def test_a_run_trained_by_another_process_is_not_resumed(window, run_paths, tmp_path, qtbot):
    path = copy_run(run_paths, tmp_path, "busy")
    state = window.open_run(path)
    assert state is not None and window.runs_panel.resume_button.isEnabled()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert holder.stdout.readline().strip() == "holding"
        config = (path / "config.json").read_bytes()
        window.resume_run(state, more_epochs=1)
        qtbot.waitUntil(lambda: not state.is_training, timeout=60_000)
        qtbot.waitUntil(lambda: window.message_box is not None and "being trained by" in window.message_box.text(),
                        timeout=10_000)
        assert f"process {holder.pid}" in window.message_box.text()
        assert (path / "config.json").read_bytes() == config, "the other process's run is untouched"
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()


def test_an_interrupted_run_says_so_and_can_be_resumed(window, run_paths, tmp_path):
    path = copy_run(run_paths, tmp_path, "killed")
    edit_json(path / "config.json", lambda d: d.update(status="running"))   # as a kill -9 leaves it
    run = Run.open(path)
    assert run.interrupted and run.status_text == f"interrupted at step {run.step}"
    state = window.open_run(path)
    assert state.status == "stopped" and state.reason.startswith(f"Interrupted at step {run.step}")
    assert window.runs_panel.resume_button.isEnabled()
    assert json.loads((path / "config.json").read_text())["status"] == "running", "opening writes nothing"


def test_nothing_of_ours_outlives_the_window(qtbot, tmp_path):
    from tqdm import tqdm
    from tqdm.auto import tqdm as auto_tqdm
    w = MainWindow(runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.show()
    p = w.training_panel
    p.dataset.setCurrentIndex(p.dataset.findData("digits"))
    p.hidden.setText("32")
    p.epochs.setValue(50)
    p.start.click()
    state = w.session.active
    qtbot.waitUntil(lambda: state.step >= 20, timeout=60_000)
    with open(os.devnull, "w") as devnull:
        for bar_class in (tqdm, auto_tqdm):   # as UMAP's neighbour search does
            with bar_class(total=1, disable=False, file=devnull) as bar:
                bar.update(1)
    names = {t.name for t in threading.enumerate()}
    assert "tqdm_monitor" in names and any(n.startswith("Dummy-") for n in names), names
    w.close()
    left = [t.name for t in threading.enumerate() if t.name == "tqdm_monitor" or t.name.startswith("Dummy-")]
    assert not left, left
