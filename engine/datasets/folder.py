"""The folder source: image files, one subfolder per class (or none: one unlabelled class),
centre-cropped and resized; unreadable files are skipped and counted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps

from engine.datasets.common import DatasetSplit, holdout, reason
from engine.errors import DataError

if TYPE_CHECKING:
    from engine.config import DataConfig

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def load_folder(cfg: DataConfig) -> DatasetSplit:
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder." if folder.exists() else f"The folder {folder} does not exist.")
    files, labels, class_names = _list_images(folder)
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))} files, in it or in its "
                        "subfolders).")
    mode, size = ("L" if cfg.grayscale else "RGB"), cfg.image_size
    pixels = np.empty((len(files), size, size, 1 if cfg.grayscale else 3), np.uint8)
    kept: list[int] = []
    skipped: dict[str, list[Path]] = {}   # why -> the files skipped for it
    first_failure: _Unreadable | None = None
    for i, file in enumerate(files):
        try:
            pixels[len(kept)] = _read_image(file, mode, size).reshape(size, size, -1)
        except _Unreadable as exc:
            first_failure = first_failure or exc
            skipped.setdefault(exc.why, []).append(file)
            continue
        kept.append(i)
    if not kept:
        if len(files) == 1:
            raise DataError(f"{files[0]} is {first_failure.one}.")
        raise DataError(f"None of the {len(files)} image files in {folder} can be read: {files[0].name} is "
                        f"{first_failure.one}, and the other {len(files) - 1} fail too.")
    notes = [f"{len(paths)} file{'s' if len(paths) != 1 else ''} skipped: {why} "
             f"({', '.join(p.name for p in paths[:3])}{', ...' if len(paths) > 3 else ''})."
             for why, paths in skipped.items()]
    images = torch.from_numpy(pixels[:len(kept)]).permute(0, 3, 1, 2)
    name = f"folder:{folder.resolve().name}"
    split = holdout(name, images, torch.tensor([labels[i] for i in kept], dtype=torch.int64), class_names, cfg,
                     str(folder))
    split.skipped, split.notes = len(files) - len(kept), notes
    return split


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def _list_images(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    """Images with labels and class names: one class per subfolder that holds images, else one unlabelled class.

    Images lying beside class subfolders are left out.
    """
    try:
        classes = [(d.name, _image_files(d)) for d in sorted(folder.iterdir()) if d.is_dir() and d.name[0] != "."]
        classes = [(name, files) for name, files in classes if files] or [("unlabelled", _image_files(folder))]
    except OSError as exc:
        raise DataError(f"Could not list the images in {folder} ({reason(exc)}).") from None
    files = [file for _, class_files in classes for file in class_files]
    labels = [label for label, (_, class_files) in enumerate(classes) for _ in class_files]
    return files, labels, [name for name, _ in classes]


class _Unreadable(Exception):
    """An image file that is skipped, and why ("not images PIL can read", ...)."""

    def __init__(self, why: str, one: str):
        super().__init__(why)
        self.why, self.one = why, one   # said of several files, of one


def _read_image(file: Path, mode: str, size: int) -> np.ndarray:
    """One image converted to ``mode``, centre-cropped to a square and resized to size×size."""
    try:
        with Image.open(file) as image:
            image.draft(mode, (size, size))  # lets JPEG decode at a reduced scale; no-op for other formats
            return np.asarray(ImageOps.fit(image.convert(mode), (size, size), Image.Resampling.BILINEAR))
    except Image.DecompressionBombError:
        limit = f" (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels, PIL's decompression-bomb limit)" \
            if Image.MAX_IMAGE_PIXELS else ""
        raise _Unreadable(f"images too large to decode safely{limit}",
                          f"an image too large to decode safely{limit}") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError):
        raise _Unreadable("not images PIL can read", "not an image PIL can read") from None
