"""The CLI's picture exports (``export samples|recon|traversal|interpolation RUN --out F.png``):
grids whose images are scaled to a legible cell and labelled with PIL.

Each image's longer side is drawn ``cell_px`` pixels (nearest neighbour); by default its native
size times the smallest whole factor that reaches ``MIN_CELL_PX`` (8×8 digits: 48 px, MNIST's
28×28: 56 px).  The images sit ``PADDING`` white pixels apart, as ``torchvision``'s
``make_grid`` lays them, so ``cell_px`` equal to the native size gives the unlabelled grid's
pixels.  A title line above the grid says what the images are; traversals label their rows with
the dimension (``z0``, ``z1``, …) and their columns with the swept value, interpolations their
first and last columns ``A`` and ``B``, reconstructions their rows ``image`` / ``recon``.
Column labels wider than a column, and row labels on rows lower than the font, are left out
(the title says what the rows and columns are).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from engine import export
from engine.datasets import ImageSet
from engine.errors import UserError
from engine.models import VARIANTS, AutoencoderModel
from engine.outputs import output_target
from engine.render import BACKGROUND, INK, font
from engine.storage import atomic_write

MIN_CELL_PX = 48
MAX_CELL_PX = 512
PADDING = 2
LABEL_FONT_PX = 12
LINE_PX = 18
#: the narrowest picture: a title wraps onto more lines rather than shrink below it
MIN_TITLE_PX = 240


def default_cell_px(image_shape) -> int:
    """The longer side of an image (C×H×W or H×W) times the smallest whole factor reaching ``MIN_CELL_PX``."""
    longer = max(int(image_shape[-1]), int(image_shape[-2]))
    return longer * max(1, math.ceil(MIN_CELL_PX / longer))


def check_cell_px(cell_px: int) -> int:
    if not 1 <= cell_px <= MAX_CELL_PX:
        raise UserError(f"--cell-px must be between 1 and {MAX_CELL_PX}, not {cell_px}.")
    return cell_px


def scaled(images: torch.Tensor, cell_px: int) -> torch.Tensor:
    """N×C×H×W images with their longer side ``cell_px`` pixels (nearest neighbour)."""
    h, w = images.shape[-2:]
    longer = max(h, w)
    if longer == cell_px:
        return images
    size = (max(1, round(h * cell_px / longer)), max(1, round(w * cell_px / longer)))
    return F.interpolate(images.float(), size=size, mode="nearest")


def labelled_grid(images: torch.Tensor, nrow: int, cell_px: int, title: str, row_labels: list[str] | None = None,
                  column_labels: list[str] | None = None) -> Image.Image:
    """The images (N×C×H×W in [0, 1]) in rows of ``nrow`` cells, under ``title``, rows and columns
    labelled where labels are given and fit (column labels no wider than a column, row labels
    on rows at least as high as the font)."""
    cells = scaled(images.detach().cpu().clamp(0, 1), cell_px)
    grid = make_grid(cells, nrow=nrow, padding=PADDING, pad_value=1.0)
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()  # as save_image
    picture = Image.fromarray(pixels).convert("RGB")
    f = font(LABEL_FONT_PX)
    pitch_y, pitch_x = cells.shape[-2] + PADDING, cells.shape[-1] + PADDING
    if column_labels and max(f.getlength(t) for t in column_labels) > pitch_x:
        column_labels = None
    if row_labels and pitch_y < LABEL_FONT_PX:
        row_labels = None
    left = int(max(f.getlength(t) for t in row_labels)) + 8 if row_labels else 0
    width = max(left + picture.width, MIN_TITLE_PX)
    lines = wrapped(title, f, width - 8)
    top = LINE_PX * len(lines) + (LINE_PX if column_labels else 0)
    out = Image.new("RGB", (max(width, *(int(f.getlength(line)) + 8 for line in lines)), top + picture.height),
                    BACKGROUND)
    out.paste(picture, (left, top))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((4, 3 + LINE_PX * i), line, fill=INK, font=f)
    for i, text in enumerate(row_labels or []):
        draw.text((left - 4, top + PADDING + i * pitch_y + (pitch_y - PADDING) / 2), text, fill=INK, font=f,
                  anchor="rm")
    for j, text in enumerate(column_labels or []):
        draw.text((left + PADDING + j * pitch_x + (pitch_x - PADDING) / 2, top - 3), text, fill=INK, font=f,
                  anchor="md")
    return out


def wrapped(text: str, f, width: float) -> list[str]:
    """``text`` broken between words into lines of at most ``width`` pixels (a longer word alone)."""
    lines: list[str] = []
    for word in text.split():
        if lines and f.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def save_picture(image: Image.Image, path: str | Path) -> Path:
    """Write a picture atomically; the format follows the file suffix."""
    suffixes = export.IMAGE_SUFFIXES
    path = output_target(path, suffixes, "an image", f"one of {', '.join(suffixes)}")
    suffix = path.suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(suffix, suffix[1:].upper())
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    return path


# -- the four figures ----------------------------------------------------------------------------
def _prior_words(model: AutoencoderModel) -> str:
    spec = VARIANTS.get(model.variant_key)
    if spec is not None and spec.prior == "chosen":
        return f"the model's prior ({getattr(model.params, 'prior', 'chosen')})"
    if spec is not None and spec.prior == "standard_normal":
        return "the prior N(0, I)"
    return "a Gaussian fitted to the training codes"


def _label_words(model: AutoencoderModel, label: int | None) -> str:
    if not model.is_conditional:
        return ""
    return ", labels 0, 1, 2, … in turn" if label is None else f", label {label}"


def samples_figure(model: AutoencoderModel, n: int, nrow: int, cell_px: int, label: int | None = None) -> Image.Image:
    images = export.sample_images(model, n, label)
    return labelled_grid(images, nrow, cell_px, f"Samples: {n} images decoded from {_prior_words(model)}"
                         f"{_label_words(model, label)}")


def reconstruction_figure(model: AutoencoderModel, images: ImageSet, n: int, nrow: int, cell_px: int) -> Image.Image:
    rows = export.reconstruction_rows(model, images, n, nrow)
    pairs = len(rows) // (2 * nrow)
    return labelled_grid(rows, nrow, cell_px, f"Reconstructions: {min(n, len(images))} validation images, each row "
                         "followed by their reconstructions", ["image", "recon"] * pairs)


@torch.no_grad()
def traversal_figure(model: AutoencoderModel, cell_px: int, label: int | None = None, steps: int = 9,
                     span: float = 3.0) -> Image.Image:
    codes, dims, values = export.traversal_codes(model, steps=steps, span=span)
    images = model.decode(codes, export.labels_for(model, len(codes), 0 if label is None else label))
    label_words = f", label {0 if label is None else label}" if model.is_conditional else ""
    title = (f"Traversal: each row sweeps one dimension from {-span:+g} to {span:+g} "
             f"{export.traversal_unit(model)}, the others at the centre{label_words}")
    return labelled_grid(images, steps, cell_px, title, [f"z{k}" for k in dims], [f"{v:+.2f}" for v in values.tolist()])


@torch.no_grad()
def interpolation_figure(model: AutoencoderModel, images: ImageSet, cell_px: int, pairs: int = 4,
                         steps: int = 10) -> Image.Image:
    _, _, path, y = export.interpolation_path(model, images, pairs, steps)
    labels = y.repeat_interleave(steps) if y is not None else None
    decoded = model.decode(path.reshape(-1, model.latent_dim), labels)
    title = (f"Interpolation: each row decodes {steps} points of the straight line from the code of a "
             "validation image A to that of another, B")
    return labelled_grid(decoded, steps, cell_px, title, column_labels=["A", *[""] * (steps - 2), "B"])
