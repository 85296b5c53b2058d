"""Shared test set-up: Qt offscreen, and no test may leave a training thread running."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LATENT_EXPLORER_SETTINGS", "memory")  # never touch the user's QSettings
os.environ.setdefault("LATENT_EXPLORER_WARM_UP", "0")  # no UMAP compilation behind every test window (tests that need it ask)

import gc  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402

# Qt objects must die on the GUI thread: a collection that runs on a training thread and frees an
# earlier test's widgets deadlocks with the GUI thread (seen: QMenu's destructor against a QObject's,
# freed by gc in Module.__init__ on the trainer's thread).  As in the app (explorer/window/start_up.py), the
# collector runs on the main thread only: after each test.
gc.disable()


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves a Python thread or a training QThread running."""
    before = set(threading.enumerate())
    yield
    gc.collect()   # on the main thread (see gc.disable above)
    try:
        from engine.worker import live_threads
    except ImportError:
        live = []
    else:
        live = [t for t in live_threads() if t.isRunning()]
    extra = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not live, f"{len(live)} training thread(s) still running after the test"
    assert not extra, f"threads left running: {[t.name for t in extra]}"
