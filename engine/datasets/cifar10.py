"""CIFAR-10's python batches (``<root>/cifar-10-batches-py``), read through torchvision, which
checks their checksums and unpickles them (torchvision's own restricted reader of these files)."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.datasets.common import ImageSet, reason
from engine.errors import DataError

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
               "batches.meta")
CIFAR_TARBALL = "cifar-10-python.tar.gz"


def read_cifar10(root: Path) -> tuple[ImageSet, ImageSet]:
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR_FOLDER
    sets = []
    for train in (True, False):
        try:
            dataset = CIFAR10(str(root), train=train)
        except RuntimeError:
            raise DataError(f"The CIFAR-10 files in {folder} failed torchvision's checksum check: replace them or "
                            "press Download.") from None
        except OSError as exc:
            raise DataError(f"Could not read CIFAR-10 from {folder} ({reason(exc)}).") from None
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        sets.append(ImageSet(images, torch.tensor(dataset.targets, dtype=torch.int64), list(dataset.classes)))
    return sets[0], sets[1]
