"""The npz source: a NumPy .npz (or .npy) file of plain arrays: x the images, optional y the
labels and class_names; pickled objects are refused."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.datasets.common import DatasetSplit, holdout, reason
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import DataConfig

#: the most classes a data set may have (labels beyond are refused, not taken as indices)
MAX_CLASSES = 1000


def load_npz(cfg: DataConfig) -> DatasetSplit:
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"The file {path} does not exist.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a plain .npy file: its array is x
            arrays = {"x": loaded}
        else:
            with loaded:
                arrays = {key: loaded[key] for key in ("x", "y", "class_names") if key in loaded.files}
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        raise DataError(f"{path} is not a NumPy .npz file of plain arrays (pickled objects are refused).") from None
    except OSError as exc:
        raise DataError(f"Could not read {path} ({reason(exc)}).") from None
    if "x" not in arrays:
        raise DataError(f"{path} has no array named x (the images).")
    images = _npz_images(arrays["x"], path)
    labels, class_names = _npz_labels(arrays.get("y"), arrays.get("class_names"), len(images), path)
    return holdout(f"npz:{path.name}", images, labels, class_names, cfg, str(path))


def _npz_images(x: np.ndarray, path: Path) -> torch.Tensor:
    """x as uint8 N×C×H×W: from N×H×W, N×H×W×C or N×C×H×W (C = 1 or 3); floats in [0, 1] or [0, 255]."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or 0 in x.shape[2:]:
        raise DataError(f"The array x in {path} has shape {x.shape}, not N×H×W, N×H×W×C or N×C×H×W with C 1 or 3.")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"The array x in {path} holds NaN or infinite values.")
        scale = 1.0 if x.max(initial=0.0) > 1.0 + 1e-6 else 255.0
        x = np.clip(np.rint(x * scale), 0, 255)
    elif not np.issubdtype(x.dtype, np.integer):
        raise DataError(f"The array x in {path} has dtype {x.dtype}, not uint8, integers or floats.")
    elif x.dtype != np.uint8 and (x.min(initial=0) < 0 or x.max(initial=0) > 255):
        raise DataError(f"The integer array x in {path} holds values outside 0..255.")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))


def _npz_labels(y: np.ndarray | None, names: np.ndarray | None, n: int, path: Path) -> tuple[torch.Tensor, list[str]]:
    """Labels and class names from the optional arrays y and class_names; all 0, "unlabelled", without y."""
    if y is None:
        return torch.zeros(n, dtype=torch.int64), ["unlabelled"]
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{path} holds {n} images in x but {y.size} labels in y (shape {y.shape}).")
    if not np.issubdtype(y.dtype, np.integer) or y.min(initial=0) < 0:
        raise DataError(f"The labels y in {path} must be whole numbers from 0 up.")
    if names is not None:
        class_names = [s.decode() if isinstance(s, bytes) else str(s) for s in np.ravel(names).tolist()]
        if not 1 <= len(class_names) <= MAX_CLASSES:
            raise DataError(f"{path} names {len(class_names)} classes in class_names; 1 to {MAX_CLASSES} are "
                            "supported.")
        if int(y.max(initial=0)) >= len(class_names):
            raise DataError(f"{path} names {len(class_names)} classes in class_names, but y has labels up to "
                            f"{int(y.max())}.")
        return torch.from_numpy(y.astype(np.int64)), class_names
    # without names, labels below MAX_CLASSES are class indices (named "0", "1", ...); larger ones are ids,
    # mapped onto 0..K-1 in order and each named by its value, never taken as indices
    top = int(y.max(initial=0))
    if top < MAX_CLASSES:
        return torch.from_numpy(y.astype(np.int64)), [str(label) for label in range(top + 1)]
    values, compact = np.unique(y, return_inverse=True)
    if len(values) > MAX_CLASSES:
        raise DataError(f"The labels y in {path} take {len(values):,} different values; at most {MAX_CLASSES} "
                        "classes are supported.")
    return torch.from_numpy(compact.reshape(-1).astype(np.int64)), [str(v) for v in values.tolist()]
