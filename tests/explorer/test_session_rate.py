"""The window shows the rate and ETA the trainer's updates carry; it computes none of its own."""

import math

import numpy as np

from engine.datasets import load_dataset
from engine.training import TrainingUpdate
from explorer.session import RunState
from tests.engine.helpers import DIGITS, quick_train, small_model


def update(step: int, rate: float, eta: float, kind: str = "progress") -> TrainingUpdate:
    return TrainingUpdate(kind, 0, step, 100, np.zeros(0, np.int64), {}, samples_per_sec=rate, eta_s=eta)


def test_the_run_state_shows_the_updates_rate_and_eta_and_none_once_it_ended(qtbot):
    state = RunState(DIGITS, small_model("ae"), quick_train(epochs=1), dataset=load_dataset(DIGITS))
    state.status = "running"
    state._absorb(update(10, 1234.0, 56.0))
    assert (state.samples_per_sec, state.eta_s) == (1234.0, 56.0)
    state._absorb(update(11, 0.0, math.nan))   # after a pause the trainer measures afresh
    assert state.samples_per_sec == 0.0 and math.isnan(state.eta_s)
    state._absorb(update(20, 900.0, 9.0))
    state._set_status("completed")
    assert state.samples_per_sec == 0.0 and math.isnan(state.eta_s)
