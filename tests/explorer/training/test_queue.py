"""The training queue: a sweep through the panel trains its runs one after another, each in the
runs library as it starts, with metrics after each; Start or Resume while a run trains queues
instead of starting a second thread; Pause and Stop act on the run that trains; the queue can be
reordered, cancelled and paused and survives a relaunch; a preset of two runs queues both."""

import json
import shutil

import pytest
from PySide6.QtCore import QSettings

from engine.errors import UserError
from engine.models import VARIANTS
from explorer.resources import resources_dir
from explorer.runs_panel import COLUMNS
from explorer.session import Session
from explorer.tasks import live_threads
from explorer.training.presets import parse_preset
from explorer.training.queue import QueueItem, QueuePanel, TrainQueue, sweep_items
from explorer.window.main_window import MainWindow
from tests.engine.helpers import DIGITS, quick_train, small_model


def configure(w, model="beta_vae", epochs=1, hidden="32"):
    p = w.training_panel
    p.dataset.setCurrentIndex(p.dataset.findData("digits"))
    p.model.setCurrentIndex(p.model.findData(model))
    p.latent.setValue(2)
    p.hidden.setText(hidden)
    p.epochs.setValue(epochs)
    p.batch.setValue(64)


def trainings_at_once(session) -> int:
    return sum(state.job is not None for state in session.runs)


def test_two_beta_vaes_train_through_the_queue_one_at_a_time(window, qtbot):
    configure(window)
    p = window.training_panel
    p.sweep_axis.setCurrentIndex(p.sweep_axis.findData("beta"))
    p.sweep_values.setText("1, 4")
    most = []
    window.session.training_changed.connect(lambda _s: most.append(trainings_at_once(window.session)))
    p.sweep_button.click()
    qtbot.waitUntil(lambda: len(window.session.runs) == 2 and not window.session.is_busy()
                    and not window.train_queue.items and not window.metrics_runner.is_busy(), timeout=120_000)
    assert max(most) == 1, "never two trainings at once"
    states = window.session.runs
    assert [s.status for s in states] == ["completed", "completed"]
    assert sorted(s.model_cfg.params.beta for s in states) == [1.0, 4.0]
    names = [s.run.name for s in states]
    assert any(n.endswith("beta1") for n in names) and any(n.endswith("beta4") for n in names)
    model = window.runs_panel.model
    assert model.rowCount() == 2
    assert model.state_at(0) is states[1], "newest first: the second run of the queue on top"
    for row in range(2):   # metrics were computed after each run finished, shown as the NLL
        nll = model.index(row, COLUMNS.index("NLL")).data()
        assert nll not in ("—", "…") and float(nll) > 0
        assert (model.state_at(row).run.path / "metrics.json").is_file()
        assert model.state_at(row).metrics["nll_samples"] == window.metrics_runner.nll_samples == 200


def test_resume_or_start_while_training_queues_and_pause_stop_act_on_the_training_run(window, qtbot, run_paths,
                                                                                     tmp_path):
    saved = window.open_run(shutil.copytree(run_paths[1], tmp_path / "saved-ae"))
    configure(window, model="vae", epochs=200)
    window.new_run()
    window.training_panel.start.click()
    training = window.session.active
    assert training is not saved and training.is_training
    qtbot.waitUntil(lambda: training.step >= 5, timeout=60_000)

    window.session.set_active(saved)
    window.runs_panel.resume_button.click()
    window.resume_dialog.setIntValue(1)
    window.resume_dialog.accept()
    assert not saved.is_training and trainings_at_once(window.session) == 1
    assert [i.kind for i in window.train_queue.items] == ["resume"]
    assert "Queued" in window.state_label.text() and training.name in window.state_label.text()
    assert len(live_threads("training")) == 1

    window.new_run()   # the template of a new run; Start queues it while the other trains
    assert window.training_panel.start.isEnabled()
    window.training_panel.start.click()
    assert [i.kind for i in window.train_queue.items] == ["resume", "new"]
    assert trainings_at_once(window.session) == 1
    window.train_queue.remove(window.train_queue.items[1].id)

    window.session.set_active(saved)   # another run is shown: Pause and Stop still act on the training one
    assert window.training_panel.pause.isEnabled()
    window.training_panel.pause.click()
    assert training.status == "paused" and saved.status == "completed"
    window.training_panel.pause.click()
    assert training.status == "running"
    window.training_panel.stop.click()
    qtbot.waitUntil(lambda: saved.is_training or saved.status != "completed", timeout=60_000)   # the queue went on
    assert training.status == "stopped" and not training.is_training
    qtbot.waitUntil(lambda: not window.session.is_busy(), timeout=60_000)
    assert saved.epoch == 2 and not window.train_queue.items   # the AE had 1 epoch: 1 more


def test_the_queue_reorders_cancels_pauses_and_survives_a_relaunch(qtbot, tmp_path):
    session = Session()
    started = []
    path = tmp_path / "settings" / "train-queue.json"
    queue = TrainQueue(session, lambda item: started.append(item), path)
    queue.set_paused(True)
    panel = QueuePanel(queue)
    qtbot.addWidget(panel)
    items = sweep_items((DIGITS, small_model("vae"), quick_train()), "latent_dim", "2, 4, 8")
    queue.add(items)
    assert panel.list.count() == 3 and "3 runs waiting (queue paused)" in panel.status.text()
    panel.list.setCurrentRow(2)
    panel.up.click()
    assert [i.model.latent_dim for i in queue.items] == [2, 8, 4] and panel.list.currentRow() == 1
    panel.list.setCurrentRow(0)
    panel.cancel.click()
    assert [i.model.latent_dim for i in queue.items] == [8, 4]
    qtbot.wait(20)
    assert not started, "a paused queue starts nothing"

    saved = json.loads(path.read_text())
    assert saved["paused"] is True and len(saved["items"]) == 2
    again = TrainQueue(Session(), lambda item: started.append(item) or None, path)
    assert [i.to_dict() for i in again.items] == [i.to_dict() for i in queue.items] and again.paused
    again.set_paused(False)
    qtbot.waitUntil(lambda: len(started) == 2)   # each "failed" to start (None): the next one is tried
    assert [i.model.latent_dim for i in started] == [8, 4] and not again.items

    path.write_text("{ not json")
    broken = TrainQueue(Session(), lambda item: None, path)
    assert not broken.items and "could not be read" in broken.notes[0]
    assert path.with_name("train-queue.json.unreadable").read_text() == "{ not json"   # kept, not overwritten


def test_sweep_values_are_checked_with_one_sentence():
    configs = (DIGITS, small_model("vae"), quick_train())
    for axis, text, words in (("beta", "1, 4", "not a setting"), ("lr", "1e-3, fast", "numbers"),
                              ("latent_dim", "", "Type the values"), ("seed", "1, 1", "repeat"),
                              ("variant", "vae, nope", "not a variant")):
        with pytest.raises(UserError, match=words):
            sweep_items(configs, axis, text)
    both = sweep_items(configs, "variant", "vae, ae")
    assert [i.model.variant for i in both] == ["vae", "ae"]


def test_the_window_parses_sweep_values_as_the_cli_does():
    """One parser (engine.sweep.parse_values): the same refusal for a repeat, naming the setting."""
    from engine.sweep import parse_values
    configs = (DIGITS, small_model("beta_vae"), quick_train())
    with pytest.raises(UserError, match=r"^The values of β repeat 4: each run of a sweep must differ"):
        sweep_items(configs, "beta", "1, 4, 4")
    with pytest.raises(UserError, match=r"^The values of beta repeat 4"):
        parse_values("beta", "1, 4, 4")


@pytest.mark.parametrize("answer,queued", [("No", 0), ("Yes", 51)])
def test_a_sweep_above_the_limit_asks_first(window, monkeypatch, answer, queued):
    """Fault 7 in the window: more than engine.sweep.CONFIRM_ABOVE runs are queued only on Yes."""
    from PySide6.QtWidgets import QMessageBox

    from engine.sweep import CONFIRM_ABOVE
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or getattr(QMessageBox.StandardButton, answer))
    window.train_queue.set_paused(True)
    configs = (DIGITS, small_model("vae"), quick_train())
    window.training.queue_sweep((configs, "seed", ", ".join(map(str, range(CONFIRM_ABOVE + 1)))))
    assert len(asked) == 1 and f"{CONFIRM_ABOVE + 1} runs" in asked[0]
    assert len(window.train_queue.items) == queued
    window.training.queue_sweep((configs, "seed", "0, 1"))   # small: no question
    assert len(asked) == 1 and len(window.train_queue.items) == queued + 2


def test_a_preset_of_two_runs_queues_both(window, tmp_path):
    preset_file = tmp_path / "pair.json"
    preset_file.write_text(json.dumps({
        "title": "β-VAE beside a VAE", "data": {"source": "digits"},
        "model": {"variant": "beta_vae", "latent_dim": 2, "hidden": [32], "params": {"beta": 4.0}},
        "train": {"epochs": 1, "batch_size": 64},
        "runs": [{"title": "β-VAE"}, {"title": "VAE", "model": {"variant": "vae"}}]}))
    preset = parse_preset(preset_file)
    window.train_queue.set_paused(True)
    window.training_panel.apply_preset(preset)
    assert [i.model.variant for i in window.train_queue.items] == ["beta_vae", "vae"]
    assert [i.title for i in window.train_queue.items] == ["β-VAE", "VAE"]
    assert window.runs_tabs.tabText(1) == "Queue (2)"


def test_the_bundled_iwae_beside_vae_preset_names_both_runs():
    path = resources_dir() / "presets" / "07-iwae-k5-beside-vae.json"
    raw = json.loads(path.read_text())
    assert [r.get("model", {}).get("variant", raw["model"]["variant"]) for r in raw["runs"]] == ["iwae", "vae"]
    assert "iwae" in VARIANTS
    preset = parse_preset(path)
    assert [m.variant for _, _, m, _ in preset.runs] == ["iwae", "vae"]
    assert preset.runs[0][2].params.k == 5


def test_queue_item_round_trips_and_refuses_garbage():
    item = QueueItem.new(DIGITS, small_model("beta_vae", beta=2.0), quick_train(), name="x")
    assert QueueItem.from_dict(item.to_dict()) == item
    resume = QueueItem.resume("/some/run", 3, "run")
    assert QueueItem.from_dict(resume.to_dict()) == resume
    with pytest.raises((ValueError, KeyError)):
        QueueItem.from_dict({"kind": "resume", "title": "t", "path": "p", "more_epochs": 0})


def test_the_queue_file_sits_beside_an_ini_settings_file(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "conf" / "settings.ini"), QSettings.IniFormat)
    w = MainWindow(settings=settings, runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    assert w.queue_path == tmp_path / "conf" / "train-queue.json"
    w.train_queue.set_paused(True)
    w.training.queue_configs((DIGITS, small_model("vae"), quick_train()))
    w.close()
    again = MainWindow(settings=QSettings(str(tmp_path / "conf" / "settings.ini"), QSettings.IniFormat),
                       runs_dir=tmp_path / "runs")
    qtbot.addWidget(again)
    assert len(again.train_queue.items) == 1 and again.train_queue.paused
    assert again.runs_tabs.tabText(1) == "Queue (1)"
    again.close()
