"""Figures and data a person keeps: sample grids, reconstructions, traversals,
interpolations and embeddings.  Image grids come from torchvision's ``make_grid``; every file
is written to a temporary name first, so a failed export never spoils an existing file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from engine.data import ImageSet
from engine.errors import UserError
from engine.models import AutoencoderModel
from engine.runs import atomic_write
from engine.training import encode_all

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _labels_for(model: AutoencoderModel, n: int, label: int | None) -> torch.Tensor | None:
    if not model.is_conditional:
        return None
    if label is None:
        return torch.arange(n) % model.n_classes
    if not 0 <= label < model.n_classes:
        raise UserError(f"The label must be between 0 and {model.n_classes - 1}, not {label}.")
    return torch.full((n,), label)


@torch.no_grad()
def sample_grid(model: AutoencoderModel, n: int = 64, nrow: int = 8, label: int | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` samples from the model's prior (or fitted code Gaussian), as one grid image."""
    torch.manual_seed(seed)
    return make_grid(model.sample(n, _labels_for(model, n, label)).cpu(), nrow=nrow, padding=2, pad_value=1.0)


@torch.no_grad()
def reconstruction_grid(model: AutoencoderModel, images: ImageSet, n: int = 32, nrow: int = 8) -> torch.Tensor:
    """Rows of inputs, each followed by a row of their reconstructions."""
    n = min(n, len(images))
    x = images.images[:n].float() / 255.0
    y = images.labels[:n] if model.is_conditional else None
    recon = model.reconstruct(x, y).cpu()
    rows = []
    for s in range(0, n, nrow):
        rows += [x[s:s + nrow], recon[s:s + nrow]]
        if len(rows[-1]) < nrow:  # pad a short last row so the pairs stay aligned
            pad = torch.ones(nrow - len(rows[-1]), *x.shape[1:])
            rows[-2], rows[-1] = torch.cat([rows[-2], pad]), torch.cat([rows[-1], pad])
    return make_grid(torch.cat(rows), nrow=nrow, padding=2, pad_value=1.0)


def marginal_std(model: AutoencoderModel) -> torch.Tensor:
    """The standard deviation of each code dimension under the Gaussian fitted to the training
    codes: the square root of the covariance's diagonal, i.e. the row norms of its Cholesky factor
    L (Σ = L Lᵀ), not L's diagonal (which is a conditional standard deviation)."""
    return model.code_chol.detach().cpu().double().pow(2).sum(dim=1).sqrt().float()


@torch.no_grad()
def traversal_grid(model: AutoencoderModel, base: torch.Tensor | None = None, dims: list[int] | None = None,
                   steps: int = 9, span: float = 3.0, label: int | None = None) -> torch.Tensor:
    """One row per latent dimension: the base code with that dimension swept over ±span
    (in prior units for VAEs, in marginal standard deviations of the fitted codes otherwise)."""
    d = model.latent_dim
    dims = list(range(min(d, 10))) if dims is None else dims
    if any(not 0 <= k < d for k in dims):
        raise UserError(f"Latent dimensions must be between 0 and {d - 1}.")
    base = (torch.zeros(d) if model.probabilistic else model.code_mean.cpu()) if base is None else base.reshape(d)
    scale = torch.ones(d) if model.probabilistic else marginal_std(model)
    values = torch.linspace(-span, span, steps)
    codes = base.repeat(len(dims) * steps, 1)
    for r, k in enumerate(dims):
        codes[r * steps:(r + 1) * steps, k] = base[k] + values * scale[k]
    images = model.decode(codes, _labels_for(model, len(codes), 0 if label is None else label))
    return make_grid(images.cpu(), nrow=steps, padding=2, pad_value=1.0)


@torch.no_grad()
def interpolation_grid(model: AutoencoderModel, images: ImageSet, pairs: int = 4, steps: int = 10) -> torch.Tensor:
    """Rows decoding straight lines in latent space between the codes of pairs of images."""
    n = min(2 * pairs, len(images) - len(images) % 2)
    if n < 2:
        raise UserError("Interpolation needs at least two images.")
    x = images.images[:n].float() / 255.0
    y = images.labels[:n] if model.is_conditional else None
    z = model.encode(x, y)
    t = torch.linspace(0, 1, steps).reshape(1, steps, 1)
    path = (z[0::2, None] * (1 - t) + z[1::2, None] * t).reshape(-1, model.latent_dim)
    labels = y[0::2].repeat_interleave(steps) if y is not None else None
    return make_grid(model.decode(path, labels).cpu(), nrow=steps, padding=2, pad_value=1.0)


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    """Write an image grid atomically; the format follows the file suffix."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(f"Cannot write an image to {path.name}: use one of {', '.join(IMAGE_SUFFIXES)}.")
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix, suffix[1:].upper())
    buffer = io.BytesIO()
    save_image(grid, buffer, format=fmt)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    return path


def embeddings(model: AutoencoderModel, images: ImageSet) -> tuple[np.ndarray, np.ndarray]:
    """The codes and labels of every image of a set."""
    labels = images.labels if model.is_conditional else None
    return encode_all(model, images.images, labels), images.labels.numpy().copy()


def save_embeddings(codes: np.ndarray, labels: np.ndarray, path: str | Path, class_names: list[str] | None = None,
                    xy: np.ndarray | None = None) -> Path:
    """Codes (and optionally a 2-D projection) as CSV or NPZ, chosen by the suffix."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    if path.suffix.lower() == ".npz":
        arrays = {"codes": codes, "labels": labels}
        if xy is not None:
            arrays["xy"] = xy
        if class_names:
            arrays["class_names"] = np.array(class_names, dtype=str)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    elif path.suffix.lower() == ".csv":
        text = io.StringIO()
        writer = csv.writer(text)
        extra = ["x", "y"] if xy is not None else []
        writer.writerow(["index", "label", "class", *extra, *(f"z{i}" for i in range(codes.shape[1]))])
        for i, (code, label) in enumerate(zip(codes, labels)):
            name = class_names[label] if class_names and 0 <= label < len(class_names) else str(label)
            writer.writerow([i, int(label), name, *([f"{v:.6g}" for v in xy[i]] if xy is not None else []),
                             *(f"{v:.6g}" for v in code)])
        atomic_write(path, lambda tmp: Path(tmp).write_text(text.getvalue()))
    else:
        raise UserError(f"Cannot write embeddings to {path.name}: use .csv or .npz.")
    return path
