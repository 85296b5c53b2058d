"""The data of a loss curve, without Qt or pyqtgraph: one term of one run's history as growing
NumPy arrays (optimizer steps, the raw per-step values, their smoothed values), the smoothing
(a debiased exponential moving average, as TensorBoard draws it) and the share of values the
"Ignore outliers" view keeps.  The loss plot and the comparison's loss plot draw these arrays;
anything else (a report, a test, a script) can compute them without a GUI."""

from __future__ import annotations

import numpy as np

from engine.history import History

TOTAL = "total"   # the summed loss term (also the term drawn for overlaid runs)
INLIER_FRACTION = 0.98   # "Ignore outliers": the y axis spans the middle 98% of each curve's values


class LossSeries:
    """One term of one run's history as growing arrays: steps, raw values and their moving average."""

    def __init__(self, history: History, name: str, smoothing: float):
        self.history, self.name, self.smoothing = history, name, smoothing
        self._data = np.empty((3, 1024))   # rows: step, raw, smoothed
        self._n = 0
        self._state = np.zeros(1)          # lfilter's state: smoothing × the last undebiased average

    @property
    def steps(self) -> np.ndarray:
        return self._data[0, :self._n]

    @property
    def raw(self) -> np.ndarray:
        return self._data[1, :self._n]

    @property
    def smoothed(self) -> np.ndarray:
        return self._data[2, :self._n]

    def sync(self) -> None:
        """Append what the history gained since the last call."""
        values = self.history.terms.get(self.name, [])
        end = min(len(values), len(self.history.steps))
        if end <= self._n:
            return
        if end > self._data.shape[1]:
            grown = np.empty((3, max(end, 2 * self._data.shape[1])))
            grown[:, :self._n] = self._data[:, :self._n]
            self._data = grown
        self._data[0, self._n:end] = self.history.steps[self._n:end]
        self._data[1, self._n:end] = values[self._n:end]
        self._smooth(self._n, end)
        self._n = end

    def set_smoothing(self, smoothing: float) -> None:
        self.smoothing = smoothing
        self._state = np.zeros(1)
        self._smooth(0, self._n)

    def _smooth(self, start: int, end: int) -> None:
        """Debiased exponential moving average of raw[start:end], continuing from raw[:start]."""
        if end == start:
            return
        a = self.smoothing
        from scipy.signal import lfilter  # here, not at start-up: scipy.signal takes 0.75 s to import
        average, self._state = lfilter([1.0 - a], [1.0, -a], self._data[1, start:end], zi=self._state)
        self._data[2, start:end] = average / (1.0 - a ** np.arange(start + 1, end + 1))

    def value_at(self, step: float) -> float | None:
        """The smoothed value at the last recorded step at or before ``step``."""
        i = int(np.searchsorted(self.steps, step, side="right")) - 1
        return float(self.smoothed[i]) if i >= 0 else None
