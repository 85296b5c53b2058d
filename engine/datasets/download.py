"""The torchvision sources (MNIST, Fashion-MNIST, Kuzushiji-MNIST, CIFAR-10): where their files
go, unpacking copies placed by hand, the explicit download, and reading them (IDX or CIFAR)."""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import SOURCES, TORCHVISION_SOURCES
from engine.datasets.cifar10 import CIFAR_FILES, CIFAR_FOLDER, CIFAR_TARBALL, read_cifar10
from engine.datasets.common import DatasetSplit, data_root, default_data_root, reason
from engine.datasets.idx import IDX_FILES, TORCHVISION_CLASSES, read_idx_source
from engine.errors import ConfigError, DataError

if TYPE_CHECKING:
    from engine.config import DataConfig

#: what a failed download raises inside torchvision (URLError and socket errors are OSErrors)
_DOWNLOAD_ERRORS = (RuntimeError, OSError, EOFError, ValueError, http.client.HTTPException, tarfile.TarError,
                    zlib.error)


def download_dataset(cfg: DataConfig, progress: Callable[[int, int], None] | None = None) -> None:
    """Download a torchvision source into its data root (an explicit user action).

    Files already there, or placed by hand (gzipped IDX files, the CIFAR-10 tarball), are used
    without touching the network.  ``progress(done, total)`` is told when it starts and ends.
    """
    cfg.validate()
    if cfg.source not in TORCHVISION_SOURCES:
        raise ConfigError(f"Only {', '.join(TORCHVISION_SOURCES)} can be downloaded, not {cfg.source!r}.")
    root = data_root(cfg)
    _unpack_offline_copies(cfg.source, root)
    if progress:
        progress(0, 1)
    if _missing(cfg.source, root):
        import torchvision.datasets

        class_name, title = TORCHVISION_CLASSES[cfg.source]
        folder = expected_files(cfg.source, root)[0].parent
        before = _paths_under(root)
        try:
            getattr(torchvision.datasets, class_name)(str(root), train=True, download=True)
        except (*_DOWNLOAD_ERRORS, KeyboardInterrupt) as exc:
            _remove_new_paths(root, before)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DataError(f"Could not download {title} into {folder} ({reason(exc)}): check the network "
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
        return [root / CIFAR_FOLDER / name for name in CIFAR_FILES]
    if source in TORCHVISION_SOURCES:
        return [root / TORCHVISION_CLASSES[source][0] / "raw" / name for name in IDX_FILES]
    if source in SOURCES:
        return []
    raise ConfigError(f"The data source must be one of {', '.join(SOURCES)}, not {source!r}.")


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
    tarball = root / CIFAR_TARBALL
    if missing and tarball.is_file():
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                archive.extractall(root, filter="data")
        except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
            raise DataError(f"Could not unpack {tarball} ({reason(exc)}).") from None


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
        raise DataError(f"Could not decompress {gz} ({reason(exc)}).") from None
    except DataError:
        partial.unlink(missing_ok=True)
        raise


def load_torchvision(cfg: DataConfig) -> DatasetSplit:
    root = data_root(cfg)
    _unpack_offline_copies(cfg.source, root)
    if cfg.download and _missing(cfg.source, root):
        download_dataset(cfg)
    missing = _missing(cfg.source, root)
    if missing:
        title = TORCHVISION_CLASSES[cfg.source][1]
        names = [path.name for path in missing]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        packed = (f"or {CIFAR_TARBALL} in {root}" if cfg.source == "cifar10" else "gzipped .gz files work too")
        raise DataError(f"{title} is not in {missing[0].parent}: place {listed} there ({packed}) or press Download.")
    train, val = read_cifar10(root) if cfg.source == "cifar10" else read_idx_source(cfg.source, root)
    return DatasetSplit(cfg.source, train, val)
