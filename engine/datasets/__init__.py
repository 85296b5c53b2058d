"""Dataset sources, loaded whole into memory as uint8 image tensors.

Every source becomes a ``DatasetSplit``: a train and a validation ``ImageSet`` whose images are
uint8 N×C×H×W tensors on the CPU.  ``READERS`` maps each source named in ``SOURCES`` (in
``engine.config``, beside ``DataConfig``) to the function that loads it; one module per format:

```
digits.py     scikit-learn's bundled 8×8 digits
idx.py        the IDX files of MNIST, Fashion-MNIST and Kuzushiji-MNIST
cifar10.py    CIFAR-10's python batches (through torchvision)
folder.py     a folder of images, one subfolder per class
npz.py        a NumPy .npz file of plain arrays
download.py   the torchvision sources: their files, offline copies, the explicit download
common.py     ImageSet, DatasetSplit, the data root and the seeded holdout
```

Bad input (a missing folder, a file that is not an image, no network for a download) raises
``DataError`` with one sentence that names the file or folder.  scikit-learn and torchvision are
imported only by the sources that need them, so importing this package and loading the default
source stay fast.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.config import SOURCES, TORCHVISION_SOURCES, DataConfig
from engine.datasets.common import DatasetSplit, ImageSet, default_data_root
from engine.datasets.digits import load_digits
from engine.datasets.download import download_dataset, expected_files, load_torchvision
from engine.datasets.folder import IMAGE_SUFFIXES, load_folder
from engine.datasets.npz import MAX_CLASSES, load_npz

SOURCE_TITLES: dict[str, str] = {
    "digits": "Digits 8×8 (scikit-learn, bundled)",
    "mnist": "MNIST 28×28 (torchvision)",
    "fashion-mnist": "Fashion-MNIST 28×28 (torchvision)",
    "kmnist": "Kuzushiji-MNIST 28×28 (torchvision)",
    "cifar10": "CIFAR-10 32×32 colour (torchvision)",
    "folder": "Image folder (one subfolder per class)",
    "npz": "NumPy .npz file (array x, optional y)",
}

#: source -> the function that loads it (after ``DataConfig.validate``)
READERS: dict[str, Callable[[DataConfig], DatasetSplit]] = {
    "digits": load_digits,
    **{source: load_torchvision for source in TORCHVISION_SOURCES},
    "folder": load_folder,
    "npz": load_npz,
}
assert set(READERS) == set(SOURCES) == set(SOURCE_TITLES), "every source has one reader and one title"

__all__ = ["SOURCES", "SOURCE_TITLES", "TORCHVISION_SOURCES", "READERS", "IMAGE_SUFFIXES", "MAX_CLASSES",
           "DatasetSplit", "ImageSet", "default_data_root", "download_dataset", "expected_files", "load_dataset"]


def load_dataset(cfg: DataConfig) -> DatasetSplit:
    """Load the configured source whole into memory, split into train and validation sets."""
    cfg.validate()
    return READERS[cfg.source](cfg)
