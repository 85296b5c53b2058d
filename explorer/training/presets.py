"""Presets: one click sets up a classic experiment.  Each is a JSON file in ``resources/presets/``
(or the person's own presets folder, ``explorer.resources.user_presets_dir()``)::

    {"title": "...", "description": "...", "reference": "...",
     "data": {DataConfig fields}, "model": {ModelConfig fields, "params": {...}},
     "train": {TrainConfig fields}, "view": {"projection": "pca", "manifold": true}}

A preset may name several runs to train one after another (``"runs": [{"title": ..., "model":
{...}}, ...]``, each entry's data/model/train fields laid over the preset's own): applying it
queues them all (explorer/training/queue.py).

Missing fields take their defaults.  A file that does not parse, names a variant this build does
not have, or holds values that do not validate is skipped, with one logged sentence."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import UserError
from engine.storage import read_json
from explorer.resources import preset_dirs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    key: str          # the file's stem
    title: str
    description: str
    reference: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    view: dict = field(default_factory=dict)
    runs: tuple = ()   # (title, DataConfig, ModelConfig, TrainConfig) of each run it queues, if several

    @property
    def tooltip(self) -> str:
        return f"{self.description}\n{self.reference}".strip()


def parse_preset(path: Path) -> Preset:
    """One preset file; UserError (or ValueError) with the reason when it cannot be used."""
    raw = read_json(path, "a preset")   # any failure to read or parse is one UserError naming the file
    if not isinstance(raw, dict) or not isinstance(raw.get("title"), str):
        raise ValueError("it is not a JSON object with a title")
    data = DataConfig.from_dict(raw.get("data") or {})
    model = ModelConfig.from_dict(raw.get("model") or {})
    train = TrainConfig.from_dict(raw.get("train") or {})
    for cfg in (data, model, train):
        cfg.validate()
    view = raw.get("view") or {}
    if not isinstance(view, dict):
        raise ValueError("its view settings are not a JSON object")
    runs = []
    entries = raw.get("runs") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("its runs are not a list of JSON objects")
    for i, entry in enumerate(entries):
        merged = []
        for part in ("data", "model", "train"):
            base, over = dict(raw.get(part) or {}), entry.get(part) or {}
            if not isinstance(over, dict):
                raise ValueError(f"run {i + 1}'s {part} settings are not a JSON object")
            if part == "model" and "variant" in over and over["variant"] != base.get("variant"):
                base.pop("params", None)   # another variant: its own parameters, not the first one's
            base.update(over)
            merged.append(base)
        configs = (DataConfig.from_dict(merged[0]), ModelConfig.from_dict(merged[1]), TrainConfig.from_dict(merged[2]))
        for cfg in configs:
            cfg.validate()
        runs.append((str(entry.get("title") or f"{raw['title']}, run {i + 1}"), *configs))
    return Preset(path.stem, raw["title"], str(raw.get("description", "")), str(raw.get("reference", "")),
                  data, model, train, view, tuple(runs))


def load_presets(dirs: list[Path] | None = None) -> list[Preset]:
    """The presets of every folder, in file-name order; unusable files are skipped and logged."""
    presets = []
    for folder in dirs if dirs is not None else preset_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                presets.append(parse_preset(path))
            except (UserError, ValueError, TypeError) as exc:
                log.warning("Preset %s was skipped: %s", path, str(exc).rstrip("."))
    return presets
