"""The compared runs' loss curves overlaid: any term (not only the total), training and
validation, against the optimizer step or the epoch, one colour per run; the legend is a column
beside the plot, so it never covers a curve."""

from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from explorer.loss.plot import PlainLogAxis
from explorer.loss.series import TOTAL, LossSeries
from explorer.runs_panel import short_name
from explorer.session import RunState


class CompareLossPlot(QWidget):
    def __init__(self, states: list[RunState], colours: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareLossPlot")
        self.states, self.colours = states, colours
        self.term = QComboBox()
        self.term.setObjectName("compareLossTerm")
        self.term.setToolTip("The loss term to overlay (every run's terms are offered).")
        self.axis = QComboBox()
        self.axis.setObjectName("compareLossAxis")
        self.axis.addItem("against step", "step")
        self.axis.addItem("against epoch", "epoch")
        self.log_y = QCheckBox("Log y")
        self.plot = pg.PlotWidget(axisItems={"left": PlainLogAxis("left")},
                                  background=self.palette().color(QPalette.ColorRole.Base))
        self.plot_item = self.plot.getPlotItem()
        self.plot_item.setDownsampling(auto=True, mode="peak")
        self.plot_item.setClipToView(True)
        self.plot_item.showGrid(x=True, y=True, alpha=0.15)
        self.legend = QLabel()
        self.legend.setObjectName("compareLossLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.legend.setMaximumWidth(220)
        self.legend.setWordWrap(True)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Term"))
        for widget in (self.term, self.axis, self.log_y):
            controls.addWidget(widget)
        controls.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addWidget(self.legend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(body, 1)
        self.curves: list[tuple[pg.PlotDataItem, pg.PlotDataItem]] = []
        for i, _ in enumerate(states):
            colour = colours[i]
            train = pg.PlotDataItem(pen=pg.mkPen(colour, width=2), antialias=False, autoDownsampleFactor=1.0)
            val = pg.PlotDataItem(pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine), symbol="o",
                                  symbolSize=6, symbolBrush=colour, symbolPen=colour)
            self.plot_item.addItem(train)
            self.plot_item.addItem(val)
            self.curves.append((train, val))
        self._series: dict[tuple[int, str], LossSeries] = {}
        self.term.currentIndexChanged.connect(self.redraw)
        self.axis.currentIndexChanged.connect(self.redraw)
        self.log_y.toggled.connect(lambda on: self.plot_item.setLogMode(x=False, y=on))
        for state in states:
            state.refreshed.connect(self.redraw)
            state.status_changed.connect(lambda _s: self.redraw())
        self.redraw()

    def terms(self) -> list[str]:
        names = dict.fromkeys([TOTAL])
        for state in self.states:
            names.update(dict.fromkeys(state.history.terms))
            names.update(dict.fromkeys(state.history.val))
        return list(names)

    def _update_terms(self) -> None:
        terms = self.terms()
        if terms != [self.term.itemText(i) for i in range(self.term.count())]:
            current = self.term.currentText() or TOTAL
            self.term.blockSignals(True)
            self.term.clear()
            self.term.addItems(terms)
            self.term.setCurrentIndex(max(0, terms.index(current)) if current in terms else 0)
            self.term.blockSignals(False)

    def redraw(self) -> None:
        self._update_terms()
        term, by_epoch = self.term.currentText() or TOTAL, self.axis.currentData() == "epoch"
        self.plot_item.setLabel("bottom", "epoch" if by_epoch else "optimizer step")
        self.plot_item.setLabel("left", f"{term} (per image)")
        entries = []
        for i, (state, (train, val)) in enumerate(zip(self.states, self.curves)):
            h = state.history
            if by_epoch:
                values = h.train.get(term, [])
                n = min(len(values), len(h.epochs))
                train.setData(np.asarray(h.epochs[:n], float), np.asarray(values[:n], float))
                x_val = np.asarray(h.epochs, float)
            else:
                series = self._series.get((i, term))
                if series is None or series.history is not h:
                    series = self._series[(i, term)] = LossSeries(h, term, 0.9)
                series.sync()
                train.setData(series.steps, series.smoothed)
                x_val = np.asarray(h.epoch_steps, float)
            val_values = h.val.get(term, [])
            n = min(len(val_values), len(x_val))
            val.setData(x_val[len(x_val) - n:], np.asarray(val_values[len(val_values) - n:], float))
            has = bool(h.terms.get(term) or h.val.get(term))
            entries.append(f"<span style='color:{self.colours[i]}'>━</span> {escape(short_name(state.name))}"
                           + ("" if has else " <i>(no such term)</i>"))
        self.legend.setText("<br>".join(entries) + "<br><br><small>solid: training (smoothed per step, or the "
                                                   "epoch mean)<br>dashed ●: validation per epoch</small>")
