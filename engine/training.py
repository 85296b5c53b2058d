"""The trainer: a generator of ``TrainingUpdate`` values, stoppable between optimizer steps.

```python
trainer = Trainer(data_cfg, model_cfg, train_cfg, run_parent="runs/")
for update in trainer.updates():
    print(update.step, update.terms)
```

The model owns its training: ``model.configure_optimizers(lr)`` names its optimizers and
``model.training_step(x, y, optimizers)`` takes one step and returns its terms, so this loop is
the same for every variant (an adversarial AE's three phases included); every optimizer's state
is saved and resumed.  Everything an update carries is plain Python floats or NumPy arrays /
tensors that were detached, moved to the CPU and copied, so it can cross to another thread as it
is; ``model_state`` is a copy of the whole model's state (encoder, decoder, buffers).
The loop only trains, validates and reports; what it does besides is hooks
(``engine/training_hooks.py``: probe codes, model snapshots, checkpoints, the training movie,
and any given as ``hooks=``), the batches and the step log are ``engine/batches.py``, and every
update carries the one smoothed rate and ETA (``engine/rate_meter.py``).
``pause()``, ``resume()``, ``stop()``, ``change(beta=..., lr=...)`` and ``step_to_next_probe()``
may be called from any thread; they take effect between two training steps (``engine/live_changes.py``
says what may change while a run trains and how a change is recorded).  A non-finite loss or gradient stops the run before the optimizer
step that would have spoiled the weights, so the weights kept are the last finite ones.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from engine.batches import (  # noqa: F401  (float_batch, epoch_seed, validation_generator: importable here too)
    EVAL_BATCH,
    Batches,
    StepLog,
    binarized_validation,
    encode_all,
    epoch_seed,
    float_batch,
    validation_generator,
)
from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.cuda_graphs import GraphedStep, graphable
from engine.datasets import DatasetSplit, ImageSet, load_dataset
from engine.errors import ConfigError
from engine.history import History, ProbeCodes
from engine.live_changes import LEARNING_RATE, checked_changes, current_value
from engine.models import AutoencoderModel, build_model, check_compatible
from engine.models.base import NonFiniteStep
from engine.rate_meter import RateMeter
from engine.runs import Run
from engine.training_hooks import (  # noqa: F401  (copy_state: importable here too)
    CheckpointHook,
    LoopState,
    MovieHook,
    ProbeHook,
    SnapshotHook,
    TrainingHook,
    copy_state,
    load_movie,
)

# torch's intra-op thread count belongs to each thread (OpenMP's per-thread ICV, MKL's local
# setting), read once per thread on its first use, and a thread inherits the last count set
# anywhere.  Training takes torch's default (one per core, or OMP_NUM_THREADS) in whatever thread
# it runs; a GUI thread beside it keeps one (explorer/window/runtime.py, tune_for_gui).
TRAIN_THREADS = torch.get_num_threads()
#: the nice value a training thread gives itself on Linux, where niceness belongs to each thread
#: and the OpenMP workers it starts inherit it: 0 (the CLI) leaves it alone; the app raises it so
#: that a GUI thread beside it gets a core at once (explorer/window/runtime.py, tune_for_gui)
TRAIN_NICENESS = 0
#: on a GPU, the fewest seconds between two progress reports, snapshots and probe updates: its
#: steps come ~1 ms apart (CUDA graphs), and reports every 10 steps, snapshots every 25 and probes
#: every 200 made 90, 36 and 4.5 a second, too many for the window (drag p95 29 ms, from 3.4 ms
#: at a third of the speed).  On a CPU the step intervals alone decide, as before.
GPU_MIN_GAP_S = {"report": 0.05, "snapshot": 0.1, "probe": 0.5}


def rehearse() -> None:
    """Build a tiny model and its optimizers and take one step, so that what a training thread
    imports on its first run (torch.optim's constructor alone pulls in torch._dynamo, sympy and
    ~900 other modules, ~1 s) is imported now.  The app calls it on a background thread at
    launch, before it freezes the long-lived objects out of the collector's sight; otherwise those
    ~150,000 objects stay young and the first collections after a run starts walk them (80 ms
    under the cursor)."""
    from engine.config import ModelConfig
    from engine.models import build_model
    model = build_model(ModelConfig(variant="vae", latent_dim=2), (1, 8, 8), 2)
    optimizers = model.configure_optimizers(1e-3)
    x = torch.rand(4, 1, 8, 8)
    model.training_step(x, torch.zeros(4, dtype=torch.long), optimizers)


def lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value to ``niceness`` (Linux only; elsewhere the call would
    lower the whole process, so nothing is done).  The threads it starts afterwards inherit it."""
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), niceness))
    except OSError:
        pass


def use_threads(n: int) -> None:
    """Give the calling thread ``n`` intra-op threads for good: torch reads the count lazily, once
    per thread, so it is read now, not at the first parallel op after another thread set its own."""
    torch.set_num_threads(n)
    torch.get_num_threads()


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was chosen but this machine has no usable CUDA device; choose auto or cpu.")
    return torch.device(name)


def training_autocast(device: torch.device, precision: str):
    """The context each training step runs in: none for ``fp32``; for ``bf16``, ``torch.autocast``
    to bfloat16 on the device's type (the forward pass and the loss; the weights, their gradients
    and Adam's state stay float32, so no loss scaling is needed).  A GPU without bfloat16 is a
    ConfigError.  Validation, probes and snapshots run outside it, in float32."""
    if precision != "bf16":
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("This GPU cannot compute in bfloat16; train with --precision fp32.")
    # no cast cache: a CUDA graph of the step (engine/cuda_graphs.py) must not keep casts of
    # weights that later steps change; eagerly the cache lives one step anyway
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def available_devices() -> list[str]:
    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass(frozen=True)
class TrainingUpdate:
    """One report from the trainer.  ``kind`` is ``progress`` (every few steps), ``epoch``
    (after validation) or ``finished`` (the last one; ``status`` says how it ended).
    ``terms`` holds NaN at steps where a term was not reported (another phase's step)."""

    kind: str
    epoch: int                     # epochs completed
    step: int                      # training steps taken
    total_steps: int
    steps: np.ndarray              # the steps this update covers
    terms: dict[str, np.ndarray]   # every named term (and "total") at each of those steps
    #: training samples per second of wall time, smoothed over ~10 s (``engine.rate_meter``; 0
    #: until half a second has been measured), and the seconds left at that rate (NaN without one)
    samples_per_sec: float = 0.0
    eta_s: float = math.nan
    #: epoch updates: this epoch's training images per second of its training steps (validation not counted)
    epoch_samples_per_sec: float | None = None
    val_terms: dict[str, float] | None = None
    train_terms: dict[str, float] | None = None
    probe: ProbeCodes | None = None
    #: a copy of the whole model's state dict (each tensor once), for the GUI's own model copy
    model_state: dict[str, torch.Tensor] | None = None
    status: str = "running"        # running, completed, stopped, failed
    reason: str = ""
    phase: str = "train"           # what the steps of this update did (``train``, ``pretrain_<i>``)
    #: settings changed since the last update, as ``History.changes`` records them ([step, name, value, previous])
    changes: tuple = ()

    @property
    def progress(self) -> float:
        return self.step / max(1, self.total_steps)


def adopt_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Make ``model`` use the tensors of ``state`` (a ``copy_state`` snapshot that nobody writes
    to afterwards) without copying them: ~0.02 ms where ``load_state_dict`` copies every weight
    (1.3 ms for the default 3.5M-parameter VAE on an idle core, several on the GUI thread beside a
    training run).  Anything that does not fit name for name, shape and dtype goes through
    ``load_state_dict`` and its errors."""
    targets = model.state_dict(keep_vars=True)
    if targets.keys() != state.keys() or any(
            t.shape != state[k].shape or t.dtype != state[k].dtype or t.device != state[k].device
            for k, t in targets.items()):
        model.load_state_dict(state)
        return
    with torch.no_grad():
        for name, target in targets.items():
            target.data = state[name]


class Trainer:
    """Trains one model; yields updates; saves into a run folder when it has one."""

    def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig, *,
                 dataset: DatasetSplit | None = None, run_parent=None, run: Run | None = None,
                 run_name: str | None = None, hooks: list[TrainingHook] | tuple = ()):
        for cfg in (data, model, train):
            cfg.validate()
        self.data_cfg, self.model_cfg, self.train_cfg = data, model, train
        self._dataset = dataset
        self._run_parent = run_parent
        self._run_name = run_name
        self.run = run
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.model: AutoencoderModel | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.history = run.history if run is not None else History()
        self.device = resolve_device(train.device)
        self._autocast = training_autocast(self.device, train.precision)
        #: the CUDA-graph step of the run under way (engine/cuda_graphs.py); None where it does not apply
        self.graphed: GraphedStep | None = None
        #: hooks called after the trainer's own (probe, snapshot, checkpoint, movie), in this order
        self.extra_hooks = list(hooks)
        self._rate = RateMeter()   # the one rate and ETA the updates carry
        self._requested_changes: list[dict] = []   # change()'s values, for the loop to apply
        self._changes_lock = threading.Lock()
        self._pause_after_probe = False   # step_to_next_probe() asked for one probe update

    @classmethod
    def resume(cls, run: Run, epochs: int | None = None, *, dataset: DatasetSplit | None = None,
               device: str | None = None) -> "Trainer":
        """Continue a saved run (to ``epochs`` in all); the history continues where it stopped."""
        import dataclasses
        train = run.train
        if epochs is not None or device is not None:
            train = dataclasses.replace(train, epochs=epochs or train.epochs, device=device or train.device)
        run.train = train
        return cls(run.data, run.model, train, dataset=dataset, run=run)

    # -- control (any thread) -------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._pause_after_probe = False
        self._running.clear()

    def resume_training(self) -> None:
        self._pause_after_probe = False   # (a step under way becomes plain training)
        self._running.set()

    def change(self, **values: float) -> None:
        """Queue new values of the variant's float parameters (``beta``, ...) and of ``lr``; the loop
        applies them between two optimizer steps.  ConfigError with one sentence for a value outside
        its declared range or a name that cannot change while training (nothing is queued then)."""
        checked_changes(self.model_cfg, self.train_cfg, values)
        with self._changes_lock:
            self._requested_changes.append(dict(values))

    def step_to_next_probe(self) -> bool:
        """While paused: train until the next probe update, then pause again.  Returns whether it
        was paused (otherwise nothing is done)."""
        if not self.paused:
            return False
        self._pause_after_probe = True
        self._running.set()
        return True

    def _apply_changes(self, model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer],
                       step: int) -> list[list]:
        """Apply the queued changes before optimizer step ``step``: the model's parameters, every
        optimizer's learning rate (scaled, so each keeps its ratio to ``lr``), the settings the run
        saves at its next checkpoint, and the history.  Returns the [step, name, value, previous]
        entries recorded."""
        with self._changes_lock:
            requested, self._requested_changes = self._requested_changes, []
        applied = []
        for values in requested:
            try:
                model_cfg, train_cfg = checked_changes(self.model_cfg, self.train_cfg, values)
            except ConfigError:
                continue   # (checked when asked; only a change of variant settings in between refuses it)
            for name, value in values.items():
                previous = current_value(self.model_cfg, self.train_cfg, name)
                if float(value) == previous:
                    continue
                if name == LEARNING_RATE:
                    for optimizer in optimizers.values():
                        for group in optimizer.param_groups:
                            group["lr"] = group["lr"] * float(value) / previous
                self.history.add_change(step, name, float(value), previous)
                applied.append(self.history.changes[-1])
            model.params = model_cfg.params
            self.model_cfg, self.train_cfg = model_cfg, train_cfg
            if self.run is not None:
                self.run.model, self.run.train = model_cfg, train_cfg
        return applied

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _should_stop(self) -> bool:
        if not self._running.is_set():
            self._running.wait()
            self._rate.reset()   # the pause is not slow training
        return self._stop.is_set()

    # -- set-up -----------------------------------------------------------------------------
    def _build(self, split: DatasetSplit) -> tuple[AutoencoderModel, dict[str, torch.optim.Optimizer]]:
        """The model and its optimizers, restored from the run when it is resumed."""
        cfg = self.train_cfg
        train_set, val_set = split.train, split.val
        n_classes = max(train_set.n_classes, val_set.n_classes)
        check_compatible(self.model_cfg, train_set.shape, self.device, cfg.pretrain_epochs)
        model = build_model(self.model_cfg, train_set.shape, n_classes).to(self.device)
        model.pretrain_epochs = cfg.pretrain_epochs
        optimizers = model.configure_optimizers(cfg.lr)
        if self.run is not None and self.run.step > 0:
            resumed = self.run.load_model("latest", self.device)
            model.load_state_dict(resumed.state_dict())
            rates = {name: [g["lr"] for g in opt.param_groups] for name, opt in optimizers.items()}
            self.run.load_optimizers(optimizers)
            for name, opt in optimizers.items():   # the learning rates asked for now, not the saved ones
                for group, lr in zip(opt.param_groups, rates[name]):
                    group["lr"] = lr
        elif self.run is None and self._run_parent is not None:
            self.run = Run.create(self._run_parent, self.data_cfg, self.model_cfg, cfg, dataset=split.name,
                                  image_shape=train_set.shape, class_names=train_set.class_names,
                                  name=self._run_name)
            self.run.history = self.history
        return model, optimizers

    # -- the loop -------------------------------------------------------------------------
    def _hooks(self, model: AutoencoderModel, val_set: ImageSet, train_set: ImageSet | None = None) -> list[TrainingHook]:
        cfg, run = self.train_cfg, self.run
        movie = load_movie(run, model.latent_dim)
        probe = ProbeHook(val_set, cfg.probe_size, cfg.seed, cfg.probe_every, self.device, movie,
                          train_set=train_set, probe_set=cfg.probe_set)
        snapshot = SnapshotHook(cfg.snapshot_every)
        if self.device.type == "cuda":
            probe.min_gap_s, snapshot.min_gap_s = GPU_MIN_GAP_S["probe"], GPU_MIN_GAP_S["snapshot"]
        hooks: list[TrainingHook] = [probe, snapshot]
        if run is not None:
            hooks += [CheckpointHook(run), MovieHook(run, movie)]
        return hooks + self.extra_hooks

    def updates(self):
        """Train, yielding ``TrainingUpdate`` values; the last one has ``kind == "finished"``."""
        cfg = self.train_cfg
        lower_thread_priority(TRAIN_NICENESS)   # first: before its OpenMP workers start
        use_threads(TRAIN_THREADS)
        torch.manual_seed(cfg.seed)
        split = self._dataset or load_dataset(self.data_cfg)
        train_set, val_set = split.train, split.val
        model, optimizers = self._build(split)
        self.model, self.optimizers = model, optimizers
        run = self.run
        state = LoopState(model, optimizers, step=run.step if run else 0, epoch=run.epochs_done if run else 0,
                          best_val=run.best_val if run else None)
        start_epoch = state.epoch
        last_epoch = model.pretraining_epochs_total() + cfg.epochs
        batches = Batches(train_set.images.to(self.device), train_set.labels.to(self.device), cfg.batch_size)
        total_steps = state.step + max(0, last_epoch - start_epoch) * len(batches)
        samples_per_step = len(train_set) / max(1, len(batches))
        log = StepLog()
        changed: list[list] = []   # changes applied since the last update
        hooks = self._hooks(model, val_set, train_set)
        rate = self._rate

        def flush() -> tuple[np.ndarray, dict[str, np.ndarray]]:
            steps, terms = log.take()
            if len(steps):
                self.history.add_steps(steps, terms)
            return steps, terms

        def update(kind: str, steps, terms, **more) -> TrainingUpdate:
            """The update of ``state``, carrying what the hooks produced since the last one."""
            if kind != "finished":
                more.update(samples_per_sec=rate.rate, eta_s=rate.eta((total_steps - state.step) * samples_per_step))
            out = TrainingUpdate(kind, state.epoch, state.step, total_steps, steps, terms,
                                 probe=state.probe if state.probed or kind == "finished" else None,
                                 model_state=state.snapshot, changes=tuple(changed), **more)
            state.probed, state.snapshot = False, None
            changed.clear()
            if out.probe is not None and self._pause_after_probe and kind != "finished":
                self._pause_after_probe = False   # step mode: this probe update was the one asked for
                self._running.clear()
            return out

        def finish(status: str, reason: str) -> TrainingUpdate:
            flush()
            state.status, state.reason = status, reason
            for hook in hooks:
                hook.on_finish(state)
            return update("finished", np.zeros(0, np.int64), {}, status=status, reason=reason)

        def non_finite(exc: NonFiniteStep, step: int) -> TrainingUpdate:
            return finish("failed", f"The {exc.what} became NaN or infinite at step {exc.step or step}; "
                                    "the last finite weights were kept. Try a lower learning rate.")

        # on CUDA, the default training step as one CUDA graph (engine/cuda_graphs.py): its finite
        # check is read before each report and each validation, not at every step
        graphed = None if graphable(model, optimizers, self.device) else GraphedStep(model, optimizers, self._autocast)
        self.graphed = graphed

        def check_graphed() -> TrainingUpdate | None:
            try:
                if graphed is not None:
                    graphed.check()
            except NonFiniteStep as exc:
                return non_finite(exc, state.step)
            return None

        report_gap = GPU_MIN_GAP_S["report"] if self.device.type == "cuda" else 0.0
        last_report = -math.inf
        for hook in hooks:
            hook.on_start(state)
        yield update("progress", np.zeros(0, np.int64), {})
        samples_done = 0
        rate.update(samples_done)

        for epoch in range(start_epoch, last_epoch):
            torch.manual_seed(epoch_seed(cfg.seed, epoch))
            model.train()
            t_epoch = time.perf_counter()
            epoch_train_seconds = 0.0
            log.new_epoch()
            epoch_batches = 0
            for x_u8, y in batches.epoch(epoch_seed(cfg.seed, epoch)):
                if self._should_stop():
                    yield finish("stopped", "Stopped by the user.")
                    return
                if self._requested_changes:
                    changed += self._apply_changes(model, optimizers, state.step + 1)
                model.progress = epoch + epoch_batches / len(batches)
                phase = model.phase
                if phase != self.history.phase_at(state.step + 1):
                    self.history.mark_phase(state.step + 1, phase)
                try:
                    if graphed is not None:
                        terms = graphed.step(float_batch(x_u8, cfg.binarize), y, state.step + 1)
                    else:
                        with self._autocast:
                            terms = model.training_step(float_batch(x_u8, cfg.binarize), y, optimizers)
                except NonFiniteStep as exc:
                    yield non_finite(exc, state.step + 1)
                    return
                state.step += 1
                epoch_batches += 1
                samples_done += x_u8.shape[0]
                log.add(state.step, terms)
                for hook in hooks:
                    hook.on_step(state)
                if state.probed or state.snapshot is not None or (
                        state.step % cfg.report_every == 0 and time.monotonic() - last_report >= report_gap):
                    last_report = time.monotonic()
                    if (failed := check_graphed()) is not None:
                        yield failed
                        return
                    rate.update(samples_done)
                    steps, update_terms = flush()
                    epoch_train_seconds += time.perf_counter() - t_epoch
                    yield update("progress", steps, update_terms, phase=phase)
                    t_epoch = time.perf_counter()

            epoch_train_seconds += time.perf_counter() - t_epoch
            if (failed := check_graphed()) is not None:
                yield failed
                return
            flushed, update_terms = flush()
            train_means = log.epoch_means()
            model.eval()
            val = evaluate(model, val_set, self.device, cfg.batch_size, binarize=cfg.binarize, seed=cfg.seed)
            if not model.probabilistic:
                model.fit_code_distribution(torch.from_numpy(encode_all(
                    model, batches.images[:10_000], batches.labels[:10_000] if model.is_conditional else None)))
            self.history.add_epoch(epoch + 1, state.step, train_means, val, epoch_train_seconds)
            selection = model.selection_value(val)
            state.improved = state.best_val is None or selection < state.best_val
            if state.improved:
                state.best_val = selection
            state.epoch = epoch + 1
            for hook in hooks:
                hook.on_epoch_end(state)
            yield update("epoch", flushed, update_terms, val_terms=val, train_terms=train_means, phase=model.phase,
                         epoch_samples_per_sec=len(train_set) / max(epoch_train_seconds, 1e-9))
        state.epoch = last_epoch
        yield finish("completed", f"Finished {cfg.epochs} epochs.")

    def run_to_end(self, callback=None) -> TrainingUpdate:
        """Drive ``updates()`` to the end (for the CLI and tests); returns the last update."""
        last = None
        for last in self.updates():
            if callback is not None:
                callback(last)
        return last


def evaluate(model: AutoencoderModel, data: ImageSet, device, batch_size: int = 512, *,
             binarize: bool = False, seed: int = 0) -> dict[str, float]:
    """Mean of every named term (and the total) per image over a whole image set; a binarised
    run's images are binarised once, the same way at every call and in ``engine.metrics``
    (``binarized_validation(images, seed)``, ``seed`` the run's training seed).  The uint8 images
    go to the device once and the sums (float64) stay there until one read at the end, so a GPU
    is not waited for after every batch."""
    sums: dict[str, torch.Tensor] = {}
    n = 0
    images = (binarized_validation(data.images, seed) if binarize else data.images).to(device)
    labels = data.labels.to(device)
    with torch.set_grad_enabled(model.loss_needs_grad):
        for s in range(0, len(data), batch_size):
            x = float_batch(images[s:s + batch_size])
            y = labels[s:s + batch_size]
            out = model.loss(x, y)   # unconditional models ignore y (an AAE's label-informed prior reads it)
            k = x.shape[0]
            for name, v in {"total": out.total, **out.terms}.items():
                term = v.detach().double() * k
                sums[name] = sums[name] + term if name in sums else term
            n += k
    return {name: float(v) / max(n, 1) for name, v in sums.items()}
