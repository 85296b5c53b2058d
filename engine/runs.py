"""Run folders: everything needed to look at, resume or export a training run.

```
<run>/config.json              the data, model and training settings, the variant key, data shape,
                               status, package versions, and the name of the current checkpoint (JSON)
<run>/checkpoint-<id>/         the current checkpoint, one consistent set written together:
    weights.safetensors        the latest weights     best.safetensors  best by validation loss
    optimizer.safetensors      every named optimizer's state, for resuming: tensors keyed
                               "<name>/<param id>.<state>", hyperparameters in the metadata
                               "param_groups/<name>" (format 1 files hold one unnamed optimizer)
    probe.safetensors          the latest latent codes of the probe set (codes, labels, indices, splits)
    history.json               losses per step and per epoch, train and validation (JSON)
<run>/.lock                    held (flock) by the process that trains the run
```

A checkpoint is written into a temporary folder (``.checkpoint-*.tmp``), renamed to
``checkpoint-<id>`` and then named in config.json, which is replaced in one ``os.replace``: a
crash at any instant leaves the previous checkpoint or the new one, never a mix.  Whatever a
crash leaves behind (temporary files and folders, a checkpoint that was never named or no longer
is) is removed the next time the run is opened or resumed while no process trains it.  Run folders
of format 1 (the files at the top level) still open; their first new checkpoint moves them to
format 2.  Nothing is ever unpickled: tensors come from safetensors and everything else from JSON,
and every value read is checked, so a bad one is one sentence naming the file and the field.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import ConfigError, RunError
from engine.history import METRICS_FILE, History, ProbeCodes, check_metrics, package_versions
from engine.model_state import load_checked, optimizers_to_tensors, tensors_to_optimizers
from engine.models import AutoencoderModel, build_model, variant
from engine.run_lock import acquire_lock, lock_free, lock_holder, release_lock
from engine.storage import (
    cpu_tensors,
    dir_mode,
    disk_error,
    dump_json,
    file_mode,
    is_finite_number,
    is_whole,
    link_or_copy,
    read_json_object,
    read_tensor_metadata,
    read_tensors,
    show_value,
    tensor_bytes,
    write_json,
)

RUN_FORMAT = "latent-explorer-run"
FORMAT_VERSION = 2
CONFIG, HISTORY = "config.json", "history.json"
WEIGHTS, BEST, OPTIMIZER, PROBE = "weights.safetensors", "best.safetensors", "optimizer.safetensors", "probe.safetensors"
CHECKPOINT_FILES = (WEIGHTS, BEST, OPTIMIZER, PROBE, HISTORY)
STATUSES = ("new", "running", "completed", "stopped", "failed")
_CHECKPOINT_NAME = re.compile(r"checkpoint-[0-9]{6,}")
#: what crashes leave: atomic_write's ".<name>.<random>.tmp", a checkpoint's ".checkpoint-<random>.tmp"
#: folder, and the safetensors writer's own ".tmpXXXXXX"
_LITTER = re.compile(r"\..+\.tmp|\.tmp[A-Za-z0-9]{6}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def _check_config(cfg: dict, where: Path) -> None:
    """The plain fields of a config.json (the settings are checked by their own classes)."""
    def bad(name: str, value, expected: str):
        raise RunError(f"{where} is malformed: {name} is {show_value(value)}, not {expected}.")

    shape = cfg.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(is_whole(v) and 1 <= v <= 4096 for v in shape)):
        bad("image_shape", shape, "three whole numbers from 1 to 4096 (channels, height, width)")
    names = cfg.get("class_names")
    if not (isinstance(names, list) and 1 <= len(names) <= 100_000 and all(isinstance(n, str) for n in names)):
        bad("class_names", names, "a list of 1 to 100000 names")
    for name in ("dataset", "reason", "created"):
        if not isinstance(cfg.get(name, ""), str):
            bad(name, cfg[name], "text")
    if cfg.get("status", "stopped") not in STATUSES:
        bad("status", cfg["status"], f"one of {', '.join(STATUSES)}")
    for name in ("epochs_done", "step"):
        value = cfg.get(name, 0)
        if not (is_whole(value) and value >= 0):
            bad(name, value, "a whole number from 0 up")
    best = cfg.get("best_val")
    if best is not None and not is_finite_number(best):
        bad("best_val", best, "a finite number or null")
    checkpoint = cfg.get("checkpoint")
    if checkpoint is not None and not (isinstance(checkpoint, str) and _CHECKPOINT_NAME.fullmatch(checkpoint)):
        bad("checkpoint", checkpoint, "the name of a checkpoint folder (checkpoint-NNNNNN)")


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
    #: the folder of the current checkpoint (None: the files lie at the top, format 1, or none yet)
    checkpoint: str | None = None
    #: config.json said "running" but no process holds the run's lock: it was killed or crashed
    interrupted: bool = False

    def __post_init__(self):
        self._created_here = False   # made by Run.create in this process (removed when its first save fails)
        self._lock_fd: int | None = None
        self._last_saved: dict | None = None   # the config as last written by a checkpoint (or before training)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def status_text(self) -> str:
        """The status in words: "interrupted at step N" for a run whose process died while it trained."""
        if self.interrupted:
            return f"interrupted at step {self.step}"
        if self.is_training_elsewhere():   # whatever config.json said when it was read
            return f"running (in {lock_holder(self.path)})"
        return self.status

    def is_training_elsewhere(self) -> bool:
        """True when another process, or another training thread of this one, holds the run's lock."""
        return self._lock_fd is None and not lock_free(self.path)

    def file(self, name: str) -> Path:
        """Where one of the checkpoint's files (weights.safetensors, history.json, ...) lies."""
        return self.path / self.checkpoint / name if self.checkpoint else self.path / name

    # -- create / open ----------------------------------------------------------------------
    @classmethod
    def create(cls, parent: str | Path, data: DataConfig, model: ModelConfig, train: TrainConfig, *,
               dataset: str, image_shape, class_names, name: str | None = None) -> "Run":
        """Make a new, uniquely named run folder under ``parent`` and write its config; a failure
        leaves no folder behind."""
        parent = Path(parent).expanduser()
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, parent, "a run folder", keeps="; no run folder was made") from None
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
            except OSError as exc:
                raise disk_error(exc, parent, "a run folder", keeps="; no run folder was made") from None
        run = cls(path, data, model, train, dataset, tuple(image_shape), list(class_names),
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        try:
            os.chmod(path, dir_mode())
            run.save_config(keeps="; no run folder was made")
        except BaseException as exc:
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, OSError):
                raise disk_error(exc, path, CONFIG, keeps="; no run folder was made") from None
            raise
        run._created_here = True
        return run

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        """Read a run folder's config and history; RunError with one sentence when anything is wrong.
        Litter of a crash is removed when no process trains the run."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise RunError(f"{path} is not a folder.")
        where = path / CONFIG
        if not os.path.lexists(where):
            raise RunError(f"{where} is missing, so {path} is not a complete run folder.")
        cfg = read_json_object(where, "a run configuration", RunError)
        if cfg.get("format") != RUN_FORMAT:
            raise RunError(f"{path} is not a Latent Explorer run folder (its config.json has no run format).")
        version = cfg.get("version", 0)
        if not is_whole(version):
            raise RunError(f"{where} is malformed: version is {show_value(version)}, not a whole number.")
        if version > FORMAT_VERSION:
            raise RunError(f"{path} was written by a newer Latent Explorer (run format {version}).")
        for name in ("data", "model", "train", "dataset", "image_shape", "class_names"):
            if name not in cfg:
                raise RunError(f"{where} is incomplete: it has no {name}.")
        _check_config(cfg, where)
        try:
            data, model, train = (DataConfig.from_dict(cfg["data"]), ModelConfig.from_dict(cfg["model"]),
                                  TrainConfig.from_dict(cfg["train"]))
            for settings in (data, model, train):
                settings.validate()
        except ConfigError as exc:
            raise RunError(f"{where} holds invalid settings: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{where} holds malformed settings ({type(exc).__name__}: {exc}).") from None
        run = cls(path, data, model, train, cfg["dataset"], tuple(cfg["image_shape"]), list(cfg["class_names"]),
                  cfg.get("status", "stopped"), cfg.get("reason", ""), cfg.get("epochs_done", 0),
                  cfg.get("step", 0), cfg.get("best_val"), cfg.get("created", ""), checkpoint=cfg.get("checkpoint"))
        if run.checkpoint is not None and not (path / run.checkpoint).is_dir():
            raise RunError(f"{where} names the checkpoint folder {run.checkpoint}, which is missing.")
        free = lock_free(path)
        if run.status == "running" and free:
            run.interrupted = True
            run.status = "stopped"
            run.reason = (f"Interrupted at step {run.step}: the process training it ended before it finished; "
                          "the last checkpoint is kept.")
        if free:
            run._remove_litter()
        history = run.file(HISTORY)
        if history.exists():
            run.history = History.from_dict(read_json_object(history, "a training history", RunError), history)
        run._last_saved = cfg
        return run

    def _remove_litter(self) -> None:
        """Remove what crashes leave: temporary files and folders, checkpoints not named in
        config.json, and format-1 files once a checkpoint folder holds the run.  Only call it
        while no process trains the run; errors (a read-only folder) are ignored."""
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return
        for entry in entries:
            stale = (_LITTER.fullmatch(entry.name)
                     or (_CHECKPOINT_NAME.fullmatch(entry.name) and entry.name != self.checkpoint)
                     or (self.checkpoint is not None and entry.name in CHECKPOINT_FILES))
            if not stale:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
        if self.checkpoint is not None:
            for inner in (self.path / self.checkpoint).glob(".*"):
                if _LITTER.fullmatch(inner.name):
                    try:
                        os.unlink(inner)
                    except OSError:
                        pass

    # -- training: one process at a time --------------------------------------------------------
    def begin_training(self) -> None:
        """Take the run's lock for the whole training (RunError while another process or training
        thread holds it), clear a crash's litter and record the status "running"."""
        self._lock_fd = acquire_lock(self.path)
        self._remove_litter()
        before = (self._last_saved or self.config_dict(), self.status, self.reason)
        self.status, self.reason, self.interrupted = "running", "", False
        try:
            self.save_config(keeps=", and the run stays as it was")
        except BaseException:
            self.status, self.reason = before[1], before[2]
            self._release()
            raise
        self._last_saved = before[0]

    def end_training(self, model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                     probe: ProbeCodes | None = None) -> None:
        """Save the last checkpoint (status and reason as set) and let the run's lock go."""
        try:
            self.save_checkpoint(model, optimizers, probe)
        finally:
            self._release()

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        release_lock(self.path, fd)

    def _abandon_training(self, message: str) -> None:
        """A checkpoint failed while training: put back the config last saved (the checkpoint it
        names is intact), say why the training stopped, and let the lock go."""
        last = dict(self._last_saved or {})
        if self._created_here and self.checkpoint is None and last.get("status") in ("new", None):
            self._release()
            shutil.rmtree(self.path, ignore_errors=True)   # it never held anything worth keeping
            return
        if last:
            if last.get("status") == "running":
                last["status"], last["reason"] = "stopped", f"Stopped: {message}"
            for name in ("status", "reason", "epochs_done", "step", "best_val"):
                setattr(self, name, last.get(name, getattr(self, name)))
            self.checkpoint = last.get("checkpoint", self.checkpoint)
            try:
                write_json(self.path / CONFIG, last)
            except RunError:
                pass   # the disk is full: config.json still names the last good checkpoint
        self._release()

    # -- writing ---------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {"format": RUN_FORMAT, "version": FORMAT_VERSION, "variant": self.model.variant,
                "dataset": self.dataset, "image_shape": list(self.image_shape), "class_names": self.class_names,
                "data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "status": self.status, "reason": self.reason, "epochs_done": self.epochs_done, "step": self.step,
                "best_val": self.best_val, "created": self.created, "checkpoint": self.checkpoint,
                "versions": package_versions()}

    def save_config(self, keeps: str = "") -> None:
        write_json(self.path / CONFIG, self.config_dict(), keeps)

    def save_checkpoint(self, model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                        probe: ProbeCodes | None = None, best: bool = False) -> None:
        """Write weights (and best weights), optimizer state, probe codes and history into a new
        checkpoint folder, then name it in config.json (one atomic replace), then drop the old
        one.  A failure (DiskError, one sentence) leaves the previous checkpoint as it was."""
        has_checkpoint = self.checkpoint is not None or (self.path / WEIGHTS).is_file()
        keeps = (", and the run keeps its last checkpoint" if has_checkpoint else
                 ", so the new run folder was removed" if self._created_here else ", and the run has no checkpoint yet")
        meta = {"variant": self.model.variant, "step": str(self.step), "epochs_done": str(self.epochs_done)}
        state = cpu_tensors(model.state_dict())
        files: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]] = {WEIGHTS: (state, meta)}
        if best:
            files[BEST] = (state, meta)
        if optimizers:
            tensors, opt_meta = optimizers_to_tensors(optimizers)
            files[OPTIMIZER] = (cpu_tensors(tensors), opt_meta)
        if probe is not None:
            files[PROBE] = (probe.to_tensors(), {"step": str(probe.step)})
        history = dump_json(self.history.to_dict())
        needed = sum(tensor_bytes(t) for t, _ in files.values()) + len(history)
        previous = self.checkpoint
        tmp: Path | None = None
        what = "a new checkpoint folder"
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", suffix=".tmp", dir=self.path))
            os.chmod(tmp, dir_mode())
            for name, (tensors, metadata) in files.items():
                what = name
                save_file(tensors, str(tmp / name), metadata=metadata)
                os.chmod(tmp / name, file_mode())
            for name in (BEST, OPTIMIZER, PROBE):   # what this checkpoint does not renew, it keeps
                old = self.file(name)
                if name not in files and old.is_file():
                    what = name
                    link_or_copy(old, tmp / name)
            what = HISTORY
            (tmp / HISTORY).write_text(history)
            os.chmod(tmp / HISTORY, file_mode())
            what = "the checkpoint folder"
            final = self._new_checkpoint_folder()
            os.rename(tmp, final)
            tmp = None
        except BaseException as exc:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, (OSError, SafetensorError)):
                error = disk_error(exc, self.path, what, needed, keeps)
                if self._lock_fd is not None:
                    self._abandon_training(str(error))
                raise error from None
            raise
        self.checkpoint = final.name
        try:
            self.save_config(keeps)
        except BaseException as exc:
            self.checkpoint = previous
            shutil.rmtree(final, ignore_errors=True)
            if isinstance(exc, RunError) and self._lock_fd is not None:
                self._abandon_training(str(exc))
            raise
        self._last_saved = self.config_dict()
        self._drop(previous)

    def _new_checkpoint_folder(self) -> Path:
        numbers = [int(m.group(0)[len("checkpoint-"):]) for p in self.path.iterdir()
                   if (m := _CHECKPOINT_NAME.fullmatch(p.name))]
        return self.path / f"checkpoint-{max(numbers, default=0) + 1:06d}"

    def _drop(self, previous: str | None) -> None:
        """Remove the checkpoint that was current before (a folder, or format 1's top-level files)."""
        try:
            if previous is not None:
                shutil.rmtree(self.path / previous)
            else:
                for name in CHECKPOINT_FILES:
                    (self.path / name).unlink(missing_ok=True)
        except OSError:
            pass   # removed on the next open

    # -- reading ---------------------------------------------------------------------------
    def build_model(self) -> AutoencoderModel:
        return build_model(self.model, self.image_shape, self.n_classes)

    @property
    def trained_epochs(self) -> int:
        """Epochs of end-to-end training done: ``epochs_done`` less the layer-wise pretraining's
        (``--epochs`` counts these; the pretraining comes on top, one block per layer pair)."""
        if self.train.pretrain_epochs <= 0:
            return self.epochs_done
        try:
            model = self.build_model()
        except (ValueError, RuntimeError):
            return self.epochs_done
        model.pretrain_epochs = self.train.pretrain_epochs
        return max(0, self.epochs_done - model.pretraining_epochs_total())

    def _busy_or(self, error: RunError) -> RunError:
        """A file vanished or changed under us because another process trains the run: say that."""
        if self.is_training_elsewhere():
            return RunError(f"{self.path} is being trained by {lock_holder(self.path)}; wait until it has "
                            "finished (or stop it) before resuming it.")
        return error

    def load_model(self, which: str = "latest", device: str | torch.device = "cpu") -> AutoencoderModel:
        """A model with the run's latest (or best) weights, checked key by key and shape by shape."""
        try:
            model = self.build_model()
        except (ValueError, RuntimeError) as exc:
            raise RunError(f"{self.path / CONFIG} describes a model that cannot be built ({str(exc)[:100]}).") from None
        path = self.file(BEST if which == "best" and self.file(BEST).exists() else WEIGHTS)
        try:
            tensors = read_tensors(path)
        except RunError as exc:
            raise self._busy_or(exc) from None
        load_checked(model, tensors, path, variant(self.model.variant).title)
        return model.to(device).eval()

    def load_optimizers(self, optimizers: dict[str, torch.optim.Optimizer]) -> None:
        """Restore each named optimizer's state; RunError with one sentence when the file does not fit."""
        path = self.file(OPTIMIZER)
        try:
            meta = read_tensor_metadata(path)
        except RunError as exc:
            raise self._busy_or(exc) from None
        tensors_to_optimizers(optimizers, read_tensors(path), meta, path)

    def load_probe(self) -> ProbeCodes | None:
        path = self.file(PROBE)
        if not path.exists():
            return None
        probe = ProbeCodes.from_tensors(read_tensors(path), path, self.model.latent_dim, self.n_classes)
        step = str(read_tensor_metadata(path).get("step", ""))   # the step the codes were encoded at
        probe.step = int(step) if step.isdigit() else self.step   # (a file without it: the checkpoint's)
        return probe

    # -- metrics (computed by engine.metrics) ----------------------------------------------
    def save_metrics(self, metrics: dict) -> None:
        """Write metrics.json atomically (``engine.metrics.evaluate_run`` computes what it holds)."""
        write_json(self.path / METRICS_FILE, metrics)

    def load_metrics(self) -> dict | None:
        """metrics.json checked field by field, or None when the run has none; RunError when damaged."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return None
        return check_metrics(read_json_object(path, "run metrics", RunError), path)


def list_runs(parent: str | Path) -> list[Path]:
    """Run folders directly under ``parent``, newest first."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    try:
        runs = [p for p in parent.iterdir() if (p / CONFIG).is_file()]
        return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return []
