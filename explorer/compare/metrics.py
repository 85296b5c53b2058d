"""The comparison's metrics table (``compareMetricsTable``): engine.compare.metrics_table of the
compared runs, a row per metric and a column per run (what each number is in its tooltip), the
best value of each row marked (bold, ★), then the rows of words that say how the numbers were
measured (best_val_is, likelihood, measured_on); sortable by any column, exported with
engine.compare.write_table as a tidy CSV (a row per run there)."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from engine.compare import MetricsTable, metrics_table, write_table
from engine.errors import UserError
from explorer.runs_panel import short_name
from explorer.session import RunState

REFRESH_MS = 2000


class SortableItem(QTableWidgetItem):
    """A cell that sorts by its number (empty cells last), or by its text in the metric column."""

    def __init__(self, text: str, key: float | str):
        super().__init__(text)
        self.key = key

    def __lt__(self, other) -> bool:
        a, b = self.key, getattr(other, "key", other.text())
        if isinstance(a, float) and isinstance(b, float):
            return (math.isnan(a), a) < (math.isnan(b), b)
        return str(a) < str(b)


def format_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if value == int(value) and abs(value) >= 100 else f"{value:.4g}"


class CompareMetricsTable(QWidget):
    def __init__(self, states: list[RunState], parent: QWidget | None = None):
        super().__init__(parent)
        self.states = states
        self.table_data: MetricsTable | None = None
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget()
        self.table.setObjectName("compareMetricsTable")
        self.table.setAccessibleName("compareMetricsTable")
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        self._timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        for state in states:
            state.status_changed.connect(lambda _s: self._timer.start())
            state.progressed.connect(self._on_progress)
        self.refresh()

    def _on_progress(self, update) -> None:
        if update.kind == "epoch" and not self._timer.isActive():
            self._timer.start()

    def saved(self) -> list[RunState]:
        return [s for s in self.states if s.run is not None]

    def refresh(self) -> None:
        saved = self.saved()
        missing = [short_name(s.name) for s in self.states if s.run is None]
        self.note.setText(("Not saved yet (no metrics): " + ", ".join(missing) + ". ") if missing else ""
                          "Best value per row in bold with ★ (lower or higher as the metric says); click a header "
                          "to sort; hover a metric for what it is.")
        self.table_data = metrics_table([s.run for s in saved]) if saved else None
        data = self.table_data
        self.table.setSortingEnabled(False)
        self.table.clear()
        if data is None:
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            return
        self.table.setColumnCount(1 + len(data.runs))
        self.table.setHorizontalHeaderLabels(["metric", *(short_name(n) for n in data.runs)])
        for c, name in enumerate(data.runs, start=1):
            self.table.horizontalHeaderItem(c).setToolTip(name)
        self.table.setRowCount(len(data.rows) + len(data.texts))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, row in enumerate(data.rows):
            item = SortableItem(row.key, row.key)
            item.setToolTip(row.about)
            self.table.setItem(r, 0, item)
            best = row.best_index()
            for c, value in enumerate(row.values):
                text = format_value(value)
                cell = SortableItem(("★ " if c == best else "") + text, math.nan if value is None else float(value))
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                cell.setToolTip(f"{row.about}: {value!r}" + (" — the best" if c == best else ""))
                if c == best:
                    cell.setFont(bold)
                self.table.setItem(r, c + 1, cell)
        for r, column in enumerate(data.texts, start=len(data.rows)):
            item = SortableItem(column.key, column.key)
            item.setToolTip(column.about)
            self.table.setItem(r, 0, item)
            for c, text in enumerate(column.values):
                cell = SortableItem(text or "—", text)
                cell.setToolTip(text or f"{column.about}: none")
                self.table.setItem(r, c + 1, cell)
        self.table.setSortingEnabled(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in range(1, self.table.columnCount()):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)

    def best_marked(self) -> dict[str, int | None]:
        """Each row's key -> the column (0-based run) marked best (for tests)."""
        return {row.key: row.best_index() for row in self.table_data.rows} if self.table_data else {}

    def export_csv(self, path) -> None:
        if self.table_data is None:
            raise UserError("None of the compared runs is saved yet, so there is no table to export.")
        write_table(self.table_data, path)
