"""Shared test set-up: Qt offscreen, and no test may leave a thread running (a task of any kind)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LATENT_EXPLORER_SETTINGS", "memory")  # never touch the user's QSettings
os.environ.setdefault("LATENT_EXPLORER_WARM_UP", "0")  # no UMAP compilation behind every test window (tests that need it ask)

import gc  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402

# Qt objects must die on the GUI thread: a collection that runs on a training thread and frees an
# earlier test's widgets deadlocks with the GUI thread (seen: QMenu's destructor against a QObject's,
# freed by gc in Module.__init__ on the trainer's thread).  As in the app (explorer/window/start_up.py), the
# collector runs on the main thread only: after each test.
gc.disable()


def running_threads() -> set:
    """The Python threads alive and the task registry's threads running (explorer.tasks: tasks of
    every kind, training, the projection service, the preload)."""
    tasks = sys.modules.get("explorer.tasks")   # not imported: no task can have started
    return set(threading.enumerate()) | set(tasks.live_threads() if tasks is not None else ())


def leaked_threads(before: set) -> list[str]:
    """What a test left running that did not run ``before`` it (a module's fixture may keep a
    service's thread for its tests): every thread of the task registry, and the Python threads that
    are not daemons.  The registry's leaked tasks are cancelled and waited for, so that the next
    test starts clean."""
    tasks = sys.modules.get("explorer.tasks")
    leaked = []
    if tasks is not None:
        new = [t for t in tasks.live_threads() if t not in before]
        leaked = [f"{t.objectName()} (QThread)" for t in new]
        for task in tasks.running_tasks():
            if task.thread in new:
                task.cancel()
        for thread in new:
            thread.wait(10_000)
    leaked += [t.name for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    return leaked


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves a registered task's thread or a Python thread running."""
    before = running_threads()
    yield
    gc.collect()   # on the main thread (see gc.disable above)
    leaked = leaked_threads(before)
    assert not leaked, f"threads left running after the test: {leaked}"
