"""Collapse and prior mismatch named by the engine and the CLI: metrics.json's prior_mmd, the
findings `info` and `compare` print, and the findings column of the compare table."""

import csv
import json

import pytest

from engine.cli import main
from engine.datasets import load_dataset
from engine.diagnostics import PRIOR_MISMATCH_MMD, from_metrics
from engine.errors import RunError
from engine.history import METRICS_FILE, check_metrics
from engine.metrics import evaluate_model, evaluate_run
from engine.models import adversarial
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def trained(digits, parent, cfg, epochs: int):
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=epochs, batch_size=32), dataset=digits, run_parent=parent)
    assert trainer.run_to_end().status == "completed"
    return trainer.run


@pytest.fixture(scope="module")
def collapsed(digits, tmp_path_factory):
    """β = 50: the KL term wins and the decoder ignores z (KL about 1e-4 nats per image)."""
    return trained(digits, tmp_path_factory.mktemp("runs"), small_model("beta_vae", beta=50.0), epochs=3)


@pytest.fixture(scope="module")
def healthy(digits, tmp_path_factory):
    """A VAE trained long enough to use both dimensions (KL about 0.6 nats per image after 8 epochs)."""
    return trained(digits, tmp_path_factory.mktemp("runs"), small_model("vae"), epochs=8)


@pytest.fixture(scope="module")
def unmatched_aae(digits, tmp_path_factory):
    """An AAE trained in the joint form with λ = 0: nothing pulls its codes towards the prior."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adversarial, "JOINT_ADVERSARIAL_WEIGHT", 0.0)
        return trained(digits, tmp_path_factory.mktemp("runs"), small_model("aae"), epochs=3)


def info(run, capsys) -> str:
    assert main(["info", str(run.path)]) == 0
    return capsys.readouterr().out


def test_info_names_a_collapsed_run_from_its_history(collapsed, capsys):
    out = info(collapsed, capsys)
    assert "finding    posterior collapse: the decoder ignores z (KL" in out and "warm-up" in out


def test_info_names_a_collapsed_run_from_its_metrics(collapsed, digits, capsys):
    metrics = evaluate_run(collapsed, nll_samples=2, dataset=digits)
    assert metrics["kl"] < 0.1 and metrics["prior_mmd"] is None  # a VAE: its KL says how far from the prior
    out = info(collapsed, capsys)
    assert out.count("finding    ") == 1 and "posterior collapse" in out
    (collapsed.path / METRICS_FILE).unlink()


def test_info_names_nothing_in_a_healthy_run(healthy, digits, capsys):
    assert "finding" not in info(healthy, capsys)
    evaluate_run(healthy, nll_samples=2, dataset=digits)
    assert "finding" not in info(healthy, capsys)


def test_codes_of_an_aae_without_adversarial_steps_are_far_from_the_prior(unmatched_aae, digits, capsys):
    metrics = evaluate_run(unmatched_aae, nll_samples=2, dataset=digits)
    assert metrics["prior_mmd"] > PRIOR_MISMATCH_MMD
    assert "MMD²" in metrics["units"]["prior_mmd"] and f"{len(digits.val)} codes" in metrics["units"]["prior_mmd"]
    assert [d.kind for d in from_metrics(metrics)] == ["prior_mismatch"]
    out = info(unmatched_aae, capsys)
    assert "finding    the codes are far from the prior (MMD²" in out and "prior      MMD² " in out


def test_a_damaged_metrics_json_leaves_the_history_to_speak(collapsed, capsys):
    (collapsed.path / METRICS_FILE).write_text("{")
    try:
        out = info(collapsed, capsys)
    finally:
        (collapsed.path / METRICS_FILE).unlink()
    assert "metrics    unreadable" in out and "finding    posterior collapse" in out


def test_prior_mmd_is_seeded_and_only_for_variants_pressed_towards_a_prior(unmatched_aae, collapsed, digits):
    model = unmatched_aae.load_model()
    first = evaluate_model(model, digits.val, has_density=False, nll_samples=1)["prior_mmd"]
    assert evaluate_model(model, digits.val, has_density=False, nll_samples=1)["prior_mmd"] == first
    assert evaluate_model(collapsed.load_model(), digits.val, has_density=True, nll_samples=1)["prior_mmd"] is None


def test_compare_prints_each_runs_findings_and_the_table_has_them(collapsed, healthy, unmatched_aae, tmp_path,
                                                                   capsys):
    table = tmp_path / "table.csv"
    assert main(["compare", str(collapsed.path), str(healthy.path), str(unmatched_aae.path),
                 "--table", str(table)]) == 0
    out = capsys.readouterr().out
    blocks = out.split(f"wrote {table}")[1]
    assert f"{collapsed.name}: 1 finding\n  finding    posterior collapse" in blocks
    assert f"{healthy.name}: no finding" in blocks
    rows = list(csv.reader(table.open()))
    column = rows[0].index("findings")
    found = {row[0]: row[column] for row in rows[2:]}
    assert found[collapsed.name].startswith("posterior collapse") and found[healthy.name] == ""
    assert rows[1][column].startswith("what engine.diagnostics finds")


def test_metrics_json_with_or_without_prior_mmd_is_read(unmatched_aae, digits, tmp_path):
    metrics = json.loads(json.dumps(evaluate_run(unmatched_aae, nll_samples=2, dataset=digits, save=False)))
    assert check_metrics(dict(metrics), "m.json")["prior_mmd"] == metrics["prior_mmd"]
    old = {k: v for k, v in metrics.items() if k != "prior_mmd"}
    assert check_metrics(old, "old.json") is old
    with pytest.raises(RunError, match="prior_mmd is not a finite number"):
        check_metrics({**metrics, "prior_mmd": "far"}, "bad.json")


def test_a_label_informed_prior_is_sampled_with_the_images_labels(digits):
    from engine.models import build_model
    cfg = small_model("aae", prior="mixture", label_informed=True)
    model = build_model(cfg, digits.val.images.shape[1:], digits.val.n_classes)
    seen = []
    original = model.prior_sample

    def spy(n, device, labels=None):
        seen.append(labels)
        return original(n, device, labels)

    model.prior_sample = spy
    metrics = evaluate_model(model, digits.val, has_density=False, nll_samples=1)
    assert metrics["prior_mmd"] is not None and len(seen) == 1
    assert sorted(seen[0].tolist()) == sorted(digits.val.labels.tolist())  # all of them, under 1,000 images


def test_collapse_is_named_during_training_only_after_a_few_low_epochs():
    from engine.diagnostics import COLLAPSE_PATIENCE_EPOCHS, from_history
    assert COLLAPSE_PATIENCE_EPOCHS == 3
    assert from_history({"kl": [0.022, 0.019]}, 2, training=True) is None          # too early
    assert from_history({"kl": [0.022, 0.019, 0.51]}, 2, training=True) is None    # it rose
    assert from_history({"kl": [0.5, 0.01, 0.02, 0.03]}, 2, training=True).kind == "collapse"
    assert from_history({"kl": [0.022, 0.019]}, 2).kind == "collapse"              # a saved run's last epoch
