"""The images whose codes the latent map shows: the probe set (``TrainConfig.probe_set``).

A probe point is an image of the validation split or of the training split; ``ProbeCodes`` keeps,
per point, which split (``splits``: ``SPLIT_VALIDATION`` or ``SPLIT_TRAIN``) and the image's index
in it (``indices``).  ``"test"`` names the same images as ``"validation"``: the app's validation
split is the source's official test set (MNIST's 10,000), or a seeded holdout where there is none.
``"all"`` is both splits, validation first (70,000 for MNIST).

``probe_points`` makes the seeded choice the trainer and the map encode; ``encode_chunks`` encodes
it a chunk at a time, yielding after each, so that a background task can report progress and stop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.batches import encode_all
from engine.config import PROBE_SETS

SPLIT_VALIDATION, SPLIT_TRAIN = 0, 1
SPLIT_NAMES = {SPLIT_VALIDATION: "validation", SPLIT_TRAIN: "train"}
#: the most points a map of the train or all set holds (MNIST's 70,000 images; a seeded choice above)
MAP_POINTS_MAX = 70_000
#: images encoded between two yields of ``encode_chunks`` (a few hundred ms on a CPU for MNIST's MLP)
CHUNK = 4096

PROBE_SET_TITLES = {"validation": "Validation images", "test": "Test images (the validation split)",
                    "train": "Training images", "all": "All images (training and validation)"}
assert set(PROBE_SET_TITLES) == set(PROBE_SETS)


def probe_settings(name: str) -> dict:
    """The ``TrainConfig`` settings of a run whose map shows probe set ``name`` (the app's training
    form): the validation and test sets keep the default 5,000 points, train and all up to
    ``MAP_POINTS_MAX``."""
    return {"probe_set": name, **({"probe_size": MAP_POINTS_MAX} if name in ("train", "all") else {})}


def set_splits(name: str) -> tuple[int, ...]:
    """The splits a probe set draws from, in the order its points come."""
    if name not in PROBE_SETS:
        raise ValueError(f"The probe set must be one of {', '.join(PROBE_SETS)}, not {name!r}.")
    return {"train": (SPLIT_TRAIN,), "all": (SPLIT_VALIDATION, SPLIT_TRAIN)}.get(name, (SPLIT_VALIDATION,))


@dataclass
class ProbePoints:
    """A chosen set of images: uint8 images, labels, and per image its split and index there."""

    images: torch.Tensor   # N×C×H×W uint8
    labels: torch.Tensor   # N int64
    splits: np.ndarray     # N int8 (SPLIT_VALIDATION / SPLIT_TRAIN)
    indices: np.ndarray    # N int64, into that split

    def __len__(self) -> int:
        return len(self.labels)


def probe_points(split, name: str, size: int | None, seed: int) -> ProbePoints:
    """The images of probe set ``name`` of a ``DatasetSplit``: a seeded choice of ``size`` of them
    (all when ``size`` is None or at least the set's size), in split then index order.  With
    ``name == "validation"`` the choice is the one the trainer made before probe sets existed."""
    sets = {SPLIT_VALIDATION: split.val, SPLIT_TRAIN: split.train}
    parts = set_splits(name)
    sizes = [len(sets[s]) for s in parts]
    total = sum(sizes)
    if size is None or size >= total:
        chosen = torch.arange(total)
    else:
        chosen = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:size].sort().values
    images, labels, splits, indices = [], [], [], []
    start = 0
    for s, n in zip(parts, sizes):
        mine = chosen[(chosen >= start) & (chosen < start + n)] - start
        images.append(sets[s].images[mine])
        labels.append(sets[s].labels[mine])
        splits.append(np.full(len(mine), s, np.int8))
        indices.append(mine.numpy().astype(np.int64))
        start += n
    return ProbePoints(torch.cat(images), torch.cat(labels).long(), np.concatenate(splits),
                       np.concatenate(indices))


def encode_chunks(model, points: ProbePoints, chunk: int | None = None):
    """Encode ``points`` with ``model`` (in eval mode, no gradients), yielding ``(done, total)``
    after each chunk (``CHUNK`` images by default); the generator's return value is the N×D
    float32 codes."""
    total = len(points)
    chunk = chunk or CHUNK
    out = []
    conditional = model.is_conditional
    device = next(model.parameters()).device
    with torch.no_grad():
        for s in range(0, total, chunk):
            labels = points.labels[s:s + chunk].to(device) if conditional else None
            out.append(encode_all(model, points.images[s:s + chunk].to(device), labels))
            yield min(total, s + chunk), total
    return np.concatenate(out) if out else np.zeros((0, model.latent_dim), np.float32)


def encode_points(model, points: ProbePoints, chunk: int | None = None) -> np.ndarray:
    """The codes of ``points`` (``encode_chunks`` run to its end)."""
    gen = encode_chunks(model, points, chunk)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def point_images(split, splits: np.ndarray, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels of probe points given by their ``splits`` and ``indices``
    (``ProbeCodes.splits`` / ``.indices``, or a part of them), from a ``DatasetSplit``."""
    splits, indices = np.asarray(splits).reshape(-1), np.asarray(indices, np.int64).reshape(-1)
    val, train = split.val, split.train
    if not len(splits) or (splits == SPLIT_VALIDATION).all():
        idx = torch.as_tensor(indices).long()
        return val.images[idx], val.labels[idx]
    images = torch.empty((len(indices), *val.images.shape[1:]), dtype=val.images.dtype)
    labels = torch.empty(len(indices), dtype=val.labels.dtype)
    for code, source in ((SPLIT_VALIDATION, val), (SPLIT_TRAIN, train)):
        rows = np.flatnonzero(splits == code)
        if len(rows):
            idx = torch.as_tensor(indices[rows]).long()
            images[torch.as_tensor(rows)], labels[torch.as_tensor(rows)] = source.images[idx], source.labels[idx]
    return images, labels


def fits(split, splits: np.ndarray, indices: np.ndarray) -> bool:
    """Whether every point's index lies inside its split of ``split`` (a dataset loaded here)."""
    splits, indices = np.asarray(splits).reshape(-1), np.asarray(indices).reshape(-1)
    for code, source in ((SPLIT_VALIDATION, split.val), (SPLIT_TRAIN, split.train)):
        mine = indices[splits == code]
        if len(mine) and (mine.min() < 0 or mine.max() >= len(source)):
            return False
    return True


def save_set_embeddings(model, split, name: str, path, class_names: list[str] | None = None):
    """The codes of every image of probe set ``name`` written to ``path`` (.csv or .npz;
    ``engine.export.save_embeddings``); the train and all sets name each row's split and index."""
    from engine.export import save_embeddings
    points = probe_points(split, name, None, 0)
    codes = encode_points(model, points)
    where = {"splits": points.splits, "split_indices": points.indices} if name in ("train", "all") else {}
    return save_embeddings(codes, points.labels.numpy(), path, class_names, **where)
