"""Figures and data a person keeps: sample grids, reconstructions, traversals,
interpolations and embeddings; the map's coordinates as CSV; animations (the training movie,
traversals and interpolations as GIF or MP4, frames drawn by ``engine.render``); and TensorBoard
logs (scalars and the projector's files).  Image grids come from torchvision's ``make_grid``;
every file is written to a temporary name first (a TensorBoard log to a temporary folder), so a
failed export never spoils an existing file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from engine.batches import encode_all, float_batch
from engine.datasets import ImageSet
from engine.errors import UserError
from engine.models import AutoencoderModel, has_standard_normal_prior
from engine.outputs import move_folder_into_place, output_target, refuse_existing, temporary_output
from engine.probe_sets import SPLIT_NAMES
from engine.storage import atomic_write

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def labels_for(model: AutoencoderModel, n: int, label: int | None) -> torch.Tensor | None:
    """The labels a conditional model decodes ``n`` codes with: ``label``, or 0, 1, 2, … in turn."""
    if not model.is_conditional:
        return None
    if label is None:
        return torch.arange(n) % model.n_classes
    if not 0 <= label < model.n_classes:
        raise UserError(f"The label must be between 0 and {model.n_classes - 1}, not {label}.")
    return torch.full((n,), label)


@torch.no_grad()
def sample_images(model: AutoencoderModel, n: int = 64, label: int | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` samples from the model's prior (or fitted code Gaussian), N×C×H×W in [0, 1]."""
    torch.manual_seed(seed)
    return model.sample(n, labels_for(model, n, label)).cpu()


def sample_grid(model: AutoencoderModel, n: int = 64, nrow: int = 8, label: int | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` samples from the model's prior (or fitted code Gaussian), as one grid image."""
    return make_grid(sample_images(model, n, label, seed), nrow=nrow, padding=2, pad_value=1.0)


def reconstruction_grid(model: AutoencoderModel, images: ImageSet, n: int = 32, nrow: int = 8) -> torch.Tensor:
    """Rows of inputs, each followed by a row of their reconstructions."""
    return make_grid(reconstruction_rows(model, images, n, nrow), nrow=nrow, padding=2, pad_value=1.0)


@torch.no_grad()
def reconstruction_rows(model: AutoencoderModel, images: ImageSet, n: int = 32, nrow: int = 8) -> torch.Tensor:
    """Rows of ``nrow`` inputs, each followed by the row of their reconstructions (a short last
    pair padded with white), as one N×C×H×W batch."""
    n = min(n, len(images))
    x = float_batch(images.images[:n])
    y = images.labels[:n] if model.is_conditional else None
    recon = model.reconstruct(x, y).cpu()
    rows = []
    for s in range(0, n, nrow):
        rows += [x[s:s + nrow], recon[s:s + nrow]]
        if len(rows[-1]) < nrow:  # pad a short last row so the pairs stay aligned
            pad = torch.ones(nrow - len(rows[-1]), *x.shape[1:])
            rows[-2], rows[-1] = torch.cat([rows[-2], pad]), torch.cat([rows[-1], pad])
    return torch.cat(rows)


def marginal_std(model: AutoencoderModel) -> torch.Tensor:
    """The standard deviation of each code dimension under the Gaussian fitted to the training
    codes: the square root of the covariance's diagonal, i.e. the row norms of its Cholesky factor
    L (Σ = L Lᵀ), not L's diagonal (which is a conditional standard deviation)."""
    return model.code_chol.detach().cpu().double().pow(2).sum(dim=1).sqrt().float()


def traversal_codes(model: AutoencoderModel, base: torch.Tensor | None = None, dims: list[int] | None = None,
                    steps: int = 9, span: float = 3.0) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """The codes of a traversal (one block of ``steps`` codes per dimension: the base code with
    that dimension swept over ±span), the dimensions, and the swept values in standard deviations."""
    d = model.latent_dim
    dims = list(range(min(d, 10))) if dims is None else list(dims)
    if any(not 0 <= k < d for k in dims):
        raise UserError(f"Latent dimensions must be between 0 and {d - 1}.")
    if steps < 2:
        raise UserError(f"A traversal needs at least 2 steps, not {steps}.")
    standard = has_standard_normal_prior(model)
    base = (torch.zeros(d) if standard else model.code_mean.cpu()) if base is None else base.reshape(d)
    scale = torch.ones(d) if standard else marginal_std(model)
    values = torch.linspace(-span, span, steps)
    codes = base.repeat(len(dims) * steps, 1)
    for r, k in enumerate(dims):
        codes[r * steps:(r + 1) * steps, k] = base[k] + values * scale[k]
    return codes, dims, values


def traversal_unit(model: AutoencoderModel) -> str:
    """What a traversal's steps are measured in."""
    return "prior standard deviations" if has_standard_normal_prior(model) else "marginal standard deviations of the codes"


@torch.no_grad()
def traversal_grid(model: AutoencoderModel, base: torch.Tensor | None = None, dims: list[int] | None = None,
                   steps: int = 9, span: float = 3.0, label: int | None = None) -> torch.Tensor:
    """One row per latent dimension: the base code with that dimension swept over ±span
    (in prior units for VAEs, in marginal standard deviations of the fitted codes otherwise)."""
    codes, _, _ = traversal_codes(model, base, dims, steps, span)
    images = model.decode(codes, labels_for(model, len(codes), 0 if label is None else label))
    return make_grid(images.cpu(), nrow=steps, padding=2, pad_value=1.0)


def interpolation_path(model: AutoencoderModel, images: ImageSet, pairs: int = 4, steps: int = 10):
    """The images of ``pairs`` pairs (first and second of each, float in [0, 1]), the straight
    path between their codes (pairs×steps×D) and the label each path is decoded with."""
    n = min(2 * pairs, len(images) - len(images) % 2)
    if n < 2:
        raise UserError("Interpolation needs at least two images.")
    if steps < 2:
        raise UserError(f"An interpolation needs at least 2 steps, not {steps}.")
    x = float_batch(images.images[:n])
    y = images.labels[:n] if model.is_conditional else None
    z = model.encode(x, y)
    t = torch.linspace(0, 1, steps).reshape(1, steps, 1)
    path = z[0::2, None] * (1 - t) + z[1::2, None] * t
    return x[0::2], x[1::2], path, (y[0::2] if y is not None else None)


@torch.no_grad()
def interpolation_grid(model: AutoencoderModel, images: ImageSet, pairs: int = 4, steps: int = 10) -> torch.Tensor:
    """Rows decoding straight lines in latent space between the codes of pairs of images."""
    _, _, path, y = interpolation_path(model, images, pairs, steps)
    labels = y.repeat_interleave(steps) if y is not None else None
    return make_grid(model.decode(path.reshape(-1, model.latent_dim), labels).cpu(), nrow=steps, padding=2,
                     pad_value=1.0)


def save_grid(grid: torch.Tensor, path: str | Path) -> Path:
    """Write an image grid atomically; the format follows the file suffix."""
    path = output_target(path, IMAGE_SUFFIXES, "an image", f"one of {', '.join(IMAGE_SUFFIXES)}")
    suffix = path.suffix.lower()
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
                    xy: np.ndarray | None = None, splits: np.ndarray | None = None, split_indices=None) -> Path:
    """Codes (and optionally a 2-D projection) as CSV or NPZ, chosen by the suffix; with ``splits`` and
    ``split_indices`` (``engine.probe_sets``) each row names its image's split and index there."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    if path.suffix.lower() == ".npz":
        arrays = {"codes": codes, "labels": labels}
        arrays.update({} if xy is None else {"xy": xy})
        arrays.update({} if splits is None else {"splits": splits, "split_indices": split_indices})
        if class_names:
            arrays["class_names"] = np.array(class_names, dtype=str)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    elif path.suffix.lower() == ".csv":
        text = io.StringIO()
        writer = csv.writer(text)
        extra = (["split", "split_index"] if splits is not None else []) + (["x", "y"] if xy is not None else [])
        writer.writerow(["index", "label", "class", *extra, *(f"z{i}" for i in range(codes.shape[1]))])
        for i, (code, label) in enumerate(zip(codes, labels)):
            name = class_names[label] if class_names and 0 <= label < len(class_names) else str(label)
            place = [SPLIT_NAMES[int(splits[i])], int(split_indices[i])] if splits is not None else []
            writer.writerow([i, int(label), name, *place, *([f"{v:.6g}" for v in xy[i]] if xy is not None else []),
                             *(f"{v:.6g}" for v in code)])
        atomic_write(path, lambda tmp: Path(tmp).write_text(text.getvalue()))
    else:
        raise UserError(f"Cannot write embeddings to {path.name}: use .csv or .npz.")
    return path


# -- the map's coordinates ----------------------------------------------------------------------
def save_map_csv(path: str | Path, xy: np.ndarray, labels: np.ndarray, indices: np.ndarray, *,
                 value: np.ndarray | None = None, value_name: str = "value",
                 class_names: list[str] | None = None) -> Path:
    """The latent map's points as CSV: ``index`` (into the validation set), ``label``, ``class``,
    the 2-D map coordinates ``x``, ``y`` and, when given, the value the map is coloured by, in a
    column named ``value_name`` (e.g. ``reconstruction_bce``; see ``engine.point_values``)."""
    path = output_target(path, (".csv",), "map coordinates")
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    labels, indices = np.asarray(labels).reshape(-1), np.asarray(indices).reshape(-1)
    columns = {"labels": labels, "indices": indices}
    if value is not None:
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        columns["values"] = value
    for name, column in columns.items():
        if len(column) != len(xy):
            raise UserError(f"The map has {len(xy)} points but {len(column)} {name}.")
    name = str(value_name).strip() or "value"
    if value is not None and name in ("index", "label", "class", "x", "y"):
        raise UserError(f"The value column cannot be called {name!r}: the map's CSV has a column of that name.")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "label", "class", "x", "y", *([name] if value is not None else [])])
    for i in range(len(xy)):
        label = int(labels[i])
        cls = class_names[label] if class_names and 0 <= label < len(class_names) else str(label)
        writer.writerow([int(indices[i]), label, cls, f"{xy[i, 0]:.7g}", f"{xy[i, 1]:.7g}",
                         *([f"{value[i]:.7g}"] if value is not None else [])])
    atomic_write(path, lambda tmp: Path(tmp).write_text(text.getvalue()))
    return path


# -- animations --------------------------------------------------------------------------------------
ANIMATION_SUFFIXES = (".gif", ".mp4")
MAX_FPS = 50  # a GIF's frame durations are whole hundredths of a second, and browsers slow < 20 ms


def is_animation(path: str | Path) -> bool:
    """Whether a file name asks for an animation (.gif or .mp4) rather than a still image."""
    return Path(path).suffix.lower() in ANIMATION_SUFFIXES


def _encode_mp4(stack: np.ndarray, fps: float) -> bytes:
    import imageio.v3 as iio
    return iio.imwrite("<bytes>", stack, extension=".mp4", fps=fps, codec="libx264", macro_block_size=16, quality=8)


def video_problem() -> str | None:
    """None when MP4 can be written here; otherwise the sentence saying why not.  imageio-ffmpeg
    being installed is not enough (a broken or missing ffmpeg binary ended in imageio's
    ``KeyError: None`` or an empty file): a two-frame clip is encoded to check that the writer
    really opens and writes."""
    import importlib.util
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return ("Writing MP4 needs imageio-ffmpeg: pip install 'latent-explorer[video]' "
                "(or pip install imageio-ffmpeg), or export a .gif instead.")
    try:
        encoded = _encode_mp4(np.zeros((2, 16, 16, 3), np.uint8), 10)
        reason = "" if encoded else "it wrote nothing"
    except Exception as exc:  # noqa: BLE001 - whatever imageio or ffmpeg raise, the answer is "not here"
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        reason = f"{type(exc).__name__}{': ' + first if first else ''}"
    if not reason:
        return None
    return (f"Writing MP4 does not work here: imageio-ffmpeg is installed but its ffmpeg failed ({reason}); "
            "reinstall it (pip install --force-reinstall imageio-ffmpeg) or export a .gif instead.")


def video_available() -> bool:
    """Whether MP4 can be written (see ``video_problem``)."""
    return video_problem() is None


def check_animation_target(path: str | Path, fps: float, replace: bool = True) -> Path:
    """The expanded path when an animation can be written there at ``fps``; UserError otherwise
    (a bad suffix, a missing folder, an existing file without ``replace``, a bad frame rate, MP4
    without a working imageio-ffmpeg)."""
    path = output_target(path, ANIMATION_SUFFIXES, "an animation", replace=replace)
    if not 0 < fps <= MAX_FPS:
        raise UserError(f"The frame rate must be above 0 and at most {MAX_FPS} frames per second, not {fps:g}.")
    if path.suffix.lower() == ".mp4":
        problem = video_problem()
        if problem:
            raise UserError(problem)
    return path


def save_animation(frames, path: str | Path, fps: float = 10) -> Path:
    """Write frames (H×W×3 uint8 arrays or PIL images) as an animated GIF (looping) or an MP4
    (H.264 through imageio-ffmpeg), chosen by the suffix, atomically."""
    from engine.render import uniform_frames
    path = check_animation_target(path, fps)
    suffix = path.suffix.lower()
    frames = list(frames)
    if not frames:
        raise UserError("There are no frames to write.")
    from PIL import Image
    images = [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    stack = np.stack(uniform_frames(images))
    import imageio.v3 as iio
    if suffix == ".gif":
        encoded = iio.imwrite("<bytes>", stack, extension=".gif", duration=round(1000 / fps), loop=0)
    else:
        try:
            encoded = _encode_mp4(stack, fps)
        except Exception as exc:  # noqa: BLE001 - ffmpeg broke after the check: one sentence, nothing written
            raise UserError(f"Writing the MP4 failed ({type(exc).__name__}: {str(exc)[:120]}); "
                            "export a .gif instead.") from None
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(encoded))
    return path


def _grid_image(images: torch.Tensor, nrow: int, height: int):
    from engine.render import image_panel
    grid = make_grid(images.cpu(), nrow=nrow, padding=2, pad_value=1.0)
    return image_panel(grid, height)


@torch.no_grad()
def traversal_frames(model: AutoencoderModel, base: torch.Tensor | None = None, dims: list[int] | None = None,
                     steps: int = 9, span: float = 3.0, label: int | None = None,
                     tile: int = 96) -> list[np.ndarray]:
    """A traversal as an animation: frame t shows every traversed dimension at the t-th value of
    its sweep (forward, then back, so it loops), each image under the name of its dimension and the
    frame captioned with the value, in ``traversal_unit(model)``."""
    from engine.render import image_panel, stacked, uniform_frames, with_caption
    codes, dims, values = traversal_codes(model, base, dims, steps, span)
    decoded = model.decode(codes, labels_for(model, len(codes), 0 if label is None else label)).cpu()
    per_row = min(len(dims), 5)
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    frames = []
    for t in order:
        tiles = [with_caption(image_panel(decoded[r * steps + t], tile), "", above=f"z{k}") for r, k in enumerate(dims)]
        rows = [_row(tiles[i:i + per_row]) for i in range(0, len(tiles), per_row)]
        caption = f"value {values[t]:+.2f} ({traversal_unit(model)})"
        if model.is_conditional:
            caption += f", label {0 if label is None else label}"
        frames.append(with_caption(stacked(rows), caption))
    return uniform_frames(frames)


def _row(images):
    from engine.render import side_by_side
    return side_by_side(images, gap=6)


@torch.no_grad()
def interpolation_frames(model: AutoencoderModel, images: ImageSet, pairs: int = 4, steps: int = 10,
                         tile: int = 96) -> list[np.ndarray]:
    """An interpolation as an animation: one row per pair of validation images (the first image,
    the decoded point at t along the straight line between their codes, the second image); frame
    t steps t from 0 to 1 and back."""
    from engine.render import image_panel, stacked, uniform_frames, with_caption
    first, second, path, y = interpolation_path(model, images, pairs, steps)
    labels = y.repeat_interleave(steps) if y is not None else None
    decoded = model.decode(path.reshape(-1, model.latent_dim), labels).cpu().reshape(len(first), steps, *first.shape[1:])
    ends = [(image_panel(a, tile), image_panel(b, tile)) for a, b in zip(first, second)]
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    frames = []
    for t in order:
        rows = [_row([with_caption(a, "", above="start" if i == 0 else ""),
                      with_caption(image_panel(decoded[i, t], tile), "", above="decoded" if i == 0 else ""),
                      with_caption(b, "", above="end" if i == 0 else "")]) for i, (a, b) in enumerate(ends)]
        frames.append(with_caption(stacked(rows), f"t = {t / (steps - 1):.2f} (straight line between the codes)"))
    return uniform_frames(frames)


# -- the training movie ------------------------------------------------------------------------------
def movie_layout(movie) -> tuple[np.ndarray, object, tuple[str, str]]:
    """The map's 2-D layout of every frame (F×N×2), the projection that made it (its ``inverse``
    turns a map point into a code) and the axis names: the raw codes when the latent size is 1 or 2,
    otherwise PCA fitted on the last frame (so the movie ends on the map's final shape)."""
    from engine.projection import IdentityProjection, PCAProjection
    codes = movie.codes().astype(np.float32)
    last = codes[-1][np.isfinite(codes[-1]).all(axis=1)]
    if len(last) == 0:
        raise UserError("The movie's last frame has no finite codes to lay out (the model diverged).")
    d = codes.shape[2]
    projection = (IdentityProjection() if d <= 2 else PCAProjection()).fit(last)
    axes = ("z0", "z1" if d == 2 else "") if d <= 2 else ("PC1", "PC2")
    xy = np.stack([projection.transform(frame) for frame in codes])
    return xy, projection, axes


@torch.no_grad()
def movie_frames(movie, model: AutoencoderModel, *, point: tuple[float, float] | None = None,
                 label: int | None = None, class_names: list[str] | None = None, title: str = "",
                 size: int = 360) -> list[np.ndarray]:
    """One frame per movie frame: the latent map at that probe update (points coloured by class,
    the step written on it) beside the image decoded at ``point`` (map coordinates; default the
    centre of the last frame's codes).  The run keeps only its latest weights, so the image is
    decoded with the latest model and is the same in every frame; the map shows the codes moving
    around it."""
    from engine.render import draw_map, image_panel, limits_of, side_by_side, uniform_frames, with_caption
    if len(movie) == 0:
        raise UserError("The training movie has no frames.")
    xy, projection, axes = movie_layout(movie)
    limits = limits_of(xy)
    if point is None:
        last = xy[-1][np.isfinite(xy[-1]).all(axis=1)]
        point = tuple(float(v) for v in last.mean(axis=0))
    point = (float(point[0]), float(point[1]))
    code = torch.as_tensor(projection.inverse(np.array([point])), dtype=torch.float32)
    decoded = model.decode(code, labels_for(model, 1, 0 if label is None else label))[0].cpu()
    where = ", ".join(f"{v:.3g}" if abs(v) > 1e-9 else "0" for v in point)
    panel = with_caption(image_panel(decoded, size // 2), f"decoded at ({where})\nwith the latest weights")
    steps = movie.steps
    frames = []
    for i in range(len(movie)):
        caption = f"{title}  step {int(steps[i]):,}  ({i + 1}/{len(movie)})".strip()
        frame_map = draw_map(xy[i], movie.labels, limits, size, point=point, title=caption, axes=axes,
                             class_names=class_names)
        frames.append(side_by_side([frame_map, panel]))
    return uniform_frames(frames)


def export_movie(run, path: str | Path, *, point: tuple[float, float] | None = None, fps: float = 10,
                 label: int | None = None, which: str = "latest", size: int = 360) -> Path:
    """The run's training movie (``movie.safetensors``) as an animated GIF or MP4."""
    from engine.movie import MOVIE, ProbeMovie
    check_animation_target(path, fps)
    movie = ProbeMovie.load(run.path, run.model.latent_dim)
    if movie is None:
        raise UserError(f"{run.path} has no training movie ({MOVIE}); it is recorded while a run trains.")
    model = run.load_model(which)
    frames = movie_frames(movie, model, point=point, label=label, class_names=run.class_names, title=run.name,
                          size=size)
    return save_animation(frames, path, fps)


# -- TensorBoard ---------------------------------------------------------------------------------------
TENSORBOARD_MAX_IMAGES = 10_000  # the projector's sprite is at most 8192×8192 pixels


def _tensorboard_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("The TensorBoard export needs the tensorboard package: pip install tensorboard.") from None
    return SummaryWriter


def history_scalars(history) -> dict[str, list[tuple[int, float]]]:
    """The run's history as TensorBoard scalar series, tag -> [(step, value)]: every training term
    at every optimizer step (``train/<term>``), its mean over each epoch (``train_epoch/<term>``)
    and every validation term after each epoch (``val/<term>``), all at the optimizer step, so the
    three line up on one axis.  Non-finite values are left out."""
    series: dict[str, list[tuple[int, float]]] = {}

    def put(tag: str, steps, values) -> None:
        pairs = [(int(s), float(v)) for s, v in zip(steps, values) if v is not None and np.isfinite(v)]
        if pairs:
            series[tag] = pairs

    for name, values in history.terms.items():
        put(f"train/{name}", history.steps, values)
    for name, values in history.train.items():
        put(f"train_epoch/{name}", history.epoch_steps, values)
    for name, values in history.val.items():
        put(f"val/{name}", history.epoch_steps, values)
    return series


def export_tensorboard(run, logdir: str | Path, *, model: AutoencoderModel | None = None,
                       images: ImageSet | None = None, which: str = "latest",
                       max_images: int = TENSORBOARD_MAX_IMAGES, replace: bool = False) -> Path:
    """Write a run for TensorBoard into ``logdir/<run name>`` (made afresh; an existing one is
    refused, so several runs can share a logdir and nothing is overwritten): the run's history as
    scalar events (``history_scalars``) and, for TensorBoard's projector, the codes of the first
    ``max_images`` validation images (posterior means for probabilistic encoders) with their label,
    class name and index as metadata and a sprite of the images.  Returns the folder written.
    ``replace=True`` (the CLI's --force) replaces an existing ``logdir/<run name>`` once the new
    one is complete.  The log is written into a temporary ``.<run name>.*.tmp`` folder beside it,
    removed when the export fails or the process is stopped (``engine.outputs.temporary_output``).
    ``model`` and ``images`` default to the run's ``which`` weights and validation set."""
    import tempfile
    SummaryWriter = _tensorboard_writer()
    logdir = Path(logdir).expanduser()
    target = logdir / run.name
    if logdir.exists() and not logdir.is_dir():
        raise UserError(f"{logdir} is a file, not a folder for TensorBoard logs.")
    refuse_existing(target, replace, "choose another --out folder, or add --force to replace it")
    if model is None:
        model = run.load_model(which)
    if images is None:
        from engine.datasets import load_dataset
        images = load_dataset(run.data).val
    n = min(len(images), int(max_images))
    subset = ImageSet(images.images[:n], images.labels[:n], images.class_names)
    codes, labels = embeddings(model, subset)
    names = run.class_names or images.class_names
    metadata = [[str(int(y)), names[y] if 0 <= y < len(names) else str(int(y)), str(i)] for i, y in enumerate(labels)]
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.name}.", suffix=".tmp", dir=logdir))
    except OSError as exc:
        raise UserError(f"Cannot write into the folder {logdir} ({exc.strerror}).") from None
    with temporary_output(tmp):
        writer = SummaryWriter(log_dir=str(tmp))
        try:
            for tag, pairs in history_scalars(run.history).items():
                for step, value in pairs:
                    writer.add_scalar(tag, value, step)
            if n:
                writer.add_embedding(torch.from_numpy(codes), metadata=metadata,
                                     metadata_header=["label", "class", "index"],
                                     label_img=float_batch(subset.images), global_step=run.step, tag="codes")
        finally:
            writer.close()
        move_folder_into_place(tmp, target, replace)
    return target
