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
