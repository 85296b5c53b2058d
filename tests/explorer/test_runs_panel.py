"""The runs panel: a row per run with the right texts, selection <-> active run, live status,
overlays from multi-selection, and the Open… / Resume requests."""

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from engine.training import TrainingUpdate
from explorer.runs_panel import COLUMNS, DETAIL_COLUMNS, RunsPanel, short_name
from explorer.session import RunState, Session
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture
def session():
    return Session()


@pytest.fixture
def panel(qtbot, session):
    widget = RunsPanel(session)
    qtbot.addWidget(widget)
    widget.resize(640, 240)
    widget.show()
    return widget


@pytest.fixture
def states(session, panel, run_paths):
    return [session.add(RunState.open(path)) for path in run_paths]


def cell(panel: RunsPanel, row: int, column: str, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.index(row, COLUMNS.index(column)).data(role)


def select_rows(panel: RunsPanel, *rows: int) -> None:
    """Click the first row, Ctrl-click the others (as selection-model commands)."""
    selection = panel.table.selectionModel()
    rows_flag = QItemSelectionModel.SelectionFlag.Rows
    clear_flag = QItemSelectionModel.SelectionFlag.ClearAndSelect
    selection.setCurrentIndex(panel.model.index(rows[0], 0), clear_flag | rows_flag)
    for row in rows[1:]:
        selection.setCurrentIndex(panel.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select | rows_flag)


def test_a_row_per_run_with_its_texts(panel, states, run_paths):
    """Newest first: the AE, trained after the VAE, is the first row."""
    table = panel.findChild(type(panel.table), "runsList")
    assert table is panel.table and table.accessibleName() == "runsList"
    assert panel.model.rowCount() == 2
    vae, ae = states
    assert panel.model.state_at(0) is ae and panel.model.state_at(1) is vae
    assert [cell(panel, 1, "Name"), cell(panel, 0, "Name")] == [short_name(path.name) for path in run_paths]
    V = 1   # the VAE's row
    assert run_paths[0].name in cell(panel, V, "Name", Qt.ItemDataRole.ToolTipRole)
    assert cell(panel, V, "Variant") == vae.variant_title and cell(panel, 0, "Variant") == ae.variant_title
    assert cell(panel, V, "Dataset") == vae.dataset_name
    assert cell(panel, V, "Latent") == "2"
    assert cell(panel, V, "Status") == "completed"
    assert cell(panel, V, "Best val") == f"{min(vae.history.val['total']):.4g}"
    assert cell(panel, V, "NLL") == "—"   # no metrics.json yet
    assert str(run_paths[0]) in cell(panel, V, "Status", Qt.ItemDataRole.ToolTipRole)
    assert "Finished 2 epochs." in cell(panel, V, "Name", Qt.ItemDataRole.ToolTipRole)


def test_best_val_is_a_dash_without_validation(panel, session):
    session.add(RunState(DIGITS, small_model("ae"), quick_train()))
    assert cell(panel, 0, "Best val") == "—" and cell(panel, 0, "Status") == "new"
    assert "Not saved yet" in cell(panel, 0, "Name", Qt.ItemDataRole.ToolTipRole)


def test_selection_and_active_run_follow_each_other(qtbot, panel, session, states):
    vae, ae = states
    assert session.active is ae and panel.selected_states() == [ae]   # added last, activated
    with qtbot.waitSignal(session.active_changed):
        select_rows(panel, 1)
    assert session.active is vae
    font = Qt.ItemDataRole.FontRole
    assert cell(panel, 1, "Name", font).bold() and cell(panel, 0, "Name", font) is None
    session.set_active(ae)
    assert panel.selected_states() == [ae] and panel.table.currentIndex().row() == 0
    assert cell(panel, 0, "Name", font).bold()


def test_status_changes_refresh_the_cell(qtbot, panel, states):
    vae = states[0]
    with qtbot.waitSignal(panel.model.dataChanged):
        vae._set_status("stopped", "Stopped by the user.")
    assert cell(panel, 1, "Status") == "stopped"
    vae.status, vae.epoch = "running", 3
    update = TrainingUpdate("progress", 3, vae.step + 5, vae.step + 100, np.zeros(0, np.int64), {})
    with qtbot.waitSignal(panel.model.dataChanged, timeout=2000):   # throttled
        vae._on_update(update)
    assert cell(panel, 1, "Status") == f"running 3/{vae.train_cfg.epochs}"


def test_overlays_are_the_other_selected_runs(qtbot, panel, session, states):
    vae, ae = states
    seen = []
    panel.overlays_changed.connect(seen.append)
    select_rows(panel, 1, 0)   # click the VAE, Ctrl-click the AE: the AE is active, the VAE an overlay
    assert session.active is ae and seen[-1] == [vae]
    select_rows(panel, 0)
    assert session.active is ae and seen[-1] == []


def test_open_and_resume_requests(qtbot, panel, session, states):
    vae, ae = states
    assert panel.resume_button.isEnabled()   # completed, saved, not training
    with qtbot.waitSignal(panel.resume_requested) as blocker:
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [ae]
    with qtbot.waitSignal(panel.open_requested):
        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    ae._set_status("running")
    assert not panel.resume_button.isEnabled()
    session.add(RunState(DIGITS, small_model("ae"), quick_train()))   # no run folder yet
    assert not panel.resume_button.isEnabled()


def test_short_names_keep_what_tells_runs_apart():
    assert short_name("20260112-093712-vae-digits-z2", today="20260112") == "09:37 vae-digits-z2"
    assert short_name("20260111-093712-vae-digits-z2", today="20260112") == "01-11 09:37 vae-digits-z2"
    assert short_name("my-run") == "my-run"


def test_a_narrow_table_shows_name_status_and_best_value_without_scrolling(qtbot, panel, states):
    """At 1280 px the runs dock is about 330 px wide: today's columns hid status and best value
    behind a horizontal scroll bar."""
    panel.resize(330, 200)
    qtbot.wait(50)
    assert all(panel.table.isColumnHidden(c) for c in DETAIL_COLUMNS)
    for column in ("Name", "Status", "Best val"):
        index = COLUMNS.index(column)
        assert not panel.table.isColumnHidden(index)
        assert panel.table.columnViewportPosition(index) + panel.table.columnWidth(index) <= panel.table.viewport().width()
    assert not panel.table.horizontalScrollBar().isVisible()
    panel.resize(700, 200)
    qtbot.wait(50)
    assert not any(panel.table.isColumnHidden(c) for c in DETAIL_COLUMNS)


def test_tab_leaves_the_table_and_arrows_move_within_it(qtbot, panel, session, states):
    vae, ae = states
    panel.table.setFocus()
    qtbot.waitUntil(panel.table.hasFocus)
    qtbot.keyClick(panel.table, Qt.Key.Key_Down)
    assert session.active is vae
    qtbot.keyClick(panel.table, Qt.Key.Key_Tab)
    assert not panel.table.hasFocus() and session.active is vae


def test_the_table_never_raises_while_painting(qtbot, panel, session, states, caplog):
    """A value the table cannot show (a string among a history's validation losses) reads "?";
    an exception there would be raised inside Qt's paint, which cannot handle it."""
    vae = states[0]
    vae.history.val["total"] = [None, "a string"]
    vae.train_cfg = None
    panel.model.refresh(vae)
    for column in COLUMNS:
        assert cell(panel, 1, column) is not None
    assert cell(panel, 1, "Best val") == "?"
    panel.table.viewport().repaint()   # paints without raising


def test_focus_stays_with_the_runs_after_resume(qtbot, panel, session, states):
    """Resume disables itself once the run trains again; focus went to Qt's next widget."""
    vae, ae = states
    panel.resume_button.setFocus()
    qtbot.waitUntil(panel.resume_button.hasFocus)
    ae._set_status("running")
    assert panel.table.hasFocus()


def test_the_best_value_tooltip_says_what_the_number_is(panel, states):
    """Fault 10: the VAE's best value is its −ELBO, the AE's its objective; each row says which."""
    tips = {cell(panel, row, "Variant"): cell(panel, row, "Best val", Qt.ItemDataRole.ToolTipRole) for row in range(2)}
    vae = next(tip for title, tip in tips.items() if "Variational" in title)
    ae = next(tip for title, tip in tips.items() if "Variational" not in title)
    assert vae.startswith("Best validation −ELBO") and "nats per image" in vae
    assert "L = rec(x, g(f(x)))" in ae
