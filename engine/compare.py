"""Runs side by side, headless: a metrics table (one row per run, one column per number) and
one comparison figure (a column per run: samples from the same noise, reconstructions of the
same validation images, and every run's loss curves overlaid below).

The table is plain data (``MetricsTable``) so the app's comparison view can show, sort and
mark the same numbers that ``write_table`` puts in a tidy CSV (there a row per run, a column per
number and a second header-aligned row that says what each column is).  The figure is composed with
torchvision and PIL only (no matplotlib); an ``.svg`` figure is an SVG that embeds the PNG.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from engine.batches import float_batch
from engine.datasets import load_dataset
from engine.errors import UserError
from engine.history import METRICS_FILE
from engine.models import AutoencoderModel, variant
from engine.outputs import output_target
from engine.runs import Run
from engine.storage import atomic_write, read_json

FIGURE_SUFFIXES = (".png", ".svg")
#: one colour per run (Tableau 10), the same in the figure's columns and curves
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
#: metrics.json fields (nested ones joined with dots) whose better direction is known; each is a
#: field engine.metrics writes (tests check them against a real metrics.json)
BETTER = {"nll": "lower", "neg_elbo": "lower", "elbo": "higher", "reconstruction.bce": "lower",
          "reconstruction.squared_error": "lower", "knn_accuracy": "higher", "training_samples_per_sec": "higher"}
#: what the metrics.json fields that say how the other numbers were measured are
CONTEXT_ABOUT = {
    "nll_samples": "K: importance samples per image behind nll and elbo",
    "images.n": "images the metrics.json numbers were measured on",
    "images.binarized": "1 when those images were binarised once (seed images.binarize_seed), else 0",
    "images.binarize_seed": "seed of the one fixed binarisation",
    "latent_dim": "latent dimensions", "knn.k": "neighbours of the k-NN accuracy",
    "knn.n_train": "training codes the k-NN classifier was fitted on", "knn.n_test": "images the k-NN accuracy was scored on",
    "evaluation_seconds": "seconds the evaluation took", "epochs": "epochs trained when evaluated",
    "step": "optimizer step when evaluated", "version": "metrics.json format version",
}
#: the words engine.metrics puts in an NLL's unit when it is not a normalised density (grey-level
#: pixels under a Bernoulli likelihood): such a number gets its own ``…_not_normalised`` column
NOT_NORMALISED = "not a normalised density"
_DENSITY_FIELDS = ("nll", "nll_std_error", "elbo", "neg_elbo")


# -- the table ---------------------------------------------------------------------------------
@dataclass
class MetricRow:
    """One number for every compared run (None where a run has no such value): a column of the
    CSV (``write_table``), a row of the window's table."""

    key: str                          # machine name, e.g. "val.total", "metrics.nll"
    about: str                        # what the number is: unit and the images it was measured on
    values: list[float | None]
    better: str | None = None         # "lower", "higher" or None (no best is marked)

    def best_index(self) -> int | None:
        """The column holding the best value (None without a direction or values)."""
        present = [(v, i) for i, v in enumerate(self.values) if v is not None and math.isfinite(v)]
        if self.better is None or not present:
            return None
        return (min(present) if self.better == "lower" else max(present))[1]


@dataclass
class TextColumn:
    """Words for every compared run that say how its numbers were measured."""

    key: str
    about: str
    values: list[str]


@dataclass
class MetricsTable:
    runs: list[str]                   # run names (made unique): the CSV's rows
    rows: list[MetricRow] = field(default_factory=list)
    texts: list[TextColumn] = field(default_factory=list)

    def row(self, key: str) -> MetricRow:
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(key)

    def text(self, key: str) -> TextColumn:
        for t in self.texts:
            if t.key == key:
                return t
        raise KeyError(key)


def metrics_json(run: Run) -> dict:
    """The run's metrics.json as read (an empty dict when it is missing or damaged)."""
    path = Path(run.path) / METRICS_FILE
    if not path.exists():
        return {}
    try:
        obj = read_json(path, "run metrics")
    except UserError:   # damaged, nested too deeply, not a regular file, too large
        return {}
    return obj if isinstance(obj, dict) else {}


def _flat_numbers(obj: dict, prefix: str = "") -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if key == "units":
            continue
        if value is None:
            out[name] = None
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, (int, float)):
            out[name] = float(value)
        elif isinstance(value, dict) and not prefix:
            out.update(_flat_numbers(value, f"{name}."))
    return out


def read_metrics(run: Run) -> dict[str, float | None]:
    """The run's metrics.json as a flat dict of numbers / None, nested numbers under dotted keys
    (``reconstruction.bce``, ``images.n``); lists, text and a damaged file are left out, so a
    comparison never fails on it.  An NLL (and its ELBO) that engine.metrics marked as not a
    normalised density is under ``nll_not_normalised`` etc., never beside nats."""
    obj = metrics_json(run)
    out = _flat_numbers(obj)
    units = obj.get("units") if isinstance(obj.get("units"), dict) else {}
    if NOT_NORMALISED in str(units.get("nll", "")):
        for key in _DENSITY_FIELDS:
            if key in out:
                out[f"{key}_not_normalised"] = out.pop(key)
    return out


def _metric_about(key: str, runs_json: list[dict]) -> str:
    """A metrics.json field's unit, from the first run's ``units`` that has it, without the
    images (they are in the measured_on column); K named as the column that holds it."""
    base = key.removesuffix("_not_normalised")
    for obj in runs_json:
        units = obj.get("units") if isinstance(obj.get("units"), dict) else {}
        grey = NOT_NORMALISED in str(units.get("nll", ""))
        if base in units and grey == key.endswith("_not_normalised"):
            text = str(units[base]).split(", on ")[0]
            return re.sub(r"K = \d+", "K in metrics.nll_samples", text) + " (images: measured_on)"
    return CONTEXT_ABOUT.get(key, f"{key} from the run's {METRICS_FILE}")


def _measured_on(obj: dict) -> str:
    images = obj.get("images") if isinstance(obj.get("images"), dict) else None
    if not images:
        return ""
    words = f"{obj.get('weights', 'latest')} weights, {images.get('n')} images: {images.get('description', '')}"
    if images.get("binarized"):
        words += f", binarised once (seed {images.get('binarize_seed')})"
    return words


def _stale(run: Run, obj: dict) -> str:
    from engine.metrics import staleness
    return (staleness(run, obj) or "") if obj else ""


def parameter_count(run: Run) -> int:
    """Trainable and frozen parameters of the run's model (built from its config, no weights read)."""
    return sum(p.numel() for p in run.build_model().parameters())


def column_names(runs: Sequence[Run]) -> list[str]:
    names = [r.name for r in runs]
    return [f"{n} ({Path(r.path).parent.name})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def metrics_table(runs: Sequence[Run]) -> MetricsTable:
    """Best validation loss (what it is in ``best_val_is``), final training and validation
    terms, parameter count, training time, epochs and steps, and every number of each run's
    metrics.json (nested ones too), with the words that say how they were measured."""
    table = MetricsTable(column_names(runs))

    def add(key, about, values, better=None):
        values = [None if v is None else float(v) for v in values]
        if any(v is not None for v in values):
            table.rows.append(MetricRow(key, about, values, better))

    add("best_val", "best validation loss, per image, on the run's validation split: which loss is in best_val_is "
        "(for the VAE family the −ELBO at β = 1)", [r.best_val for r in runs], "lower")
    for part, words in (("val", "validation"), ("train", "training")):
        histories = [getattr(r.history, part) for r in runs]
        for term in dict.fromkeys(t for h in histories for t in h):
            add(f"{part}.{term}", f"final {words} {term}, per image, epoch mean"
                f"{' on the validation split' if part == 'val' else ''}, in the likelihood's unit "
                "(nats unless the likelihood is squared_error)",
                [h[term][-1] if h.get(term) else None for h in histories], "lower")
    add("parameters", "parameter count of the model", [parameter_count(r) for r in runs])
    add("train_seconds", "training time in seconds (sum of the epochs' training time, validation excluded)",
        [sum(r.history.seconds) if r.history.seconds else None for r in runs])
    add("epochs", "epochs trained", [r.epochs_done for r in runs])
    add("steps", "optimizer steps taken", [r.step for r in runs])
    runs_json = [metrics_json(r) for r in runs]
    metrics = [read_metrics(r) for r in runs]
    for key in dict.fromkeys(k for m in metrics for k in m):
        base = key.removesuffix("_not_normalised")
        table.rows.append(MetricRow(f"metrics.{key}", _metric_about(key, runs_json), [m.get(key) for m in metrics],
                                    BETTER.get(base)))
    from engine.best_value import best_value_label
    from engine.diagnostics import from_run
    table.texts = [
        TextColumn("best_val_is", "what best_val is for this run's model", [best_value_label(r.model) for r in runs]),
        TextColumn("likelihood", "the reconstruction term: bernoulli and gaussian_* in nats, squared_error not",
                   [r.model.likelihood for r in runs]),
        TextColumn("measured_on", f"the weights and images the {METRICS_FILE} numbers were measured on",
                   [_measured_on(obj) for obj in runs_json]),
        TextColumn("metrics_stale", f"empty when the {METRICS_FILE} numbers were measured at the run's latest "
                   "checkpoint; otherwise at which step they were measured and where the run is now",
                   [_stale(r, obj) for r, obj in zip(runs, runs_json)]),
        TextColumn("findings", "what engine.diagnostics finds (collapse, unused dimensions, codes far from the "
                   f"prior), from the {METRICS_FILE} numbers or else the last validation KL; empty: none",
                   ["; ".join(d.message for d in from_run(r)) for r in runs]),
    ]
    return table


def _check_target(path: str | Path, suffixes: tuple[str, ...], what: str, replace: bool = True) -> Path:
    return output_target(path, suffixes, f"the {what}", f"a name ending in {' or '.join(suffixes)}", replace)


def write_table(table: MetricsTable, path: str | Path) -> Path:
    """The table as a tidy CSV: one row per run, one column per number (then the text columns);
    the second row, aligned with the header and starting with ``about``, says what each column
    is: its unit and the images it was measured on.  Read it with pandas.read_csv(path, skiprows=[1])."""
    path = _check_target(path, (".csv",), "metrics table")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", *(r.key for r in table.rows), *(t.key for t in table.texts)])
    writer.writerow(["about", *(r.about for r in table.rows), *(t.about for t in table.texts)])
    for i, name in enumerate(table.runs):
        writer.writerow([name, *("" if r.values[i] is None else format(r.values[i], ".10g") for r in table.rows),
                         *(t.values[i] for t in table.texts)])
    atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))
    return path


# -- images ------------------------------------------------------------------------------------
def shared_noise(models: Sequence[AutoencoderModel], keys: Sequence[str], n: int, seed: int = 0
                 ) -> list[torch.Tensor | None]:
    """The codes each model's samples are decoded from: for models with a standard-normal
    prior the same N(0, I) draws for every model of the same latent size; None for the rest
    (they sample their own prior or fitted Gaussian, seeded)."""
    by_size: dict[int, torch.Tensor] = {}
    out = []
    for model, key in zip(models, keys):
        if variant(key).prior != "standard_normal":
            out.append(None)
            continue
        d = model.latent_dim
        if d not in by_size:
            by_size[d] = torch.randn(n, d, generator=torch.Generator().manual_seed(seed + d))
        out.append(by_size[d])
    return out


def _labels(model: AutoencoderModel, n: int) -> torch.Tensor | None:
    return torch.arange(n) % model.n_classes if model.is_conditional else None


@torch.no_grad()
def sample_images(model: AutoencoderModel, noise: torch.Tensor | None, n: int, seed: int = 0) -> torch.Tensor:
    if noise is not None:
        return model.decode(noise, _labels(model, n)).cpu()
    torch.manual_seed(seed)
    return model.sample(n, _labels(model, n)).cpu()


@torch.no_grad()
def reconstruction_rows(model: AutoencoderModel, images_u8: torch.Tensor, labels: torch.Tensor, nrow: int) -> torch.Tensor:
    """Rows of inputs each followed by a row of their reconstructions (N×C×H×W in [0, 1])."""
    x = float_batch(images_u8)
    recon = model.reconstruct(x, labels if model.is_conditional else None).cpu()
    rows = []
    for s in range(0, len(x), nrow):
        a, b = x[s:s + nrow], recon[s:s + nrow]
        if len(a) < nrow:
            pad = torch.ones(nrow - len(a), *x.shape[1:])
            a, b = torch.cat([a, pad]), torch.cat([b, pad])
        rows += [a, b]
    return torch.cat(rows)


def _to_pil(images: torch.Tensor, nrow: int, width: int) -> Image.Image:
    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    scale = max(1, round(width / image.width))
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType, or before 10.1
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int, keep_end: bool = False) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels; run names keep their end,
    where the swept values are."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[1:] if keep_end else text[:-1]
    return "…" + text if keep_end else text + "…"


# -- curves ------------------------------------------------------------------------------------
def _smooth(values: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Means over about ``points`` equal windows (index of each window's middle, mean)."""
    n = len(values)
    window = max(1, n // points)
    m = n // window
    means = values[: m * window].reshape(m, window).mean(axis=1)
    return np.arange(m) * window + window / 2, means


def curves_panel(runs: Sequence[Run], width: int, height: int = 260) -> Image.Image:
    """Every run's total loss against the optimizer step: training per step (thin, window
    means) and validation per epoch (thick, with points), in the runs' colours, with a legend
    below the plot; log scale when every value is positive."""
    font = _font(11)
    per_line = max(1, (width - 64) // 260)
    legend_h = 16 * math.ceil(len(runs) / per_line) + 22
    image = Image.new("RGB", (width, height + legend_h), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 64, width - 12, 22, height - 28
    series = []
    for r in runs:
        h = r.history
        train = np.asarray(h.terms.get("total", []), float)
        steps = np.asarray(h.steps, float)
        if len(train) and len(steps) == len(train):
            idx, means = _smooth(train)
            tx, ty = np.interp(idx, np.arange(len(steps)), steps), means
        else:
            tx, ty = np.zeros(0), np.zeros(0)
        vx = np.asarray(h.epoch_steps, float)
        vy = np.asarray(h.val.get("total", []), float)
        k = min(len(vx), len(vy))
        series.append((tx, ty, vx[:k], vy[:k]))
    values = np.concatenate([np.concatenate([s[1], s[3]]) for s in series]) if series else np.zeros(0)
    values = values[np.isfinite(values)]
    draw.text((left, 4), "total loss per image against step: thin = training (window means), "
              "thick = validation (per epoch)", fill="black", font=font)
    draw.rectangle((left, top, right, bottom), outline=(90, 90, 90))
    if len(values) == 0:
        draw.text((left + 8, top + 8), "no losses recorded", fill="black", font=font)
        return image
    log = bool((values > 0).all())
    f = np.log10 if log else (lambda v: v)
    lo, hi = float(f(values).min()), float(np.percentile(f(values), 98))
    if hi <= lo:
        hi = lo + 1.0
    hi += 0.04 * (hi - lo)
    x_max = max([float(s[0].max()) for s in series if len(s[0])] + [float(s[2].max()) for s in series if len(s[2])] + [1.0])

    def xy(x, y):
        yy = np.clip((f(y) - lo) / (hi - lo), 0, 1)
        return list(zip((left + x / x_max * (right - left)).tolist(), (bottom - yy * (bottom - top)).tolist()))

    for frac in (0.0, 0.5, 1.0):
        y = bottom - frac * (bottom - top)
        v = lo + frac * (hi - lo)
        label = f"{10 ** v:.4g}" if log else f"{v:.4g}"
        draw.line((left - 4, y, left, y), fill=(90, 90, 90))
        draw.text((4, y - 6), label, fill="black", font=font)
    for frac in (0.0, 0.5, 1.0):
        x = left + frac * (right - left)
        draw.line((x, bottom, x, bottom + 4), fill=(90, 90, 90))
        draw.text((x - 10, bottom + 6), f"{frac * x_max:.0f}", fill="black", font=font)
    draw.text((left + 0.75 * (right - left), bottom + 6), "step", fill=(80, 80, 80), font=font)
    for i, (tx, ty, vx, vy) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pale = tuple(int(c + (255 - c) * 0.45) for c in colour)
        if len(tx) > 1:
            draw.line(xy(tx, ty), fill=pale, width=1)
        if len(vx):
            points = xy(vx, vy)
            if len(points) > 1:
                draw.line(points, fill=colour, width=3)
            for px, py in points:
                draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
    for i, name in enumerate(column_names(runs)):
        x = left + (i % per_line) * 260
        y = height + 4 + (i // per_line) * 16
        draw.rectangle((x, y + 2, x + 12, y + 12), fill=COLOURS[i % len(COLOURS)])
        draw.text((x + 18, y), _fit(draw, name, font, 236, keep_end=True), fill="black", font=font)
    return image


# -- the figure --------------------------------------------------------------------------------
def comparison_figure(runs: Sequence[Run], n: int = 16, nrow: int = 8, which: str = "latest", seed: int = 0,
                      column_width: int = 240, curves: bool = True) -> Image.Image:
    """One column per run (its name on top): ``n`` samples (the same noise where latent sizes
    match and the prior is standard normal), the reconstructions of the same first ``n``
    validation images (inputs and reconstructions in alternate rows), then the loss curves of
    every run overlaid across the whole width."""
    if not runs:
        raise UserError("Choose at least one run to compare.")
    models = [r.load_model(which) for r in runs]
    noise = shared_noise(models, [r.model.variant for r in runs], n, seed)
    datasets: dict[str, object] = {}
    columns = []
    for run, model, z in zip(runs, models, noise):
        key = json.dumps(run.data.to_dict(), sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(run.data).val
        val = datasets[key]
        k = min(n, len(val))
        samples = _to_pil(sample_images(model, z, n, seed), nrow, column_width)
        recon = _to_pil(reconstruction_rows(model, val.images[:k], val.labels[:k], nrow), nrow, column_width)
        columns.append((samples, recon))
    font, small = _font(13), _font(11)
    col_w = max(column_width, *(max(s.width, r.width) for s, r in columns)) + 16
    label_h, caption_h = 38, 18
    sample_h = max(s.height for s, _ in columns)
    recon_h = max(r.height for _, r in columns)
    body_h = label_h + caption_h + sample_h + caption_h + recon_h + 12
    width = max(col_w * len(runs), 520 if curves else 0)
    panel = curves_panel(runs, width) if curves else None
    image = Image.new("RGB", (width, body_h + (panel.height if panel else 0)), "white")
    draw = ImageDraw.Draw(image)
    for i, (run, name, (samples, recon)) in enumerate(zip(runs, column_names(runs), columns)):
        x0 = i * col_w + 8
        colour = COLOURS[i % len(COLOURS)]
        draw.rectangle((x0, 6, x0 + 10, 16), fill=colour)
        draw.text((x0 + 16, 4), _fit(draw, name, font, col_w - 30, keep_end=True), fill="black", font=font)
        m = run.model
        draw.text((x0, 21), _fit(draw, f"{m.variant}, z {m.latent_dim}, {run.dataset}, {run.epochs_done} epochs",
                                 small, col_w - 16), fill=(80, 80, 80), font=small)
        y = label_h
        shared = "same noise" if noise[i] is not None else "own prior"
        draw.text((x0, y + 2), f"samples ({shared})", fill=(80, 80, 80), font=small)
        y += caption_h
        image.paste(samples, (x0, y))
        y += sample_h
        draw.text((x0, y + 2), "validation images / reconstructions", fill=(80, 80, 80), font=small)
        image.paste(recon, (x0, y + caption_h))
    if panel is not None:
        image.paste(panel, (0, body_h))
    return image


def save_figure(image: Image.Image, path: str | Path) -> Path:
    """PNG for ``.png``; for ``.svg`` an SVG document that embeds the PNG (base64), so it
    opens in browsers and vector editors at its pixel size.  Written atomically."""
    path = _check_target(path, FIGURE_SUFFIXES, "figure")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    if path.suffix.lower() == ".svg":
        w, h = image.size
        encoded = base64.b64encode(data).decode("ascii")
        data = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                f'width="{w}" height="{h}" viewBox="0 0 {w} {h}">\n<title>Latent Explorer comparison</title>\n'
                f'<image width="{w}" height="{h}" xlink:href="data:image/png;base64,{encoded}"/>\n</svg>\n').encode()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def check_outputs(figure: str | Path | None, table: str | Path | None, replace: bool = False) -> None:
    """Refuse bad output names, and existing files unless ``replace`` (the CLI's --force),
    before any work is done."""
    if figure is None and table is None:
        raise UserError("Say what to write: --out FIGURE.png (or .svg) and/or --table METRICS.csv.")
    if figure is not None:
        _check_target(figure, FIGURE_SUFFIXES, "figure", replace)
    if table is not None:
        _check_target(table, (".csv",), "metrics table", replace)
