"""The digits source: scikit-learn's bundled 8×8 digits (1,797 images), scaled to 0..255."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.datasets.common import DatasetSplit, holdout

if TYPE_CHECKING:
    from engine.config import DataConfig


def load_digits(cfg: DataConfig) -> DatasetSplit:
    from sklearn.datasets import load_digits as bundled_digits

    bunch = bundled_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return holdout("digits", images, labels, [str(d) for d in range(10)], cfg, "The digits data set")
