"""What a run records besides its weights: the losses (``History``, a checkpoint's history.json),
the latest latent codes of the probe set (``ProbeCodes``, probe.safetensors) and the checks of
its metrics.json (``check_metrics``; ``engine.metrics`` computes what it holds), and the package
versions a run was made with (``package_versions``, in its config.json).

``History.from_dict`` checks every list it reads (numbers, finite, lengths that agree), so a bad
value is one ``RunError`` naming the file and the field.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import RunError
from engine.storage import check_numbers, check_series, is_finite_number, is_whole, show_value

#: the evaluation's results in a run folder (written by ``engine.metrics.evaluate_run``)
METRICS_FILE = "metrics.json"
METRICS_FORMAT = "latent-explorer-metrics"
METRICS_VERSION = 1


def package_versions() -> dict[str, str]:
    """The versions a run was made with; torchvision's from its metadata (importing it takes ~160
    modules, on the training thread when a run starts)."""
    from importlib import metadata

    import numpy

    from engine import __version__
    try:
        vision = metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        vision = "unknown"
    return {"latent-explorer": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": vision, "numpy": numpy.__version__}


@dataclass
class ProbeCodes:
    """Latent codes of a fixed set of images (the points of the latent map; ``engine.probe_sets``):
    per point its label, the split it comes from (``splits``: 0 validation, 1 training; None,
    as in runs saved before probe sets, means all validation) and its index in that split."""

    codes: np.ndarray    # N×D float32
    labels: np.ndarray   # N int64
    indices: np.ndarray  # N int64, into the point's split
    step: int = 0
    splits: np.ndarray | None = None   # N int8: 0 validation, 1 training

    def __post_init__(self):
        if self.splits is None:
            self.splits = np.zeros(len(self.indices), np.int8)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The codes, labels, indices and splits as probe.safetensors holds them (the step goes in its metadata)."""
        return {"codes": torch.from_numpy(self.codes), "labels": torch.from_numpy(self.labels),
                "indices": torch.from_numpy(self.indices), "splits": torch.from_numpy(self.splits)}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], path: Path, latent_dim: int, n_classes: int) -> ProbeCodes:
        """Probe codes read from ``path`` (probe.safetensors), checked against the run's latent size and
        classes; RunError with one sentence naming the file otherwise."""
        try:
            codes, labels, indices = t["codes"].numpy(), t["labels"].numpy(), t["indices"].numpy()
        except KeyError as exc:
            raise RunError(f"{path} lacks the {exc} array.") from None
        except TypeError as exc:
            raise RunError(f"{path} holds arrays of a type NumPy cannot take ({exc}).") from None
        if codes.ndim != 2 or codes.shape[1] != latent_dim or not (len(codes) == len(labels) == len(indices)):
            raise RunError(f"{path} does not match the run's latent size {latent_dim}.")
        if labels.ndim != 1 or indices.ndim != 1:
            raise RunError(f"{path} holds labels or indices that are not lists.")
        codes = codes.astype(np.float32)
        if not np.isfinite(codes).all():
            raise RunError(f"{path} holds NaN or infinite codes.")
        labels = labels.astype(np.int64)
        if len(labels) and (labels.min() < 0 or labels.max() >= max(1, n_classes)):
            raise RunError(f"{path} holds labels outside the run's {n_classes} classes.")
        splits = None
        if "splits" in t:   # runs saved before probe sets hold validation points only
            splits = t["splits"].numpy()
            if splits.shape != indices.shape or not np.isin(splits, (0, 1)).all():
                raise RunError(f"{path} holds splits that are not 0 (validation) or 1 (training) per point.")
            splits = splits.astype(np.int8)
        return cls(codes, labels, indices.astype(np.int64), splits=splits)


@dataclass
class History:
    """Losses per step (training) and per epoch (training means and validation).

    Every per-step list is as long as ``steps``; a term that a step did not report (another
    phase's term) is NaN there (null in the JSON).  ``phases`` marks where each training phase
    began, as [first step, name] pairs (``pretrain_<i>``, ``train``); no marks means ``train``
    throughout (and files written before phases existed).  ``changes`` lists the settings changed
    while the run trained (``engine.live_changes``), as [step, name, value, previous] with ``step``
    the first optimizer step taken with ``value`` (files written before changes existed have none)."""

    steps: list[int] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    epoch_steps: list[int] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    phases: list[list] = field(default_factory=list)
    changes: list[list] = field(default_factory=list)

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
        n = len(self.epochs)
        for target, values in ((self.train, train), (self.val, val)):
            # a term a phase does not report (pretraining's, an AAE phase's) is NaN (JSON null) in that epoch
            for name, v in values.items():
                target.setdefault(name, [math.nan] * (n - 1)).append(float(v))
            for series in target.values():
                if len(series) < n:
                    series.append(math.nan)

    def mark_phase(self, step: int, name: str) -> None:
        """The phase ``name`` begins at ``step``."""
        self.phases.append([int(step), str(name)])

    def add_change(self, step: int, name: str, value: float, previous: float) -> None:
        """``name`` (``beta``, ``lr``, ...) is ``value``, no longer ``previous``, from ``step`` on."""
        self.changes.append([int(step), str(name), float(value), float(previous)])

    def phase_at(self, step: int) -> str:
        """The phase the given step belongs to."""
        name = "train"
        for first, phase in self.phases:
            if first <= step:
                name = phase
        return name

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for name in ("terms", "train", "val"):
            d[name] = {k: [None if math.isnan(v) else v for v in vs] for k, vs in getattr(self, name).items()}
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str | Path = "The run history") -> "History":
        """A history from its JSON form; every list is checked (numbers, finite, lengths that
        agree), so a bad value is one RunError naming ``where`` and the field.  A per-step term
        may be null where a phase did not report it (an AAE's phases, layer-wise pretraining)."""
        if not isinstance(d, dict):
            raise RunError(f"{where} does not hold a training history.")
        h = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        check_numbers(h.steps, where, "steps", whole=True)
        check_series(h.terms, where, "terms", len(h.steps), "steps", gaps=True)
        check_numbers(h.epochs, where, "epochs", whole=True)
        for name in ("epoch_steps", "seconds"):
            values = getattr(h, name)
            check_numbers(values, where, name, whole=name == "epoch_steps")
            if len(values) != len(h.epochs):
                raise RunError(f"{where} is malformed: {name} holds {len(values)} values but epochs holds "
                               f"{len(h.epochs)}.")
        check_series(h.train, where, "train", len(h.epochs), "epochs", gaps=True)
        check_series(h.val, where, "val", len(h.epochs), "epochs", gaps=True)
        if not isinstance(h.phases, list) or not all(
                isinstance(p, list) and len(p) == 2 and is_whole(p[0]) and isinstance(p[1], str) for p in h.phases):
            raise RunError(f"{where} is malformed: phases is {show_value(h.phases)}, not a list of [step, name] pairs.")
        if not isinstance(h.changes, list) or not all(
                isinstance(c, list) and len(c) == 4 and is_whole(c[0]) and isinstance(c[1], str)
                and all(is_finite_number(v) for v in c[2:])
                for c in h.changes):
            raise RunError(f"{where} is malformed: changes is {show_value(h.changes)}, not a list of "
                           "[step, name, value, previous] entries.")
        h.changes = [[int(step), name, float(value), float(previous)] for step, name, value, previous in h.changes]
        for name in ("terms", "train", "val"):
            setattr(h, name, {k: [math.nan if v is None else v for v in vs] for k, vs in getattr(h, name).items()})
        h.phases = [[int(first), str(name)] for first, name in h.phases]
        return h


def _number(value, nullable: bool = True) -> bool:
    if value is None:
        return nullable
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_metrics(obj: dict, path) -> dict:
    """``obj`` read from metrics.json, checked field by field; RunError with one sentence otherwise."""
    def bad(what: str):
        return RunError(f"{path} is damaged: {what}.")

    if obj.get("format") != METRICS_FORMAT:
        raise bad("it is not a Latent Explorer metrics file")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise bad("its version is missing")
    if version > METRICS_VERSION:
        raise RunError(f"{path} was written by a newer Latent Explorer (metrics format {version}).")
    for key in ("nll", "nll_std_error", "elbo", "neg_elbo", "kl", "prior_mmd", "knn_accuracy", "training_seconds",
                "training_samples_per_sec", "evaluation_seconds"):
        if not _number(obj.get(key)):
            raise bad(f"{key} is not a finite number or null")
    for key in ("active_units", "parameters", "latent_dim"):
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"{key} is not a whole number")
    if obj["active_units"] > obj["latent_dim"]:
        raise bad("it counts more active units than latent dimensions")
    knn = obj["knn_accuracy"]
    if knn is not None and not 0.0 <= knn <= 1.0:
        raise bad("knn_accuracy is not between 0 and 1")
    rec = obj.get("reconstruction")
    if not isinstance(rec, dict) or not all(_number(rec.get(k)) for k in ("bce", "squared_error")):
        raise bad("reconstruction does not hold bce and squared_error numbers")
    for key in ("kl_per_dim", "code_variance"):
        values = obj.get(key)
        if values is not None and (not isinstance(values, list) or not all(_number(v) for v in values)
                                   or len(values) != obj["latent_dim"]):
            raise bad(f"{key} is not a list of one number per latent dimension")
    images = obj.get("images")
    if not isinstance(images, dict) or not isinstance(images.get("n"), int) or images["n"] < 1:
        raise bad("it does not say how many images it was measured on")
    units = obj.get("units")
    if not isinstance(units, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in units.items()):
        raise bad("its units are not text")
    if not isinstance(obj.get("notes", []), list):
        raise bad("its notes are not a list")
    for key in ("step", "epochs"):   # files written before these were recorded have none
        value = obj.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise bad(f"{key} is not a whole number")
    if not isinstance(obj.get("checkpoint") or "", str):
        raise bad("checkpoint is not a folder name")
    return obj
