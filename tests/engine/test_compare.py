"""The headless comparison: the metrics table (history, parameter count, metrics.json), samples
from the same noise, the figure (PNG and SVG), and the CLI's one-sentence refusals."""

import base64
import csv
import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from engine import compare
from engine.cli import main
from engine.datasets import load_dataset
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE and a β-VAE of latent size 2 and an AE of latent size 3, trained briefly on digits."""
    parent = tmp_path_factory.mktemp("runs")
    dataset = load_dataset(DIGITS)
    paths = []
    for name, model, epochs in (("vae-z2", small_model("vae"), 2), ("beta-z2", small_model("beta_vae", beta=4.0), 2),
                                ("ae-z3", small_model("ae", latent_dim=3), 1)):
        trainer = Trainer(DIGITS, model, quick_train(epochs=epochs), dataset=dataset, run_parent=parent, run_name=name)
        trainer.run_to_end()
        paths.append(trainer.run.path)
    (paths[0] / "metrics.json").write_text(json.dumps(
        {"nll": 31.5, "elbo": 33.0, "active_units": 2, "knn_accuracy": 0.75, "parameters": 123, "kl_per_dim": [0.1, 0.2],
         "units": {"nll": "nats per image"}, "note": "text", "missing": None}))
    (paths[1] / "metrics.json").write_text(json.dumps({"nll": 30.25, "knn_accuracy": 0.8}))
    (paths[2] / "metrics.json").write_text("{ damaged")
    return [Run.open(p) for p in paths]


def test_the_table_has_a_number_per_run_for_each_metric(runs):
    table = compare.metrics_table(runs)
    assert table.runs == ["vae-z2", "beta-z2", "ae-z3"]
    assert all(len(row.values) == 3 for row in table.rows)
    for i, run in enumerate(runs):
        assert table.row("best_val").values[i] == pytest.approx(run.best_val)
        assert table.row("val.total").values[i] == pytest.approx(run.history.val["total"][-1])
        assert table.row("train.reconstruction").values[i] == pytest.approx(run.history.train["reconstruction"][-1])
        assert table.row("parameters").values[i] == sum(p.numel() for p in run.load_model().parameters())
        assert table.row("train_seconds").values[i] == pytest.approx(sum(run.history.seconds))
        assert table.row("epochs").values[i] == run.epochs_done
    assert table.row("val.kl").values[2] is None  # the AE has no KL term
    assert table.row("best_val").best_index() == int(np.argmin([r.best_val for r in runs]))
    assert "−ELBO" in table.text("best_val_is").values[1] and "β = 4" in table.text("best_val_is").values[1]


def test_metrics_json_is_read_defensively(runs):
    table = compare.metrics_table(runs)
    keys = {row.key for row in table.rows if row.key.startswith("metrics.")}
    assert keys == {"metrics.nll", "metrics.elbo", "metrics.active_units", "metrics.knn_accuracy",
                    "metrics.parameters", "metrics.missing"}  # lists and text left out; damaged file skipped
    assert table.row("metrics.nll").values == [31.5, 30.25, None]
    assert table.row("metrics.nll").best_index() == 1
    assert table.row("metrics.knn_accuracy").best_index() == 1
    assert table.row("metrics.missing").values == [None, None, None]
    assert table.row("metrics.active_units").best_index() is None


def test_the_table_as_a_tidy_csv(runs, tmp_path):
    path = compare.write_table(compare.metrics_table(runs), tmp_path / "metrics.csv")
    rows = list(csv.reader(path.open()))
    header, about, *body = rows
    assert header[0] == "run" and about[0] == "about" and [r[0] for r in body] == ["vae-z2", "beta-z2", "ae-z3"]
    assert all(len(r) == len(header) for r in rows)
    col = {name: i for i, name in enumerate(header)}
    assert float(body[0][col["metrics.nll"]]) == 31.5 and body[2][col["metrics.nll"]] == ""
    assert float(body[2][col["best_val"]]) == pytest.approx(runs[2].best_val)
    assert "per image" in about[col["val.total"]] and "nats per image" in about[col["metrics.nll"]]
    assert {"best_val_is", "likelihood", "measured_on"} <= set(header)


@pytest.fixture(scope="module")
def evaluated(runs, tmp_path_factory):
    """Two runs evaluated for real (K = 2): one on grey-level digits (its NLL is not a normalised
    density), one binarised (nats)."""
    from engine.metrics import evaluate_run
    parent = tmp_path_factory.mktemp("evaluated")
    out = []
    for name, binarize in (("grey", False), ("binary", True)):
        trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1, binarize=binarize), run_parent=parent,
                          run_name=name)
        trainer.run_to_end()
        evaluate_run(trainer.run, nll_samples=2)
        out.append(Run.open(trainer.run.path))
    return out


def test_better_names_real_fields(evaluated):
    """Fault 11: 'lower is better' keys named fields metrics.json never had (elbo_loss, reconstruction_se)."""
    fields = set(compare.read_metrics(evaluated[1]))
    assert set(compare.BETTER) <= fields, set(compare.BETTER) - fields


def test_nested_numbers_units_and_images_reach_the_csv(evaluated, tmp_path):
    """Fault 11: nested values were dropped, units, K, images and binarisation unsaid, and a
    grey-level NLL sat unflagged beside nats."""
    path = compare.write_table(compare.metrics_table(evaluated), tmp_path / "m.csv")
    header, about, grey, binary = list(csv.reader(path.open()))
    col = {name: i for i, name in enumerate(header)}
    for key in ("metrics.reconstruction.bce", "metrics.reconstruction.squared_error", "metrics.nll_samples",
                "metrics.images.n", "metrics.images.binarized"):
        assert grey[col[key]] != "" and binary[col[key]] != "", key
    assert float(grey[col["metrics.nll_samples"]]) == 2
    assert (grey[col["metrics.images.binarized"]], binary[col["metrics.images.binarized"]]) == ("0", "1")
    assert grey[col["metrics.nll"]] == "" and grey[col["metrics.nll_not_normalised"]] != ""
    assert binary[col["metrics.nll"]] != "" and binary[col["metrics.nll_not_normalised"]] == ""
    assert "nats per image" in about[col["metrics.nll"]]
    assert "not a normalised density" in about[col["metrics.nll_not_normalised"]]
    assert "summed over pixels" in about[col["metrics.reconstruction.squared_error"]]
    assert "binarised once" in binary[col["measured_on"]] and "images" in grey[col["measured_on"]]


def test_samples_share_noise_where_latent_size_and_prior_allow(runs):
    models = [r.load_model() for r in runs]
    noise = compare.shared_noise(models, [r.model.variant for r in runs], 16)
    assert noise[0] is noise[1] and noise[0].shape == (16, 2)
    assert noise[2] is None  # the AE samples its fitted Gaussian
    again = compare.sample_images(models[0], noise[0], 16)
    assert torch.equal(again, compare.sample_images(models[0], noise[0], 16))
    assert not torch.equal(again, compare.sample_images(models[1], noise[1], 16))


def test_the_figure_has_a_column_per_run_and_the_curves(runs):
    image = compare.comparison_figure(runs, n=16)
    pixels = np.asarray(image.convert("L"), float)
    width = image.width // 3
    assert image.width >= 3 * 240
    for i in range(3):  # every column has images in it
        column = pixels[60:300, i * width:(i + 1) * width]
        assert column.std() > 20
    curves = np.asarray(image, int)[-200:]
    colours = {tuple(c) for c in curves.reshape(-1, 3)}
    assert all(c in colours for c in compare.COLOURS[:3])  # each run's curve (and legend) in its colour
    assert compare.comparison_figure(runs[:2], curves=False).height < image.height


def test_figure_png_and_svg(runs, tmp_path):
    image = compare.comparison_figure(runs[:2], n=8)
    png = compare.save_figure(image, tmp_path / "cmp.png")
    assert Image.open(png).size == image.size
    svg = compare.save_figure(image, tmp_path / "cmp.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and f'width="{image.width}"' in svg
    embedded = re.search(r"base64,([A-Za-z0-9+/=]+)", svg).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(embedded))).size == image.size


def test_compare_from_the_cli(runs, tmp_path, capsys):
    fig, table = tmp_path / "fig.png", tmp_path / "metrics.csv"
    assert main(["compare", *(str(r.path) for r in runs), "--out", str(fig), "--table", str(table), "--n", "8"]) == 0
    assert Image.open(fig).width >= 3 * 240
    assert [row[0] for row in csv.reader(table.open())][2:] == [r.name for r in runs]   # a row per run
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("args,sentence", [
    (["--out", "fig.jpg"], "use a name ending in .png or .svg"),
    (["--table", "metrics.txt"], "use a name ending in .csv"),
    ([], "Say what to write"),
    (["--out", "no/such/folder/fig.png"], "does not exist"),
    (["--out", "fig.png", "--n", "0"], "--n must be between 1 and 256"),
])
def test_bad_compare_arguments_are_one_sentence(runs, tmp_path, monkeypatch, capsys, args, sentence):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(runs[0].path), *args]) == 2
    err = capsys.readouterr().err
    assert sentence in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_missing_run_touches_no_existing_figure(runs, tmp_path, capsys):
    fig = tmp_path / "fig.png"
    fig.write_bytes(b"keep me")
    assert main(["compare", str(runs[0].path), str(tmp_path / "nope"), "--out", str(fig), "--force"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert fig.read_bytes() == b"keep me"
