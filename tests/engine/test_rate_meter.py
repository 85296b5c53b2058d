"""The smoothed samples/s and ETA: steady under bursty, uneven updates; paused time not counted."""

import math

import numpy as np
import pytest

from engine.rate_meter import RateMeter


def synthetic_updates(rate: float, seconds: float, seed: int = 0):
    """(time received, samples done) as the GUI receives the reports of training at a true
    ``rate``: made every ~0.15 s, but delivered late and all at once after a stall of the GUI
    thread (a probe encode, a checkpoint, a redraw), now and then."""
    rng = np.random.default_rng(seed)
    made = np.cumsum(rng.exponential(0.15, int(seconds / 0.15)))
    received = made.copy()
    for stall in rng.uniform(0, seconds, int(seconds / 10)):
        late = (made >= stall) & (made < stall + rng.uniform(1.0, 3.0))
        if late.any():
            received[late] = made[late].max() + rng.uniform(0, 0.003, late.sum()).cumsum()
    order = np.argsort(received, kind="stable")
    return list(zip(received[order], rate * made[order]))


def test_the_smoothed_rate_stays_near_the_true_rate_where_the_raw_one_swings():
    meter = RateMeter(window_s=10.0)
    raw, smoothed = [], []
    last = None
    for t, done in synthetic_updates(430.0, 120.0):
        rate = meter.update(done, now=t)
        if last is not None and t > last[0]:
            raw.append((done - last[1]) / (t - last[0]))
        last = (t, done)
        if t > 10:
            smoothed.append(rate)
    assert max(raw) / min(r for r in raw if r > 0) > 40   # what the status bar showed: a 40× swing
    assert min(smoothed) > 0.7 * 430 and max(smoothed) < 1.3 * 430   # even just after a 3 s stall
    assert meter.eta(430.0 * 60) == pytest.approx(60, rel=0.2)


def test_the_rate_follows_a_real_change_within_a_few_windows():
    meter = RateMeter(window_s=5.0)
    t = 0.0
    for rate, seconds in ((1000.0, 30.0), (250.0, 30.0)):
        for _ in range(int(seconds / 0.5)):
            t += 0.5
            meter.update(meter._last[1] + rate * 0.5 if meter._last else 0.0, now=t)
    assert meter.rate == pytest.approx(250, rel=0.05)


def test_no_rate_before_half_a_second_and_none_across_a_pause():
    meter = RateMeter()
    meter.update(0, now=0.0)
    assert meter.update(5000, now=0.01) == 0 and math.isnan(meter.eta(100))   # a burst at the start is no rate
    meter.update(5000 + 400, now=1.0)
    assert meter.rate == pytest.approx(5400 / 1.0)
    meter.reset()                        # paused for a minute
    meter.update(6000, now=61.0)
    assert meter.update(6400, now=62.0) == pytest.approx(meter.rate) and meter.rate > 1000
    meter.clear()
    assert meter.rate == 0
