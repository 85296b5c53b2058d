"""The active run's collapse finding where a person looks: the status bar (a warning-coloured label,
what helps as its tooltip) and the training panel's message area; nothing while the run is healthy."""

import json
import shutil

from engine.history import METRICS_FILE
from engine.runs import Run

COLLAPSE = "posterior collapse: the decoder ignores z"


def with_last_val_kl(source, target, kl: float):
    """A copy of the run at ``source`` whose history's last validation KL is ``kl``, without metrics.json."""
    shutil.copytree(source, target)
    history = Run.open(target).file("history.json")
    d = json.loads(history.read_text())
    d["val"]["kl"][-1] = kl
    history.write_text(json.dumps(d))
    for found in target.rglob(METRICS_FILE):
        found.unlink()
    return target


def test_a_collapsed_run_is_named_in_the_status_bar_and_the_panel(window, run_paths, tmp_path):
    collapsed = with_last_val_kl(run_paths[0], tmp_path / "collapsed", 0.05)
    window.open_run(collapsed)
    label = window.status_line.finding_label
    assert not label.isHidden() and COLLAPSE in label.text(), label.text()
    assert "warm-up" in label.toolTip()
    assert COLLAPSE in window.training_panel.finding.text().lower() and not window.training_panel.finding.isHidden()

    healthy = with_last_val_kl(run_paths[0], tmp_path / "healthy", 5.0)
    window.open_run(healthy)
    assert label.isHidden() and label.text() == "" and window.training_panel.finding.isHidden()


def test_the_finding_follows_each_validation_epoch(window, run_paths, tmp_path):
    state = window.open_run(with_last_val_kl(run_paths[0], tmp_path / "run", 5.0))
    label = window.status_line.finding_label
    assert label.isHidden()
    state.metrics = None
    state.history.add_epoch(state.epoch + 1, state.step + 10, {}, {"total": 50.0, "kl": 0.05}, 0.0)
    state.refreshed.emit()
    assert COLLAPSE in label.text() and not label.isHidden()


def test_a_training_runs_first_low_kl_epochs_are_not_called_collapse(window, run_paths, tmp_path):
    # the default digits VAE measured 0.022 and 0.019 nats after its first two epochs, 0.51 after the
    # third, 3.0 at the end: the window called a newcomer's first run collapsed at epoch 2
    state = window.open_run(with_last_val_kl(run_paths[0], tmp_path / "run", 5.0))
    label = window.status_line.finding_label
    state.metrics = None
    state.history.val = {"total": [], "kl": []}
    state._set_status("running")
    for epoch, kl in enumerate((0.022, 0.019), 1):
        state.history.add_epoch(epoch, 10 * epoch, {}, {"total": 50.0, "kl": kl}, 0.0)
        state.refreshed.emit()
        assert label.isHidden(), (epoch, label.text())
    state.history.add_epoch(3, 30, {}, {"total": 50.0, "kl": 0.02}, 0.0)   # a third epoch as low: named
    state.refreshed.emit()
    assert COLLAPSE in label.text() and not label.isHidden()
    state._set_status("completed")   # a finished run's last epoch speaks for it
    state.history.val = {"total": [50.0], "kl": [0.02]}
    window.status_line.show_finding()
    assert COLLAPSE in label.text()
