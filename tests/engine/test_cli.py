"""The headless CLI end to end on the bundled digits, and its one-sentence errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.utils import make_grid

from engine.cli import main
from engine.datasets import load_dataset
from engine.runs import Run

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    proc = run_cli("train", "--dataset", "digits", "--model", "vae", "--latent-dim", "2", "--epochs", "3",
                   "--hidden", "64,32", "--out", str(out), "--name", "cli-vae")
    assert proc.returncode == 0, proc.stderr
    assert "epoch   3/3" in proc.stdout and "val total" in proc.stdout
    return out / "cli-vae"


def test_train_writes_a_complete_run(run_dir):
    from engine.runs import Run
    run = Run.open(run_dir)
    assert (run_dir / "config.json").is_file() and run.checkpoint is not None
    names = {p.name for p in (run_dir / run.checkpoint).iterdir()}
    assert {"history.json", "weights.safetensors", "best.safetensors", "optimizer.safetensors",
            "probe.safetensors"} <= names


def test_info(run_dir, capsys):
    assert main(["info", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Variational autoencoder" in out and "3/3 epochs" in out and "completed" in out


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def quantised(grid: torch.Tensor) -> np.ndarray:
    """A grid as save_image writes it (first channel; the grid of a grey model is grey)."""
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)[0].numpy()


def tile(image: np.ndarray, row: int, col: int, size: int = 8) -> np.ndarray:
    """The image at (row, col) of a make_grid grid with padding 2."""
    y, x = row * (size + 2) + 2, col * (size + 2) + 2
    return image[y:y + size, x:x + size]


def locate(picture: np.ndarray, part: np.ndarray) -> tuple[int, int] | None:
    """Where ``part`` lies in ``picture`` exactly (top, left), or None."""
    h, w = part.shape
    corner = part[:20, :20]
    for y in range(picture.shape[0] - h + 1):
        for x in range(picture.shape[1] - w + 1):
            if np.array_equal(picture[y:y + 20, x:x + 20], corner) and np.array_equal(picture[y:y + h, x:x + w], part):
                return y, x
    return None


def expected_images(what: str, run_dir) -> tuple[torch.Tensor, int]:
    """The images an export of ``what`` holds (N×C×H×W) and how many a row."""
    from engine import export
    run = Run.open(run_dir)
    model = run.load_model()
    val = load_dataset(run.data).val
    with torch.no_grad():
        if what == "samples":
            return export.sample_images(model, 64), 8
        if what == "recon":
            return export.reconstruction_rows(model, val, 64, 8), 8
        if what == "traversal":
            return model.decode(export.traversal_codes(model)[0]), 9
        return model.decode(export.interpolation_path(model, val)[2].reshape(-1, 2)), 10


@pytest.mark.parametrize("what,size", [("samples", (82, 82)), ("recon", (82, 162)), ("traversal", (92, 22)),
                                       ("interpolation", (102, 42))])
def test_export_figures_at_native_size(run_dir, tmp_path, what, size):
    """With --cell-px 8 a digits figure holds the unscaled grid of its kind (the old export, pixel
    for pixel) under its title, and the images the run's model makes."""
    from engine import export
    out = tmp_path / f"{what}.png"
    assert main(["export", what, str(run_dir), "--out", str(out), "--cell-px", "8"]) == 0
    picture = png(out)
    run = Run.open(run_dir)
    model = run.load_model()
    val = load_dataset(run.data).val
    expected = quantised({"samples": lambda: export.sample_grid(model, 64, 8),
                          "recon": lambda: export.reconstruction_grid(model, val, 64, 8),
                          "traversal": lambda: export.traversal_grid(model),
                          "interpolation": lambda: export.interpolation_grid(model, val)}[what]())
    assert expected.shape[::-1] == size  # (width, height): 64 samples 8×8; 8 input and 8 reconstruction rows;
    where = locate(picture, expected)    # 2 latent dimensions × 9 steps; 4 pairs × 10 steps; 8×8 digits, padding 2
    assert where is not None and where[0] >= 18, "the old grid, below a title line"
    assert (picture[:where[0]] < 128).sum() > 50, "the title has text"
    pixels = picture[where[0]:where[0] + size[1], where[1]:where[1] + size[0]]
    if what == "samples":
        tiles = {tile(pixels, r, c).tobytes() for r in range(8) for c in range(8)}
        assert len(tiles) > 32, "the samples differ from one another"
    if what == "recon":
        for i in range(16):  # rows 0, 2, 4, ... are the validation images themselves
            np.testing.assert_array_equal(tile(pixels, 2 * (i // 8), i % 8), val.images[i, 0].numpy())
        assert not np.array_equal(tile(pixels, 1, 0), tile(pixels, 0, 0)), "row 1 holds reconstructions"


@pytest.mark.parametrize("what,rows,columns", [("samples", 8, 8), ("recon", 16, 8), ("traversal", 2, 9),
                                               ("interpolation", 4, 10)])
def test_export_figures_are_legible_by_default(run_dir, tmp_path, what, rows, columns):
    """By default each 8×8 digit is drawn 48 px (6× nearest neighbour), 2 px apart, with labels:
    a title, traversal rows z0/z1 and columns the swept values, interpolation columns A and B."""
    from engine.labelled_grid import scaled
    out = tmp_path / f"{what}.png"
    assert main(["export", what, str(run_dir), "--out", str(out)]) == 0
    picture = png(out)
    images, nrow = expected_images(what, run_dir)
    grid = quantised(make_grid(scaled(images, 48), nrow=nrow, padding=2, pad_value=1.0))
    assert grid.shape == (rows * 50 + 2, columns * 50 + 2)
    where = locate(picture, grid)
    assert where is not None, "the images 48 px each, as the model makes them"
    top, left = where
    ink = picture < 128
    assert ink[:top].sum() > 100, "a title above the grid"
    if what in ("traversal", "recon"):
        for r in range(2):  # each row's label left of it, in the row's band
            assert ink[top + 2 + 50 * r:top + 50 * (r + 1), :left].sum() > 20, f"row {r} has a label"
    if what in ("traversal", "interpolation"):
        labels = ink[top - 16:top - 1]  # the column labels' line, just above the grid
        first, middle, last = (labels[:, left + 2 + 50 * c:left + 50 * (c + 1)].sum() for c in (0, 1, columns - 1))
        assert first > 10 and last > 10, "the first and last columns are labelled"
        assert (middle > 10) == (what == "traversal"), "traversal labels every column, interpolation A and B only"


def test_cell_size_option(run_dir, tmp_path, capsys):
    from engine.labelled_grid import default_cell_px
    assert [default_cell_px(s) for s in [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 64, 64), (1, 7, 9)]] == \
        [48, 56, 64, 64, 54]
    out = tmp_path / "t.png"
    assert main(["export", "traversal", str(run_dir), "--out", str(out), "--cell-px", "20"]) == 0
    assert Image.open(out).width >= 9 * 22 + 2
    for bad in ("0", "10000"):
        assert main(["export", "samples", str(run_dir), "--out", str(tmp_path / "s.png"), "--cell-px", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "--cell-px" in err and "\n" not in err
    assert not (tmp_path / "s.png").exists()


def test_export_embeddings(run_dir, tmp_path):
    out = tmp_path / "codes.csv"
    assert main(["export", "embeddings", str(run_dir), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("index,label,class,z0,z1") and len(lines) > 100


def test_resume_from_the_cli(run_dir, capsys):
    assert main(["resume", str(run_dir), "--epochs", "4", "--quiet"]) == 0
    assert main(["info", str(run_dir)]) == 0
    assert "4/4 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["train", "--model", "gan"], "invalid choice"),
    (["train", "--latent-dim", "0", "--epochs", "1"], "latent size"),
    (["train", "--model", "ae", "--beta", "2"], "does not apply"),
    (["train", "--dataset", "folder", "--epochs", "1"], "folder"),
    (["info", "/nonexistent/run"], "not a folder"),
    (["export", "samples", "/nonexistent/run", "--out", "x.png"], "not a folder"),
])
def test_bad_arguments_are_one_sentence(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err and "Traceback" not in err


def test_export_to_a_bad_suffix_keeps_nothing(run_dir, tmp_path, capsys):
    assert main(["export", "samples", str(run_dir), "--out", str(tmp_path / "grid.txt")]) == 2
    assert not (tmp_path / "grid.txt").exists()


def test_resume_counts_end_to_end_epochs_not_the_layer_wise_pretraining(tmp_path, capsys):
    """--epochs is the end-to-end training's: a pretrained run of 1 epoch (after 2 of pretraining,
    one per layer pair) resumes to 2, and asking for 1 again says what was done."""
    assert main(["train", "--dataset", "digits", "--model", "ae", "--latent-dim", "2", "--hidden", "32",
                 "--epochs", "1", "--pretrain-epochs", "1", "--out", str(tmp_path), "--name", "pre", "--quiet"]) == 0
    run = Run.open(tmp_path / "pre")
    assert run.epochs_done == 3 and run.trained_epochs == 1
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "pre"), "--epochs", "1", "--quiet"]) == 2
    assert "already trained 1 epochs (after 2 of layer-wise pretraining)" in capsys.readouterr().err
    assert main(["resume", str(tmp_path / "pre"), "--epochs", "2", "--quiet"]) == 0
    run = Run.open(tmp_path / "pre")
    assert run.epochs_done == 4 and run.trained_epochs == 2
    assert main(["info", str(tmp_path / "pre")]) == 0
    assert "2/2 epochs after 2 of layer-wise pretraining" in capsys.readouterr().out
