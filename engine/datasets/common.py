"""What every source gives: ``ImageSet`` and ``DatasetSplit``, the default data root, and the
seeded holdout of the sources without an official test split (digits, folder, npz)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
import torch

from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import DataConfig


@dataclass
class ImageSet:
    """Images held whole in memory: uint8 N×C×H×W on the CPU, int64 labels and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape, (C, H, W)."""
        c, h, w = self.images.shape[1:]
        return c, h, w

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx: torch.Tensor | list[int] | slice) -> ImageSet:
        """The images at ``idx`` (an index tensor, list or slice), as a new set."""
        return ImageSet(self.images[idx].contiguous(), self.labels[idx], list(self.class_names))


@dataclass
class DatasetSplit:
    """A loaded source: its name (e.g. ``"mnist"``, ``"folder:faces"``) and its two sets.

    ``skipped`` counts the files left out (an image folder's unreadable files) and ``notes`` says
    why in sentences a panel can show ("3 files skipped: not images PIL can read (a.png, ...).")."""

    name: str
    train: ImageSet
    val: ImageSet
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


def default_data_root() -> Path:
    """The folder torchvision sources live in unless a config names another."""
    return platformdirs.user_data_path("latent-explorer") / "data"


def data_root(cfg: DataConfig) -> Path:
    """The folder a torchvision source of ``cfg`` lives in: its root, else the default."""
    return Path(cfg.root).expanduser() if cfg.root else default_data_root()


def reason(exc: BaseException) -> str:
    """The last line of an exception's message, without a closing full stop."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else type(exc).__name__


def holdout(name: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], cfg: DataConfig,
            where: str) -> DatasetSplit:
    """Split off the last ceil(N × val_fraction) images (at least one) of a seeded permutation."""
    n = images.shape[0]
    if n < 2:
        raise DataError(f"{where} holds {n} image(s), but at least 2 are needed to set some aside for validation.")
    n_val = max(1, math.ceil(n * cfg.val_fraction))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    # index_select gives what images[idx] gives, in a third of the time for MNIST-sized sets
    train, val = order[:-n_val], order[-n_val:]
    return DatasetSplit(name, ImageSet(images.index_select(0, train), labels.index_select(0, train), list(class_names)),
                        ImageSet(images.index_select(0, val), labels.index_select(0, val), list(class_names)))
