"""Headless frames drawn with PIL (no matplotlib, no Qt): the latent map as coloured points, decoded
images scaled up, captions, and frames laid side by side.  Frames are H×W×3 uint8 arrays; the
animations in ``engine.export`` are sequences of them.

Points are coloured by class with a fixed palette (``PALETTE``: the ten colours of Tableau 10,
then ten lighter ones, then repeated), so class 3 has the same colour in every frame and every
export.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
)
BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)
LEGEND_MAX_CLASSES = 20


def class_colours(labels: np.ndarray) -> np.ndarray:
    """N×3 uint8 colours of the labels (negative labels are grey)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    palette = np.array(PALETTE, dtype=np.uint8)
    colours = palette[np.mod(labels, len(palette))]
    colours[labels < 0] = (127, 127, 127)
    return colours


@lru_cache(maxsize=8)
def font(size: int = 13) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def limits_of(xy: np.ndarray, margin: float = 0.05) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) around the finite points of ``xy`` (N×2, or F×N×2 for the frames of a movie:
    then around every frame), the 0.5% most extreme of each frame on each side left out so one
    stray code does not shrink the rest."""
    frames = np.asarray(xy, dtype=np.float64)
    frames = frames.reshape(-1, frames.shape[-2] if frames.ndim > 2 else len(frames), 2)
    los, his = [], []
    for pts in frames:
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            continue
        if len(pts) > 200:
            los.append(np.percentile(pts, 0.5, axis=0))
            his.append(np.percentile(pts, 99.5, axis=0))
        else:
            los.append(pts.min(axis=0))
            his.append(pts.max(axis=0))
    if not los:
        return -1.0, 1.0, -1.0, 1.0
    lo, hi = np.min(los, axis=0), np.max(his, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def draw_map(xy: np.ndarray, labels: np.ndarray, limits: tuple[float, float, float, float], size: int = 360, *,
             point: tuple[float, float] | None = None, title: str = "", axes: tuple[str, str] = ("x", "y"),
             class_names: list[str] | None = None) -> Image.Image:
    """The latent map: a ``size``×``size`` plot of the points coloured by class, the chosen point
    as a black cross, a title above, axis names and limits below and beside, and a legend of the
    classes at the right (for up to 20 classes)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    small = font(11)
    pad_top, pad_left, pad_bottom = 22, 14, 30
    names = class_names if class_names else [str(v) for v in range(int(labels.max()) + 1 if len(labels) else 0)]
    show_legend = 0 < len(names) <= LEGEND_MAX_CLASSES
    limit_w = 8 + max(int(small.getlength(f"{v:.3g}")) for v in limits[2:])  # the y limits beside the plot
    legend_w = 16 + max((int(small.getlength(str(n)[:14])) for n in names), default=0) + 8 if show_legend else 0
    width, height = pad_left + size + limit_w + legend_w, pad_top + size + pad_bottom
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)

    x0, x1, y0, y1 = limits
    px = pad_left + (xy[:, 0] - x0) / (x1 - x0) * (size - 1)
    py = pad_top + (1.0 - (xy[:, 1] - y0) / (y1 - y0)) * (size - 1)
    inside = (np.isfinite(px) & np.isfinite(py) & (px >= pad_left) & (px <= pad_left + size - 1)
              & (py >= pad_top) & (py <= pad_top + size - 1))
    px, py = px[inside].round().astype(np.int64), py[inside].round().astype(np.int64)
    colours = class_colours(labels[inside]) if len(labels) == len(xy) else np.zeros((len(px), 3), np.uint8)
    radius = 2 if len(xy) <= 2000 else 1
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius + (radius > 1):
                continue
            cy = np.clip(py + dy, pad_top, pad_top + size - 1)
            cx = np.clip(px + dx, pad_left, pad_left + size - 1)
            canvas[cy, cx] = colours

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    draw.rectangle([pad_left - 1, pad_top - 1, pad_left + size, pad_top + size], outline=(170, 170, 170))
    if point is not None and all(np.isfinite(point)):
        cx = pad_left + (point[0] - x0) / (x1 - x0) * (size - 1)
        cy = pad_top + (1.0 - (point[1] - y0) / (y1 - y0)) * (size - 1)
        if pad_left <= cx <= pad_left + size and pad_top <= cy <= pad_top + size:
            for w, colour in ((5, (255, 255, 255)), (2, (0, 0, 0))):
                draw.line([cx - 8, cy, cx + 8, cy], fill=colour, width=w)
                draw.line([cx, cy - 8, cx, cy + 8], fill=colour, width=w)
    draw.text((pad_left, 3), title, fill=INK, font=font(13))
    bottom = pad_top + size + 3
    draw.text((pad_left, bottom), f"{x0:.3g}", fill=INK, font=small)
    draw.text((pad_left + size, bottom), f"{x1:.3g}", fill=INK, font=small, anchor="ra")
    draw.text((pad_left + size // 2, bottom), axes[0], fill=INK, font=small, anchor="ma")
    draw.text((pad_left + size + 4, pad_top), f"{y1:.3g}", fill=INK, font=small)
    draw.text((pad_left + size + 4, pad_top + size), f"{y0:.3g}", fill=INK, font=small, anchor="ld")
    draw.text((2, pad_top + size // 2), axes[1], fill=INK, font=small, anchor="lm")
    if show_legend:
        lx, ly = pad_left + size + limit_w + 4, pad_top + 20
        for i, name in enumerate(names):
            colour = PALETTE[i % len(PALETTE)]
            draw.rectangle([lx, ly + 14 * i + 2, lx + 8, ly + 14 * i + 10], fill=colour)
            draw.text((lx + 12, ly + 14 * i), str(name)[:14], fill=INK, font=small)
    return image


def image_panel(image, height: int) -> Image.Image:
    """One decoded image (C×H×W or H×W in [0, 1], tensor or array) scaled to ``height`` pixels
    with nearest-neighbour sampling, so its pixels stay visible."""
    array = np.asarray(image.detach().cpu().numpy() if hasattr(image, "detach") else image, dtype=np.float32)
    if array.ndim == 3:
        array = np.transpose(array, (1, 2, 0))
        if array.shape[2] == 1:
            array = array[:, :, 0]
    pil = Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).convert("RGB")
    scale = max(1, height // max(pil.height, 1))
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    if pil.height != height:
        pil = pil.resize((round(pil.width * height / pil.height), height), Image.NEAREST)
    return pil


def with_caption(image: Image.Image, text: str, above: str = "") -> Image.Image:
    """The image with a line of text below it (and optionally one above)."""
    f = font(12)
    lines_below = text.split("\n") if text else []
    top = 18 if above else 0
    width = max(image.width, *(int(f.getlength(line)) + 8 for line in [above, *lines_below]))
    out = Image.new("RGB", (width, top + image.height + 16 * len(lines_below) + 4), BACKGROUND)
    out.paste(image, ((width - image.width) // 2, top))
    draw = ImageDraw.Draw(out)
    if above:
        draw.text((width // 2, 2), above, fill=INK, font=f, anchor="ma")
    for i, line in enumerate(lines_below):
        draw.text((width // 2, top + image.height + 3 + 16 * i), line, fill=INK, font=f, anchor="ma")
    return out


def side_by_side(images: list[Image.Image], gap: int = 12) -> Image.Image:
    """Images in a row, centred vertically, on white."""
    width = sum(i.width for i in images) + gap * (len(images) - 1)
    height = max(i.height for i in images)
    out = Image.new("RGB", (width, height), BACKGROUND)
    x = 0
    for image in images:
        out.paste(image, (x, (height - image.height) // 2))
        x += image.width + gap
    return out


def stacked(images: list[Image.Image], gap: int = 6) -> Image.Image:
    """Images in a column, centred horizontally, on white."""
    width = max(i.width for i in images)
    height = sum(i.height for i in images) + gap * (len(images) - 1)
    out = Image.new("RGB", (width, height), BACKGROUND)
    y = 0
    for image in images:
        out.paste(image, ((width - image.width) // 2, y))
        y += image.height + gap
    return out


def uniform_frames(images: list[Image.Image], multiple: int = 16) -> list[np.ndarray]:
    """The images as H×W×3 uint8 frames of one size (the largest, rounded up to ``multiple``
    pixels, as video encoders want), each centred on white."""
    width = -(-max(i.width for i in images) // multiple) * multiple
    height = -(-max(i.height for i in images) // multiple) * multiple
    frames = []
    for image in images:
        out = Image.new("RGB", (width, height), BACKGROUND)
        out.paste(image.convert("RGB"), ((width - image.width) // 2, (height - image.height) // 2))
        frames.append(np.asarray(out))
    return frames
