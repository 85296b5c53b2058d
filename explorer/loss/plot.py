"""The loss plot: the active run's total and named loss terms, live, with validation per epoch.

Per-step training values are drawn smoothed (a debiased exponential moving average, as
TensorBoard draws them), optionally with the raw values faint behind; validation values are
dashed markers at the step where each epoch ended; a dotted line labelled "β 4 → 1" marks each
setting changed while the run trained (``change_marks``).  Other runs can be overlaid for comparison.

Updates arrive every few steps and runs have up to ~100k steps, so every curve keeps its data
in growing NumPy arrays: a redraw (once a frame of the run, ``session.FRAME_MS``) appends only
the new tail of the run's history, and pyqtgraph downsamples (peak) and clips to the view.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QAction, QColor, QImage, QPaintDevice, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QGraphicsWidget,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserError
from explorer.loss.change_marks import ChangeMarks
from explorer.loss.curves import (
    OVERLAY_COLOURS,
    OVERLAY_DASHES,
    SideLegend,
    TermCurves,
    TermSample,
    ValidationSample,
    step_curve,
    term_colour,
)
from explorer.loss.plot_grid import GridLines, SteadyViewBox, paint_plot_onto
from explorer.loss.series import INLIER_FRACTION, TOTAL, LossSeries
from explorer.runs_panel import short_name
from explorer.session import RunState, Session, rebind

PNG_SCALE = 2   # PNG exports are drawn as on a screen with twice the pixel density
EXPORT_SIZE = QSize(1200, 600)   # logical size of an exported plot (2:1), whatever the dock's shape
LEGEND_ROW_PX = 20                # the height of a legend entry


class PlainLogAxis(pg.AxisItem):
    """An axis whose log-mode ticks read as plain numbers (40, 0.5) where they fit, not 4·10¹."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 — pyqtgraph's name
        out = []
        for value in 10 ** np.asarray(values, dtype=float) * scale:
            if value == 0 or 1e-4 <= abs(value) < 1e6:
                out.append(f"{value:.4g}")
            else:
                out.extend(super().logTickStrings([math.log10(abs(value))], 1.0, spacing))
        return out


def _overlay_label(state: RunState) -> str:
    return f"{short_name(state.name)} ({TOTAL})"


def _name(widget: QWidget, name: str) -> QWidget:
    widget.setObjectName(name)
    widget.setAccessibleName(name)
    return widget


class LossPlot(QWidget):
    """Loss curves of the session's active run, plus the smoothed totals of overlaid runs."""

    def __init__(self, session: Session, parent: QWidget | None = None, *, state: RunState | None = None):
        """``state``: show this run, always (by default the plot follows the session's active run)."""
        super().__init__(parent)
        _name(self, "lossPlot")
        self.session = session
        self.state: RunState | None = None
        self.curves: dict[str, TermCurves] = {}
        self.overlays: list[tuple[RunState, LossSeries, pg.PlotDataItem]] = []
        self._overlay_states: list[RunState] = []
        self._hidden: set[str] = set()

        self.smoothing = _name(QDoubleSpinBox(), "lossSmoothing")
        self.smoothing.setRange(0.0, 0.999)
        self.smoothing.setDecimals(3)
        self.smoothing.setSingleStep(0.05)
        self.smoothing.setValue(0.9)
        self.smoothing.setToolTip("Moving average of the per-step losses: 0 draws them raw, nearer 1 is smoother.")
        self.raw = _name(QCheckBox("Raw"), "lossRaw")
        self.raw.setToolTip("Also draw the raw per-step values, faintly.")
        self.log_y = _name(QCheckBox("Log y"), "lossLogY")
        self.ignore_outliers = _name(QCheckBox("Ignore outliers"), "lossIgnoreOutliers")
        self.ignore_outliers.setToolTip("Scale the y axis to the middle 98% of each curve's values, as TensorBoard "
                                        "does: the first steps' high losses no longer flatten the rest.")
        self.ignore_outliers.setChecked(True)
        self.terms_menu = QMenu(self)
        self.terms_button = _name(QToolButton(), "lossTerms")
        self.terms_button.setText("Terms")
        self.terms_button.setToolTip("Show or hide loss terms (clicking a legend entry does the same).")
        self.terms_button.setMenu(self.terms_menu)
        self.terms_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        self.plot = _name(pg.PlotWidget(viewBox=SteadyViewBox(), axisItems={"left": PlainLogAxis("left")}),
                          "lossPlotView")
        self.plot.setMinimumHeight(150)
        self.plot_item: pg.PlotItem = self.plot.getPlotItem()
        self.plot_item.setLabel("bottom", "step")
        self.plot_item.setLabel("left", "loss")
        self.grid = GridLines(self.plot_item)
        self.plot_item.setDownsampling(auto=True, mode="peak")   # applies to every curve added later
        self.plot_item.setClipToView(True)
        # The legend sits beside the data, in a column the plot keeps free for it: inside the view it
        # covered the newest part of the curves.
        self._legend_room = QGraphicsWidget()
        self.plot_item.layout.addItem(self._legend_room, 2, 3)
        self.legend = SideLegend(self._fit_legend, offset=None, colCount=1, verSpacing=-4)
        self.legend.setParentItem(self.plot_item)
        self.legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-2, 2))
        self._val_key = pg.PlotDataItem(pen=pg.mkPen("#868e96", width=1, style=Qt.PenStyle.DashLine), symbol="o",
                                        symbolSize=6, symbolBrush="#868e96", symbolPen="#868e96")
        # a key only: clicking it hides every validation curve
        self.legend.addItem(ValidationSample(self._val_key, self._validation_colours), "validation")
        self.crosshair = pg.InfiniteLine(angle=90, movable=False)
        self.crosshair.setVisible(False)
        self.plot_item.addItem(self.crosshair, ignoreBounds=True)
        self.change_marks = ChangeMarks(self.plot_item)   # β, lr, ... changed while the run trained
        self.readout = _name(QLabel(), "lossReadout")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setWordWrap(True)   # never widens the window; long readouts take a second line

        export_action = QAction("Export…", self.plot)
        export_action.triggered.connect(self._export_dialog)
        self.plot.scene().contextMenu = [export_action]   # replaces pyqtgraph's Export dialog (see export())

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        for widget in (self.smoothing, self.raw, self.log_y, self.ignore_outliers, self.terms_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)

        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.raw.toggled.connect(self._on_visibility_changed)
        self.log_y.toggled.connect(lambda on: self.plot_item.setLogMode(x=False, y=on))
        self.ignore_outliers.toggled.connect(self._on_ignore_outliers)
        self._on_ignore_outliers(self.ignore_outliers.isChecked())
        self.legend.sigSampleClicked.connect(self._on_legend_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.installEventFilter(self)
        self.plot_item.vb.sigResized.connect(self._fit_legend)
        if state is None:
            session.active_changed.connect(self._show_run)

        self._apply_palette()
        self._show_run(state if state is not None else session.active)

    # -- public ------------------------------------------------------------------------------
    def mark_step(self, step: int | None) -> None:
        """Mark an optimizer step with a vertical line (the training movie's frame), or none."""
        if not hasattr(self, "step_mark"):
            self.step_mark = pg.InfiniteLine(angle=90, movable=False,
                                             pen=pg.mkPen("#e8590c", width=2, style=Qt.PenStyle.DashLine))
            self.step_mark.setZValue(30)
            self.plot_item.addItem(self.step_mark, ignoreBounds=True)
        if step is None:
            self.step_mark.setVisible(False)
        else:
            self.step_mark.setValue(float(step))
            self.step_mark.setVisible(True)

    def marked_step(self) -> float | None:
        mark = getattr(self, "step_mark", None)
        return float(mark.value()) if mark is not None and mark.isVisible() else None

    def set_overlays(self, states: list[RunState]) -> None:
        """Also draw these runs' smoothed totals (the active run is never its own overlay)."""
        for state, _, curve in self.overlays:
            state.refreshed.disconnect(self._redraw)
            self.plot_item.removeItem(curve)
            self.legend.removeItem(curve)
        self._overlay_states = list(states)
        self.overlays = []
        for state in dict.fromkeys(s for s in states if s is not self.state):
            i = len(self.overlays)
            colour = QColor(OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)])
            curve = step_curve(pg.mkPen(colour, width=2, style=OVERLAY_DASHES[i % len(OVERLAY_DASHES)]))
            curve.setZValue(-1)
            self.plot_item.addItem(curve)
            self.legend.addItem(curve, _overlay_label(state))
            self.overlays.append((state, LossSeries(state.history, TOTAL, self.smoothing.value()), curve))
            state.refreshed.connect(self._redraw)
        self._redraw()

    def set_term_visible(self, name: str, visible: bool) -> None:
        """Show or hide a term of the active run; a hidden term stays hidden for other runs too."""
        if visible != (name not in self._hidden):
            (self._hidden.discard if visible else self._hidden.add)(name)
            self._on_visibility_changed()

    def export(self, path: str | Path, size: QSize = EXPORT_SIZE) -> None:
        """Write the plot, as it shows now but laid out at ``size`` (2:1, whatever the dock's
        shape: a wide, short dock made 3000×248 px pictures), to PNG (at twice the pixel density)
        or SVG, by the file's suffix.  Raises UserError, in one sentence, for another suffix or an
        unwritable file.

        pyqtgraph's exporters are not used: its SVGExporter fails on the closed paths Qt 6.11
        writes, and its ImageExporter scales the axes' text but not the legend's."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".png":
            image = QImage(size * PNG_SCALE, QImage.Format.Format_ARGB32)
            image.setDevicePixelRatio(PNG_SCALE)
            written = self._paint_onto(image, size) and image.save(str(path))
        elif suffix == ".svg":
            svg = QSvgGenerator()
            svg.setFileName(str(path))
            svg.setSize(size)
            svg.setViewBox(QRectF(0, 0, size.width(), size.height()))
            svg.setResolution(int(self.plot.logicalDpiX()))
            svg.setTitle(f"Loss — {self.state.name}" if self.state is not None else "Loss")
            written = self._paint_onto(svg, size)
        else:
            raise UserError(f"The loss plot can be exported as .png or .svg, not as “{path.name}”.")
        if not written:
            raise UserError(f"Could not write {path}; check that its folder exists and is writable.")

    # -- the active run ----------------------------------------------------------------------
    def _show_run(self, state: RunState | None) -> None:
        for curves in self.curves.values():
            for item in curves.items():
                self.plot_item.removeItem(item)
            self.legend.removeItem(curves.smooth)
        self.terms_menu.clear()
        self.curves = {}
        self.change_marks.clear()
        self.state = rebind(self.state, state, {"refreshed": self._redraw})
        self.set_overlays(self._overlay_states)   # drops the new active run from the overlays; redraws
        self._hide_crosshair()

    def _add_term(self, name: str) -> None:
        series = LossSeries(self.state.history, name, self.smoothing.value())
        curves = self.curves[name] = TermCurves(self.plot_item, series)
        self.legend.addItem(TermSample(curves.smooth, lambda: curves.same_as_total), name)
        action = self.terms_menu.addAction(name)
        action.setCheckable(True)
        action.toggled.connect(lambda on: self.set_term_visible(name, on))

    def _move_keys_after_terms(self) -> None:
        """Keep the legend in the order: terms, the validation key, overlaid runs."""
        for item, label in [(self._val_key, "validation")] + [(c, _overlay_label(s)) for s, _, c in self.overlays]:
            self.legend.removeItem(item)   # (closes its sample: a new one is made)
            self.legend.addItem(ValidationSample(item, self._validation_colours) if item is self._val_key else item,
                                label)

    def _validation_colours(self) -> list[QColor]:
        return [term_colour(name) for name, c in self.curves.items() if c.val.isVisible()] or \
            [term_colour(name) for name in self.curves]

    def _fit_legend(self) -> None:
        """Keep a column beside the data as wide as the legend; spread the legend over more columns
        when it is taller than the plot."""
        legend = getattr(self, "legend", None)
        if legend is None or getattr(self, "_fitting", False):
            return
        self._fitting = True
        try:
            rows_room = max(1, int(self.plot_item.height() // LEGEND_ROW_PX))
            columns = max(1, math.ceil(len(legend.items) / rows_room))
            if columns != legend.columnCount:
                legend.setColumnCount(columns)
            self._legend_room.setMinimumWidth(legend.width() + 4)
            self._legend_room.setMaximumWidth(legend.width() + 4)
        finally:
            self._fitting = False

    def _redraw(self) -> None:
        """Append what the histories gained to the curves (new terms get curves and a legend entry)."""
        if self.state is not None:
            new_terms = [name for name in self.state.history.terms if name not in self.curves]
            for name in sorted(new_terms, key=lambda name: name != TOTAL):
                self._add_term(name)
            if new_terms:
                self._apply_visibility()
                self._move_keys_after_terms()
        for curves in self.curves.values():
            curves.series.sync()
            curves.redraw()
        for _, series, curve in self.overlays:
            series.sync()
            curve.setData(series.steps, series.smoothed)
        self._mark_terms_equal_to_total()
        self.change_marks.sync(*((self.state.history, self.state.model_cfg) if self.state is not None else (None, None)))
        # Fit the view now rather than in the next paint: pyqtgraph fits it while painting, which
        # moves the axes mid-paint and queues a second, full repaint of every frame.
        self.plot_item.vb.prepareForPaint()

    def _on_smoothing(self, value: float) -> None:
        for series in [c.series for c in self.curves.values()] + [s for _, s, _ in self.overlays]:
            series.set_smoothing(value)
        self._redraw()

    def _on_ignore_outliers(self, on: bool) -> None:
        self.plot_item.vb.y_fraction = INLIER_FRACTION if on else 1.0
        self.plot_item.vb.enableAutoRange(axis=pg.ViewBox.YAxis)

    def _on_visibility_changed(self) -> None:
        self._apply_visibility()
        self._redraw()   # raw curves are only fed while they are shown

    def _mark_terms_equal_to_total(self) -> None:
        """A term equal to the total at every step (a VAE's neg_elbo is its total) would be drawn
        exactly under it: it is left out while the total is shown, and its legend entry says why."""
        total = self.curves.get(TOTAL)
        changed = False
        for name, curves in self.curves.items():
            same = total is not None and curves is not total and np.array_equal(curves.series.raw, total.series.raw)
            if same != curves.same_as_total:
                curves.same_as_total, changed = same, True
                for sample, label in self.legend.items:
                    if sample.item is curves.smooth:
                        label.setText(f"{name} (= {TOTAL})" if same else name,
                                      color=self.palette().color(QPalette.ColorRole.Text))
                        sample.update()
        if changed:
            self._apply_visibility()

    def _apply_visibility(self) -> None:
        show_val = self._val_key.isVisible()
        total_shown = TOTAL in self.curves and TOTAL not in self._hidden
        for name, curves in self.curves.items():
            shown = name not in self._hidden and not (curves.same_as_total and total_shown)
            curves.smooth.setVisible(shown)
            curves.raw.setVisible(shown and self.raw.isChecked())
            curves.val.setVisible(shown and show_val)
        for action in self.terms_menu.actions():
            action.setChecked(action.text() not in self._hidden)

    def _on_legend_clicked(self, item: pg.PlotDataItem) -> None:
        """pyqtgraph has toggled the clicked item; extend that to the term's other curves."""
        term = next((name for name, c in self.curves.items() if c.smooth is item), None)
        if term is not None:
            self.set_term_visible(term, item.isVisible())
        elif item is self._val_key:
            self._apply_visibility()

    # -- crosshair readout --------------------------------------------------------------------
    def _on_mouse_moved(self, pos: QPointF) -> None:
        view = self.plot_item.vb
        if not view.sceneBoundingRect().contains(pos):
            self._hide_crosshair()
            return
        x = view.mapSceneToView(pos).x()
        self.crosshair.setPos(x)
        self.crosshair.setVisible(True)
        shown = [(name, term_colour(name), c.series) for name, c in self.curves.items() if c.smooth.isVisible()]
        shown += [(state.name, curve.opts["pen"].color(), series) for state, series, curve in self.overlays
                  if curve.isVisible()]
        parts = [f"step <b>{max(0, round(x)):,}</b>"]
        for name, colour, series in shown:
            value = series.value_at(x)
            if value is not None:
                parts.append(f"<span style='color:{colour.name()}'>■</span> {escape(name)} {value:.4g}")
        self.readout.setText("&nbsp;&nbsp; ".join(parts))

    def _hide_crosshair(self) -> None:
        self.crosshair.setVisible(False)
        self.readout.setText("Move over the plot to read the values at a step." if self.state is not None
                             else "No run selected.")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.plot and event.type() == QEvent.Type.Leave:
            self._hide_crosshair()
        return super().eventFilter(watched, event)

    # -- palette ------------------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)

    def _apply_palette(self) -> None:
        palette = self.palette()
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        mid = palette.color(QPalette.ColorRole.Mid)
        self.plot.setBackground(pg.mkColor(base))
        self.grid.set_colours(base, text)
        for side in ("left", "bottom"):
            self.plot_item.getAxis(side).setPen(pg.mkPen(mid))
            self.plot_item.getAxis(side).setTextPen(pg.mkPen(text))
        legend_fill = QColor(base)
        legend_fill.setAlpha(210)
        self.legend.setBrush(legend_fill)
        self.legend.setPen(pg.mkPen(mid))
        self.legend.setLabelTextColor(text)   # for entries added later; the existing ones are re-rendered
        for _, label in self.legend.items:
            label.setText(label.text, color=text)
        self.crosshair.setPen(pg.mkPen(text, width=1, style=Qt.PenStyle.DotLine))

    # -- export -------------------------------------------------------------------------------
    def _paint_onto(self, device: QPaintDevice, size: QSize) -> bool:
        """Paint the plot, laid out at ``size``, onto an image or SVG generator, without the crosshair."""
        crosshair_shown = self.crosshair.isVisible()
        self.crosshair.setVisible(False)
        try:
            return paint_plot_onto(self.plot, device, size, relayout=self._fit_legend)
        finally:
            self.crosshair.setVisible(crosshair_shown)

    def _export_dialog(self) -> None:
        name = self.state.name if self.state is not None else "loss"
        path, chosen = QFileDialog.getSaveFileName(self, "Export the loss plot", f"{name}-loss.png",
                                                   "PNG image (*.png);;SVG drawing (*.svg)")
        if not path:
            return
        if Path(path).suffix.lower() not in (".png", ".svg"):
            path += ".svg" if "svg" in chosen.lower() else ".png"
        try:
            self.export(path)
        except UserError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
