"""The runs library: every run of the session (the saved runs of the runs folder among them) in
a table, newest first, the active one selected.

Selecting a row makes its run the active one; further selected rows (Ctrl/Shift-click) are
overlays, announced with ``overlays_changed`` so that the loss plot can draw them for comparison.
Each row has a check box (``checked_runs()``, ``checked_changed``: what Compare shows).  Open…, Resume, Evaluate and
"Load settings" are requests the window carries out; rename and delete (confirmed, never a training run) happen here.
"""

from __future__ import annotations

import html
import logging
import re
import time

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.best_value import best_value_label
from engine.errors import UserError
from engine.metrics import staleness
from explorer.session import RunState, Session

COLUMNS = ("Name", "Variant", "Dataset", "Latent", "Status", "Best val", "NLL")
NUMERIC_COLUMNS = {COLUMNS.index("Latent"), COLUMNS.index("Best val"), COLUMNS.index("NLL")}
HEADER_TIPS = {"Best val": "The lowest validation loss that picks the best checkpoint, per image, on the run's "
                           "validation split (for the VAE family the −ELBO at β = 1; each row's tip says which).",
               "NLL": "The importance-sampled negative log-likelihood of metrics.json: nats per image on the run's "
                      "validation split (— where the run has no metrics, or its model has no density).",
               "Name": "Tick runs to compare them."}
RESUMABLE = ("stopped", "completed")
#: shown only when the table is at least this wide (the row's tooltip always names them)
DETAIL_COLUMNS = (COLUMNS.index("Variant"), COLUMNS.index("Dataset"), COLUMNS.index("Latent"))
DETAILS_MIN_WIDTH = 560
log = logging.getLogger(__name__)
_STAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(.+)$")


def short_name(name: str, today: str | None = None) -> str:
    """A run folder's name as the table shows it: "20260112-093712-vae-digits-z2" becomes
    "09:37 vae-digits-z2" today and "01-12 09:37 vae-digits-z2" on another day."""
    match = _STAMP.match(name)
    if match is None:
        return name
    year, month, day, hour, minute, _, rest = match.groups()
    when = f"{hour}:{minute}"
    if f"{year}{month}{day}" != (today or time.strftime("%Y%m%d")):
        when = f"{month}-{day} {when}"
    return f"{when} {rest}"


def status_text(state: RunState) -> str:
    """The status, with epoch progress while a run trains ("running 3/20"); "interrupted at step N"
    for a saved run whose process died while it trained."""
    if state.status in ("running", "paused"):
        return f"{state.status} {state.epoch}/{state.train_cfg.epochs}"
    return state.status_words


def best_val_text(state: RunState) -> str:
    best = state.best_val
    return "—" if best is None else f"{best:.4g}"


def best_val_tooltip(state: RunState) -> str:
    """What the Best val number is for this run's model (engine.best_value's one label)."""
    label = best_value_label(state.model_cfg)
    return f"{label[0].upper()}{label[1:]}."


def metrics_staleness(state: RunState) -> str | None:
    """The sentence saying the run has moved on since its metrics were measured (None if not)."""
    if state.metrics is None or state.run is None:
        return None
    return staleness(state.run, state.metrics)


def nll_text(state: RunState) -> str:
    nll = state.headline_nll
    if nll is not None:
        return f"{nll:.2f}" + (" (old)" if metrics_staleness(state) else "")
    return "…" if state.metrics_note.startswith("Evaluating") else "—"


def nll_tooltip(state: RunState) -> str:
    metrics = state.metrics or {}
    if state.headline_nll is None:
        return state.metrics_note or ("Its model has no density: no NLL." if metrics else
                                      "No metrics yet: they are computed when a run finishes, or on Evaluate.")
    k = metrics.get("nll_samples")
    images = (metrics.get("images") or {}).get("n")
    stale = metrics_staleness(state)
    step = metrics.get("step")
    return (f"NLL {state.headline_nll:.3f} nats per image (importance-sampled"
            + (f", K = {k}" if k else "") + ")" + (f" on {images} validation images" if images else "")
            + (f", measured at step {step}" if step is not None and not stale else "") + "."
            + (f"\nOld: {stale}; Evaluate measures it again." if stale else ""))


def row_tooltip(state: RunState) -> str:
    if state.run is None:
        where = "Not saved yet: the run folder is made when training starts."
    else:
        where = str(state.run.path)
    what = f"{state.variant_title} on {state.dataset_name}, latent size {state.model_cfg.latent_dim}"
    lines = [state.name, what, where] + ([state.reason] if state.reason else [])
    return "\n".join(lines)


def _newest_first_key(state: RunState) -> tuple:
    return (state.created, state.order)


class RunsModel(QAbstractTableModel):
    """The session's runs, one per row, newest first (by creation), refreshed as their status and
    progress change; the Name column holds each run's check box."""

    checked_changed = Signal(object)   # list[RunState]: the ticked runs, in table order

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._states: list[RunState] = []
        self._checked: set[int] = set()   # id()s of the ticked runs
        self._active: RunState | None = session.active
        session.run_added.connect(self._add)
        session.run_removed.connect(self._remove)
        session.active_changed.connect(self._on_active_changed)
        for state in session.runs:
            self._add(state)

    # -- the table ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._states)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(COLUMNS[section])
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        if index.isValid() and index.column() == 0:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(self, index: QModelIndex | QPersistentModelIndex, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != 0 or role != Qt.ItemDataRole.CheckStateRole:
            return False
        checked = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        self.set_checked(self._states[index.row()], checked)
        return True

    # -- check boxes ------------------------------------------------------------------------
    def is_checked(self, state: RunState) -> bool:
        return id(state) in self._checked

    def set_checked(self, state: RunState, checked: bool) -> None:
        if state not in self._states or checked == self.is_checked(state):
            return
        (self._checked.add if checked else self._checked.discard)(id(state))
        row = self.row_of(state)
        self.dataChanged.emit(self.index(row, 0), self.index(row, 0), [Qt.ItemDataRole.CheckStateRole])
        self.checked_changed.emit(self.checked_runs())

    def checked_runs(self) -> list[RunState]:
        return [s for s in self._states if id(s) in self._checked]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        """The cell's text, tooltip, alignment or font.  Never raises: Qt calls this while painting,
        where an exception cannot be handled (a value it cannot show reads "?")."""
        try:
            return self._data(index, role)
        except Exception:  # noqa: BLE001 — a bad value read from a run folder must not take the app down
            log.exception("The runs table could not show row %d, column %d", index.row(), index.column())
            return "?" if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole) else None

    def _data(self, index: QModelIndex | QPersistentModelIndex, role: int):
        if not index.isValid() or index.row() >= len(self._states):
            return None
        state = self._states[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = self._text(state, index.column())
            return short_name(text) if index.column() == 0 else text
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == 0:
            return Qt.CheckState.Checked if self.is_checked(state) else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            if index.column() == COLUMNS.index("NLL"):
                return nll_tooltip(state)
            if index.column() == COLUMNS.index("Best val"):
                return best_val_tooltip(state)
            return row_tooltip(state)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in NUMERIC_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and state is self.session.active:
            font = QFont()
            font.setBold(True)   # the active run stands out among the selected (overlaid) ones
            return font
        return None

    @staticmethod
    def _text(state: RunState, column: int) -> str:
        return (state.name, state.variant_title, state.dataset_name, str(state.model_cfg.latent_dim),
                status_text(state), best_val_text(state), nll_text(state))[column]

    # -- runs <-> rows ------------------------------------------------------------------------
    def state_at(self, row: int) -> RunState:
        return self._states[row]

    def row_of(self, state: RunState) -> int:
        """The row of a run, or -1."""
        return self._states.index(state) if state in self._states else -1

    def _add(self, state: RunState) -> None:
        key = _newest_first_key(state)
        row = next((i for i, s in enumerate(self._states) if _newest_first_key(s) < key), len(self._states))
        self.beginInsertRows(QModelIndex(), row, row)
        self._states.insert(row, state)
        self.endInsertRows()
        state.status_changed.connect(self._on_status_changed)   # bound methods: disconnected with the model
        state.refreshed.connect(self._on_refreshed)   # a live run's row, once a frame
        state.metrics_changed.connect(self._on_refreshed)

    def _remove(self, state: RunState) -> None:
        row = self.row_of(state)
        if row < 0:
            return
        was_checked = self.is_checked(state)
        self.beginRemoveRows(QModelIndex(), row, row)
        self._states.pop(row)
        self._checked.discard(id(state))
        self.endRemoveRows()
        state.status_changed.disconnect(self._on_status_changed)
        state.refreshed.disconnect(self._on_refreshed)
        state.metrics_changed.disconnect(self._on_refreshed)
        if was_checked:
            self.checked_changed.emit(self.checked_runs())

    def _on_active_changed(self, state: RunState | None) -> None:
        previous, self._active = self._active, state
        for changed in (previous, state):
            if changed is not None:
                self.refresh(changed)

    def refresh(self, state: RunState) -> None:
        """Redraw a run's row now."""
        row = self.row_of(state)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def _on_status_changed(self, _status: str) -> None:
        self.refresh(self.sender())

    def _on_refreshed(self) -> None:
        self.refresh(self.sender())


def _name(widget: QWidget, name: str) -> QWidget:
    widget.setObjectName(name)
    widget.setAccessibleName(name)
    return widget


class RunsPanel(QWidget):
    """The runs table with Open…, Resume and a menu of what to do with the active run below it
    (the same menu on a right click in the table)."""

    overlays_changed = Signal(object)    # list[RunState]: the selected runs other than the active one
    checked_changed = Signal(object)     # list[RunState]: the ticked runs, in table order
    open_requested = Signal()
    resume_requested = Signal(object)    # RunState: the active run, stopped or completed, to train further
    load_settings_requested = Signal(object)   # RunState: put its settings in the training panel
    evaluate_requested = Signal(object)  # RunState: compute its metrics
    renamed = Signal(object)             # RunState, after its folder got its new name
    deleted = Signal(object)             # the deleted folder's Path, after the run left the session
    failed = Signal(str)                 # one sentence: a rename or delete that could not be done
    forget_requested = Signal(object)    # RunState opened from another folder: take it off the remembered list

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.session = session
        self.model = RunsModel(session, self)
        self._overlays: list[RunState] = []
        self.table = _name(QTableView(), "runsList")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)   # Tab leaves the table; the arrow keys move within it
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(36)

        self.open_button = _name(QPushButton("Open…"), "openRunButton")
        self.open_button.setToolTip("Open a saved run folder.")
        self.resume_button = _name(QPushButton("Resume"), "resumeRunButton")
        self.resume_button.setToolTip("Train the selected stopped or completed run further.")
        self.rename_dialog: QInputDialog | None = None
        self.delete_box: QMessageBox | None = None
        self.menu = QMenu(self)
        self.menu.setObjectName("runActionsMenu")
        self.load_settings_action = self.menu.addAction("Load settings into the panel",
                                                        lambda: self._request(self.load_settings_requested))
        self.evaluate_action = self.menu.addAction("Evaluate (metrics)", lambda: self._request(self.evaluate_requested))
        self.menu.addSeparator()
        self.rename_action = self.menu.addAction("Rename…", lambda: self.rename(self.session.active))
        self.delete_action = self.menu.addAction("Delete…", lambda: self.delete(self.session.active))
        self.forget_action = self.menu.addAction("Forget this run", lambda: self._request(self.forget_requested))
        self.forget_action.setToolTip("Stop listing this run, opened from another folder; its files stay on disk.")
        #: whether a run may be forgotten (the window: it was opened from a folder the library remembers)
        self.can_forget = lambda state: False
        self.menu.aboutToShow.connect(self._update_menu)
        self.more_button = _name(QToolButton(), "runActionsButton")
        self.more_button.setText("Run ▾")
        self.more_button.setToolTip("Load the active run's settings, evaluate, rename, delete or forget it.")
        self.more_button.setMenu(self.menu)
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(
            lambda pos: self.menu.popup(self.table.viewport().mapToGlobal(pos)) if self.session.active else None)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.more_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.open_button.clicked.connect(self.open_requested)
        self.resume_button.clicked.connect(lambda: self.resume_requested.emit(self.session.active))
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.model.dataChanged.connect(self._update_buttons)
        self.model.checked_changed.connect(self.checked_changed)
        self.model.rowsRemoved.connect(lambda *_: (self._announce_overlays(), self._update_buttons()))
        session.active_changed.connect(self._select_active)
        self._select_active(session.active)

    def resizeEvent(self, event) -> None:  # noqa: N802
        """Narrow (a laptop's dock): name, status and best value only; wide: every column."""
        super().resizeEvent(event)
        wide = self.width() >= DETAILS_MIN_WIDTH
        for column in DETAIL_COLUMNS:
            self.table.setColumnHidden(column, not wide)

    # -- the library's actions ----------------------------------------------------------------
    def checked_runs(self) -> list[RunState]:
        """The ticked runs, in table order (what Compare shows)."""
        return self.model.checked_runs()

    def set_checked(self, state: RunState, checked: bool = True) -> None:
        self.model.set_checked(state, checked)

    def _request(self, signal) -> None:
        if self.session.active is not None:
            signal.emit(self.session.active)

    def _update_menu(self) -> None:
        state = self.session.active
        saved = state is not None and state.run is not None
        idle = saved and not state.is_training and state.status not in ("running", "paused")
        self.load_settings_action.setEnabled(state is not None)
        self.evaluate_action.setEnabled(idle)
        self.rename_action.setEnabled(idle)
        self.delete_action.setEnabled(idle)
        self.forget_action.setEnabled(idle and self.can_forget(state))

    def rename(self, state: RunState | None) -> None:
        """Ask for a new name (a small dialog), then rename the run's folder."""
        if state is None or state.run is None:
            return
        dialog = QInputDialog(self)
        dialog.setObjectName("renameRunDialog")
        dialog.setWindowTitle("Rename run")
        dialog.setLabelText(f"New name for {state.run.name}:")
        dialog.setTextValue(state.run.name)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.textValueSelected.connect(lambda name: self._rename(state, name))
        self.rename_dialog = dialog
        dialog.open()

    def _rename(self, state: RunState, name: str) -> None:
        try:
            state.rename(name)
        except UserError as exc:
            self.failed.emit(str(exc))
            return
        self.model.refresh(state)
        self.renamed.emit(state)

    def delete(self, state: RunState | None) -> None:
        """Ask, then remove the run's folder (never a run that trains) and take it out of the list."""
        if state is None or state.run is None:
            return
        if state.is_training or state.status in ("running", "paused"):
            self.failed.emit(f"{state.run.name} is training; stop it before deleting it.")
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Delete run",
                          f"Delete the run <b>{html.escape(state.run.name)}</b> and its folder "
                          f"{html.escape(str(state.run.path))}? This cannot be undone.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("deleteRunDialog")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Delete")
        confirm = box.button(QMessageBox.StandardButton.Yes)
        box.finished.connect(lambda _result: self._delete(state) if box.clickedButton() is confirm else None)
        self.delete_box = box
        box.open()

    def _delete(self, state: RunState) -> None:
        try:
            path = state.delete_folder()
        except UserError as exc:
            self.failed.emit(str(exc))
            return
        self.session.remove(state)
        self.deleted.emit(path)

    def selected_states(self) -> list[RunState]:
        """The selected runs, in table order."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self.model.state_at(row) for row in rows]

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        """The run of the row clicked last becomes active (or, when that row was just deselected,
        the active run stays if still selected, else the last selected one); the others are overlays."""
        selected = self.selected_states()
        current = self.table.selectionModel().currentIndex()
        clicked = self.model.state_at(current.row()) if current.isValid() else None
        if clicked in selected:
            self.session.set_active(clicked)
        elif self.session.active not in selected:
            self.session.set_active(selected[-1] if selected else None)
        self._announce_overlays()

    def _select_active(self, state: RunState | None) -> None:
        """Follow a change of the active run: select its row, alone unless it was already selected."""
        selection = self.table.selectionModel()
        row = self.model.row_of(state) if state is not None else -1
        if row < 0:
            selection.clearSelection()
        elif not selection.isRowSelected(row):
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            selection.setCurrentIndex(self.model.index(row, 0), flags)
            self.table.scrollTo(self.model.index(row, 0))
        self._announce_overlays()
        self._update_buttons()

    def _announce_overlays(self) -> None:
        overlays = [state for state in self.selected_states() if state is not self.session.active]
        if overlays != self._overlays:
            self._overlays = overlays
            self.overlays_changed.emit(overlays)

    def _update_buttons(self) -> None:
        """Resume needs a saved run whose training has ended (stopped or completed)."""
        active = self.session.active
        had_focus = self.resume_button.hasFocus()
        self.resume_button.setEnabled(active is not None and active.run is not None and active.status in RESUMABLE)
        if had_focus and not self.resume_button.isEnabled():
            # Resume disabled itself (the run trains again): focus stays with the runs, not Qt's next widget
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)
