"""β and the learning rate changed while a run trains (engine/live_changes.py, Trainer.change), and
step mode (Trainer.step_to_next_probe)."""

import json
import threading

import numpy as np
import pytest

from engine.datasets import load_dataset
from engine.errors import ConfigError, RunError
from engine.history import History
from engine.live_changes import live_parameters
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model

CHANGE_AFTER = 7   # updates (report_every=1: steps) before β changes


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def _train_with_change(digits, run_parent, **values):
    trainer = Trainer(DIGITS, small_model("beta_vae", beta=4.0), quick_train(epochs=1, report_every=1),
                      dataset=digits, run_parent=run_parent)
    updates = []
    for update in trainer.updates():
        updates.append(update)
        if update.step == CHANGE_AFTER and not any(u.changes for u in updates):
            trainer.change(**values)
    return trainer, updates


def test_beta_changed_mid_run_is_recorded_used_saved_and_resumed(digits, tmp_path, capsys):
    trainer, updates = _train_with_change(digits, tmp_path, beta=1.0)
    assert updates[-1].status == "completed"
    # the history records it at the first step trained with β = 1, and an update carries it to the GUI
    assert trainer.history.changes == [[CHANGE_AFTER + 1, "beta", 1.0, 4.0]]
    assert [list(c) for u in updates for c in u.changes] == [[CHANGE_AFTER + 1, "beta", 1.0, 4.0]]
    # the loss after uses the new weight: total = reconstruction + β·KL per step, β 4 before, 1 after
    terms = trainer.history.terms
    total, rec, kl = (np.array(terms[k]) for k in ("total", "reconstruction", "kl"))
    steps = np.array(trainer.history.steps)
    before, after = steps <= CHANGE_AFTER, steps > CHANGE_AFTER
    np.testing.assert_allclose(total[before], rec[before] + 4.0 * kl[before], rtol=1e-5)
    np.testing.assert_allclose(total[after], rec[after] + 1.0 * kl[after], rtol=1e-5)
    assert trainer.model.params.beta == 1.0
    # the run folder's config.json and history.json have it
    run = Run.open(trainer.run.path)
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"]["params"]["beta"] == 1.0
    assert run.model.params.beta == 1.0 and run.history.changes == [[CHANGE_AFTER + 1, "beta", 1.0, 4.0]]
    # the CLI's info says so
    from engine.cli import main
    assert main(["info", str(run.path)]) == 0
    assert f"changed    β 4 → 1 from step {CHANGE_AFTER + 1}" in capsys.readouterr().out
    # a resume's model has it, and the history keeps the change
    resumed = Trainer.resume(run, epochs=2, dataset=digits)
    assert resumed.run_to_end().status == "completed"
    assert resumed.model.params.beta == 1.0
    assert Run.open(run.path).history.changes == [[CHANGE_AFTER + 1, "beta", 1.0, 4.0]]


def test_learning_rate_changes_every_optimizer_and_the_saved_settings(digits, tmp_path):
    trainer, _ = _train_with_change(digits, tmp_path, lr=1e-4)
    assert trainer.history.changes == [[CHANGE_AFTER + 1, "lr", 1e-4, 3e-3]]
    assert all(group["lr"] == pytest.approx(1e-4) for group in trainer.optimizers["model"].param_groups)
    assert Run.open(trainer.run.path).train.lr == pytest.approx(1e-4)
    resumed = Trainer.resume(Run.open(trainer.run.path), epochs=2, dataset=digits)
    resumed.run_to_end()
    assert resumed.optimizers["model"].param_groups[0]["lr"] == pytest.approx(1e-4)


@pytest.mark.parametrize("values, words", [
    ({"beta": -1.0}, "β must be at least 0"),
    ({"beta": 5000.0}, "β must be at most 1000"),
    ({"beta": float("nan")}, "finite number"),
    ({"lr": 0.0}, "learning rate must be above 0"),
    ({"latent_dim": 3.0}, "cannot change while"),
    ({"warmup_epochs": "soon"}, "must be a finite number"),
])
def test_a_bad_value_is_refused_in_one_sentence_and_nothing_changes(digits, values, words):
    trainer = Trainer(DIGITS, small_model("beta_vae", beta=4.0), quick_train(epochs=1), dataset=digits)
    with pytest.raises(ConfigError, match=words) as refused:
        trainer.change(**values)
    assert str(refused.value).count(". ") == 0 and "\n" not in str(refused.value)
    trainer.run_to_end()
    assert trainer.history.changes == [] and trainer.model.params.beta == 4.0


def test_only_float_parameters_and_the_learning_rate_are_live():
    assert [p.name for p in live_parameters(small_model("beta_vae"))] == ["beta", "warmup_epochs", "lr"]
    assert [p.name for p in live_parameters(small_model("iwae"))] == ["lr"]   # k is a whole number


def test_history_changes_round_trip_and_old_files_load():
    history = History()
    history.add_change(12, "beta", 1.0, 4.0)
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))).changes == [[12, "beta", 1.0, 4.0]]
    old = history.to_dict()
    del old["changes"]
    assert History.from_dict(old).changes == []
    for bad in ([[12, "beta", 1.0]], [["12", "beta", 1.0, 4.0]], [[12, "beta", None, 4.0]], {"beta": 1}):
        with pytest.raises(RunError, match="changes is"):
            History.from_dict({**history.to_dict(), "changes": bad})


def test_step_mode_advances_exactly_to_the_next_probe_update(digits):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=50, report_every=1, probe_every=10),
                      dataset=digits)
    seen = []
    paused = threading.Event()

    def drive():
        for update in trainer.updates():
            seen.append(update)
            if update.step == 3 and not paused.is_set():
                trainer.pause()
                paused.set()

    thread = threading.Thread(target=drive)
    thread.start()
    assert paused.wait(30)
    assert not Trainer(DIGITS, small_model("ae"), quick_train()).step_to_next_probe(), "not paused: no step"
    for probe_step in (10, 20):
        assert trainer.step_to_next_probe()
        for _ in range(3000):
            if seen[-1].step == probe_step and trainer.paused:
                break
            thread.join(0.01)
        thread.join(0.3)
        assert seen[-1].step == probe_step and seen[-1].probe is not None and trainer.paused
    trainer.stop()
    thread.join(30)
    assert not thread.is_alive() and seen[-1].status == "stopped" and seen[-1].step == 20


def test_resume_during_a_step_keeps_training_past_the_probe(digits):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=50, report_every=1, probe_every=10),
                      dataset=digits)
    gen = trainer.updates()
    next(gen)
    trainer.pause()
    trainer.step_to_next_probe()
    trainer.resume_training()   # before the loop reached the probe
    while next(gen).step < 10:   # the probe update at step 10 (set before it is yielded: no hang on failure)
        pass
    paused_after_probe = trainer.paused
    trainer.stop()
    assert not paused_after_probe, "Resume made it plain training again"
    assert list(gen)[-1].status == "stopped"
