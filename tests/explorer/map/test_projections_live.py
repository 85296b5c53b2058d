"""UMAP and t-SNE on the latent map: live while a run trains, PCA with a note until the first
layout arrives, and a window that closes at once while a fit is under way."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.datasets import load_dataset
from explorer.map.latent_view import LatentView
from explorer.map.projection_worker import ProjectionWorker
from explorer.session import RunState, Session
from explorer.window.main_window import MainWindow
from tests.engine.helpers import DIGITS, quick_train, small_model

ROOT = Path(__file__).resolve().parents[3]   # the repository (this file is in tests/explorer/<package>/)


@pytest.fixture(scope="module")
def warm_worker():
    """One projection worker for the module, its child warmed up (UMAP compiled) once."""
    worker = ProjectionWorker()
    warmed = []
    worker.warmed.connect(warmed.append)
    worker.warm_up()
    from PySide6.QtCore import QCoreApplication
    deadline = time.monotonic() + 240
    while not warmed and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    assert warmed and warmed[0] is not None, "the projection process did not warm up"
    yield worker
    assert worker.shutdown()


def live_view(qtbot, worker=None) -> tuple[Session, LatentView]:
    session = Session()
    view = LatentView(session, worker=worker)
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show()
    return session, view


def training_state(session: Session, epochs: int) -> RunState:
    return session.add(RunState(DIGITS, small_model("vae", latent_dim=4), quick_train(epochs=epochs),
                                dataset=load_dataset(DIGITS)))


@pytest.mark.parametrize("name", ["umap", "tsne"])
def test_slow_maps_appear_and_update_while_a_run_trains(qtbot, tmp_path, warm_worker, name):
    session, view = live_view(qtbot, warm_worker)
    view.set_projection(name)
    assert view.projection_combo.currentData() == name
    state = training_state(session, epochs=1000)  # stopped below, long before its end
    arrivals = []
    view.live.arrived.connect(lambda result: arrivals.append((result[0], result[2].copy(), state.is_training)))
    try:
        state.start(tmp_path)
        qtbot.waitUntil(lambda: state.probe is not None, timeout=20_000)
        assert view.points.n_points == len(state.probe.codes)  # at once: PCA stands in
        qtbot.waitUntil(lambda: sum(1 for a in arrivals if a[2]) >= 3, timeout=90_000)
        shown = view._xy.copy()
    finally:
        state.stop_and_wait()
    during = [xy for n, xy, training in arrivals if training and n == name]
    assert len(during) >= 3
    assert not view.shows_placeholder and view.fitted_projection.name == name
    assert not np.allclose(during[0], during[-1])  # the layout followed the codes
    span = np.ptp(during[-2], axis=0).mean()
    assert np.linalg.norm(during[-1] - during[-2], axis=1).mean() < 0.5 * span  # a warm start drifts, no jump
    assert shown.shape == (len(state.probe.codes), 2) and np.isfinite(shown).all()
    code = view.map_to_code(*shown[7])  # the local inverse serves dragging on this layout
    assert code.shape == (4,) and np.isfinite(code).all()
    assert view.shutdown()


@pytest.mark.parametrize("name, title", [("umap", "UMAP"), ("tsne", "t-SNE")])
def test_a_new_run_shows_pca_at_once_with_a_note(qtbot, tmp_path, name, title):
    session, view = live_view(qtbot)  # its own worker: cold, so the slow layout takes a while
    view.set_projection(name)
    assert view.note.full_text() == "" and not view.busy.isVisible()
    state = training_state(session, epochs=1)
    try:
        state.start(tmp_path)
        qtbot.waitUntil(lambda: state.probe is not None, timeout=20_000)
        assert view.points.n_points == len(state.probe.codes)
        assert view.shows_placeholder and view.fitted_projection.name == "pca"
        assert view.note.full_text().startswith(f"{title} is being computed…") and "PCA" in view.note.full_text()
        assert view.busy.isVisible()
        if name == "umap":
            assert "compiles" in view.note.full_text()
    finally:
        state.stop_and_wait()
        assert view.shutdown()


def test_closing_during_the_first_umap_fit_returns_at_once(qtbot, tmp_path, run_paths):
    before = set(threading.enumerate())
    window = MainWindow(runs_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.open_run(run_paths[0])
    view = window.latent_view
    view.set_projection("umap")
    worker = view.worker
    assert view.live.in_flight() and not worker.is_warm()
    qtbot.waitUntil(worker.process.is_alive, timeout=5000)
    qtbot.wait(1500)  # the child is importing umap and compiling it now
    assert worker.is_busy()
    start = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"closing took {elapsed:.2f} s: it waited for the fit (16 s before)"
    assert not worker._thread.isRunning()
    assert not worker.process.is_alive()
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not left


def test_the_app_exits_at_once_when_closed_during_the_first_umap_fit(tmp_path, run_paths):
    """The process as ``main()`` runs it: closed 1.5 s into its first UMAP fit, it exits within
    seconds, not after the fit."""
    code = f"""
import sys, time
import explorer.window.start_up as app
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

def begin():
    window = next(w for w in QApplication.topLevelWidgets() if w.objectName() == "mainWindow")
    window.latent_view.set_projection("umap")
    def close():
        print("closing", time.perf_counter(), flush=True)
        window.close()
    QTimer.singleShot(1500, close)

app.preload_in_background = lambda: QTimer.singleShot(100, begin)
code = app.main([{str(run_paths[0])!r}])
print("exited", time.perf_counter(), flush=True)
sys.exit(code)
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    times = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines()
             if line.split()[:1] in (["closing"], ["exited"])}
    assert times["exited"] - times["closing"] < 2.0, times


def test_a_shown_map_warms_up_in_a_child_process_and_a_deleted_one_leaves_nothing(qtbot, monkeypatch):
    from shiboken6 import Shiboken

    monkeypatch.setenv("LATENT_EXPLORER_WARM_UP", "1")   # tests/conftest.py turns it off for the other tests
    session = Session()
    view = LatentView(session)
    view.show()
    worker = view.worker
    qtbot.waitUntil(worker.process.is_alive, timeout=5000)  # the window is up: the warm-up began
    assert worker.is_warming() and worker.process.pid != os.getpid()
    thread, process = worker._thread, worker.process
    assert thread.isRunning()
    Shiboken.delete(view)  # gone without shutdown(), as a view whose window was dropped
    assert not thread.isRunning() and not process.is_alive()


def test_a_tsne_map_never_waits_for_umaps_compilation(qtbot):
    worker = ProjectionWorker()
    events = []
    worker.computed.connect(lambda result: events.append("t-SNE map"))
    worker.warmed.connect(lambda seconds: events.append("umap compiled"))
    codes = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    try:
        worker.warm_up()  # the window is up
        worker.request("tsne", codes, perplexity=10.0)  # and t-SNE is chosen at once
        qtbot.waitUntil(lambda: len(events) == 2, timeout=120_000)
    finally:
        assert worker.shutdown()
    assert events == ["t-SNE map", "umap compiled"]
    assert worker.is_warm()


def test_maps_sharing_a_worker_each_get_their_layout_and_a_newer_request_replaces_only_its_own(qtbot):
    """The comparison's maps share one worker: each client's newest request is fitted, in turn,
    and cancelling one client leaves the others' requests alone."""
    worker = ProjectionWorker()
    got = []
    worker.computed.connect(lambda result: got.append(result[0]))
    rng = np.random.default_rng(0)
    codes = [rng.normal(size=(120, 4)).astype(np.float32) for _ in range(4)]
    try:
        a_old = worker.request("tsne", codes[0], client="a", perplexity=10.0)
        b = worker.request("tsne", codes[1], client="b", perplexity=10.0)
        a_new = worker.request("tsne", codes[2], client="a", perplexity=10.0)
        c = worker.request("tsne", codes[3], client="c", perplexity=10.0)
        worker.cancel("c")
        assert worker.latest_id_for("a") == a_new and worker.latest_id_for("c") == 0
        qtbot.waitUntil(lambda: set(got) >= {a_new, b}, timeout=120_000)
        qtbot.waitUntil(lambda: not worker.is_busy(), timeout=120_000)
    finally:
        assert worker.shutdown()
    assert a_old not in got and c not in got, "a replaced or cancelled request's result is dropped"
    assert sorted(got) == sorted({a_new, b})
