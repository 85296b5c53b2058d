"""The loss plot's change marks: one line a step, and labels that do not cover each other."""

import numpy as np
import pyqtgraph as pg

from engine.history import History
from explorer.loss.change_marks import ChangeMarks, marks_by_step


def history_with(changes) -> History:
    history = History()
    history.changes = [list(c) for c in changes]
    return history


def test_the_changes_of_one_step_share_one_mark():
    changes = [[521, "beta", 8.0, 1.0], [1041, "beta", 1.0, 8.0], [1041, "lr", 0.001, 0.002]]
    assert marks_by_step(changes, None) == [(521.0, "lr 1 → 8"), (1041.0, "lr 8 → 1, lr 0.002 → 0.001")]


def test_two_marks_labels_do_not_overlap_on_a_laptop_sized_plot(qtbot):
    # the README's screenshot at 1280x800: β 1 → 8 at step 521, β 8 → 1 and lr 0.002 → 0.001 at 1041
    # in a loss plot about 330 x 190 px (its plot area ~140 px tall); the labels met in the middle and covered each other
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(330, 190)
    widget.show()
    widget.plot(np.arange(1560.0), np.linspace(30, 20, 1560))
    marks = ChangeMarks(widget.getPlotItem())
    marks.sync(history_with([[521, "beta", 8.0, 1.0], [1041, "beta", 1.0, 8.0], [1041, "lr", 0.001, 0.002]]), None)
    qtbot.wait(50)
    assert len(marks.lines) == 2
    boxes = [line.label.mapRectToScene(line.label.boundingRect()) for line in marks.lines]
    assert not boxes[0].intersects(boxes[1]), [(b.left(), b.top(), b.right(), b.bottom()) for b in boxes]


def test_a_new_change_at_the_last_marked_step_relabels_it(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    marks = ChangeMarks(widget.getPlotItem())
    history = history_with([[10, "lr", 0.001, 0.002]])
    marks.sync(history, None)
    history.changes.append([10, "lr", 0.0005, 0.001])
    marks.sync(history, None)
    assert marks.texts() == ["lr 0.002 → 0.001, lr 0.001 → 0.0005"]
