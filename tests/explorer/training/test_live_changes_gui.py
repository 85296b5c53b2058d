"""Change while training: the panel's Apply changes a running run's β (recorded, marked on the loss
plot, saved), a refused value is said in one sentence, and Step advances a paused run one probe."""

import json

import pytest

from engine.datasets import load_dataset
from explorer.loss.plot import LossPlot
from explorer.session import RunState, Session
from explorer.training.panel import TrainingPanel
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture
def training(qtbot, tmp_path):
    """A panel and a loss plot beside a β-VAE (β = 4) that trains on digits."""
    session = Session()
    panel = TrainingPanel(session)
    plot = LossPlot(session)
    for widget in (panel, plot):
        qtbot.addWidget(widget)
        widget.show()
    state = RunState(DIGITS, small_model("beta_vae", beta=4.0), quick_train(epochs=500, probe_every=10),
                     dataset=load_dataset(DIGITS))
    session.add(state)
    assert not panel.live_changes.isVisible(), "nothing trains yet"
    state.start(tmp_path)
    qtbot.waitUntil(lambda: state.step > 0, timeout=30_000)
    yield panel, plot, state
    state.stop_and_wait()


def test_apply_changes_a_running_runs_beta_and_the_loss_plot_marks_it(qtbot, training):
    panel, plot, state = training
    box = panel.live_changes
    assert box.isVisible() and set(box.editors) == {"beta", "warmup_epochs", "lr"}
    assert box.editors["beta"].value() == 4.0 and not box.step.isEnabled(), "Step is for a paused run"
    box.editors["beta"].setValue(1.0)
    box.apply.click()
    qtbot.waitUntil(lambda: bool(state.history.changes), timeout=30_000)
    (step, name, value, previous), = state.history.changes
    assert (name, value, previous) == ("beta", 1.0, 4.0) and step > 0
    assert state.model_cfg.params.beta == 1.0
    qtbot.waitUntil(lambda: plot.change_marks.texts() == ["β 4 → 1"], timeout=5_000)
    assert plot.change_marks.lines[0].value() == step
    assert state.stop_and_wait()
    config = json.loads((state.run.path / "config.json").read_text())
    assert config["model"]["params"]["beta"] == 1.0
    assert not box.isVisible(), "the box leaves with the training"


def test_a_refused_value_is_one_sentence_in_the_box(qtbot, training):
    panel, _, state = training
    box = panel.live_changes
    box.editors["lr"].setValue(0.0)
    box.apply.click()
    assert box.message.isVisible() and "learning rate must be above 0" in box.message.text()
    qtbot.wait(300)
    assert state.history.changes == [] and state.train_cfg.lr == pytest.approx(3e-3)


def test_step_advances_a_paused_run_to_the_next_probe_update(qtbot, training):
    panel, _, state = training
    probes = []
    state.probe_changed.connect(probes.append)
    state.pause()
    trainer = state.job.trainer
    qtbot.wait(300)   # the step under way ends; then the trainer waits
    assert panel.live_changes.step.isEnabled()
    probes.clear()
    panel.live_changes.step.click()
    qtbot.waitUntil(lambda: bool(probes), timeout=30_000)
    qtbot.wait(300)
    assert len(probes) == 1 and trainer.paused and state.status == "paused"
    assert state.step == probes[0].step, "no step after the probe update"
    panel.live_changes.step.click()
    qtbot.waitUntil(lambda: len(probes) == 2, timeout=30_000)
    qtbot.wait(300)
    assert len(probes) == 2 and state.step == probes[1].step
    assert 0 < probes[1].step - probes[0].step <= 10   # the next probe: every 10 steps or an epoch's end


def test_a_saved_runs_changes_are_marked_when_it_is_opened(qtbot, tmp_path):
    from engine.training import Trainer
    trainer = Trainer(DIGITS, small_model("beta_vae", beta=4.0), quick_train(epochs=1), dataset=load_dataset(DIGITS),
                      run_parent=tmp_path)
    for update in trainer.updates():
        if update.step == 10 and not trainer.history.changes:
            trainer.change(beta=1.0, lr=1e-4)
    session = Session()
    plot = LossPlot(session)
    qtbot.addWidget(plot)
    session.add(RunState.open(trainer.run.path))
    assert plot.change_marks.texts() == ["β 4 → 1, lr 0.003 → 0.0001"]   # one step's changes: one mark
    session.add(RunState(DIGITS, small_model("vae"), quick_train()))   # another run: its own (no) marks
    assert plot.change_marks.texts() == []
