"""Sweeps: several configurations trained without babysitting, one after another here or as
tasks on a Ray cluster.

A sweep is a list of ``SweepItem`` values (a ``DataConfig``, ``ModelConfig`` and ``TrainConfig``
plus the swept values that tell it from its siblings and its run folder name) and a runner:

```python
items = expand(DataConfig(), ModelConfig("beta_vae"), TrainConfig(epochs=2),
               {"beta": [1.0, 4.0], "latent_dim": [2, 8]})          # 4 items: the product
results = run_local(items, "runs/")                                     # or run_on_ray(items, out, "auto")
print(summary_table(results))
```

Several axes multiply (their product is trained).  An axis over the variant itself
(``"variant": ["vae", "beta_vae"]``) applies each parameter only to the variants that have it
(a plain VAE is trained once, not once per β); a parameter that none of the chosen variants has
is refused.  Importing this module never imports Ray: only ``run_on_ray`` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import ConfigError, UserError
from engine.models import VARIANTS, variant

#: axes every configuration has; any other axis is a variant parameter (a field of its params dataclass)
COMMON_AXES = ("variant", "latent_dim", "lr", "seed")
#: how an axis is written in run folder names and the summary (a parameter keeps its field name)
SHORT_NAMES = {"variant": "model", "latent_dim": "z", "lr": "lr", "seed": "seed"}
RAY_INSTALL = "pip install latent-explorer[cluster]"
#: how often Ray runs a task again whose worker or node died (each retry resumes the run folder)
RAY_RETRIES = 3
#: a sweep planning more runs than this asks first (the CLI refuses without --yes; the window asks)
CONFIRM_ABOVE = 50
#: axes whose values are whole numbers (the rest, variants aside, are numbers unless a converter says)
WHOLE_AXES = ("latent_dim", "seed")


@dataclass(frozen=True)
class SweepItem:
    """One configuration of a sweep: what to train, the values that were swept to get it, and
    the run folder name (readable: ``<stamp>-beta_vae-digits-z2-beta4``)."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    swept: dict = field(default_factory=dict)
    name: str = ""

    def to_dict(self) -> dict:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "swept": dict(self.swept), "name": self.name}

    def trainer(self, out: str | Path, dataset=None):
        """A ``Trainer`` for this item that makes its run folder under ``out`` (for a runner
        that drives the trainer itself, e.g. the app's queue on its training worker)."""
        from engine.training import Trainer
        return Trainer(self.data, self.model, self.train, run_parent=out, run_name=self.name, dataset=dataset)

    @classmethod
    def from_dict(cls, d: dict) -> "SweepItem":
        return cls(DataConfig.from_dict(d["data"]), ModelConfig.from_dict(d["model"]),
                   TrainConfig.from_dict(d["train"]), dict(d.get("swept", {})), str(d.get("name", "")))


@dataclass
class SweepResult:
    """The summary row of one trained configuration.  ``best_val`` and ``val_terms`` are the
    validation objective's terms, per image, on the run's validation split."""

    name: str
    swept: dict
    status: str                       # completed, stopped, failed
    reason: str = ""
    path: str | None = None           # the run folder, when one was made
    best_val: float | None = None
    val_terms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0              # wall time of the whole run (data loading included)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SweepResult":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


# -- parsing -----------------------------------------------------------------------------------
def _default_convert(axis: str):
    if axis == "variant":
        return str
    return int if axis in WHOLE_AXES else float


def parse_values(axis: str, text: str, convert: Callable | None = None, choices: Sequence | None = None,
                 title: str | None = None) -> list:
    """The values of one sweep axis as typed ("1, 4"; commas or semicolons), for the CLI's comma
    lists and the window's sweep alike: each converted by ``convert`` (by default the axis's own
    type: variant keys, whole numbers for latent_dim and seed, numbers otherwise) and checked
    against ``choices`` (the variant keys for ``variant``).  A repeated value is refused (it
    would train the same run twice: a typo).  UserError naming the setting (``title``, default
    the axis name), never a command-line flag."""
    title = title or axis
    convert = convert or _default_convert(axis)
    if choices is None and axis == "variant":
        choices = list(VARIANTS)
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise UserError(f"Type the values of {title} to sweep over, separated by commas (e.g. 1, 4).")
    values = []
    for part in parts:
        try:
            value = convert(part)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise _bad_value(title, part, convert, exc) from None
        if choices and value not in choices:
            word = "a variant" if axis == "variant" else f"a choice of {title}"
            raise UserError(f"{part!r} is not {word}; use one of {', '.join(map(str, choices))}.")
        if value in values:
            raise UserError(f"The values of {title} repeat {part}: each run of a sweep must differ "
                            "(a repeated value is a typo).")
        values.append(value)
    return values


def _bad_value(title: str, part: str, convert, exc: Exception) -> UserError:
    reason = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else ""
    if reason:
        return UserError(f"The value {part!r} of {title} {reason}.")
    name = getattr(convert, "__name__", "value")
    kind = {"int": "whole numbers", "float": "numbers"}.get(name, f"{name} values")
    return UserError(f"The values of {title} must be {kind} separated by commas; {part!r} is not.")


def planned_runs_refusal(n: int, how_to_confirm: str) -> str | None:
    """None when ``n`` runs may start without asking; otherwise the sentence that refuses them."""
    if n <= CONFIRM_ABOVE:
        return None
    return (f"The sweep plans {n} runs, more than {CONFIRM_ABOVE}; {how_to_confirm}, or sweep fewer values.")


# -- expansion ---------------------------------------------------------------------------------
def _params_of(key: str) -> set[str]:
    return {f.name for f in dataclasses.fields(variant(key).params_class)}


def combinations(axes: dict[str, Sequence], base_variant: str = "vae") -> list[dict]:
    """Every combination of the axes' values (their product), in the order the axes and their
    values were given, each with its ``variant`` (``base_variant`` without a variant axis).
    The variant axis comes first; a parameter axis multiplies only the variants that have that
    parameter (the others are trained once); a parameter no chosen variant has raises
    ``ConfigError``."""
    axes = {k: list(v) for k, v in axes.items()}
    for name, values in axes.items():
        if not values:
            raise ConfigError(f"The sweep over {name} has no values.")
    variants = list(dict.fromkeys(axes.pop("variant", [base_variant])))
    for key in variants:
        try:
            variant(key)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    owned = set().union(*(_params_of(v) for v in variants))
    for name in axes:
        if name not in COMMON_AXES and name not in owned:
            titles = " or the ".join(VARIANTS[v].title for v in variants)
            raise ConfigError(f"{name} is not a parameter of the {titles}.")
    out: list[dict] = []
    for key in variants:
        own = _params_of(key)
        names = [k for k in axes if k in COMMON_AXES or k in own]
        for values in itertools.product(*(axes[k] for k in names)):
            out.append({"variant": key, **dict(zip(names, values))})
    return out


def swept_axes(combos: Iterable[dict]) -> list[str]:
    """The axes that take more than one value (what a run's name and row show); a parameter
    that only some variants of the sweep have counts when it takes several values there."""
    combos = list(combos)
    names = list(dict.fromkeys(k for c in combos for k in c))
    return [k for k in names if len({repr(c[k]) for c in combos if k in c}) > 1]


def _value_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(swept: dict) -> str:
    """``beta=4 z=2``: the swept values as a person reads them."""
    return " ".join(f"{SHORT_NAMES.get(k, k)}={_value_text(v)}" for k, v in swept.items()) or "-"


def run_name(model: ModelConfig, dataset: str, swept: dict, prefix: str | None = None, stamp: str | None = None) -> str:
    """``<stamp>-<variant>-<dataset>-z<latent>`` (or ``prefix``) followed by every swept value
    not already in it, e.g. ``20250101-120000-beta_vae-digits-z2-beta4``."""
    base = prefix or f"{stamp or time.strftime('%Y%m%d-%H%M%S')}-{model.variant}-{dataset}-z{model.latent_dim}"
    parts = [base]
    for k, v in swept.items():
        if prefix is None and k in ("variant", "latent_dim"):
            continue
        short = SHORT_NAMES.get(k, k)
        parts.append(f"{short}{_value_text(v)}" if isinstance(v, (int, float)) else f"{short}-{v}")
    return "-".join(parts)


def items_from(configs: Iterable[tuple[DataConfig, ModelConfig, TrainConfig, dict]], prefix: str | None = None
               ) -> list[SweepItem]:
    """Sweep items from (data, model, train, combination) tuples: each validated, each named
    after the values that differ between them (one time stamp for the whole sweep)."""
    configs = list(configs)
    shown = swept_axes(c for *_, c in configs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    items = []
    for data, model, train, combo in configs:
        for cfg in (data, model, train):
            cfg.validate()
        swept = {k: combo[k] for k in shown if k in combo}
        items.append(SweepItem(data, model, train, swept, run_name(model, data.source, swept, prefix, stamp)))
    return items


def expand(data: DataConfig, model: ModelConfig, train: TrainConfig, axes: dict[str, Sequence],
           prefix: str | None = None) -> list[SweepItem]:
    """The sweep items of a base configuration and its axes (see ``combinations``).  A variant
    axis starts each variant from its default parameters, with the base's where it has them."""
    configs = []
    for combo in combinations(axes, model.variant):
        key = combo["variant"]
        params_class = variant(key).params_class
        own = _params_of(key)
        base_params = dataclasses.asdict(model.params) if model.params is not None else {}
        given = {k: v for k, v in base_params.items() if k in own}
        given.update({k: v for k, v in combo.items() if k in own})
        try:
            params = params_class(**given)
        except TypeError as exc:
            raise ConfigError(f"Bad parameters for the {variant(key).title}: {exc}.") from None
        m = dataclasses.replace(model, variant=key, latent_dim=combo.get("latent_dim", model.latent_dim), params=params)
        t = dataclasses.replace(train, lr=combo.get("lr", train.lr), seed=combo.get("seed", train.seed))
        configs.append((data, m, t, combo))
    return items_from(configs, prefix)


# -- training one ------------------------------------------------------------------------------
def train_one(item: SweepItem, out: str | Path, on_update: Callable | None = None, *,
              resume: Path | None = None) -> SweepResult:
    """Train one configuration into a new run folder under ``out`` (or continue the run folder
    ``resume`` from its last checkpoint); never raises for a run that fails (the row says why),
    so a sweep goes on.  ``on_update(trainer, update)`` sees every ``TrainingUpdate``."""
    t0 = time.perf_counter()
    result = SweepResult(item.name, dict(item.swept), "failed")
    trainer = None
    try:
        if resume is not None:
            from engine.runs import Run
            from engine.training import Trainer
            trainer = Trainer.resume(Run.open(resume))
        else:
            trainer = item.trainer(out)
        last = None
        for last in trainer.updates():
            if on_update is not None:
                on_update(trainer, last)
        result.status, result.reason = last.status, last.reason
    except UserError as exc:
        result.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - one run's bug must not end an unattended sweep
        result.reason = f"{type(exc).__name__}: {exc}"
    run = trainer.run if trainer is not None else None
    if run is not None:
        result.path = str(run.path)
        result.name = run.name
        result.best_val = run.best_val
        result.val_terms = {k: v[-1] for k, v in run.history.val.items() if v}
    result.seconds = time.perf_counter() - t0
    return result


def run_local(items: Sequence[SweepItem], out: str | Path, on_start: Callable | None = None,
              on_update: Callable | None = None, on_result: Callable | None = None) -> list[SweepResult]:
    """Train the items one after another in this process; a failed run does not stop the rest.
    ``on_start(index, item)`` and ``on_result(index, result)`` bracket each run."""
    results = []
    for i, item in enumerate(items):
        if on_start is not None:
            on_start(i, item)
        result = train_one(item, out, on_update)
        results.append(result)
        if on_result is not None:
            on_result(i, result)
    return results


# -- on a Ray cluster --------------------------------------------------------------------------
def train_remote(item: dict, out: str, resume_left: bool = False) -> dict:
    """The Ray task: train one configuration (``SweepItem.to_dict()``) into ``out`` on whichever
    node runs it and return its summary row as a dict.

    Ray runs a task again when its worker process or its node died (up to ``RAY_RETRIES``
    times).  With ``resume_left`` (``out/<item name>`` did not exist when the sweep began), a
    run folder of that name can only have been left by a dead attempt of this task: it is
    resumed from its last checkpoint, not trained again from scratch in a second folder."""
    item = SweepItem.from_dict(item)
    left = Path(out) / item.name
    return train_one(item, out, resume=left if resume_left and (left / "config.json").is_file() else None).to_dict()


def import_ray():
    """Ray, or a ``UserError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed; install it with `{RAY_INSTALL}`.") from None
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` or ``ray://host:port`` address that does not answer is one sentence at
    once (Ray itself waits minutes for an unreachable head node); ``auto``/``local`` pass."""
    import socket
    if address in ("auto", "local") or ":" not in address:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except ValueError:
        raise UserError(f"The Ray address {address!r} is not host:port, ray://host:port, auto or local.") from None
    except OSError as exc:
        raise UserError(f"Nothing answers at the Ray address {address!r} ({exc.strerror or exc}).") from None


def run_on_ray(items: Sequence[SweepItem], out: str | Path, address: str = "auto", *,
               init_kwargs: dict | None = None, on_result: Callable | None = None) -> list[SweepResult]:
    """Send each item to a Ray cluster as one task and wait for them all.

    ``address`` is a cluster address (``ray://host:10001``, ``host:6379``), ``auto`` (the cluster
    this machine belongs to) or ``local`` (start a Ray instance here, stopped at the end).  When
    Ray is already initialised in this process it is used as it is and left running.  ``out``
    must be a path every node sees (a shared file system): each task writes its run folder
    there.  A task asks for one CPU, and one GPU when its device is ``cuda``.  A task whose
    worker or node dies is run again, continuing its run folder (see ``train_remote``); once
    the retries are spent its row is failed and the folder reads "interrupted", for ``resume``.
    Results are in the items' order; ``on_result(index, result)`` is called as each task finishes.
    """
    ray = import_ray()
    out = str(Path(out).expanduser().resolve())
    started = not ray.is_initialized()
    if started:
        check_reachable(address)
        try:
            local = {"include_dashboard": False} if address == "local" else {}
            ray.init(address=address, log_to_driver=False, **{**local, **(init_kwargs or {})})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"Cannot connect to the Ray cluster at {address!r} ({str(exc).splitlines()[0][:160]}).") from None
    try:
        task = ray.remote(train_remote)
        pending = {}
        fresh = [not (Path(out) / item.name).exists() for item in items]   # a folder of that name is then the task's
        for i, item in enumerate(items):
            gpus = 1 if item.train.device == "cuda" else 0
            pending[task.options(num_cpus=1, num_gpus=gpus, max_retries=RAY_RETRIES).remote(item.to_dict(), out, fresh[i])] = i
        results: list[SweepResult | None] = [None] * len(items)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                result = SweepResult.from_dict(ray.get(done[0]))
            except Exception as exc:  # noqa: BLE001 - a lost worker or node fails its run, not the sweep
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                left = Path(out) / items[i].name
                kept = fresh[i] and (left / "config.json").is_file()   # the dead attempt's run folder
                result = SweepResult(items[i].name, dict(items[i].swept), "failed",
                                     f"The Ray task failed ({type(exc).__name__}: {first[:160]})"
                                     + ("; `main.py resume` continues its run folder from the last checkpoint."
                                        if kept else "."), str(left) if kept else None)
            results[i] = result
            if on_result is not None:
                on_result(i, result)
        return results
    finally:
        if started:
            ray.shutdown()


# -- the summary -------------------------------------------------------------------------------
def summary_table(results: Sequence[SweepResult]) -> str:
    """A plain-text table: run, swept values, status, best validation loss and the final
    validation terms (per image, on each run's validation split); a failed run's reason below."""
    terms = list(dict.fromkeys(k for r in results for k in r.val_terms))
    header = ["run", "swept", "status", "best val", *(f"val {t}" for t in terms)]
    rows = []
    for r in results:
        rows.append([r.name, describe(r.swept), r.status, "-" if r.best_val is None else f"{r.best_val:.4f}",
                     *("-" if t not in r.val_terms else f"{r.val_terms[t]:.4f}" for t in terms)])
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        if not r.ok and r.reason:
            lines.append(f"{r.name}: {r.reason}")
    n_failed = sum(not r.ok for r in results)
    lines.append(f"{len(results)} runs, {n_failed} failed; validation losses are per image, on each run's "
                 "validation split; best val is the loss that picks the best checkpoint (for the VAE family "
                 "the −ELBO at β = 1, not the β-weighted total).")
    return "\n".join(lines)
