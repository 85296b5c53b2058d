"""Marks on the loss plot where a setting changed while the run trained (``History.changes``): a
vertical dotted line at the first step trained with the new value, labelled "β 4 → 1"; the changes
made at one step share one line ("β 8 → 1, lr 0.002 → 0.001").  The labels of consecutive marks sit
at staggered heights: pyqtgraph puts a label on the right of a line in the left half of the view and
on its left in the right half, so two marks' labels met (and overlapped) in the middle."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from engine.config import ModelConfig
from engine.history import History
from engine.live_changes import LEARNING_RATE, label_of

MARK_COLOUR = "#7048e8"
#: the heights of consecutive marks' labels, as fractions of the line from the bottom (repeating)
LABEL_HEIGHTS = (0.93, 0.72)


def change_text(model: ModelConfig | None, name: str, value: float, previous: float) -> str:
    """ "β 4 → 1", "lr 0.003 → 0.0001" """
    label = "lr" if name == LEARNING_RATE or model is None else label_of(model, name)
    return f"{label} {previous:g} → {value:g}"


def marks_by_step(changes, model: ModelConfig | None) -> list[tuple[float, str]]:
    """(step, label) per step at which something changed, in step order; a step's changes are
    joined in the order they were recorded."""
    texts: dict[float, list[str]] = {}
    for step, name, value, previous in changes:
        texts.setdefault(float(step), []).append(change_text(model, name, value, previous))
    return [(step, ", ".join(parts)) for step, parts in sorted(texts.items())]


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
        marks = marks_by_step(history.changes if history is not None else [], model)
        shown = [(line.value(), line.label.toPlainText()) for line in self.lines]
        if shown != marks[:len(shown)]:   # another history (a reloaded run), or more at the last step
            self.clear()
        for step, text in marks[len(self.lines):]:
            line = pg.InfiniteLine(pos=float(step), angle=90, movable=False,
                                   pen=pg.mkPen(MARK_COLOUR, width=1.5, style=Qt.PenStyle.DotLine),
                                   label=text, labelOpts={"position": LABEL_HEIGHTS[len(self.lines) % len(LABEL_HEIGHTS)],
                                                          "color": MARK_COLOUR, "movable": False})
            line.setZValue(20)
            self.plot_item.addItem(line, ignoreBounds=True)
            self.lines.append(line)

    def texts(self) -> list[str]:
        return [line.label.toPlainText() for line in self.lines]
