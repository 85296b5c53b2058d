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
``pause()``, ``resume()`` and ``stop()`` may be called from any thread; they take effect
between two training steps.  A non-finite loss or gradient stops the run before the optimizer
step that would have spoiled the weights, so the weights kept are the last finite ones.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import DatasetSplit, ImageSet, load_dataset
from engine.errors import ConfigError, UserError
from engine.history import History, ProbeCodes
from engine.models import AutoencoderModel, build_model, check_compatible
from engine.models.base import NonFiniteStep
from engine.runs import Run

EVAL_BATCH = 1024

# torch's intra-op thread count belongs to each thread (OpenMP's per-thread ICV, MKL's local
# setting), read once per thread on its first use, and a thread inherits the last count set
# anywhere.  Training takes torch's default (one per core, or OMP_NUM_THREADS) in whatever thread
# it runs; a GUI thread beside it keeps one (explorer/window/runtime.py, tune_for_gui).
TRAIN_THREADS = torch.get_num_threads()
#: the nice value a training thread gives itself on Linux, where niceness belongs to each thread
#: and the OpenMP workers it starts inherit it: 0 (the CLI) leaves it alone; the app raises it so
#: that a GUI thread beside it gets a core at once (explorer/window/runtime.py, tune_for_gui)
TRAIN_NICENESS = 0


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
    samples_per_sec: float = 0.0
    eta_s: float = math.nan
    val_terms: dict[str, float] | None = None
    train_terms: dict[str, float] | None = None
    probe: ProbeCodes | None = None
    #: a copy of the whole model's state dict (each tensor once), for the GUI's own model copy
    model_state: dict[str, torch.Tensor] | None = None
    status: str = "running"        # running, completed, stopped, failed
    reason: str = ""
    phase: str = "train"           # what the steps of this update did (``train``, ``pretrain_<i>``)

    @property
    def progress(self) -> float:
        return self.step / max(1, self.total_steps)


def float_batch(images_u8: torch.Tensor, binarize: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """The float batch a run trains on, from uint8 images: pixel / 255 in [0, 1]; with
    ``binarize``, one draw x ~ Bernoulli(pixel / 255) (a ``generator`` on the images' device
    makes the draw repeatable).  Metrics of a binarised run binarise through this too."""
    x = images_u8.float().div_(255.0)
    return torch.bernoulli(x, generator=generator) if binarize else x


def validation_generator(seed: int) -> torch.Generator:
    """The CPU generator of a binarised run's fixed validation binarisation."""
    return torch.Generator().manual_seed(seed * 7_919 + 17)


def epoch_seed(seed: int, epoch: int) -> int:
    """The global RNG seed at the start of each epoch, so a resumed run draws the same noise."""
    return seed * 100_003 + epoch


@dataclass
class _Batches:
    """The training data on the device, served as shuffled uint8 batches."""

    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int
    generator: torch.Generator = field(default_factory=torch.Generator)

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def epoch(self, epoch_seed: int):
        self.generator.manual_seed(epoch_seed)
        order = torch.randperm(self.images.shape[0], generator=self.generator).to(self.images.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.images[idx], self.labels[idx]


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A snapshot of the module's weights: fresh CPU tensors that nothing else holds."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


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


class _StepLog:
    """Terms of the steps since the last flush, kept on the device until then (one transfer)."""

    def __init__(self):
        self.steps: list[int] = []
        self.records: list[tuple[tuple[str, ...], torch.Tensor]] = []

    def add(self, step: int, terms: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.records.append((tuple(terms), torch.stack([t.reshape(()).float() for t in terms.values()])))

    def take(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        steps, records = np.array(self.steps, dtype=np.int64), self.records
        self.steps, self.records = [], []
        if not records:
            return steps, {}
        flat = torch.cat([t for _, t in records]).cpu().numpy().astype(np.float64)
        names: list[str] = []
        for record_names, _ in records:
            names.extend(n for n in record_names if n not in names)
        out = {n: np.full(len(records), np.nan) for n in names}
        pos = 0
        for i, (record_names, _) in enumerate(records):
            for j, n in enumerate(record_names):
                out[n][i] = flat[pos + j]
            pos += len(record_names)
        return steps, out


class Trainer:
    """Trains one model; yields updates; saves into a run folder when it has one."""

    def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig, *,
                 dataset: DatasetSplit | None = None, run_parent=None, run: Run | None = None,
                 run_name: str | None = None):
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
        self._running.clear()

    def resume_training(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _should_stop(self) -> bool:
        if not self._running.is_set():
            self._running.wait()
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
        start_epoch, step = (run.epochs_done, run.step) if run else (0, 0)
        best_val = run.best_val if run else None
        last_epoch = model.pretraining_epochs_total() + cfg.epochs

        batches = _Batches(train_set.images.to(self.device), train_set.labels.to(self.device), cfg.batch_size)
        probe_idx = torch.randperm(len(val_set), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.probe_size]
        probe_idx = probe_idx.sort().values
        probe_x = val_set.images[probe_idx].to(self.device)
        probe_y = val_set.labels[probe_idx].to(self.device)
        total_steps = step + max(0, last_epoch - start_epoch) * len(batches)
        conditional = model.is_conditional
        log = _StepLog()
        sums: dict[str, float] = {}      # this epoch's sums and counts of each term, for its means
        counts: dict[str, int] = {}

        movie = self._movie(run, model.latent_dim)

        def probe() -> ProbeCodes:
            codes = encode_all(model, probe_x, probe_y if conditional else None)
            latest = ProbeCodes(codes, probe_y.cpu().numpy().copy(), probe_idx.numpy().copy(), step)
            movie.add(latest)   # the training movie: every probe update, thinned to a budget
            return latest

        def save_movie() -> None:
            if run is not None:
                try:
                    movie.save(run.path)
                except (UserError, OSError):
                    pass   # the movie is a view of the training, never worth failing it for

        def snapshot() -> dict[str, torch.Tensor]:
            return copy_state(model)

        def flush() -> tuple[np.ndarray, dict[str, np.ndarray]]:
            steps, terms = log.take()
            if len(steps):
                self.history.add_steps(steps, terms)
                for name, values in terms.items():
                    finite = np.isfinite(values)
                    sums[name] = sums.get(name, 0.0) + float(values[finite].sum())
                    counts[name] = counts.get(name, 0) + int(finite.sum())
            return steps, terms

        def finish(status: str, reason: str, latest_probe) -> TrainingUpdate:
            flush()
            if run is not None:
                run.status, run.reason, run.step, run.best_val = status, reason, step, best_val
                run.end_training(model, optimizers, latest_probe)
                save_movie()
            return TrainingUpdate("finished", epoch, step, total_steps, np.zeros(0, np.int64), {},
                                  probe=latest_probe, model_state=snapshot(), status=status, reason=reason)

        if run is not None:
            run.begin_training()
        t_report = time.perf_counter()
        samples_since = 0
        rate = 0.0
        epoch = start_epoch
        latest_probe = probe()
        yield TrainingUpdate("progress", epoch, step, total_steps, np.zeros(0, np.int64), {},
                             probe=latest_probe, model_state=snapshot())
        t_report = time.perf_counter()

        for epoch in range(start_epoch, last_epoch):
            torch.manual_seed(epoch_seed(cfg.seed, epoch))
            model.train()
            t_epoch = time.perf_counter()
            epoch_train_seconds = 0.0
            sums.clear()
            counts.clear()
            epoch_batches = 0
            for x_u8, y in batches.epoch(epoch_seed(cfg.seed, epoch)):
                if self._should_stop():
                    yield finish("stopped", "Stopped by the user.", latest_probe)
                    return
                model.progress = epoch + epoch_batches / len(batches)
                phase = model.phase
                if phase != self.history.phase_at(step + 1):
                    self.history.mark_phase(step + 1, phase)
                try:
                    terms = model.training_step(float_batch(x_u8, cfg.binarize), y, optimizers)
                except NonFiniteStep as exc:
                    yield finish("failed", f"The {exc.what} became NaN or infinite at step {step + 1}; "
                                           "the last finite weights were kept. Try a lower learning rate.", latest_probe)
                    return
                step += 1
                epoch_batches += 1
                samples_since += x_u8.shape[0]
                log.add(step, terms)

                new_probe = step % cfg.probe_every == 0
                new_snapshot = step % cfg.snapshot_every == 0
                if step % cfg.report_every == 0 or new_probe or new_snapshot:
                    now = time.perf_counter()
                    rate = samples_since / max(now - t_report, 1e-9)
                    t_report, samples_since = now, 0
                    steps, update_terms = flush()
                    if new_probe:
                        model.eval()
                        latest_probe = probe()
                        model.train()
                    eta = (total_steps - step) * cfg.batch_size / rate if rate > 0 else math.nan
                    epoch_train_seconds += time.perf_counter() - t_epoch
                    yield TrainingUpdate("progress", epoch, step, total_steps, steps, update_terms,
                                         samples_per_sec=rate, eta_s=eta,
                                         probe=latest_probe if new_probe else None,
                                         model_state=snapshot() if new_snapshot else None, phase=phase)
                    t_epoch = t_report = time.perf_counter()

            epoch_train_seconds += time.perf_counter() - t_epoch
            epoch_rate = len(train_set) / max(epoch_train_seconds, 1e-9)
            flushed, update_terms = flush()
            train_means = {n: sums[n] / counts[n] for n in sums if counts[n]}
            model.eval()
            val = evaluate(model, val_set, self.device, cfg.batch_size, binarize=cfg.binarize, seed=cfg.seed)
            if not model.probabilistic:
                model.fit_code_distribution(torch.from_numpy(encode_all(
                    model, batches.images[:10_000], batches.labels[:10_000] if conditional else None)))
            latest_probe = probe()
            self.history.add_epoch(epoch + 1, step, train_means, val, epoch_train_seconds)
            selection = model.selection_value(val)
            improved = best_val is None or selection < best_val
            if improved:
                best_val = selection
            if run is not None:
                run.epochs_done, run.step, run.best_val = epoch + 1, step, best_val
                run.save_checkpoint(model, optimizers, latest_probe, best=improved)
                save_movie()
            eta = (total_steps - step) * cfg.batch_size / rate if rate > 0 else math.nan
            yield TrainingUpdate("epoch", epoch + 1, step, total_steps, flushed, update_terms, samples_per_sec=epoch_rate,
                                 eta_s=eta, val_terms=val, train_terms=train_means, probe=latest_probe,
                                 model_state=snapshot(), phase=model.phase)
            t_report = time.perf_counter()
        epoch = last_epoch
        yield finish("completed", f"Finished {cfg.epochs} epochs.", latest_probe)

    @staticmethod
    def _movie(run: Run | None, latent_dim: int):
        """The run's training movie, continued on resume (a damaged one starts afresh)."""
        from engine.movie import ProbeMovie
        if run is not None:
            try:
                return ProbeMovie.load(run.path, latent_dim) or ProbeMovie()
            except UserError:
                pass
        return ProbeMovie()

    def run_to_end(self, callback=None) -> TrainingUpdate:
        """Drive ``updates()`` to the end (for the CLI and tests); returns the last update."""
        last = None
        for last in self.updates():
            if callback is not None:
                callback(last)
        return last


@torch.no_grad()
def encode_all(model: AutoencoderModel, images_u8: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """Codes of uint8 images (grey levels, also for binarised runs), in batches, as a float32
    NumPy array on the CPU."""
    out = []
    for s in range(0, images_u8.shape[0], EVAL_BATCH):
        x = float_batch(images_u8[s:s + EVAL_BATCH])
        y = labels[s:s + EVAL_BATCH] if labels is not None else None
        out.append(model.encode(x, y).float().cpu())
    if not out:
        return np.zeros((0, model.latent_dim), np.float32)
    return torch.cat(out).numpy().copy()


def evaluate(model: AutoencoderModel, data: ImageSet, device, batch_size: int = 512, *,
             binarize: bool = False, seed: int = 0) -> dict[str, float]:
    """Mean of every named term (and the total) per image over a whole image set; a binarised
    run's images are binarised once, the same way at every call (``validation_generator(seed)``)."""
    sums: dict[str, float] = {}
    n = 0
    generator = validation_generator(seed) if binarize else None
    with torch.set_grad_enabled(model.loss_needs_grad):
        for s in range(0, len(data), batch_size):
            x = float_batch(data.images[s:s + batch_size], binarize, generator).to(device)
            y = data.labels[s:s + batch_size].to(device)
            out = model.loss(x, y)   # unconditional models ignore y (an AAE's label-informed prior reads it)
            k = x.shape[0]
            for name, v in {"total": out.total, **out.terms}.items():
                sums[name] = sums.get(name, 0.0) + float(v.detach()) * k
            n += k
    return {name: v / max(n, 1) for name, v in sums.items()}

