"""The trainer's loop calls its hooks (probe, snapshot, checkpoint, movie, and any given) at the
right moments, and its updates carry the one smoothed rate and ETA (engine/rate_meter.py)."""

import itertools
import math
import threading

import numpy as np
import pytest

from engine.batches import Batches, StepLog
from engine.datasets import load_dataset
from engine.rate_meter import RateMeter
from engine.training import Trainer
from engine.training_hooks import TrainingHook
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


class Recorder(TrainingHook):
    def __init__(self):
        self.calls = []

    def on_start(self, state):
        self.calls.append(("start", state.step, state.probe is not None))

    def on_step(self, state):
        self.calls.append(("step", state.step, None))

    def on_epoch_end(self, state):
        self.calls.append(("epoch", state.epoch, state.improved))

    def on_finish(self, state):
        self.calls.append(("finish", state.status, state.snapshot is not None))


def test_a_given_hook_is_called_at_start_each_step_each_epoch_and_finish_after_the_trainers_own(digits):
    recorder = Recorder()
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=2), dataset=digits, hooks=[recorder])
    last = trainer.run_to_end()
    steps = [c[1] for c in recorder.calls if c[0] == "step"]
    assert steps == list(range(1, last.step + 1))
    assert recorder.calls[0] == ("start", 0, True), "after the probe hook's first probe"
    assert [c[:2] for c in recorder.calls if c[0] == "epoch"] == [("epoch", 1), ("epoch", 2)]
    assert next(c for c in recorder.calls if c[0] == "epoch")[2] is True, "the first epoch is the best so far"
    assert recorder.calls[-1] == ("finish", "completed", True), "after the snapshot hook's last copy"


def test_progress_updates_carry_the_smoothed_rate_and_the_eta_from_it(digits):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1, report_every=1), dataset=digits)
    clock = itertools.count(0.0, 1.0)                     # each reading one second later
    trainer._rate = RateMeter(clock=lambda: float(next(clock)))
    updates = list(trainer.updates())
    progress = [u for u in updates if u.kind == "progress"]
    assert progress[0].samples_per_sec == 0 and math.isnan(progress[0].eta_s)   # nothing measured yet
    batch = quick_train().batch_size
    full = [u for u in progress[2:] if u.step * batch <= len(digits.train)]
    assert full and all(u.samples_per_sec == pytest.approx(batch) for u in full), "one batch a second"
    per_step = len(digits.train) / len(Batches(digits.train.images, digits.train.labels, batch))
    for u in full:
        assert u.eta_s == pytest.approx((u.total_steps - u.step) * per_step / batch)
    assert updates[-1].kind == "finished" and updates[-1].samples_per_sec == 0


def test_a_pause_is_not_counted_as_slow_training(digits):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1, report_every=1), dataset=digits)
    now = [0.0]
    trainer._rate = RateMeter(clock=lambda: now[0])
    rates = []
    for update in trainer.updates():
        now[0] += 1.0
        rates.append(update.samples_per_sec)
        if update.step == 3 and update.kind == "progress":
            trainer.pause()            # the loop waits at its next step until the timer resumes it

            def resume():
                now[0] += 3600.0       # an hour paused
                trainer.resume_training()
            threading.Timer(0.2, resume).start()
    assert min(r for r in rates[5:-1]) > 0.5 * quick_train().batch_size


def test_the_step_log_means_count_only_finite_values():
    import torch
    log = StepLog()
    log.add(1, {"total": torch.tensor(2.0), "kl": torch.tensor(float("nan"))})
    log.add(2, {"total": torch.tensor(4.0), "kl": torch.tensor(1.0)})
    steps, terms = log.take()
    assert list(steps) == [1, 2] and np.isnan(terms["kl"][0])
    assert log.epoch_means() == {"total": 3.0, "kl": 1.0}
    log.new_epoch()
    assert log.epoch_means() == {}


def test_a_hooks_step_outputs_keep_their_minimum_gap(monkeypatch):
    """On a GPU the Trainer holds snapshots and probes to a minimum wall-clock gap; with none (a
    CPU) every ``every``-th step takes one, as before."""
    clock = iter([0.0, 0.0, 0.05, 0.3, 0.3, 0.4])
    monkeypatch.setattr("engine.training_hooks.time.monotonic", lambda: next(clock))
    hook = TrainingHook()
    hook.min_gap_s = 0.25
    taken = [step for step in (25, 26, 50, 75, 100) if hook.due(step, 25)]
    assert taken == [25, 75]   # 50 came 0.05 s after 25; 100 0.1 s after 75
    plain = TrainingHook()
    monkeypatch.setattr("engine.training_hooks.time.monotonic", lambda: 1.0)   # all at once
    assert [step for step in range(1, 101) if plain.due(step, 25)] == [25, 50, 75, 100]


def test_a_cpu_run_reports_every_report_every_steps_however_fast(digits):
    trainer = Trainer(DIGITS, small_model(), quick_train(epochs=1, report_every=2, probe_every=10**6,
                                                         snapshot_every=10**6), dataset=digits)
    steps = [u.step for u in trainer.updates() if u.kind == "progress"][1:]
    assert steps[:4] == [2, 4, 6, 8]
