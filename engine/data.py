"""Dataset sources, loaded whole into memory as uint8 image tensors.

Every source becomes a ``DatasetSplit``: a train and a validation ``ImageSet`` whose
images are uint8 N×C×H×W tensors on the CPU.  Bad input (a missing folder, a file that
is not an image, no network for a download) raises ``DataError`` with one sentence that
names the file or folder.  scikit-learn and torchvision are imported only by the sources
that need them, so importing this module and loading the default source stay fast.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import math
import os
import shutil
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs
import torch
from PIL import Image, ImageOps

from engine.errors import ConfigError, DataError

SOURCES = ("digits", "mnist", "fashion-mnist", "kmnist", "cifar10", "folder", "npz")
TORCHVISION_SOURCES = ("mnist", "fashion-mnist", "kmnist", "cifar10")
SOURCE_TITLES: dict[str, str] = {
    "digits": "Digits 8×8 (scikit-learn, bundled)",
    "mnist": "MNIST 28×28 (torchvision)",
    "fashion-mnist": "Fashion-MNIST 28×28 (torchvision)",
    "kmnist": "Kuzushiji-MNIST 28×28 (torchvision)",
    "cifar10": "CIFAR-10 32×32 colour (torchvision)",
    "folder": "Image folder (one subfolder per class)",
    "npz": "NumPy .npz file (array x, optional y)",
}
#: the seeds torch and NumPy both accept
MAX_SEED = 2**32 - 1
#: the most classes a data set may have (labels beyond are refused, not taken as indices)
MAX_CLASSES = 1000
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

#: torchvision source -> (torchvision.datasets class name, title used in messages)
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("FashionMNIST", "Fashion-MNIST"),
    "kmnist": ("KMNIST", "Kuzushiji-MNIST"),
    "cifar10": ("CIFAR10", "CIFAR-10"),
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                "batches.meta")
_CIFAR_TARBALL = "cifar-10-python.tar.gz"
#: what a failed download raises inside torchvision (URLError and socket errors are OSErrors)
_DOWNLOAD_ERRORS = (RuntimeError, OSError, EOFError, ValueError, http.client.HTTPException, tarfile.TarError,
                    zlib.error)

#: DataConfig field -> (accepted types, how a message describes them)
_FIELD_TYPES = {
    "source": (str, "text"),
    "root": ((str, type(None)), "a folder path or null"),
    "path": ((str, type(None)), "a file or folder path or null"),
    "image_size": (int, "a whole number"),
    "grayscale": (bool, "true or false"),
    "val_fraction": ((int, float), "a number"),
    "seed": (int, "a whole number"),
    "download": (bool, "true or false"),
}


def settings_from_dict(cls, d: dict, what: str):
    """A settings dataclass from its JSON form: ConfigError with one sentence for a non-object, an unknown
    key or a bad value (``engine.config`` builds every settings class through this)."""
    if not isinstance(d, dict):
        raise ConfigError(f"The {what} settings must be a JSON object.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} setting {unknown[0]!r}.")
    try:
        return cls(**d)
    except TypeError as exc:
        raise ConfigError(f"Bad {what} settings: {exc}.") from None


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are split; JSON-able through ``to_dict``/``from_dict``.

    ``image_size`` and ``grayscale`` shape the folder source only; ``val_fraction`` and ``seed``
    set the holdout of the sources without an official test split (digits, folder, npz).
    """

    source: str = "digits"
    root: str | None = None
    path: str | None = None
    image_size: int = 28
    grayscale: bool = True
    val_fraction: float = 0.1
    seed: int = 0
    download: bool = False

    def validate(self) -> None:
        """Raise ``ConfigError`` with one sentence for the first bad value."""
        for name, (kinds, description) in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
                raise ConfigError(f"The data setting {name!r} must be {description}, not {value!r}.")
        if self.source not in SOURCES:
            raise ConfigError(f"The data source must be one of {', '.join(SOURCES)}, not {self.source!r}.")
        if self.source in ("folder", "npz") and not self.path:
            what = "a folder of images" if self.source == "folder" else "an .npz file"
            raise ConfigError(f"The {self.source} source needs the path of {what}.")
        if not 4 <= self.image_size <= 256:
            raise ConfigError(f"The image size must be between 4 and 256 pixels, not {self.image_size}.")
        if not (math.isfinite(self.val_fraction) and 0 < self.val_fraction <= 0.5):
            raise ConfigError(f"The validation fraction must be above 0 and at most 0.5, not {self.val_fraction}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"The data seed must be between 0 and {MAX_SEED}, not {self.seed}.")

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        """Rebuild settings from ``to_dict``'s form; an unknown key raises ``ConfigError`` naming it."""
        return settings_from_dict(cls, d, "data")


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


def load_dataset(cfg: DataConfig) -> DatasetSplit:
    """Load the configured source whole into memory, split into train and validation sets."""
    cfg.validate()
    if cfg.source == "digits":
        return _load_digits(cfg)
    if cfg.source == "folder":
        return _load_folder(cfg)
    if cfg.source == "npz":
        return _load_npz(cfg)
    return _load_torchvision(cfg)


def download_dataset(cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> None:
    """Download a torchvision source into its data root (an explicit user action).

    Files already there, or placed by hand (gzipped IDX files, the CIFAR-10 tarball), are used
    without touching the network.  ``progress(done, total)`` is told when it starts and ends.
    """
    cfg.validate()
    if cfg.source not in TORCHVISION_SOURCES:
        raise ConfigError(f"Only {', '.join(TORCHVISION_SOURCES)} can be downloaded, not {cfg.source!r}.")
    root = _data_root(cfg)
    _unpack_offline_copies(cfg.source, root)
    if progress:
        progress(0, 1)
    if _missing(cfg.source, root):
        import torchvision.datasets

        class_name, title = _TORCHVISION[cfg.source]
        folder = expected_files(cfg.source, root)[0].parent
        before = _paths_under(root)
        try:
            getattr(torchvision.datasets, class_name)(str(root), train=True, download=True)
        except (*_DOWNLOAD_ERRORS, KeyboardInterrupt) as exc:
            _remove_new_paths(root, before)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DataError(f"Could not download {title} into {folder} ({_reason(exc)}): check the network "
                            "connection or place the files there by hand.") from None
    if progress:
        progress(1, 1)


def _paths_under(root: Path) -> set[Path] | None:
    """Every file and folder under ``root`` (None when ``root`` does not exist yet)."""
    if not root.exists():
        return None
    found: set[Path] = {root}
    for folder, dirs, files in os.walk(root):
        found.update(Path(folder) / name for name in (*dirs, *files))
    return found


def _remove_new_paths(root: Path, before: set[Path] | None) -> None:
    """Remove what a failed download created under ``root`` (the files and folders that were not
    there before it began, ``root`` itself included); files that were there stay."""
    if before is None:
        shutil.rmtree(root, ignore_errors=True)
        return
    new = sorted((p for p in (_paths_under(root) or set()) if p not in before), key=lambda p: len(p.parts),
                 reverse=True)
    for path in new:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            pass


def expected_files(source: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The files a torchvision source reads, i.e. where they go offline; empty for the other sources."""
    root = Path(root).expanduser() if root else default_data_root()
    if source == "cifar10":
        return [root / _CIFAR_FOLDER / name for name in _CIFAR_FILES]
    if source in TORCHVISION_SOURCES:
        return [root / _TORCHVISION[source][0] / "raw" / name for name in _IDX_FILES]
    if source in SOURCES:
        return []
    raise ConfigError(f"The data source must be one of {', '.join(SOURCES)}, not {source!r}.")


def _data_root(cfg: DataConfig) -> Path:
    return Path(cfg.root).expanduser() if cfg.root else default_data_root()


def _reason(exc: BaseException) -> str:
    """The last line of an exception's message, without a closing full stop."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].rstrip(".") if lines else type(exc).__name__


def _holdout(name: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], cfg: DataConfig,
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


# --- digits ---------------------------------------------------------------------------------------

def _load_digits(cfg: DataConfig) -> DatasetSplit:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return _holdout("digits", images, labels, [str(d) for d in range(10)], cfg, "The digits data set")


# --- torchvision sources ----------------------------------------------------------------------------

def _missing(source: str, root: Path) -> list[Path]:
    return [path for path in expected_files(source, root) if not path.is_file()]


def _unpack_offline_copies(source: str, root: Path) -> None:
    """Unpack what a person placed by hand: ``<name>.gz`` beside a missing IDX file, or the CIFAR-10 tarball."""
    missing = _missing(source, root)
    if source != "cifar10":
        for path in missing:
            if path.with_name(path.name + ".gz").is_file():
                _gunzip(path.with_name(path.name + ".gz"), path)
        return
    tarball = root / _CIFAR_TARBALL
    if missing and tarball.is_file():
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                archive.extractall(root, filter="data")
        except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
            raise DataError(f"Could not unpack {tarball} ({_reason(exc)}).") from None


def _gunzip(gz: Path, target: Path) -> None:
    """Decompress ``gz`` into ``target`` through a temporary file, so a failure leaves no half file."""
    partial = target.with_name(target.name + ".partial")
    try:
        if gz.stat().st_size == 0:
            raise DataError(f"{gz} is empty (0 bytes): replace it with the gzipped IDX file.")
        with gzip.open(gz) as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            written = dst.tell()
        if written == 0:
            raise DataError(f"{gz} decompresses to nothing (0 bytes): replace it with the gzipped IDX file.")
        os.replace(partial, target)
    except (OSError, EOFError, zlib.error) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"Could not decompress {gz} ({_reason(exc)}).") from None
    except DataError:
        partial.unlink(missing_ok=True)
        raise


def _load_torchvision(cfg: DataConfig) -> DatasetSplit:
    root = _data_root(cfg)
    _unpack_offline_copies(cfg.source, root)
    if cfg.download and _missing(cfg.source, root):
        download_dataset(cfg)
    missing = _missing(cfg.source, root)
    if missing:
        title = _TORCHVISION[cfg.source][1]
        names = [path.name for path in missing]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        packed = (f"or {_CIFAR_TARBALL} in {root}" if cfg.source == "cifar10" else "gzipped .gz files work too")
        raise DataError(f"{title} is not in {missing[0].parent}: place {listed} there ({packed}) or press Download.")
    train, val = _read_cifar10(root) if cfg.source == "cifar10" else _read_idx_source(cfg.source, root)
    return DatasetSplit(cfg.source, train, val)


def _read_idx_source(source: str, root: Path) -> tuple[ImageSet, ImageSet]:
    """Read the four IDX files (what torchvision's MNIST class reads, to the same tensors), naming any bad file."""
    class_name = _TORCHVISION[source][0]
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
        raise DataError(f"Could not read {path} ({_reason(exc)}).") from None
    except _BadIdx:
        raise DataError(f"{path} is not a valid IDX file (the MNIST file format).") from None
    return flat.view(*shape)


def _read_cifar10(root: Path) -> tuple[ImageSet, ImageSet]:
    from torchvision.datasets import CIFAR10

    folder = root / _CIFAR_FOLDER
    sets = []
    for train in (True, False):
        try:
            dataset = CIFAR10(str(root), train=train)
        except RuntimeError:
            raise DataError(f"The CIFAR-10 files in {folder} failed torchvision's checksum check: replace them or "
                            "press Download.") from None
        except OSError as exc:
            raise DataError(f"Could not read CIFAR-10 from {folder} ({_reason(exc)}).") from None
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
        sets.append(ImageSet(images, torch.tensor(dataset.targets, dtype=torch.int64), list(dataset.classes)))
    return sets[0], sets[1]


# --- folder of images -------------------------------------------------------------------------------

def _load_folder(cfg: DataConfig) -> DatasetSplit:
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
    split = _holdout(name, images, torch.tensor([labels[i] for i in kept], dtype=torch.int64), class_names, cfg,
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
        raise DataError(f"Could not list the images in {folder} ({_reason(exc)}).") from None
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


# --- .npz arrays ------------------------------------------------------------------------------------

def _load_npz(cfg: DataConfig) -> DatasetSplit:
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
        raise DataError(f"Could not read {path} ({_reason(exc)}).") from None
    if "x" not in arrays:
        raise DataError(f"{path} has no array named x (the images).")
    images = _npz_images(arrays["x"], path)
    labels, class_names = _npz_labels(arrays.get("y"), arrays.get("class_names"), len(images), path)
    return _holdout(f"npz:{path.name}", images, labels, class_names, cfg, str(path))


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
