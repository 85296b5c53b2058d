"""The IDX files of MNIST, Fashion-MNIST and Kuzushiji-MNIST (``<root>/<Class>/raw/``), read
without torchvision's reader, and the gzipped copies a person may place beside them."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import torch

from engine.datasets.common import ImageSet, reason
from engine.errors import DataError

#: torchvision source -> (torchvision.datasets class name, title used in messages)
TORCHVISION_CLASSES = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST"),
    "kmnist": ("KMNIST", "Kuzushiji-MNIST"),
    "cifar10": ("CIFAR10", "CIFAR-10"),
}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_idx_source(source: str, root: Path) -> tuple[ImageSet, ImageSet]:
    """Read the four IDX files (what torchvision's MNIST class reads, to the same tensors), naming any bad file."""
    class_name = TORCHVISION_CLASSES[source][0]
    if source == "mnist":
        class_names = [str(d) for d in range(10)]
    else:
        from torchvision.datasets import mnist

        class_names = list(getattr(mnist, class_name).classes)
    raw = root / class_name / "raw"
    sets = []
    for prefix in ("train", "t10k"):
        images_file, labels_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
        images = _read_idx(images_file, ndim=3)
        labels = _read_idx(labels_file, ndim=1).long()
        if len(images) == 0 or len(images) != len(labels):
            raise DataError(f"{images_file} holds {len(images)} images but {labels_file} holds {len(labels)} labels.")
        if labels.max() >= len(class_names):
            raise DataError(f"{labels_file} holds labels outside 0..{len(class_names) - 1}.")
        sets.append(ImageSet(images.unsqueeze(1), labels, class_names))
    return sets[0], sets[1]


#: the IDX type code of unsigned bytes, the only element type image and label files may hold
_IDX_UBYTE = 8
#: the most bytes one read asks for
_IDX_READ_CHUNK = 4 << 20


class _BadIdx(Exception):
    """The file is not an IDX file of unsigned bytes with the expected number of dimensions."""


def _read_idx(path: Path, ndim: int) -> torch.Tensor:
    """The uint8 array in an IDX file with ``ndim`` dimensions (torchvision's ``read_image_file`` and
    ``read_label_file`` accept the same files and give the same values).

    The payload is read straight into the tensor's memory in chunks: a read releases the GIL, so a
    background load leaves the GUI thread free (torchvision's reader copies the whole file into a
    bytearray while it holds the GIL, 30-50 ms for MNIST's training images).
    """
    try:
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            header_size = 4 * (ndim + 1)
            header = file.read(header_size)
            if len(header) != header_size or header[:3] != bytes((0, 0, _IDX_UBYTE)) or header[3] != ndim:
                raise _BadIdx
            shape = struct.unpack(f">{ndim}I", header[4:])
            count = math.prod(shape)
            if count == 0 or size - header_size != count:
                raise _BadIdx
            flat = torch.empty(count, dtype=torch.uint8)
            buffer = memoryview(flat.numpy())
            done = 0
            while done < count:
                read = file.readinto(buffer[done:done + _IDX_READ_CHUNK])
                if not read:
                    raise _BadIdx
                done += read
    except OSError as exc:
        raise DataError(f"Could not read {path} ({reason(exc)}).") from None
    except _BadIdx:
        raise DataError(f"{path} is not a valid IDX file (the MNIST file format).") from None
    return flat.view(*shape)
