"""Step mode from the window: F7 (Training → Step to next probe) advances a paused run one probe update."""

from tests.e2e.test_window import configure


def test_f7_steps_a_paused_run_to_its_next_probe_update(window, qtbot):
    rows = dict((what, keys) for keys, what in window.menu_actions.shortcut_rows())
    assert rows.get("Step to next probe") == "F7", rows
    configure(window)
    window.training_panel.start.click()
    state = window.session.active
    qtbot.waitUntil(lambda: state.probe is not None and state.step > 0, timeout=60_000)
    window.training_panel.pause.click()
    qtbot.wait(300)
    probes = []
    state.probe_changed.connect(probes.append)
    window.menu_actions.step_action.trigger()
    qtbot.waitUntil(lambda: bool(probes), timeout=30_000)
    qtbot.wait(300)
    assert len(probes) == 1 and state.step == probes[0].step and state.job.trainer.paused
    assert window.training_panel.pause.text() == "Resume"
