"""explorer.tasks.TrainingTask: a Trainer on a QThread emits its updates in strict order."""

from engine.datasets import load_dataset
from engine.training import Trainer
from explorer.tasks import TrainingTask
from tests.engine.helpers import DIGITS, quick_train, small_model


def make_thread(epochs=2, **kw):
    return TrainingTask(Trainer(DIGITS, small_model("vae"), quick_train(epochs=epochs, **kw),
                                  dataset=load_dataset(DIGITS)))


def test_signals_in_strict_order_to_the_end(qtbot):
    # one epoch, reports only at its end: the start, the epoch, then finished
    job = make_thread(epochs=1, report_every=10_000, probe_every=10_000, snapshot_every=10_000)
    w = job
    with qtbot.waitSignals([w.progressed, w.progressed, w.finished], order="strict", timeout=60_000,
                           check_params_cbs=[lambda u: u.kind == "progress" and u.step == 0,
                                             lambda u: u.kind == "epoch" and u.epoch == 1,
                                             lambda u: u.status == "completed"]):
        job.start()
    assert job.thread.wait(10_000)


def test_many_updates_arrive_in_step_order(qtbot):
    job = make_thread(epochs=2)
    updates = []
    job.progressed.connect(updates.append)
    with qtbot.waitSignal(job.finished, timeout=60_000):
        job.start()
    assert job.thread.wait(10_000)
    assert [u.kind for u in updates][-1] == "epoch" and len(updates) > 5
    steps = [u.step for u in updates]
    assert steps == sorted(steps)


def test_stop_mid_epoch(qtbot):
    job = make_thread(epochs=200, report_every=1)
    seen = []

    def on_progress(update):
        seen.append(update)
        if update.step == 3:
            job.stop()

    job.progressed.connect(on_progress)
    with qtbot.waitSignal(job.finished, timeout=60_000) as blocker:
        job.start()
    assert blocker.args[0].status == "stopped" and blocker.args[0].epoch == 0
    assert job.thread.wait(5000)


def test_pause_then_resume(qtbot):
    job = make_thread(epochs=200, report_every=1)
    job.progressed.connect(lambda u: u.step == 2 and job.pause())
    with qtbot.waitSignal(job.progressed, check_params_cb=lambda u: u.step == 2, timeout=60_000):
        job.start()
    qtbot.wait(300)
    assert job.trainer.paused
    job.resume()
    with qtbot.waitSignal(job.progressed, check_params_cb=lambda u: u.step >= 4, timeout=60_000):
        pass
    assert job.stop_and_wait()


def test_failure_is_a_message(qtbot):
    from engine.config import DataConfig
    trainer = Trainer(DataConfig(source="npz", path="/nonexistent.npz"), small_model("vae"), quick_train())
    job = TrainingTask(trainer)
    with qtbot.waitSignal(job.failed, timeout=30_000) as blocker:
        job.start()
    assert "nonexistent.npz" in blocker.args[0]
    assert job.thread.wait(5000)


def test_the_training_thread_runs_at_the_trainers_lowered_priority(qtbot, monkeypatch):
    """The trainer lowers its own thread's priority (engine.training.TRAIN_NICENESS) on the task's
    thread, not on the GUI thread."""
    import os
    import sys
    import threading

    import pytest

    import engine.training
    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are Linux's")
    gui_before = os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.setattr(engine.training, "TRAIN_NICENESS", gui_before + 5)
    job = make_thread(epochs=200, report_every=1)
    seen = {}

    original = engine.training.lower_thread_priority

    def lower_and_look(niceness):
        original(niceness)
        seen["tid"], seen["nice"] = threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0)

    monkeypatch.setattr(engine.training, "lower_thread_priority", lower_and_look)
    with qtbot.waitSignal(job.progressed, timeout=60_000):
        job.start()
    assert job.stop_and_wait()
    assert seen["nice"] == gui_before + 5 and seen["tid"] != threading.get_native_id()
    assert os.getpriority(os.PRIO_PROCESS, 0) == gui_before

