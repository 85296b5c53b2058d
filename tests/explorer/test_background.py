"""explorer.tasks: one task type (a function or a generator on a QThread, its signals back on the
GUI thread) and one registry of every thread, which closing and the tests' fixture see."""

import threading
import time

from explorer.tasks import BackgroundTask, live_threads, running_tasks, wait_for_tasks


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


def test_a_generators_values_arrive_in_order_on_the_gui_thread_then_its_return_value(qtbot):
    def count(_progress):
        yield from range(50)
        return "counted"
    task = BackgroundTask(count)
    values, threads = [], set()
    task.progressed.connect(lambda v: (values.append(v), threads.add(threading.current_thread())))
    with qtbot.waitSignal(task.finished, timeout=10_000) as blocker:
        task.start()
    assert blocker.args == ["counted"] and values == list(range(50))
    assert threads == {threading.main_thread()}
    assert task.wait(5000)


def _ticker(ticks: list, gate: threading.Event | None = None):
    def tick(_progress):
        i = 0
        while True:
            if gate is not None:
                gate.wait(5)
            ticks.append(i)
            yield i
            i += 1
            time.sleep(0.005)
    return tick


def test_pause_holds_a_generator_between_two_yields_and_stop_ends_it(qtbot):
    ticks: list = []
    task = BackgroundTask(_ticker(ticks))
    finished = []
    task.finished.connect(finished.append)
    task.start()
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=5000)
    task.pause()
    assert task.is_paused()
    time.sleep(0.05)   # at most one more step after the pause
    held = len(ticks)
    time.sleep(0.2)
    assert len(ticks) == held and task.is_running()
    task.resume()
    qtbot.waitUntil(lambda: len(ticks) >= held + 3, timeout=5000)
    task.stop()
    assert task.wait(5000)
    qtbot.waitUntil(lambda: finished == [None], timeout=5000)   # a stopped generator still reports its end


def test_starting_an_owners_task_cancels_its_previous_one(qtbot):
    owner = object()
    first_ticks: list = []
    first = BackgroundTask(_ticker(first_ticks), owner=owner)
    second = BackgroundTask(lambda progress: "second", owner=owner)
    other = BackgroundTask(_ticker([]), owner=object())   # another owner's task is left alone
    heard = []
    first.finished.connect(lambda v: heard.append(("first", v)))
    first.progressed.connect(lambda v: heard.append(("first progressed", v)))
    second.finished.connect(lambda v: heard.append(("second", v)))
    first.start()
    other.start()
    qtbot.waitUntil(lambda: len(first_ticks) >= 2, timeout=5000)
    second.start()
    assert first.is_cancelled() and not other.is_cancelled()
    assert first.wait(5000) and second.wait(5000)
    heard.clear()   # what came before the cancel
    qtbot.waitUntil(lambda: ("second", "second") in heard, timeout=5000)
    qtbot.wait(50)
    assert heard == [("second", "second")]   # nothing of the cancelled task after its cancel
    assert other.is_running()
    other.stop()
    assert other.wait(5000)


def test_the_registry_sees_every_kind_of_task(qtbot):
    """A plain task, a training, the projection service's long-lived thread and the launch
    preload: all in live_threads() while they run, none once they have ended."""
    from engine.datasets import load_dataset
    from engine.training import Trainer
    from explorer.map.projection_worker import ProjectionWorker
    from explorer.tasks import TrainingTask
    from explorer.window.runtime import preload_in_background
    from tests.engine.helpers import DIGITS, quick_train, small_model

    gate = threading.Event()
    plain = BackgroundTask(lambda progress: gate.wait(10))
    training = TrainingTask(Trainer(DIGITS, small_model("vae"), quick_train(epochs=200, report_every=1),
                                    dataset=load_dataset(DIGITS)))
    projections = ProjectionWorker()
    plain.start()
    with qtbot.waitSignal(training.progressed, timeout=60_000):
        training.start()
    projections._start_thread()   # its thread, as a request or a warm-up starts it
    preload = preload_in_background()
    try:
        names = sorted(t.objectName() for t in live_threads())
        assert names == sorted(["task", "training", "projection", "preload"])
        assert {plain, training, preload} <= set(running_tasks())
        assert live_threads("training") == [training.thread]
    finally:
        gate.set()
        training.stop()
        assert projections.shutdown()
        assert wait_for_tasks(120_000)
    assert live_threads() == [] and running_tasks() == []


def test_the_fixtures_check_fails_a_test_that_leaks_a_task(qtbot):
    from tests.conftest import leaked_threads, running_threads

    before = running_threads()
    gate = threading.Event()
    leak = BackgroundTask(_ticker([], gate), name="leaky")
    leak.start()
    assert leaked_threads(before) == ["leaky (QThread)"]   # (and the check ends it: cancelled, waited for)
    gate.set()
    assert leak.wait(5000) and leak.is_cancelled()
    assert leaked_threads(before) == []
    running = BackgroundTask(_ticker([], gate))   # a thread that ran before the test is not its leak
    running.start()
    assert leaked_threads(running_threads()) == []
    running.stop()
    assert running.wait(5000)


def test_closing_the_window_waits_for_every_task(qtbot, tmp_path):
    """A task the window knows nothing about by name (parented to it, as exports and loads are):
    closing waits for its thread, so that no running QThread is ever destroyed."""
    from tests.window_fixtures import open_window
    w = open_window(qtbot, tmp_path / "runs")
    task = BackgroundTask(lambda progress: time.sleep(1.0) or "written", w)
    task.start()
    w.close()
    assert not task.is_running()
    w.latent_view.shutdown()


def test_a_window_closed_while_the_engine_loads_waits_for_the_import(qtbot, tmp_path, monkeypatch):
    """The launch's import of the engine is a task too: a window closed before its views are built
    waits for it, rather than leave a thread importing into an exiting interpreter."""
    import explorer.window.engine_import as engine_import
    import explorer.window.main_window as main_window
    (tmp_path / "slow_engine_module.py").write_text("import time\ntime.sleep(1.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(engine_import, "ENGINE_MODULES", ("slow_engine_module",))
    w = main_window.MainWindow(runs_dir=tmp_path / "runs", deferred=True)
    qtbot.addWidget(w)
    w.show()
    w.build_views_in_background()
    assert [t.objectName() for t in live_threads()] == ["engine-import"]
    w.close()
    assert running_tasks() == []
    assert not any(t.name == "engine-import" and t.is_alive() for t in threading.enumerate())
