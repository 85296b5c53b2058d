"""The images a run trains and validates on, as batches: uint8 on the device until a step needs
floats, shuffled by a per-epoch seed, and the per-step terms kept on the device until a report.

* ``float_batch`` — pixel / 255, or one Bernoulli draw of it for a binarised run.
* ``binarized_validation`` — the one fixed binarisation of a binarised run's validation images,
  the same in the trainer's validation passes and in ``evaluate`` (``engine.metrics``).
* ``Batches`` — shuffled uint8 batches of the training images, one order per epoch seed.
* ``StepLog`` — the terms of the steps since the last report, and each epoch's means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

#: images binarised per generator call: fixed, so a binarisation never depends on later batching
BINARIZE_BLOCK = 4096


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


def binarized_validation(images_u8: torch.Tensor, seed: int) -> torch.Tensor:
    """A binarised run's validation images as it validates on them (uint8, 0 or 255): one draw
    each pixel 255 with probability pixel / 255, from ``validation_generator(seed)`` (the run's
    training seed) in blocks of ``BINARIZE_BLOCK`` images, so it never depends on the batch size."""
    generator = validation_generator(seed)
    out = torch.empty_like(images_u8)
    for s in range(0, images_u8.shape[0], BINARIZE_BLOCK):
        block = images_u8[s:s + BINARIZE_BLOCK]
        out[s:s + BINARIZE_BLOCK] = float_batch(block, True, generator).mul_(255).to(torch.uint8)
    return out


def epoch_seed(seed: int, epoch: int) -> int:
    """The global RNG seed at the start of each epoch, so a resumed run draws the same noise."""
    return seed * 100_003 + epoch


@dataclass
class Batches:
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
            # index_select copies whole rows: ~5 µs for 128 MNIST images where images[idx]'s
            # general advanced indexing took ~55 µs on a CPU core
            yield self.images.index_select(0, idx), self.labels.index_select(0, idx)


class StepLog:
    """Terms of the steps since the last report, kept on the device until then (one stack and
    one transfer at ``take``; a step only appends its tensors), and the sums and counts of each
    term's finite values since ``new_epoch()``, for its means."""

    def __init__(self):
        self.steps: list[int] = []
        self.records: list[tuple[tuple[str, ...], tuple[torch.Tensor, ...]]] = []
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, step: int, terms: dict[str, torch.Tensor]) -> None:
        """Keep one step's terms (one-element tensors, e.g. detached losses), as they are."""
        self.steps.append(step)
        self.records.append((tuple(terms), tuple(terms.values())))

    def new_epoch(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def epoch_means(self) -> dict[str, float]:
        """The mean of each term over this epoch's steps that reported it finite."""
        return {n: self._sums[n] / self._counts[n] for n in self._sums if self._counts[n]}

    def take(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The steps logged since the last call and each term at them (NaN where a step did not
        report it); counted into the epoch's means."""
        steps, terms = self._take()
        for name, values in terms.items():
            finite = np.isfinite(values)
            self._sums[name] = self._sums.get(name, 0.0) + float(values[finite].sum())
            self._counts[name] = self._counts.get(name, 0) + int(finite.sum())
        return steps, terms

    def _take(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        steps, records = np.array(self.steps, dtype=np.int64), self.records
        self.steps, self.records = [], []
        if not records:
            return steps, {}
        values = [t for _, ts in records for t in ts]
        if any(t.dim() or t.dtype != torch.float32 for t in values):   # e.g. bfloat16 terms under autocast
            values = [t.reshape(()).float() for t in values]
        flat = torch.stack(values).cpu().numpy().astype(np.float64) if values else np.zeros(0)
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


#: images encoded per forward pass by ``encode_all``
EVAL_BATCH = 1024


@torch.no_grad()
def encode_all(model, images_u8: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """Codes of uint8 images (grey levels, also for binarised runs), in batches, as a float32
    NumPy array on the CPU: the batches' codes stay on the images' device until one transfer."""
    out = []
    for s in range(0, images_u8.shape[0], EVAL_BATCH):
        x = float_batch(images_u8[s:s + EVAL_BATCH])
        y = labels[s:s + EVAL_BATCH] if labels is not None else None
        out.append(model.encode(x, y).float())
    if not out:
        return np.zeros((0, model.latent_dim), np.float32)
    return torch.cat(out).cpu().numpy().copy()
