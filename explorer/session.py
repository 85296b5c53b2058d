"""The state the views subscribe to: the session's runs, the active one, and the latent cursor.

A ``RunState`` owns one run: its settings, folder, live training thread, a history for the loss
plot, the latest probe codes for the map, and the GUI's own copy of the model, into which the
worker's whole-model snapshots are loaded (the GUI never touches the model the worker trains).

Views that only show the latest numbers (the loss plot, the progress bar, the status bar, the
decoder's image) follow ``refreshed`` and ``decoder_changed``, which come at most every ``FRAME_MS``, all in one
pass of the event loop: Qt repaints them in one go (on 2 cores GUI painting is taken from training: bench_app.py).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import DatasetSplit
from engine.errors import UserError
from engine.history import History, ProbeCodes
from engine.live_changes import checked_changes
from engine.models import VARIANTS, AutoencoderModel, build_model
from engine.movie import ProbeMovie
from engine.runs import Run
from engine.training import Trainer, TrainingUpdate, adopt_state
from explorer.dataset_cache import datasets, loads_quickly
from explorer.tasks import TrainingTask

FRAME_MS = 250   # the views' refresh period while a run trains
_order = itertools.count()   # the order RunStates were made in (ties of the same second: the later first)


@dataclass
class SavedRun:
    """A run folder as read for the window (``RunState.read``): plain data, no Qt."""

    run: Run
    model: AutoencoderModel
    probe: ProbeCodes | None
    movie: ProbeMovie
    metrics: dict | None
    metrics_note: str = ""


class RunState(QObject):
    """One run in the session, live or loaded from disk."""

    progressed = Signal(object)      # TrainingUpdate, after the state has taken it in
    refreshed = Signal()             # the state took in updates since the last frame: redraw what shows them
    probe_changed = Signal(object)   # ProbeCodes
    decoder_changed = Signal()       # the decoder copy has new weights (at most once a frame)
    status_changed = Signal(str)
    metrics_changed = Signal()       # .metrics or .metrics_note changed (explorer/run_metrics.py)
    failed = Signal(str)
    dataset_loaded = Signal(object)  # DatasetSplit | None (None: it could not be loaded here)

    def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig, dataset: DatasetSplit | None = None,
                 run: Run | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.data_cfg, self.model_cfg, self.train_cfg = data, model, train
        self.dataset = dataset
        self.run = run
        self.run_name: str | None = None   # the run folder's name for a new run (a sweep's), else a stamp
        self.metrics: dict | None = None   # metrics.json as last read or computed (engine.metrics)
        self.metrics_note = ""             # why there are none: "evaluating…", a failure's sentence
        self.created = (run.created if run is not None and run.created else time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.order = next(_order)
        # the GUI's own copy: a resumed trainer appends to run.history in its thread
        self.history = copy.deepcopy(run.history) if run is not None else History()
        self._trainer: Trainer | None = None
        self.probe: ProbeCodes | None = None
        #: every probe update of this run, for the map's time slider (loaded from the run folder, then live)
        self.movie = ProbeMovie()
        # its dataset read in the background, start() waiting for that read, why the last read failed
        self._dataset_loading, self._start_pending, self.dataset_failure = False, False, ""
        self.status = run.status if run is not None else "new"
        self.reason = run.reason if run is not None else ""
        self.step = run.step if run is not None else 0
        self.epoch = run.epochs_done if run is not None else 0
        self.total_steps = 0
        self.samples_per_sec = 0.0   # as the trainer's last update carries it (smoothed: engine/rate_meter.py)
        self.eta_s = math.nan
        self.job: TrainingTask | None = None
        self.model: AutoencoderModel | None = None
        self._decoder_stale = False   # new weights loaded, decoder_changed not yet emitted
        self._frame = QTimer(self, singleShot=True, interval=FRAME_MS)
        self._frame.timeout.connect(self._emit_frame)
        if dataset is not None:
            self._build_model(dataset.train.shape, dataset.train.n_classes)

    # -- description ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.run.name if self.run is not None else f"{self.model_cfg.variant} on {self.data_cfg.source} (new)"

    @property
    def variant_title(self) -> str:
        return VARIANTS[self.model_cfg.variant].title

    @property
    def dataset_name(self) -> str:
        return self.run.dataset if self.run is not None else self.data_cfg.source

    @property
    def best_val(self) -> float | None:
        values = self.history.val.get("total")
        return min(values) if values else None

    @property
    def class_names(self) -> list[str]:
        if self.dataset is not None:
            return self.dataset.train.class_names
        return self.run.class_names if self.run is not None else []

    @property
    def is_training(self) -> bool:
        return self.job is not None and self.job.is_running()

    def _build_model(self, shape, n_classes) -> None:
        self.model = build_model(self.model_cfg, shape, n_classes).eval()

    def _set_status(self, status: str, reason: str = "") -> None:
        self.status, self.reason = status, reason
        if status not in ("running", "paused"):   # an ended run has no rate (a paused one shows its last)
            self.samples_per_sec, self.eta_s = 0.0, math.nan
        self.status_changed.emit(status)

    # -- opening a saved run -----------------------------------------------------------------
    @classmethod
    def open(cls, path, parent: QObject | None = None) -> "RunState":
        """A saved run, explorable: its latest weights, probe codes and history."""
        return cls.from_saved(cls.read(path), parent)

    @staticmethod
    def read(path) -> SavedRun:
        """What ``open`` reads from a run folder (no Qt: any thread may read, e.g. the runs library
        at launch); raises UserError with one sentence."""
        run = Run.open(path)
        if run.status in ("running", "new") and run.step > 0:
            run.status, run.reason = "stopped", "Interrupted: the program ended before training finished."
        model, probe = run.load_model("latest"), run.load_probe()
        try:
            movie = ProbeMovie.load(run.path, run.model.latent_dim) or ProbeMovie()
        except (UserError, OSError, ValueError):
            movie = ProbeMovie()   # a damaged movie is no reason not to open the run
        if len(movie) == 0 and probe is not None:
            movie.add(probe)
        metrics, note = None, ""
        try:
            metrics = run.load_metrics()
        except UserError as exc:   # a damaged metrics.json costs the metrics, not the run
            note = str(exc)
        return SavedRun(run, model, probe, movie, metrics, note)

    @classmethod
    def from_saved(cls, saved: SavedRun, parent: QObject | None = None) -> "RunState":
        """The run ``read`` read, as a state of this thread (the GUI's)."""
        run = saved.run
        state = cls(run.data, run.model, run.train, run=run, parent=parent)
        state.model, state.probe, state.movie = saved.model, saved.probe, saved.movie
        state.total_steps = run.step
        if saved.metrics is not None:
            state.metrics = saved.metrics
        state.metrics_note = saved.metrics_note or state.metrics_note
        return state

    @property
    def status_words(self) -> str:
        """The saved run's status in words ("interrupted at step N"), else the live status."""
        if self.run is not None and self.status not in ("running", "paused") and not self.is_training:
            if getattr(self.run, "interrupted", False) and self.status == "stopped":
                return f"interrupted at step {self.run.step}"
        return str(self.status)

    @property
    def headline_nll(self) -> float | None:
        """The importance-sampled NLL of metrics.json (nats per image), when there is one."""
        value = (self.metrics or {}).get("nll")
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def rename(self, new_name: str) -> None:
        """Rename the run's folder (not while it trains); UserError with the reason otherwise."""
        new_name = new_name.strip()
        if self.run is None:
            raise UserError("This run has no folder yet: it is made when training starts.")
        if self.is_training or self.run.is_training_elsewhere():
            raise UserError(f"{self.run.name} is training; rename it once it has stopped.")
        if not new_name or new_name in (".", "..") or os.sep in new_name or (os.altsep and os.altsep in new_name):
            raise UserError("A run's name must be a folder name: not empty, without slashes.")
        target = self.run.path.parent / new_name
        if target == self.run.path:
            return
        if target.exists():
            raise UserError(f"There is already a run or file called {new_name} in {target.parent}.")
        try:
            os.rename(self.run.path, target)
        except OSError as exc:
            raise UserError(f"{self.run.name} could not be renamed to {new_name} ({exc.strerror or exc}).") from None
        self.run.path = target
        self.status_changed.emit(self.status)

    def delete_folder(self) -> Path:
        """Remove the run's folder for good (not while it trains); UserError otherwise."""
        if self.run is None:
            raise UserError("This run has no folder to delete.")
        if self.is_training or self.status in ("running", "paused") or self.run.is_training_elsewhere():
            raise UserError(f"{self.run.name} is training; stop it before deleting it.")
        path = Path(self.run.path)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise UserError(f"{path} could not be deleted ({exc.strerror or exc}); what is left stays.") from None
        return path

    def ensure_dataset(self) -> DatasetSplit | None:
        """The run's dataset, read on this thread when not here (the digits, an export); None if not available."""
        if self.dataset is None:
            try:
                self.dataset = datasets().load(self.data_cfg)
            except UserError as exc:
                self.dataset_failure = str(exc)
                return None
        return self.dataset

    def ensure_dataset_in_background(self, then=None) -> bool:
        """Load the run's dataset on a background thread through the app's one cache (explorer/dataset_cache.py);
        ``dataset_loaded`` follows, then ``then(dataset or None)``.  A dataset already here (or one that
        loads in milliseconds) is taken at once.  Returns whether a load runs."""
        if self.dataset is not None or loads_quickly(self.data_cfg):
            dataset = self.ensure_dataset()
            self.dataset_loaded.emit(dataset)
            if then is not None:
                then(dataset)
            return False

        def arrived(dataset) -> None:
            self._dataset_loading, self.dataset = False, self.dataset if self.dataset is not None else dataset
            self.dataset_loaded.emit(self.dataset)
            if then is not None:
                then(self.dataset)

        def failed(message: str) -> None:
            self.dataset_failure = message
            arrived(None)

        # owner: a run that left the session (deleted) while its images loaded hears nothing
        self._dataset_loading = datasets().load_in_background(self.data_cfg, arrived, failed, owner=self)
        return self._dataset_loading

    def is_loading_dataset(self) -> bool:
        return self._dataset_loading

    def wait_for_dataset(self, timeout_ms: int = 60_000) -> bool:
        """Wait for the background dataset loads to end (closing, tests); True when none runs."""
        return datasets().wait(timeout_ms)

    # -- training ----------------------------------------------------------------------------
    def start(self, run_parent, epochs: int | None = None) -> None:
        """Start (or, for a saved run, resume) training on a background thread.  A dataset not here
        yet is read in the background first (``is_loading_dataset`` meanwhile, a failure comes as
        ``failed``); only the bundled digits, read in milliseconds, are read at once."""
        if self.is_training or self._start_pending:
            return
        if self.dataset is not None or loads_quickly(self.data_cfg):
            self._start_on(self.ensure_dataset(), run_parent, epochs)
            return
        self._start_pending = True

        def loaded(dataset) -> None:
            self._start_pending = False
            try:
                self._start_on(dataset, run_parent, epochs)
            except UserError as exc:
                self.failed.emit(str(exc))

        self.ensure_dataset_in_background(loaded)

    def _start_on(self, dataset: DatasetSplit | None, run_parent, epochs: int | None) -> None:
        if dataset is None:
            raise UserError(f"The dataset of {self.name} could not be loaded, so it cannot train: {self.dataset_failure}")
        if self.model is None:
            self._build_model(dataset.train.shape, dataset.train.n_classes)
        if self.run is not None:
            trainer = Trainer.resume(self.run, epochs, dataset=dataset)
            self.train_cfg = self.run.train
        else:
            trainer = Trainer(self.data_cfg, self.model_cfg, self.train_cfg, dataset=dataset, run_parent=run_parent,
                              run_name=self.run_name)
        self._trainer = trainer
        self.job = TrainingTask(trainer)
        self.job.progressed.connect(self._on_update)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self.job.thread.finished.connect(self._on_thread_finished)
        self._set_status("running")
        self.job.start()

    def pause(self) -> None:
        if self.is_training:
            self.job.pause()
            self._set_status("paused")

    def resume(self) -> None:
        if self.is_training:
            self.job.resume()
            self._set_status("running")

    def stop(self) -> None:
        if self.is_training:
            self.job.stop()

    def change(self, **values: float) -> None:
        """New values of β, the learning rate, ... for the training run, applied between two of its
        steps (``Trainer.change``); UserError with one sentence for a value it refuses."""
        if not self.is_training:
            raise UserError(f"{self.name} is not training: its settings can change only while it trains.")
        self.job.trainer.change(**values)

    def step_to_next_probe(self) -> bool:
        """Paused: train to the next probe update (a new map), then pause again."""
        return self.is_training and self.status == "paused" and self.job.trainer.step_to_next_probe()

    def stop_and_wait(self, timeout_ms: int = 10_000) -> bool:
        """Stop training, wait for the thread (the trainer saves the run as it stops)."""
        if self.job is None:
            return True
        ok = self.job.stop_and_wait(timeout_ms)
        if ok and self.status in ("running", "paused"):
            # the worker's last signal is still queued; the thread is over, so its run is ours to read
            run = self.run or (self._trainer.run if self._trainer is not None else None)
            self.run = run
            self._set_status(run.status if run is not None else "stopped", run.reason if run is not None else "")
        self._on_thread_finished()
        return ok

    def _absorb(self, update: TrainingUpdate) -> None:
        if self.run is None and self._trainer is not None and self._trainer.run is not None:
            self.run = self._trainer.run
        self.step, self.epoch, self.total_steps = update.step, update.epoch, update.total_steps
        if update.kind != "finished" and self.status == "running":
            self.samples_per_sec, self.eta_s = update.samples_per_sec, update.eta_s   # the trainer's one rate
        if len(update.steps):
            self.history.add_steps(update.steps, update.terms)
        for step, name, value, previous in update.changes:   # (the panel shows the settings as they are now)
            self.history.add_change(step, name, value, previous)
            self.model_cfg, self.train_cfg = checked_changes(self.model_cfg, self.train_cfg, {name: value})
        if update.kind == "epoch":
            self.history.add_epoch(update.epoch, update.step, update.train_terms or {}, update.val_terms or {}, 0.0)
        if update.model_state is not None and self.model is not None:
            adopt_state(self.model, update.model_state)   # no copy: the snapshot is the run's alone
            self._decoder_stale = True
        if update.probe is not None:
            self.probe = update.probe
            self.movie.add(update.probe)
            self.probe_changed.emit(update.probe)

    def _on_update(self, update: TrainingUpdate) -> None:
        self._absorb(update)
        self.progressed.emit(update)
        if not self._frame.isActive():
            self._frame.start()

    def _on_finished(self, update: TrainingUpdate) -> None:
        self._absorb(update)
        self.progressed.emit(update)
        self._emit_frame()
        self._set_status(update.status, update.reason)

    def _emit_frame(self) -> None:
        self._frame.stop()
        if self._decoder_stale:
            self._decoder_stale = False
            self.decoder_changed.emit()
        self.refreshed.emit()

    def _on_failed(self, message: str) -> None:
        self._set_status("failed", message)
        self.failed.emit(message)

    def _on_thread_finished(self) -> None:
        if self.job is not None and not self.job.is_running():
            self.job = None
            self.status_changed.emit(self.status)  # is_training just turned false

    # -- decoding (GUI thread, on the GUI's own model copy) ---------------------------------------
    @torch.no_grad()
    def decode(self, codes: np.ndarray, label: int | None = None) -> np.ndarray:
        """Images (M×C×H×W float in [0, 1]) for codes (M×D)."""
        z = torch.as_tensor(np.asarray(codes, dtype=np.float32).reshape(-1, self.model.latent_dim))
        y = torch.full((z.shape[0],), int(label or 0)) if self.model.is_conditional else None
        return self.model.decode(z, y).numpy()


def rebind(old: RunState | None, new: RunState | None, slots: dict) -> RunState | None:
    """Move a view's slots from the run it followed to ``new``; ``slots`` maps a RunState signal's
    name to the slot.  Returns ``new``."""
    for name, slot in slots.items():
        if old is not None:
            getattr(old, name).disconnect(slot)
        if new is not None:
            getattr(new, name).connect(slot)
    return new


class LatentCursor(QObject):
    """The latent code shown by the decoder canvas, with the view that last moved it."""

    moved = Signal(object, str)   # code (np.ndarray, D), origin ("map", "slider", "select", ...)
    label_changed = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.code: np.ndarray | None = None
        self.label = 0

    def set_code(self, code: np.ndarray, origin: str) -> None:
        self.code = np.asarray(code, dtype=np.float32).reshape(-1).copy()
        self.moved.emit(self.code, origin)

    def set_label(self, label: int) -> None:
        if label != self.label:
            self.label = label
            self.label_changed.emit(label)


class Session(QObject):
    """All runs of this window, the active one, and the latent cursor."""

    run_added = Signal(object)       # RunState
    run_removed = Signal(object)     # RunState, after it left the session
    active_changed = Signal(object)  # RunState | None
    training_changed = Signal(object)  # RunState | None: the run that trains now (one at a time)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.runs: list[RunState] = []
        self.active: RunState | None = None
        self.cursor = LatentCursor(self)
        self._training: RunState | None = None

    def add(self, state: RunState, activate: bool = True) -> RunState:
        state.setParent(self)
        self.runs.append(state)
        state.status_changed.connect(self._on_status_changed)
        self.run_added.emit(state)
        if activate:
            self.set_active(state)
        self._on_status_changed()
        return state

    def remove(self, state: RunState) -> None:
        """Take a run that does not train out of the session (its views let go of it first)."""
        if state not in self.runs or state.is_training:
            return
        if state is self.active:
            self.set_active(None)
        self.runs.remove(state)
        state.status_changed.disconnect(self._on_status_changed)
        self.run_removed.emit(state)
        state.deleteLater()

    def find(self, path) -> RunState | None:
        """The session's run whose folder is ``path``, if any."""
        path = Path(path).expanduser().resolve()
        return next((s for s in self.runs if s.run is not None and Path(s.run.path).resolve() == path), None)

    def training_run(self) -> RunState | None:
        """The run that trains now in this window (running or paused, its thread alive or still
        starting); at most one.  A run another process trains is not ours to wait for."""
        return next((r for r in self.runs if r.job is not None), None)

    def is_busy(self) -> bool:
        return self.training_run() is not None

    def _on_status_changed(self, *_) -> None:
        training = self.training_run()
        if training is not self._training:
            self._training = training
            self.training_changed.emit(training)

    def set_active(self, state: RunState | None) -> None:
        if state is not self.active:
            self.active = state
            self.active_changed.emit(state)

    def stop_all(self, timeout_ms: int = 10_000) -> bool:
        """Stop every training run and wait for its thread; True when all ended in time."""
        for state in self.runs:
            state.stop()
        return all(state.stop_and_wait(timeout_ms) for state in self.runs)
