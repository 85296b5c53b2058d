"""A steady samples-per-second readout and the ETA computed from it, once, by the trainer.

A rate measured over the few steps between two reports swings with whatever happened in them (a
probe encode, a checkpoint, a consumer slow to take the update): 40× within half a minute.
``RateMeter`` measures the samples trained per second of wall time as the trainer makes its
reports, and smooths it with an exponential moving average over a time window (as tqdm smooths
its rate): an update's weight grows with the time it covers, ``1 − exp(−Δt / window)``, so a
burst of updates made together (Δt ≈ 0) barely moves the estimate, and the estimate forgets
what happened more than a few windows ago.  ``Trainer.updates`` feeds one (reset after a pause)
and every ``TrainingUpdate`` carries its ``samples_per_sec`` and ``eta_s``; the app shows them.
"""

from __future__ import annotations

import math
import time

RATE_WINDOW_S = 10.0   # the moving average's time constant
MIN_SPAN_S = 0.5       # updates are gathered until they cover this much time, then averaged in


class RateMeter:
    """``update(samples_done)`` after each training update; ``rate`` (samples/s) and ``eta(remaining)``."""

    def __init__(self, window_s: float = RATE_WINDOW_S, clock=time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self.rate = 0.0            # the smoothed samples per second (0 until two updates)
        self._last: tuple[float, float] | None = None   # (time, samples done) when the average last took a value
        self._weight = 0.0         # the weight the average has gathered, for debiasing its start
        self._average = 0.0

    def reset(self) -> None:
        """Forget the last update's time (after a pause): the pause is not counted as slow training."""
        self._last = None

    def clear(self) -> None:
        """Forget everything (a run that stopped)."""
        self.reset()
        self.rate, self._weight, self._average = 0.0, 0.0, 0.0

    def update(self, samples_done: float, now: float | None = None) -> float:
        """Take in the running count of samples trained; returns the smoothed rate."""
        now = self.clock() if now is None else now
        if self._last is None:
            self._last = (now, samples_done)
            return self.rate
        t0, s0 = self._last
        dt, ds = now - t0, samples_done - s0
        if ds < 0:   # counting began again (another run): so does the average
            self.clear()
            self._last = (now, samples_done)
        elif dt >= MIN_SPAN_S:   # shorter spans wait for the next update: a burst is one span
            alpha = 1.0 - math.exp(-dt / self.window_s)
            self._average += alpha * (ds / dt - self._average)
            self._weight += alpha * (1.0 - self._weight)
            self.rate = self._average / self._weight   # debiased, as TensorBoard's smoothing is
            self._last = (now, samples_done)
        return self.rate

    def eta(self, remaining_samples: float) -> float:
        """Seconds until ``remaining_samples`` are trained at the smoothed rate (NaN without a rate)."""
        return remaining_samples / self.rate if self.rate > 0 else math.nan
