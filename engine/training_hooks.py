"""What the trainer's loop does besides training, as hooks (minGPT's callbacks): small objects
whose ``on_start``, ``on_step``, ``on_epoch_end`` and ``on_finish`` the loop calls with its
``LoopState``, in the order given, each at most once per step.

* ``ProbeHook`` — encodes the fixed probe images (``probe_size`` of ``probe_set``, chosen by
  ``engine.probe_sets``; in chunks) at the start, every ``probe_every`` steps and
  after each epoch; each probe goes into the training movie (``engine.movie``).
* ``SnapshotHook`` — a copy of the whole model's state at the start, every ``snapshot_every``
  steps, after each epoch and at the end, for the GUI's own model copy.
* ``CheckpointHook`` — takes the run's lock at the start, saves a checkpoint after each epoch and
  the last one (status and reason) at the end.
* ``MovieHook`` — saves the training movie beside each checkpoint.

A hook reports through the state (``probe``, ``probed``, ``snapshot``); the loop clears
``probed`` and ``snapshot`` after each update it yields.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from engine.datasets.common import DatasetSplit
from engine.errors import UserError
from engine.probe_sets import encode_points, probe_points
from engine.runs import ProbeCodes, Run


@dataclass
class LoopState:
    """What the loop knows, for its hooks: the model, where training is, what hooks produced."""

    model: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    step: int = 0                  # optimizer steps taken
    epoch: int = 0                 # epochs completed
    best_val: float | None = None  # the best validation selection value so far
    improved: bool = False         # this epoch's validation is the best so far
    status: str = "running"
    reason: str = ""
    probe: ProbeCodes | None = None           # the latest probe codes
    probed: bool = False                      # ``probe`` is new since the last update
    snapshot: dict[str, torch.Tensor] | None = field(default=None, repr=False)   # a new state copy


class TrainingHook:
    """Does nothing; a hook overrides what it needs."""

    #: the fewest wall-clock seconds between two of a hook's step-triggered outputs (0: every
    #: ``every`` steps).  The Trainer sets it on a GPU (``engine.training.GPU_MIN_GAP_S``), where
    #: steps come so fast that every 25 steps meant 36 snapshots a second for the window.
    min_gap_s: float = 0.0
    _last_output: float = -math.inf

    def due(self, step: int, every: int) -> bool:
        """Whether step ``step`` takes the hook's output: every ``every`` steps, ``min_gap_s`` apart."""
        if step % every or time.monotonic() - self._last_output < self.min_gap_s:
            return False
        self._last_output = time.monotonic()
        return True

    def on_start(self, state: LoopState) -> None: ...

    def on_step(self, state: LoopState) -> None: ...

    def on_epoch_end(self, state: LoopState) -> None: ...

    def on_finish(self, state: LoopState) -> None: ...


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A snapshot of the module's weights: fresh CPU tensors that nothing else holds.  From a
    CUDA device every tensor is copied into pinned memory without blocking and the device's
    stream is waited for once, after the last copy (not once per tensor)."""
    state = module.state_dict()
    devices = {v.device for v in state.values() if v.device.type == "cuda"}
    if not devices:
        return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
    out = {}
    for k, v in state.items():
        if v.device.type != "cuda":
            out[k] = v.detach().to("cpu", copy=True)
            continue
        out[k] = torch.empty(v.shape, dtype=v.dtype, pin_memory=True)
        out[k].copy_(v.detach(), non_blocking=True)
    for device in devices:
        torch.cuda.current_stream(device).synchronize()   # every copy has landed before anyone reads it
    return out


class ProbeHook(TrainingHook):
    """The codes of ``probe_size`` images of ``probe_set`` (a seeded choice, in split and index
    order; ``engine.probe_sets``), encoded a chunk at a time."""

    def __init__(self, val_set, probe_size: int, seed: int, every: int, device, movie, *,
                 train_set=None, probe_set: str = "validation"):
        split = DatasetSplit("probe", train_set if train_set is not None else val_set.subset(slice(0, 0)), val_set)
        points = probe_points(split, probe_set, probe_size, seed)
        points.images, points.labels = points.images.to(device), points.labels.to(device)
        self.points = points
        self.labels = points.labels.cpu().numpy().copy()
        self.every = every
        self.movie = movie

    def _probe(self, state: LoopState) -> None:
        codes = encode_points(state.model, self.points)
        points = self.points
        state.probe = ProbeCodes(codes, self.labels.copy(), points.indices.copy(), state.step, points.splits.copy())
        state.probed = True
        self.movie.add(state.probe)   # the training movie: every probe update, thinned to a budget

    on_start = _probe
    on_epoch_end = _probe   # the model is in eval mode after validation

    def on_step(self, state: LoopState) -> None:
        if self.due(state.step, self.every):
            state.model.eval()
            self._probe(state)
            state.model.train()


class SnapshotHook(TrainingHook):
    def __init__(self, every: int):
        self.every = every

    def _snapshot(self, state: LoopState) -> None:
        state.snapshot = copy_state(state.model)

    on_start = on_epoch_end = on_finish = _snapshot

    def on_step(self, state: LoopState) -> None:
        if self.due(state.step, self.every):
            self._snapshot(state)


class CheckpointHook(TrainingHook):
    def __init__(self, run: Run):
        self.run = run

    def on_start(self, state: LoopState) -> None:
        self.run.begin_training()

    def on_epoch_end(self, state: LoopState) -> None:
        run = self.run
        run.epochs_done, run.step, run.best_val = state.epoch, state.step, state.best_val
        run.save_checkpoint(state.model, state.optimizers, state.probe, best=state.improved)

    def on_finish(self, state: LoopState) -> None:
        run = self.run
        run.status, run.reason, run.step, run.best_val = state.status, state.reason, state.step, state.best_val
        run.end_training(state.model, state.optimizers, state.probe)


class MovieHook(TrainingHook):
    def __init__(self, run: Run, movie):
        self.run, self.movie = run, movie

    def _save(self, state: LoopState) -> None:
        try:
            self.movie.save(self.run.path)
        except (UserError, OSError):
            pass   # the movie is a view of the training, never worth failing it for

    on_epoch_end = on_finish = _save


def load_movie(run: Run | None, latent_dim: int):
    """The run's training movie, continued on resume (a damaged one starts afresh)."""
    from engine.movie import ProbeMovie
    if run is not None:
        try:
            return ProbeMovie.load(run.path, latent_dim) or ProbeMovie()
        except UserError:
            pass
    return ProbeMovie()
