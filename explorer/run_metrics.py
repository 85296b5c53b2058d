"""Metrics in the app: ``engine.metrics.evaluate_run`` for one run at a time, on a background
thread (``explorer.tasks.BackgroundTask``), cancellable, never on the GUI thread.

The app draws ``APP_NLL_SAMPLES`` importance samples per image (the CLI's default is
``engine.metrics.DEFAULT_NLL_SAMPLES``): a little looser an estimate, a few times sooner; the
number is recorded in metrics.json (``nll_samples``) and the runs table's tooltip says it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from explorer.tasks import BackgroundTask

APP_NLL_SAMPLES = 200


class MetricsRunner(QObject):
    """Evaluate runs one after another; ``evaluated`` / ``failed`` per run, ``became_idle`` after the last."""

    started = Signal(object)     # RunState
    progressed = Signal(object)  # (RunState, done, total)
    evaluated = Signal(object)   # RunState, its .metrics set and metrics.json written
    failed = Signal(object)      # (RunState, one sentence)
    became_idle = Signal()

    def __init__(self, nll_samples: int = APP_NLL_SAMPLES, parent: QObject | None = None):
        super().__init__(parent)
        self.nll_samples = nll_samples
        self._pending: list = []
        self._task: BackgroundTask | None = None
        self._state = None

    def is_busy(self) -> bool:
        return self._task is not None or bool(self._pending)

    def current(self):
        return self._state

    def evaluate(self, state) -> None:
        """Queue a saved run's evaluation (once: a run already waiting or being evaluated is not added again)."""
        if state.run is None or state is self._state or state in self._pending:
            return
        self._pending.append(state)
        state.metrics_note = f"Evaluating (NLL with K = {self.nll_samples} importance samples)…"
        state.metrics_changed.emit()   # its row shows that it is being evaluated
        self._next()

    def _next(self) -> None:
        if self._task is not None:
            return
        if not self._pending:
            self.became_idle.emit()
            return
        from engine.metrics import evaluate_run
        state = self._state = self._pending.pop(0)
        run, dataset, k = state.run, state.dataset, self.nll_samples

        def work(progress):
            return evaluate_run(run, nll_samples=k, dataset=dataset, stop=task.stopping,
                                progress=lambda _stage, done, total: progress(done, total))

        task = self._task = BackgroundTask(work, self, name="metrics")
        task.progressed.connect(lambda p: self.progressed.emit((state, *p)))
        task.finished.connect(lambda metrics: self._done(state, metrics, None))
        task.failed.connect(lambda message: self._done(state, None, message))
        self.started.emit(state)
        task.start()

    def _done(self, state, metrics, message) -> None:
        task, self._task, self._state = self._task, None, None
        if task is not None:
            task.wait(5_000)   # it ends its thread right after its last signal
            task.deleteLater()
        if metrics is not None:
            state.metrics, state.metrics_note = metrics, ""
            state.metrics_changed.emit()
            self.evaluated.emit(state)
        else:
            state.metrics_note = f"The metrics could not be computed: {message}"
            state.metrics_changed.emit()
            self.failed.emit((state, message))
        self._next()

    def cancel(self, state=None) -> None:
        """Stop the evaluation of ``state`` (or every evaluation, running and waiting); nothing is written."""
        if state is None:
            for waiting in self._pending:
                waiting.metrics_note = ""
                waiting.metrics_changed.emit()
            self._pending.clear()
            if self._task is not None:
                self._task.stop()
        elif state is self._state and self._task is not None:
            self._task.stop()
        elif state in self._pending:
            self._pending.remove(state)
            state.metrics_note = ""
            state.metrics_changed.emit()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Wait for the running evaluation's thread (after ``cancel()``, at closing)."""
        return self._task is None or self._task.wait(timeout_ms)
