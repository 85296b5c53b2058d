"""Marks on the loss plot where a setting changed while the run trained (``History.changes``): a
vertical dotted line at the first step trained with the new value, labelled "β 4 → 1"."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from engine.config import ModelConfig
from engine.history import History
from engine.live_changes import LEARNING_RATE, label_of

MARK_COLOUR = "#7048e8"


def change_text(model: ModelConfig | None, name: str, value: float, previous: float) -> str:
    """ "β 4 → 1", "lr 0.003 → 0.0001" """
    label = "lr" if name == LEARNING_RATE or model is None else label_of(model, name)
    return f"{label} {previous:g} → {value:g}"


class ChangeMarks:
    """The lines of one run's changes on ``plot_item``; ``sync`` adds the new ones."""

    def __init__(self, plot_item: pg.PlotItem):
        self.plot_item = plot_item
        self.lines: list[pg.InfiniteLine] = []

    def clear(self) -> None:
        for line in self.lines:
            self.plot_item.removeItem(line)
        self.lines = []

    def sync(self, history: History | None, model: ModelConfig | None) -> None:
        changes = history.changes if history is not None else []
        if len(changes) < len(self.lines):   # another history (a reloaded run): start again
            self.clear()
        for step, name, value, previous in changes[len(self.lines):]:
            line = pg.InfiniteLine(pos=float(step), angle=90, movable=False,
                                   pen=pg.mkPen(MARK_COLOUR, width=1.5, style=Qt.PenStyle.DotLine),
                                   label=change_text(model, name, value, previous),
                                   labelOpts={"position": 0.92, "color": MARK_COLOUR, "movable": False})
            line.setZValue(20)
            self.plot_item.addItem(line, ignoreBounds=True)
            self.lines.append(line)

    def texts(self) -> list[str]:
        return [line.label.toPlainText() for line in self.lines]
