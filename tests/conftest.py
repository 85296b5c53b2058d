"""Shared test set-up: Qt offscreen, and no test may leave a training thread running."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LATENT_EXPLORER_SETTINGS", "memory")  # never touch the user's QSettings
os.environ.setdefault("LATENT_EXPLORER_WARM_UP", "0")  # no UMAP compilation behind every test window (tests that need it ask)

import threading  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves a Python thread or a training QThread running."""
    before = set(threading.enumerate())
    yield
    try:
        from engine.worker import live_threads
    except ImportError:
        live = []
    else:
        live = [t for t in live_threads() if t.isRunning()]
    extra = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not live, f"{len(live)} training thread(s) still running after the test"
    assert not extra, f"threads left running: {[t.name for t in extra]}"
