"""Frozen configuration dataclasses (``DataConfig``, ``ModelConfig``, ``TrainConfig``), their
validation, and their JSON form; ``settings_from_dict`` builds each from its JSON object.

The names of the data sources are here (``SOURCES``); ``engine.datasets`` reads them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.models import BODIES, LEGACY_LIKELIHOODS, LIKELIHOODS, variant
from engine.models.base import check_params

DEVICES = ("auto", "cpu", "cuda")
#: the images whose codes the latent map shows (``TrainConfig.probe_set``; ``engine.probe_sets``):
#: the validation split, the test split (the same images: the app's validation split is the
#: source's official test set, or a seeded holdout where it has none), the training split, or both
PROBE_SETS = ("validation", "test", "train", "all")
#: the arithmetic of the training steps: ``fp32`` throughout, or ``bf16`` mixed precision (the
#: forward pass and the loss under ``torch.autocast`` in bfloat16; weights, gradients and Adam's
#: state stay float32; validation, probes and metrics always run in float32)
PRECISIONS = ("fp32", "bf16")
SOURCES = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder", "npz")
TORCHVISION_SOURCES = ("mnist", "fashion-mnist", "kmnist", "cifar10")
#: the seeds torch and NumPy both accept (NumPy's are unsigned 32-bit); importing NumPy here, before
#: torch imports it inside its own import, keeps a Ctrl+C at start-up a KeyboardInterrupt (tests/engine/test_faults.py)
MAX_SEED = int(np.iinfo(np.uint32).max)

#: DataConfig field -> (accepted types, how a message describes them)
_FIELD_TYPES = {
    "source": (str, "text"),
    "root": ((str, type(None)), "a folder path or null"),
    "path": ((str, type(None)), "a file or folder path or null"),
    "image_size": (int, "a whole number"),
    "grayscale": (bool, "true or false"),
    "val_fraction": ((int, float), "a number"),
    "seed": (int, "a whole number"),
    "download": (bool, "true or false"),
}


def settings_from_dict(cls, d: dict, what: str):
    """A settings dataclass from its JSON form: ConfigError with one sentence for a non-object, an unknown
    key or a bad value (``engine.config`` builds every settings class through this)."""
    if not isinstance(d, dict):
        raise ConfigError(f"The {what} settings must be a JSON object.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} setting {unknown[0]!r}.")
    try:
        return cls(**d)
    except TypeError as exc:
        raise ConfigError(f"Bad {what} settings: {exc}.") from None


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are split; JSON-able through ``to_dict``/``from_dict``.

    ``image_size`` and ``grayscale`` shape the folder source only; ``val_fraction`` and ``seed``
    set the holdout of the sources without an official test split (digits, folder, npz).
    """

    source: str = "digits"
    root: str | None = None
    path: str | None = None
    image_size: int = 28
    grayscale: bool = True
    val_fraction: float = 0.1
    seed: int = 0
    download: bool = False

    def validate(self) -> None:
        """Raise ``ConfigError`` with one sentence for the first bad value."""
        for name, (kinds, description) in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
                raise ConfigError(f"The data setting {name!r} must be {description}, not {value!r}.")
        if self.source not in SOURCES:
            raise ConfigError(f"The data source must be one of {', '.join(SOURCES)}, not {self.source!r}.")
        if self.source in ("folder", "npz") and not self.path:
            what = "a folder of images" if self.source == "folder" else "an .npz file"
            raise ConfigError(f"The {self.source} source needs the path of {what}.")
        if not 4 <= self.image_size <= 256:
            raise ConfigError(f"The image size must be between 4 and 256 pixels, not {self.image_size}.")
        if not (math.isfinite(self.val_fraction) and 0 < self.val_fraction <= 0.5):
            raise ConfigError(f"The validation fraction must be above 0 and at most 0.5, not {self.val_fraction}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"The data seed must be between 0 and {MAX_SEED}, not {self.seed}.")

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Rebuild settings from ``to_dict``'s form; an unknown key raises ``ConfigError`` naming it."""
        return settings_from_dict(cls, d, "data")



def check_number(value, label: str, kind: type) -> None:
    """ConfigError unless ``value`` is a finite number of ``kind`` (int: a whole number, not a bool;
    float: any int or float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        expected = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{label} must be {expected}, not {value!r}.")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{label} must be a whole number, not {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"{label} must be a finite number, not {value}.")


@dataclass(frozen=True)
class ModelConfig:
    variant: str = "vae"
    latent_dim: int = 2
    body: str = "auto"
    hidden: tuple[int, ...] = (512, 256)
    likelihood: str = "bernoulli"
    #: the variant's own parameter dataclass; None means its defaults
    params: Any = None

    def __post_init__(self):
        if isinstance(self.hidden, (list, tuple)):
            object.__setattr__(self, "hidden", tuple(int(h) if isinstance(h, float) and h.is_integer() else h
                                                     for h in self.hidden))
        if self.params is None and self.variant in _variant_keys():
            object.__setattr__(self, "params", variant(self.variant).params_class())

    def validate(self) -> None:
        try:
            spec = variant(self.variant)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(self.params, spec.params_class):
            raise ConfigError(f"The parameters given do not belong to the {spec.title}.")
        check_number(self.latent_dim, "The latent size", int)
        if not isinstance(self.hidden, tuple):
            raise ConfigError(f"Hidden widths must be a list of whole numbers, not {self.hidden!r}.")
        for h in self.hidden:
            check_number(h, "Each hidden width", int)
        for name in ("body", "likelihood"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"The {name} must be a name, not {getattr(self, name)!r}.")
        for f in dataclasses.fields(self.params):
            value = getattr(self.params, f.name)
            label = f.metadata.get("label", f.name)
            if isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{label} must be true or false, not {value!r}.")
            elif isinstance(f.default, (int, float)):
                check_number(value, label, type(f.default))
            elif isinstance(f.default, str) and not isinstance(value, str):
                raise ConfigError(f"{label} must be a name, not {value!r}.")
        if not 1 <= self.latent_dim <= 512:
            raise ConfigError(f"The latent size must be between 1 and 512, not {self.latent_dim}.")
        if self.body not in BODIES:
            raise ConfigError(f"The body must be one of {', '.join(BODIES)}, not {self.body!r}.")
        if any(not 1 <= h <= 8192 for h in self.hidden) or len(self.hidden) > 8:
            raise ConfigError("Hidden widths must be at most 8 numbers between 1 and 8192.")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"The likelihood must be one of {', '.join(LIKELIHOODS)}, not {self.likelihood!r}.")
        try:
            check_params(self.params)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ConfigError("The model settings must be a JSON object.")
        d = dict(d)
        if d.get("likelihood") in LEGACY_LIKELIHOODS:   # e.g. "gaussian" was the squared error before issue 8
            d["likelihood"] = LEGACY_LIKELIHOODS[d["likelihood"]]
        key = d.get("variant", "vae")
        try:
            params_class = variant(key).params_class
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        params = settings_from_dict(params_class, d.pop("params", None) or {}, "model parameter")
        cfg = settings_from_dict(cls, d, "model")
        return dataclasses.replace(cfg, params=params)

    def with_params(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, params=dataclasses.replace(self.params, **changes))


def _variant_keys():
    from engine.models import VARIANTS
    return VARIANTS


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    #: points whose codes the trainer sends for the latent map: a seeded choice of at most this many
    #: images of ``probe_set`` (the whole set when it holds fewer)
    probe_size: int = 5000
    #: the set the probe points come from: one of PROBE_SETS (configs saved before it: validation)
    probe_set: str = "validation"
    #: steps between probe updates (codes of the probe set) and decoder snapshots
    probe_every: int = 200
    snapshot_every: int = 25
    #: steps between progress reports (each carries every step's losses since the last)
    report_every: int = 10
    #: dynamic binarisation: every training batch is drawn x ~ Bernoulli(pixel); validation uses
    #: one fixed binarisation (seeded); see engine.training.float_batch
    binarize: bool = False
    #: epochs of greedy layer-wise pretraining per layer pair of the MLP body, before ``epochs``
    pretrain_epochs: int = 0
    #: ``fp32`` or ``bf16`` (mixed precision for the training steps; see ``PRECISIONS``)
    precision: str = "fp32"

    def validate(self) -> None:
        for name, label, kind in (("epochs", "Epochs", int), ("batch_size", "The batch size", int),
                                  ("lr", "The learning rate", float), ("seed", "The seed", int),
                                  ("probe_size", "The probe size", int), ("probe_every", "The probe interval", int),
                                  ("snapshot_every", "The snapshot interval", int),
                                  ("report_every", "The report interval", int)):
            check_number(getattr(self, name), label, kind)
        if not isinstance(self.device, str):
            raise ConfigError(f"The device must be one of {', '.join(DEVICES)}, not {self.device!r}.")
        checks = [
            (1 <= self.epochs <= 100_000, f"Epochs must be between 1 and 100000, not {self.epochs}."),
            (1 <= self.batch_size <= 65_536, f"The batch size must be between 1 and 65536, not {self.batch_size}."),
            (0 < self.lr <= 10, f"The learning rate must be above 0 and at most 10, not {self.lr}."),
            (self.device in DEVICES, f"The device must be one of {', '.join(DEVICES)}, not {self.device!r}."),
            (self.probe_size >= 0, "The probe size cannot be negative."),
            (self.probe_set in PROBE_SETS, f"The probe set must be one of {', '.join(PROBE_SETS)}, not {self.probe_set!r}."),
            (self.probe_every >= 1 and self.snapshot_every >= 1 and self.report_every >= 1,
             "Report, probe and snapshot intervals must be at least one step."),
            (0 <= self.seed <= MAX_SEED, f"The seed must be between 0 and {MAX_SEED} (what torch and NumPy "
                                         f"accept), not {self.seed}."),
            (0 <= self.pretrain_epochs <= 10_000, f"Pretraining epochs must be between 0 and 10000, not {self.pretrain_epochs}."),
            (self.precision in PRECISIONS, f"The precision must be one of {', '.join(PRECISIONS)}, "
                                           f"not {self.precision!r}."),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return settings_from_dict(cls, d, "training")
