"""Run folders: everything needed to look at, resume or export a training run.

```
<run>/config.json          the data, model and training settings, the variant key, data shape,
                           status, package versions (JSON)
<run>/history.json         losses per step and per epoch, train and validation (JSON)
<run>/weights.safetensors  the latest weights     <run>/best.safetensors  best by validation loss
<run>/optimizer.safetensors  every named optimizer's state, for resuming: tensors keyed
                           "<name>/<param id>.<state>", hyperparameters in the metadata
                           "param_groups/<name>" (format 1 files hold one unnamed optimizer)
<run>/probe.safetensors    the latest latent codes of the probe set (codes, labels, indices)
```

Every write goes to a temporary file first and is moved into place with ``os.replace``, so a
crash never leaves half a file.  Nothing is ever unpickled: tensors come from safetensors and
everything else from JSON, and every load checks what it reads.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import ConfigError, RunError
from engine.models import AutoencoderModel, build_model, variant

RUN_FORMAT = "latent-explorer-run"
FORMAT_VERSION = 1
CONFIG, HISTORY = "config.json", "history.json"
WEIGHTS, BEST, OPTIMIZER, PROBE = "weights.safetensors", "best.safetensors", "optimizer.safetensors", "probe.safetensors"


# -- atomic writes ---------------------------------------------------------------------------
def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and move the finished file over ``path`` in one step."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1, allow_nan=False)))


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_json(path: Path, what: str) -> dict:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path} is missing, so {path.parent} is not a complete run folder.") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{path} is damaged and cannot be read as {what} ({type(exc).__name__}).") from None
    if not isinstance(obj, dict):
        raise RunError(f"{path} does not hold {what}.")
    return obj


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise RunError(f"{path} is missing from the run folder.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise RunError(f"{path} is damaged or truncated and cannot be loaded ({str(exc)[:80]}).") from None


# -- what a run records ----------------------------------------------------------------------
@dataclass
class ProbeCodes:
    """Latent codes of a fixed subset of the validation set (the points of the latent map)."""

    codes: np.ndarray    # N×D float32
    labels: np.ndarray   # N int64
    indices: np.ndarray  # N int64, into the validation set
    step: int = 0


@dataclass
class History:
    """Losses per step (training) and per epoch (training means and validation).

    Every per-step list is as long as ``steps``; a term that a step did not report (another
    phase's term) is NaN there (null in the JSON).  ``phases`` marks where each training phase
    began, as [first step, name] pairs (``pretrain_<i>``, ``train``); no marks means ``train``
    throughout (and files written before phases existed)."""

    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    epoch_steps: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    phases: list[list] = field(default_factory=list)

    def add_steps(self, steps, terms: dict[str, np.ndarray]) -> None:
        before, added = len(self.steps), len(steps)
        self.steps.extend(int(s) for s in steps)
        for name, values in terms.items():
            self.terms.setdefault(name, [math.nan] * before).extend(float(v) for v in values)
        for values in self.terms.values():
            if len(values) < before + added:
                values.extend([math.nan] * (before + added - len(values)))

    def add_epoch(self, epoch: int, step: int, train: dict[str, float], val: dict[str, float], seconds: float) -> None:
        self.epochs.append(epoch)
        self.epoch_steps.append(step)
        self.seconds.append(seconds)
        for target, values in ((self.train, train), (self.val, val)):
            for name, v in values.items():
                target.setdefault(name, []).append(float(v))

    def mark_phase(self, step: int, name: str) -> None:
        """The phase ``name`` begins at ``step``."""
        self.phases.append([int(step), str(name)])

    def phase_at(self, step: int) -> str:
        """The phase the given step belongs to."""
        name = "train"
        for first, phase in self.phases:
            if first <= step:
                name = phase
        return name

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["terms"] = {k: [None if math.isnan(v) else v for v in vs] for k, vs in self.terms.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        try:
            h = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
            h.terms = {k: [math.nan if v is None else v for v in vs] for k, vs in h.terms.items()}
            h.phases = [[int(first), str(name)] for first, name in h.phases]
        except (TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"The run history is malformed ({exc}).") from None
        lengths = {len(v) for v in h.terms.values()} | {len(h.steps)}
        if len(lengths) > 1:
            raise RunError("The run history is malformed: its per-step lists differ in length.")
        return h


def package_versions() -> dict[str, str]:
    import numpy
    import torchvision

    from engine import __version__
    return {"latent-explorer": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


# -- the run -----------------------------------------------------------------------------------
@dataclass
class Run:
    path: Path
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    dataset: str
    image_shape: tuple[int, int, int]
    class_names: list[str]
    status: str = "new"          # new, running, completed, stopped, failed
    reason: str = ""
    epochs_done: int = 0
    step: int = 0
    best_val: float | None = None
    created: str = ""
    history: History = field(default_factory=History)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    # -- create / open ----------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, data: DataConfig, model: ModelConfig, train: TrainConfig, *,
               dataset: str, image_shape, class_names, name: str | None = None) -> "Run":
        """Make a new, uniquely named run folder under ``parent`` and write its config."""
        parent = Path(parent).expanduser()
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot create the runs folder {parent} ({exc.strerror}).") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = _slug(name or f"{stamp}-{model.variant}-{dataset}-z{model.latent_dim}")
        path, i = parent / base, 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                i += 1
                path = parent / f"{base}-{i}"
        run = cls(path, data, model, train, dataset, tuple(image_shape), list(class_names),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        run.save_config()
        return run

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """Read a run folder's config and history; RunError with one sentence when anything is wrong."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise RunError(f"{path} is not a folder.")
        cfg = read_json(path / CONFIG, "a run configuration")
        if cfg.get("format") != RUN_FORMAT:
            raise RunError(f"{path} is not a Latent Explorer run folder (its config.json has no run format).")
        if cfg.get("version", 0) > FORMAT_VERSION:
            raise RunError(f"{path} was written by a newer Latent Explorer (run format {cfg['version']}).")
        try:
            run = cls(path, DataConfig.from_dict(cfg["data"]), ModelConfig.from_dict(cfg["model"]),
                      TrainConfig.from_dict(cfg["train"]), str(cfg["dataset"]),
                      tuple(int(v) for v in cfg["image_shape"]), [str(c) for c in cfg["class_names"]],
                      str(cfg.get("status", "stopped")), str(cfg.get("reason", "")), int(cfg.get("epochs_done", 0)),
                      int(cfg.get("step", 0)), cfg.get("best_val"), str(cfg.get("created", "")))
            run.model.validate()
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path / CONFIG} is incomplete or malformed ({type(exc).__name__}: {exc}).") from None
        except ConfigError as exc:
            raise RunError(f"{path / CONFIG} holds invalid settings: {exc}") from None
        if len(run.image_shape) != 3:
            raise RunError(f"{path / CONFIG} records an image shape that is not C×H×W.")
        if (path / HISTORY).exists():
            run.history = History.from_dict(read_json(path / HISTORY, "a training history"))
        return run

    # -- writing ---------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {"format": RUN_FORMAT, "version": FORMAT_VERSION, "variant": self.model.variant,
                "dataset": self.dataset, "image_shape": list(self.image_shape), "class_names": self.class_names,
                "data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "status": self.status, "reason": self.reason, "epochs_done": self.epochs_done, "step": self.step,
                "best_val": self.best_val, "created": self.created, "versions": package_versions()}

    def save_config(self) -> None:
        write_json(self.path / CONFIG, self.config_dict())

    def save_checkpoint(self, model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                        probe: ProbeCodes | None = None, best: bool = False) -> None:
        """Weights (and best weights), optimizer state, probe codes, history, then the config
        last, so the config never points at files that were not written."""
        state = model.state_dict()
        write_tensors(self.path / WEIGHTS, state, {"variant": self.model.variant})
        if best:
            write_tensors(self.path / BEST, state, {"variant": self.model.variant})
        if optimizers:
            tensors, meta = optimizers_to_tensors(optimizers)
            write_tensors(self.path / OPTIMIZER, tensors, meta)
        if probe is not None:
            write_tensors(self.path / PROBE, {"codes": torch.from_numpy(probe.codes), "labels": torch.from_numpy(probe.labels),
                                              "indices": torch.from_numpy(probe.indices)}, {"step": str(probe.step)})
        write_json(self.path / HISTORY, self.history.to_dict())
        self.save_config()

    # -- reading ---------------------------------------------------------------------------
    def build_model(self) -> AutoencoderModel:
        return build_model(self.model, self.image_shape, self.n_classes)

    def load_model(self, which: str = "latest", device: str | torch.device = "cpu") -> AutoencoderModel:
        """A model with the run's latest (or best) weights, checked key by key and shape by shape."""
        model = self.build_model()
        path = self.path / (BEST if which == "best" and (self.path / BEST).exists() else WEIGHTS)
        load_checked(model, read_tensors(path), path, variant(self.model.variant).title)
        return model.to(device).eval()

    def load_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Restore each named optimizer's state; RunError with one sentence when the file does not fit."""
        path = self.path / OPTIMIZER
        try:
            from safetensors import safe_open
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError) as exc:
            raise RunError(f"{path} is damaged or missing ({str(exc)[:80]}).") from None
        tensors_to_optimizers(optimizers, read_tensors(path), meta, path)

    def load_probe(self) -> ProbeCodes | None:
        path = self.path / PROBE
        if not path.exists():
            return None
        t = read_tensors(path)
        try:
            codes, labels, indices = t["codes"].numpy(), t["labels"].numpy(), t["indices"].numpy()
        except KeyError as exc:
            raise RunError(f"{path} lacks the {exc} array.") from None
        if codes.ndim != 2 or codes.shape[1] != self.model.latent_dim or not (len(codes) == len(labels) == len(indices)):
            raise RunError(f"{path} does not match the run's latent size {self.model.latent_dim}.")
        return ProbeCodes(codes.astype(np.float32), labels.astype(np.int64), indices.astype(np.int64))


def load_checked(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path, title: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        name = (missing or extra)[0]
        raise RunError(f"{path} does not fit a {title} with the run's settings ({'missing' if missing else 'unexpected'} {name}).")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise RunError(f"{path} does not fit a {title} with the run's settings "
                           f"({k} is {tuple(tensors[k].shape)}, expected {tuple(v.shape)}).")
    model.load_state_dict(tensors)


def optimizers_to_tensors(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors, meta = {}, {}
    for name, optimizer in optimizers.items():
        sd = optimizer.state_dict()
        for pid, state in sd["state"].items():
            for key, value in state.items():
                tensors[f"{name}/{pid}.{key}"] = torch.as_tensor(value).clone()
        meta[f"param_groups/{name}"] = json.dumps(sd["param_groups"])
    return tensors, meta


def tensors_to_optimizers(optimizers: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor],
                          meta: dict[str, str], path: Path) -> None:
    """Load the state of each named optimizer.  A format-1 file (one optimizer, keys without a
    name) belongs to a model with a single optimizer, whatever it is called."""
    if "param_groups" in meta and len(optimizers) == 1:
        (only,) = optimizers
        meta = {f"param_groups/{only}": meta["param_groups"]}
        tensors = {f"{only}/{k}": v for k, v in tensors.items()}
    try:
        for name, optimizer in optimizers.items():
            groups = json.loads(meta[f"param_groups/{name}"])
            state: dict[int, dict] = {}
            prefix = f"{name}/"
            for key, value in tensors.items():
                if key.startswith(prefix):
                    pid, field_name = key[len(prefix):].split(".", 1)
                    state.setdefault(int(pid), {})[field_name] = value
            expected = optimizer.state_dict()["param_groups"]
            if [len(g["params"]) for g in groups] != [len(g["params"]) for g in expected]:
                raise ValueError(f"the {name!r} optimizer's parameter groups differ")
            params = [p for g in optimizer.param_groups for p in g["params"]]
            for pid, st in state.items():
                for field_name, value in st.items():
                    if value.dim() > 0 and pid < len(params) and tuple(value.shape) != tuple(params[pid].shape):
                        raise ValueError(f"{name}/{pid}.{field_name} is {tuple(value.shape)}, "
                                         f"the parameter is {tuple(params[pid].shape)}")
            optimizer.load_state_dict({"state": state, "param_groups": groups})
    except KeyError as exc:
        raise RunError(f"{path} does not fit this model's optimizers (no state for {exc}).") from None
    except (ValueError, RuntimeError, IndexError) as exc:
        raise RunError(f"{path} does not fit this model's optimizer ({str(exc)[:80]}).") from None


def list_runs(parent: str | Path) -> list[Path]:
    """Run folders directly under ``parent``, newest first."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    runs = [p for p in parent.iterdir() if (p / CONFIG).is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
