"""The headless CLI end to end on the bundled digits, and its one-sentence errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

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


@pytest.mark.parametrize("what,size", [("samples", (82, 82)), ("recon", (82, 162)), ("traversal", (92, 22)),
                                       ("interpolation", (102, 42))])
def test_export_figures(run_dir, tmp_path, what, size):
    """Each figure has the layout of its kind and holds the images the run's model makes."""
    from engine import export
    out = tmp_path / f"{what}.png"
    assert main(["export", what, str(run_dir), "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == size  # (width, height): 64 samples 8×8; 8 input and 8 reconstruction rows;
    pixels = png(out)          # 2 latent dimensions × 9 steps; 4 pairs × 10 steps; 8×8 digits, padding 2
    run = Run.open(run_dir)
    model = run.load_model()
    val = load_dataset(run.data).val
    expected = {"samples": lambda: export.sample_grid(model, 64, 8),
                "recon": lambda: export.reconstruction_grid(model, val, 64, 8),
                "traversal": lambda: export.traversal_grid(model),
                "interpolation": lambda: export.interpolation_grid(model, val)}[what]()
    np.testing.assert_array_equal(pixels, quantised(expected))
    if what == "samples":
        tiles = {tile(pixels, r, c).tobytes() for r in range(8) for c in range(8)}
        assert len(tiles) > 32, "the samples differ from one another"
    if what == "recon":
        for i in range(16):  # rows 0, 2, 4, ... are the validation images themselves
            np.testing.assert_array_equal(tile(pixels, 2 * (i // 8), i % 8), val.images[i, 0].numpy())
        assert not np.array_equal(tile(pixels, 1, 0), tile(pixels, 0, 0)), "row 1 holds reconstructions"


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
