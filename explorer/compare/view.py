"""The comparison (``compareView``): 2 to 6 runs side by side, following them live.

Tabs: linked maps (a map and a decoder per run, a hover strip with the input and each model's
reconstruction, box/lasso selection exported as CSV), reconstructions of the same inputs,
samples from the same noise, the metrics table, the rate–distortion plane (hover a run's point:
its map and decoder are ringed; click: the maps) and the overlaid loss curves.  The whole
comparison exports as one figure (PNG or SVG) with the run names as labels.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserError
from engine.storage import atomic_write
from explorer.compare.loss import CompareLossPlot
from explorer.compare.maps import CompareColumn, MapLinks
from explorer.compare.metrics import CompareMetricsTable
from explorer.compare.pictures import ReconstructionsPanel, SamplesPanel
from explorer.compare.rate_distortion import RateDistortionPlane
from explorer.runs_panel import short_name
from explorer.session import RunState, Session
from explorer.widgets import ImageCanvas, to_qimage

MIN_RUNS, MAX_RUNS = 2, 6
#: one colour per compared run (Tableau 10, as engine.compare's figure)
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
FIGURE_WIDTH = 1400
PNG_SCALE = 2
LOSS_FIGURE_PX = 420   # the loss curves' height in the figure


def check_run_count(states: list[RunState]) -> None:
    if not MIN_RUNS <= len(states) <= MAX_RUNS:
        raise UserError(f"Check {MIN_RUNS} to {MAX_RUNS} runs in the runs list to compare them "
                        f"({len(states)} {'is' if len(states) == 1 else 'are'} checked).")
    without = [short_name(s.name) for s in states if s.model is None]
    if without:
        raise UserError(f"{', '.join(without)} has no model yet to compare; start or open it first.")


class HoverStrip(QWidget):
    """The hovered image and each model's reconstruction of it, labelled."""

    def __init__(self, columns: list[CompareColumn], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareHoverStrip")
        self.columns = columns
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.caption = QLabel("Hover a point: its image and each model's reconstruction.")
        self.caption.setObjectName("compareHoverCaption")
        self.caption.setWordWrap(True)
        self.caption.setMaximumWidth(180)
        layout.addWidget(self.caption)
        self.canvases: list[ImageCanvas] = []
        for name in ["input"] + [short_name(c.state.name) for c in columns]:
            box = QVBoxLayout()
            canvas = ImageCanvas()
            canvas.setFixedSize(64, 64)
            canvas.set_placeholder("hover")
            label = QLabel(name)
            label.setMaximumWidth(110)
            label.setToolTip(name)
            box.addWidget(canvas, 0, Qt.AlignmentFlag.AlignHCenter)
            box.addWidget(label, 0, Qt.AlignmentFlag.AlignHCenter)
            layout.addLayout(box)
            self.canvases.append(canvas)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def show_image(self, image: int | None) -> None:
        if image is None:
            return
        dataset = self.columns[0].state.dataset
        if dataset is not None and image < len(dataset.val):
            self.canvases[0].set_image(to_qimage(np.asarray(dataset.val.images[image], dtype=np.float32) / 255.0))
        for canvas, column in zip(self.canvases[1:], self.columns):
            position = column.position_of(image)
            if position is None or column.state.model is None:
                canvas.set_placeholder("not in this map" if column.state.model is not None else "No model")
                canvas.set_image(None)
                continue
            label = int(column.state.probe.labels[position]) if column.state.model.is_conditional else None
            canvas.set_image(to_qimage(column.state.decode(column.state.probe.codes[position][None], label)[0]))
        self.caption.setText(f"Validation image {image}: the input, then each model's reconstruction.")


class CompareView(QWidget):
    """The comparison window."""

    def __init__(self, session: Session, states: list[RunState], worker=None, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        check_run_count(states)
        self.setObjectName("compareView")
        self.setAccessibleName("compareView")
        self.session = session
        self.states = list(states)
        self.emphasised: int | None = None
        self.setWindowTitle("Compare: " + ", ".join(short_name(s.name) for s in states) + " — Latent Explorer")
        colours = list(RUN_COLOURS[:len(states)])
        for state in states:
            state.ensure_dataset()
        self.columns = [CompareColumn(session, s, worker, c) for s, c in zip(states, colours)]
        self.links = MapLinks(self.columns, self)
        self.maps_page = QWidget()
        self.maps_page.setObjectName("compareMapsPage")
        # the columns scroll sideways where they do not fit: each is ~490 px at its narrowest (its map's
        # toolbar), so three runs or more made the window wider than a 1280-pixel screen
        columns = QWidget()
        grid = QHBoxLayout(columns)
        grid.setContentsMargins(0, 0, 0, 0)
        for column in self.columns:
            grid.addWidget(column, 1)
        self.columns_scroll = QScrollArea()
        self.columns_scroll.setObjectName("compareColumnsScroll")
        self.columns_scroll.setWidgetResizable(True)
        self.columns_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.columns_scroll.setWidget(columns)
        self.strip = HoverStrip(self.columns)
        self.links.hovered.connect(self.strip.show_image)
        self.selection_label = QLabel("Shift+drag a box, or Ctrl+Shift+drag a lasso, in any map: the same images "
                                      "light up in every map.")
        self.selection_label.setWordWrap(True)
        self.export_selection_button = QPushButton("Export selection (CSV)…")
        self.export_selection_button.setObjectName("compareExportSelection")
        self.export_selection_button.setEnabled(False)
        self.export_selection_button.clicked.connect(self._export_selection_dialog)
        selection_row = QHBoxLayout()
        selection_row.addWidget(self.selection_label, 1)
        selection_row.addWidget(self.export_selection_button)
        page = QVBoxLayout(self.maps_page)
        page.setContentsMargins(2, 2, 2, 2)
        page.addWidget(self.columns_scroll, 1)
        page.addWidget(self.strip)
        page.addLayout(selection_row)

        self.reconstructions = ReconstructionsPanel(self.states, colours)
        self.samples = SamplesPanel(self.states, colours)
        self.metrics = CompareMetricsTable(self.states)
        self.loss = CompareLossPlot(self.states, colours)
        self.rate_distortion = RateDistortionPlane(self.states, colours)
        self.rate_distortion.hovered.connect(self.emphasise)
        self.rate_distortion.chosen.connect(self._show_run_map)
        self.links.selection_changed.connect(self._on_selection)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("compareTabs")
        for widget, title in ((self.maps_page, "Maps && decoders"), (self.reconstructions, "Reconstructions"),
                              (self.samples, "Samples"), (self.metrics, "Metrics"),
                              (self.rate_distortion, "Rate–distortion"), (self.loss, "Loss curves")):
            self.tabs.addTab(widget, title)
        figure_button = QPushButton("Export figure (PNG/SVG)…")
        figure_button.setObjectName("compareExportFigure")
        figure_button.clicked.connect(self._export_figure_dialog)
        table_button = QPushButton("Export metrics (CSV)…")
        table_button.setObjectName("compareExportMetrics")
        table_button.clicked.connect(self._export_table_dialog)
        buttons = QHBoxLayout()
        self.status = QLabel()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(table_button)
        buttons.addWidget(figure_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(buttons)
        screen = self.screen().availableGeometry() if self.screen() is not None else QRect(0, 0, 1280, 800)
        self.resize(min(1400, screen.width() - 40), min(860, screen.height() - 60))

    # -- linking from the rate–distortion plane ------------------------------------------------------
    def emphasise(self, index: int | None) -> None:
        """Ring run ``index``'s column (its map and decoder) and name it under the plane; None: none."""
        self.emphasised = index
        for i, column in enumerate(self.columns):
            column.setStyleSheet(f"CompareColumn {{ border: 3px solid {column.colour}; }}" if i == index else "")
            column.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, i == index)
        if index is not None:
            rate, distortion = self.rate_distortion.points[index] or (float("nan"), float("nan"))
            self.status.setText(f"{short_name(self.states[index].name)} ({self.rate_distortion.labels[index]}): "
                                f"rate {rate:.3g} nats, distortion {distortion:.4g} per image; click for its map")

    def _show_run_map(self, index: int) -> None:
        self.emphasise(index)
        self.tabs.setCurrentWidget(self.maps_page)

    # -- selection ----------------------------------------------------------------------------------
    def _on_selection(self, images: np.ndarray) -> None:
        self.export_selection_button.setEnabled(len(images) > 0)
        self.selection_label.setText(f"{len(images):,} images selected (Shift+drag: box, Ctrl+Shift+drag: lasso; "
                                     "Shift+click empty space to clear).")
        self.reconstructions.set_selection(images)

    def export_selection(self, path: str | Path) -> Path:
        """The selected images as CSV: their index in the validation set and their label."""
        path = Path(path)
        if path.suffix.lower() != ".csv":
            raise UserError(f"The selection is written as .csv, not as “{path.name}”.")
        images = self.links.selection
        dataset = self.columns[0].state.dataset
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["validation_index", "label", "class"])
        names = self.columns[0].state.class_names
        for image in images:
            label = int(dataset.val.labels[image]) if dataset is not None and image < len(dataset.val) else ""
            writer.writerow([int(image), label, names[label] if label != "" and label < len(names) else ""])
        atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))
        return path

    # -- the figure ---------------------------------------------------------------------------------
    def _sections(self) -> list[tuple[str, object]]:
        return [("Latent maps and the decoded point", self.maps_page),
                ("Reconstructions of the same images", self.reconstructions.draw()),
                ("Samples", self.samples.draw()),
                ("Loss curves", self.loss)]

    def _figure_size(self, sections) -> QSize:
        height = 40
        for _, item in sections:
            size = item.size() if isinstance(item, QImage) else item.size()
            height += 24 + size.height() + 8
        width = max(FIGURE_WIDTH, *(item.width() for _, item in sections))
        return QSize(width, height)

    def _paint_figure(self, painter: QPainter, sections, size: QSize) -> None:
        painter.fillRect(QRect(QPoint(0, 0), size), QColor("white"))
        title = QFont()
        title.setPixelSize(16)
        title.setBold(True)
        small = QFont()
        small.setPixelSize(13)
        painter.setPen(QColor("black"))
        painter.setFont(title)
        x = 8
        for state, colour in zip(self.states, RUN_COLOURS):
            painter.fillRect(QRect(x, 14, 12, 12), QColor(colour))
            text = short_name(state.name)
            painter.drawText(QPoint(x + 16, 26), text)
            x += 16 + painter.fontMetrics().horizontalAdvance(text) + 24
        y = 40
        for name, item in sections:
            painter.setFont(small)
            painter.setPen(QColor("#343a40"))
            painter.drawText(QPoint(8, y + 16), name)
            y += 24
            if isinstance(item, QImage):
                painter.drawImage(QPoint(8, y), item)
                y += item.height() + 8
            else:
                item.render(painter, QPoint(8, y))
                y += item.height() + 8

    def export_figure(self, path: str | Path) -> Path:
        """The whole comparison in one figure: PNG (at twice the pixel density) or SVG, by the suffix."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".svg"):
            raise UserError(f"The comparison can be exported as .png or .svg, not as “{path.name}”.")
        shown = self.tabs.currentWidget().size()
        for widget, height in ((self.maps_page, shown.height()), (self.loss, min(shown.height(), LOSS_FIGURE_PX))):
            if not widget.isVisible():   # a hidden tab page is laid out at the size it shows at
                widget.resize(shown.width(), height)
        sections = self._sections()
        size = self._figure_size(sections)
        painter = QPainter()
        if suffix == ".png":
            image = QImage(size * PNG_SCALE, QImage.Format.Format_RGB32)
            image.setDevicePixelRatio(PNG_SCALE)
            ok = painter.begin(image)
            if ok:
                self._paint_figure(painter, sections, size)
                painter.end()
                ok = image.save(str(path))
        else:
            svg = QSvgGenerator()
            svg.setFileName(str(path))
            svg.setSize(size)
            svg.setViewBox(QRectF(0, 0, size.width(), size.height()))
            svg.setTitle("Latent Explorer comparison: " + ", ".join(s.name for s in self.states))
            ok = painter.begin(svg)
            if ok:
                self._paint_figure(painter, sections, size)
                painter.end()
        if not ok:
            raise UserError(f"Could not write {path}; check that its folder exists and is writable.")
        self.status.setText(f"Wrote {path}")
        return path

    # -- dialogs ------------------------------------------------------------------------------------
    def _ask_path(self, title: str, default: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / default), filters)
        return path

    def _run_export(self, action, *args) -> None:
        try:
            written = action(*args)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return
        if written is not None:
            self.status.setText(f"Wrote {written}")

    def _export_figure_dialog(self) -> None:
        path = self._ask_path("Export the comparison", "comparison.png", "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            self._run_export(self.export_figure, path)

    def _export_table_dialog(self) -> None:
        path = self._ask_path("Export the metrics table", "metrics.csv", "CSV (*.csv)")
        if path:
            self._run_export(lambda p: (self.metrics.export_csv(p), p)[1], path)

    def _export_selection_dialog(self) -> None:
        path = self._ask_path("Export the selection", "selection.csv", "CSV (*.csv)")
        if path:
            self._run_export(self.export_selection, path)

    # -- closing ------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        for column in self.columns:
            column.map.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
