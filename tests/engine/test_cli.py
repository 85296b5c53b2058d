"""The headless CLI end to end on the bundled digits, and its one-sentence errors."""

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main

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


@pytest.mark.parametrize("what,size", [("samples", (8 * 10 + 2, 8 * 10 + 2)), ("recon", None),
                                       ("traversal", None), ("interpolation", None)])
def test_export_figures(run_dir, tmp_path, what, size):
    out = tmp_path / f"{what}.png"
    assert main(["export", what, str(run_dir), "--out", str(out)]) == 0
    image = Image.open(out)
    if size:
        assert image.size == size
    assert image.size[0] > 8


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
