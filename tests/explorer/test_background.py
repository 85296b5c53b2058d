"""explorer.tasks.BackgroundTask: one function on a QThread, its result back on the GUI thread."""

import time

from explorer.tasks import BackgroundTask


def test_wait_returns_when_the_function_ends_while_the_gui_thread_waits(qtbot):
    """Closing the window waits for tasks under way on the GUI thread: the thread must end by
    itself, not through a quit() queued to the GUI thread (that waited out the whole timeout and
    then destroyed a running thread: an abort)."""
    task = BackgroundTask(lambda progress: time.sleep(0.2) or "done")
    results = []
    task.finished.connect(results.append)
    task.start()
    started = time.monotonic()
    assert task.wait(10_000) and not task.is_running()
    assert time.monotonic() - started < 5
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)   # the result still comes, afterwards


def test_a_failure_is_one_sentence_and_ends_the_thread(qtbot):
    def fail(progress):
        raise ValueError("no such thing")
    task = BackgroundTask(fail)
    failures = []
    task.failed.connect(failures.append)
    task.start()
    assert task.wait(10_000)
    qtbot.waitUntil(lambda: failures == ["ValueError: no such thing"], timeout=5000)
