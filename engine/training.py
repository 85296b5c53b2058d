"""The trainer: a generator of ``TrainingUpdate`` values, stoppable between optimizer steps.

```python
trainer = Trainer(data_cfg, model_cfg, train_cfg, run_parent="runs/")
for update in trainer.updates():
    print(update.step, update.terms)
```

Everything an update carries is plain Python floats or NumPy arrays / tensors that were
detached, moved to the CPU and copied, so it can cross to another thread as it is.
``pause()``, ``resume()`` and ``stop()`` may be called from any thread; they take effect
between two optimizer steps.  A non-finite loss or gradient stops the run before the step
that would have spoiled the weights, so the weights kept are the last finite ones.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.data import DatasetSplit, ImageSet, load_dataset
from engine.errors import ConfigError
from engine.models import AutoencoderModel, build_model
from engine.runs import History, ProbeCodes, Run

EVAL_BATCH = 1024

# torch's intra-op thread count belongs to each thread (OpenMP's per-thread ICV, MKL's local
# setting), read once per thread on its first use, and a thread inherits the last count set
# anywhere.  Training takes torch's default (one per core, or OMP_NUM_THREADS) in whatever thread
# it runs; a GUI thread beside it keeps one (explorer/app.py, tune_for_gui).
TRAIN_THREADS = torch.get_num_threads()


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
    (after validation) or ``finished`` (the last one; ``status`` says how it ended)."""

    kind: str
    epoch: int                     # epochs completed
    step: int                      # optimizer steps taken
    total_steps: int
    steps: np.ndarray              # the steps this update covers
    terms: dict[str, np.ndarray]   # every named term (and "total") at each of those steps
    samples_per_sec: float = 0.0
    eta_s: float = math.nan
    val_terms: dict[str, float] | None = None
    train_terms: dict[str, float] | None = None
    probe: ProbeCodes | None = None
    decoder_state: dict[str, torch.Tensor] | None = None
    status: str = "running"        # running, completed, stopped, failed
    reason: str = ""

    @property
    def progress(self) -> float:
        return self.step / max(1, self.total_steps)


@dataclass
class _Batches:
    """The training data on the device, served as shuffled float batches."""

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
            yield self.images[idx].float().div_(255.0), self.labels[idx]


def copy_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


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

    # -- the loop -------------------------------------------------------------------------
    def updates(self):
        """Train, yielding ``TrainingUpdate`` values; the last one has ``kind == "finished"``."""
        cfg = self.train_cfg
        use_threads(TRAIN_THREADS)
        torch.manual_seed(cfg.seed)
        split = self._dataset or load_dataset(self.data_cfg)
        train_set, val_set = split.train, split.val
        n_classes = max(train_set.n_classes, val_set.n_classes)
        model = build_model(self.model_cfg, train_set.shape, n_classes).to(self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        optimizers = {"model": optimizer}
        if self.run is not None and self.run.step > 0:
            resumed = self.run.load_model("latest", self.device)
            model.load_state_dict(resumed.state_dict())
            self.run.load_optimizers(optimizers)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
        elif self.run is None and self._run_parent is not None:
            self.run = Run.create(self._run_parent, self.data_cfg, self.model_cfg, cfg, dataset=split.name,
                                  image_shape=train_set.shape, class_names=train_set.class_names,
                                  name=self._run_name)
            self.run.history = self.history
        self.model = model
        run = self.run
        start_epoch, step = (run.epochs_done, run.step) if run else (0, 0)
        best_val = run.best_val if run else None

        batches = _Batches(train_set.images.to(self.device), train_set.labels.to(self.device), cfg.batch_size)
        probe_idx = torch.randperm(len(val_set), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.probe_size]
        probe_idx = probe_idx.sort().values
        probe_x = val_set.images[probe_idx].to(self.device)
        probe_y = val_set.labels[probe_idx].to(self.device)
        total_steps = step + (cfg.epochs - start_epoch) * len(batches)
        conditional = model.is_conditional
        params = [p for p in model.parameters() if p.requires_grad]

        def probe() -> ProbeCodes:
            codes = encode_all(model, probe_x, probe_y if conditional else None)
            return ProbeCodes(codes, probe_y.cpu().numpy().copy(), probe_idx.numpy().copy(), step)

        def snapshot() -> dict[str, torch.Tensor]:
            return copy_state(model.decoder)

        def finish(status: str, reason: str, latest_probe) -> TrainingUpdate:
            if run is not None:
                run.status, run.reason, run.step, run.best_val = status, reason, step, best_val
                run.end_training(model, optimizers, latest_probe)
            return TrainingUpdate("finished", epoch, step, total_steps, np.zeros(0, np.int64), {},
                                  probe=latest_probe, decoder_state=snapshot(), status=status, reason=reason)

        if run is not None:
            run.begin_training()
        pending_steps: list[int] = []
        pending_terms: list[torch.Tensor] = []
        names: list[str] = []
        t_report = time.perf_counter()
        samples_since = 0
        rate = 0.0
        epoch = start_epoch
        latest_probe = probe()
        yield TrainingUpdate("progress", epoch, step, total_steps, np.zeros(0, np.int64), {},
                             probe=latest_probe, decoder_state=snapshot())
        t_report = time.perf_counter()

        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            t_epoch = time.perf_counter()
            epoch_train_seconds = 0.0
            epoch_sums: torch.Tensor | None = None
            epoch_batches = 0
            for x, y in batches.epoch(cfg.seed * 100_003 + epoch):
                if self._should_stop():
                    yield finish("stopped", "Stopped by the user.", latest_probe)
                    return
                model.progress = epoch + epoch_batches / len(batches)
                out = model.loss(x, y if conditional else None)
                optimizer.zero_grad(set_to_none=True)
                out.total.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, math.inf)
                if not names:
                    names = ["total", *out.terms]
                values = torch.stack([out.total.detach(), *(t.detach() for t in out.terms.values())])
                check = torch.cat([values, grad_norm.reshape(1)]).cpu()
                if not torch.isfinite(check).all():
                    what = "loss" if not torch.isfinite(check[:-1]).all() else "gradient"
                    yield finish("failed", f"The {what} became NaN or infinite at step {step + 1}; "
                                           "the last finite weights were kept. Try a lower learning rate.", latest_probe)
                    return
                optimizer.step()
                step += 1
                epoch_batches += 1
                samples_since += x.shape[0]
                vals = check[:-1]
                epoch_sums = vals.clone() if epoch_sums is None else epoch_sums + vals
                pending_steps.append(step)
                pending_terms.append(vals)

                new_probe = step % cfg.probe_every == 0
                new_snapshot = step % cfg.snapshot_every == 0
                if step % cfg.report_every == 0 or new_probe or new_snapshot:
                    now = time.perf_counter()
                    rate = samples_since / max(now - t_report, 1e-9)
                    t_report, samples_since = now, 0
                    update_terms = self._flush(pending_steps, pending_terms, names)
                    if new_probe:
                        model.eval()
                        latest_probe = probe()
                        model.train()
                    eta = (total_steps - step) * cfg.batch_size / rate if rate > 0 else math.nan
                    epoch_train_seconds += time.perf_counter() - t_epoch
                    yield TrainingUpdate("progress", epoch, step, total_steps, np.array(pending_steps), update_terms,
                                         samples_per_sec=rate, eta_s=eta,
                                         probe=latest_probe if new_probe else None,
                                         decoder_state=snapshot() if new_snapshot else None)
                    pending_steps, pending_terms = [], []
                    t_epoch = t_report = time.perf_counter()

            epoch_train_seconds += time.perf_counter() - t_epoch
            epoch_rate = len(train_set) / max(epoch_train_seconds, 1e-9)
            update_terms = self._flush(pending_steps, pending_terms, names)
            flushed = np.array(pending_steps)
            pending_steps, pending_terms = [], []
            train_means = {n: float(v) for n, v in zip(names, (epoch_sums / max(epoch_batches, 1)).tolist())} if epoch_sums is not None else {}
            model.eval()
            val = evaluate(model, val_set, self.device, cfg.batch_size)
            if not model.probabilistic:
                model.fit_code_distribution(torch.from_numpy(encode_all(
                    model, batches.images[:10_000], batches.labels[:10_000] if conditional else None)))
            latest_probe = probe()
            self.history.add_epoch(epoch + 1, step, train_means, val, epoch_train_seconds)
            improved = best_val is None or val["total"] < best_val
            if improved:
                best_val = val["total"]
            if run is not None:
                run.epochs_done, run.step, run.best_val = epoch + 1, step, best_val
                run.save_checkpoint(model, optimizers, latest_probe, best=improved)
            eta = (total_steps - step) * cfg.batch_size / rate if rate > 0 else math.nan
            yield TrainingUpdate("epoch", epoch + 1, step, total_steps, flushed, update_terms, samples_per_sec=epoch_rate,
                                 eta_s=eta, val_terms=val, train_terms=train_means, probe=latest_probe,
                                 decoder_state=snapshot())
            t_report = time.perf_counter()
        epoch = cfg.epochs
        yield finish("completed", f"Finished {cfg.epochs} epochs.", latest_probe)

    def _flush(self, steps: list[int], terms: list[torch.Tensor], names: list[str]) -> dict[str, np.ndarray]:
        if not steps:
            return {}
        block = torch.stack(terms).numpy()
        self.history.add_steps(steps, {n: block[:, i] for i, n in enumerate(names)})
        return {n: block[:, i].copy() for i, n in enumerate(names)}

    def run_to_end(self, callback=None) -> TrainingUpdate:
        """Drive ``updates()`` to the end (for the CLI and tests); returns the last update."""
        last = None
        for last in self.updates():
            if callback is not None:
                callback(last)
        return last


@torch.no_grad()
def encode_all(model: AutoencoderModel, images_u8: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """Codes of uint8 images, in batches, as a float32 NumPy array on the CPU."""
    out = []
    for s in range(0, images_u8.shape[0], EVAL_BATCH):
        x = images_u8[s:s + EVAL_BATCH].float().div_(255.0)
        y = labels[s:s + EVAL_BATCH] if labels is not None else None
        out.append(model.encode(x, y).float().cpu())
    if not out:
        return np.zeros((0, model.latent_dim), np.float32)
    return torch.cat(out).numpy().copy()


def evaluate(model: AutoencoderModel, data: ImageSet, device, batch_size: int = 512) -> dict[str, float]:
    """Mean of every named term (and the total) per image over a whole image set."""
    sums: dict[str, float] = {}
    n = 0
    with torch.set_grad_enabled(model.loss_needs_grad):
        for s in range(0, len(data), batch_size):
            x = data.images[s:s + batch_size].to(device).float().div_(255.0)
            y = data.labels[s:s + batch_size].to(device) if model.is_conditional else None
            out = model.loss(x, y)
            k = x.shape[0]
            for name, v in {"total": out.total, **out.terms}.items():
                sums[name] = sums.get(name, 0.0) + float(v.detach()) * k
            n += k
    return {name: v / max(n, 1) for name, v in sums.items()}
