"""What may change while a run trains: the variant's own float parameters (β, a weight λ, a noise
level) and the learning rate, each checked against the range its settings declare.

``Trainer.change(beta=1.0, lr=3e-4)`` queues changes from any thread; the loop applies them
between two optimizer steps and records each in ``History.changes`` as ``[step, name, value,
previous]`` (``step``: the first optimizer step taken with the new value).  The run's saved
settings follow, so the next checkpoint's config.json holds the new values and a resume continues
with them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from engine.config import ModelConfig, TrainConfig
from engine.errors import ConfigError

#: the training setting that may change while a run trains (besides the variant's parameters)
LEARNING_RATE = "lr"


@dataclass(frozen=True)
class LiveParameter:
    """A value that may change while a run trains, with its range as its settings declare it."""

    name: str
    label: str
    minimum: float | None
    maximum: float | None
    step: float | None
    help: str = ""


def live_parameters(model: ModelConfig) -> list[LiveParameter]:
    """The variant's float parameters (in their declared order), then the learning rate."""
    out = []
    if model.params is not None:
        for f in dataclasses.fields(model.params):
            if isinstance(f.default, float):   # (bool is not a float; int parameters such as k stay fixed)
                meta = f.metadata
                out.append(LiveParameter(f.name, meta.get("label", f.name), meta.get("min"), meta.get("max"),
                                         meta.get("step"), meta.get("help", "")))
    out.append(LiveParameter(LEARNING_RATE, "learning rate", 0.0, 10.0, None,
                             "The optimizers' step size (every optimizer keeps its ratio to it)."))
    return out


def current_value(model: ModelConfig, train: TrainConfig, name: str) -> float:
    return float(train.lr if name == LEARNING_RATE else getattr(model.params, name))


def label_of(model: ModelConfig, name: str) -> str:
    return next((p.label for p in live_parameters(model) if p.name == name), name)


def checked_changes(model: ModelConfig, train: TrainConfig, values: dict) -> tuple[ModelConfig, TrainConfig]:
    """The settings with ``values`` in them; ConfigError with one sentence for a name that cannot
    change while training or a value outside its declared range."""
    names = {p.name for p in live_parameters(model)}
    params, lr = {}, None
    for name, value in values.items():
        if name not in names:
            allowed = ", ".join(sorted(names))
            raise ConfigError(f"{name!r} cannot change while the {model.variant} trains; what can: {allowed}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"The new {label_of(model, name)} must be a finite number, not {value!r}.")
        if name == LEARNING_RATE:
            lr = float(value)
        else:
            params[name] = float(value)
    new_model = model.with_params(**params) if params else model
    new_train = dataclasses.replace(train, lr=lr) if lr is not None else train
    new_model.validate()    # the range checks (and their sentences) of the settings themselves
    new_train.validate()
    return new_model, new_train
