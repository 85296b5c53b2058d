"""Run folders: round trip, resume, and every bad file is one clear sentence."""

import json

import numpy as np
import pytest
import torch

from engine.datasets import load_dataset
from engine.errors import RunError
from engine.runs import Run, list_runs
from engine.training import Trainer, encode_all
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.fixture()
def trained(tmp_path, digits):
    trainer = Trainer(DIGITS, small_model("vae", latent_dim=3), quick_train(epochs=3), dataset=digits,
                      run_parent=tmp_path)
    trainer.epoch_states = []  # the weights at the end of each epoch, to check which ones "best" kept
    for update in trainer.updates():
        if update.kind == "epoch":
            trainer.epoch_states.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    return trainer


def test_round_trip_gives_identical_decodes(trained):
    run = Run.open(trained.run.path)
    assert run.status == "completed" and run.epochs_done == 3 and run.step == trained.run.step
    assert run.history.terms["total"] == trained.history.terms["total"]
    model = run.load_model()
    z = torch.randn(16, 3)
    trained.model.eval()
    with torch.no_grad():
        assert torch.equal(model.decode(z), trained.model.decode(z))
    probe = run.load_probe()
    assert probe.codes.shape == (180, 3)
    # the probe holds the latest model's codes of the validation images it names
    val = load_dataset(run.data).val
    assert probe.indices.tolist() == sorted(set(probe.indices.tolist())) and probe.indices.max() < len(val)
    assert probe.labels.tolist() == val.labels[probe.indices].tolist()
    np.testing.assert_allclose(probe.codes, encode_all(model, val.images[probe.indices], None), rtol=1e-5, atol=1e-6)
    # the best weights are those of the epoch with the lowest validation total
    totals = run.history.val["total"]
    assert run.best_val == min(totals)
    best = run.load_model("best").state_dict()
    kept = trained.epoch_states[totals.index(min(totals))]
    assert best.keys() == kept.keys() and all(torch.equal(best[k], kept[k]) for k in kept)
    assert all(torch.equal(v, trained.epoch_states[-1][k]) for k, v in model.state_dict().items())
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["variant"] == "vae" and "torch" in cfg["versions"]
    assert list_runs(run.path.parent) == [run.path]
    assert not list(run.path.glob("*.tmp")), "no temporary files are left behind"


def test_resume_continues_the_history(trained, digits):
    run = Run.open(trained.run.path)
    steps_before = run.step
    trainer = Trainer.resume(run, epochs=6, dataset=digits)
    last = trainer.run_to_end()
    assert last.status == "completed"
    again = Run.open(run.path)
    assert again.epochs_done == 6 and again.history.epochs == [1, 2, 3, 4, 5, 6]
    assert again.history.steps == list(range(1, again.step + 1)) and again.step == 2 * steps_before


def test_missing_config_is_named(tmp_path):
    with pytest.raises(RunError, match="config.json is missing"):
        Run.open(tmp_path)


def test_not_a_folder(tmp_path):
    with pytest.raises(RunError, match="not a folder"):
        Run.open(tmp_path / "nowhere")


def test_corrupt_config(trained):
    (trained.run.path / "config.json").write_text("{ not json")
    with pytest.raises(RunError, match="damaged"):
        Run.open(trained.run.path)


def test_truncated_weights(trained):
    path = trained.run.file("weights.safetensors")
    path.write_bytes(path.read_bytes()[:100])
    run = Run.open(trained.run.path)
    with pytest.raises(RunError, match="damaged or truncated"):
        run.load_model()


def test_weights_of_another_shape(trained):
    cfg_path = trained.run.path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["latent_dim"] = 5
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="does not fit"):
        Run.open(trained.run.path).load_model()


def test_unknown_variant(trained):
    cfg_path = trained.run.path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["variant"] = "gan"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(RunError, match="Unknown model"):
        Run.open(trained.run.path)


def test_pickles_are_never_loaded(trained):
    evil = trained.run.file("weights.safetensors")
    torch.save({"x": torch.zeros(1)}, evil)  # a pickle where safetensors belong
    with pytest.raises(RunError):
        Run.open(trained.run.path).load_model()


def test_a_failed_write_leaves_the_old_file(trained, monkeypatch):
    import engine.runs as runs
    path = trained.run.file("weights.safetensors")
    before = path.read_bytes()

    def boom(tensors, filename, metadata=None):
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(runs, "save_file", boom)
    with pytest.raises(RunError, match="disk full"):
        trained.run.save_checkpoint(trained.model)
    assert path.read_bytes() == before
    assert not list(trained.run.path.glob(".*.tmp")) and not list(trained.run.path.glob("*.tmp"))
