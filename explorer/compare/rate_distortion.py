"""The rate–distortion plane of the compared runs: each run a point at (rate, distortion).

Rate is the KL term of the run's last validation epoch (nats per image: KL(q(z|x) ‖ p(z)) summed
over latent dimensions, on the validation images); distortion is the reconstruction term of the same
epoch (nats per image for the normalised likelihoods, the run's own unit otherwise; the axis says
which).  Each point is labelled by what differs between the runs (β, latent size, variant…), as a
sweep names its runs.  Hovering a point emits ``hovered(i)`` (the comparison rings that run's map
and decoder); a click emits ``chosen(i)``.  Exports: PNG, SVG (the scene in pyqtgraph's export
mode, as the loss plot) and CSV (run, swept values, rate, distortion, units), each written
atomically.  Variants without a KL term (AE, AAE, WAE…) have no point; the note says so.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Signal
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import UserError
from engine.latent_geometry import rate_distortion
from engine.models import NORMALISED_LIKELIHOODS, variant
from engine.storage import atomic_write
from engine.sweep import describe, swept_axes
from explorer.loss.plot_grid import paint_plot_onto
from explorer.runs_panel import short_name
from explorer.session import RunState

FORMATS = (".png", ".svg", ".csv")
EXPORT_SIZE = QSize(720, 540)


def settings_of(state: RunState) -> dict:
    """A run's settings as flat name → value (the variant, latent size, widths, each parameter)."""
    model = state.model_cfg
    values = {"variant": model.variant, "latent_dim": model.latent_dim, "hidden": list(model.hidden),
              "likelihood": model.likelihood, "lr": state.train_cfg.lr, "epochs": state.train_cfg.epochs}
    if model.params is not None and dataclasses.is_dataclass(model.params):
        values.update(dataclasses.asdict(model.params))
    return values


def run_labels(states: list[RunState]) -> list[str]:
    """Each run's label: the settings that differ between the runs that have a KL term
    (``beta=4 z=2``); its name where nothing differs or it has no KL term."""
    with_kl = [i for i, s in enumerate(states) if _has_kl(s)]
    settings = {i: settings_of(states[i]) for i in with_kl}
    axes = swept_axes(settings.values())
    return [describe({k: v for k, v in settings[i].items() if k in axes}) if i in settings and axes
            else short_name(s.name) for i, s in enumerate(states)]


#: room right of the rightmost point for its label, as a fraction of the points' spread of rates
LABEL_ROOM = 0.18
#: points closer than this fraction of the plane's span (on both axes) have their labels stacked
NEAR_FRACTION = 0.04


def label_lines(points: list[tuple[float, float] | None]) -> list[int]:
    """How many text lines below its point each label sits: 0, except for points (nearly) on an
    earlier point, whose labels go one line lower each (collapsed runs all sit at rate 0, and
    their labels covered each other)."""
    shown = [p for p in points if p is not None]
    if not shown:
        return [0] * len(points)
    xs, ys = [p[0] for p in shown], [p[1] for p in shown]
    span_x, span_y = (max(max(v) - min(v), 1e-9) for v in (xs, ys))
    lines: list[int] = []
    for i, p in enumerate(points):
        near = [j for j in range(i) if p is not None and points[j] is not None
                and abs(points[j][0] - p[0]) <= NEAR_FRACTION * span_x
                and abs(points[j][1] - p[1]) <= NEAR_FRACTION * span_y]
        lines.append(max((lines[j] + 1 for j in near), default=0))
    return lines


def _has_kl(state: RunState) -> bool:
    try:
        return variant(state.model_cfg.variant).has_density
    except ValueError:
        return False


class RateDistortionPlane(QWidget):
    """Rate (KL) against distortion (reconstruction) of the compared runs' last validation epoch."""

    hovered = Signal(object)   # index of the run under the pointer, or None
    chosen = Signal(int)

    def __init__(self, states: list[RunState], colours: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("rateDistortionPlane")
        self.states = list(states)
        self.colours = list(colours)
        self.labels = run_labels(self.states)
        self.points: list[tuple[float, float] | None] = []
        self.plot = pg.PlotWidget(self)
        self.plot.setBackground(self.palette().color(QPalette.ColorRole.Base))
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "rate: KL(q(z|x) ‖ p(z)), nats per image")
        self.scatter = pg.ScatterPlotItem(size=14, hoverable=True, hoverSize=18)
        self.plot.addItem(self.scatter)
        self.scatter.sigHovered.connect(self._on_hover)
        self.scatter.sigClicked.connect(self._on_click)
        self.texts: list[pg.TextItem] = []
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.status = QLabel(self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for suffix in FORMATS:
            button = QPushButton(f"Export {suffix[1:].upper()}…", self)
            button.setObjectName(f"rateDistortionExport{suffix[1:].upper()}")
            button.clicked.connect(lambda _=False, s=suffix: self._export_dialog(s))
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        for state in self.states:
            state.refreshed.connect(self.refresh)
        self.refresh()

    # -- data ----------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Place every run at its latest validation (rate, distortion)."""
        self.points = [rate_distortion(s.history.val) for s in self.states]
        spots = []
        for item in self.texts:
            self.plot.removeItem(item)
        self.texts = []
        lines = label_lines(self.points)
        for i, point in enumerate(self.points):
            if point is None:
                continue
            colour = self.colours[i % len(self.colours)]
            spots.append({"pos": point, "data": i, "brush": pg.mkBrush(colour), "pen": pg.mkPen("k", width=0.5)})
            text = pg.TextItem(self.labels[i], color=colour, anchor=(0, 1 - lines[i]))   # a line lower each
            text.setPos(*point)
            self.plot.addItem(text)
            self.texts.append(text)
        self.scatter.setData(spots)
        self._fit_view()
        units = {s.model_cfg.likelihood in NORMALISED_LIKELIHOODS for s in self.states}
        self.plot.setLabel("left", "distortion: reconstruction term, "
                           + ("nats per image" if units == {True} else "per image (the runs' own units)"))
        missing = [short_name(s.name) for s, p in zip(self.states, self.points) if p is None]
        words = ("Each run at its last validation epoch: rate = KL term, distortion = reconstruction term, "
                 "on the validation images. Hover a point: its run's map is ringed; click: the maps.")
        if missing:
            words += f" No KL term (no point): {', '.join(missing)}."
        self.note.setText(words)

    def _fit_view(self) -> None:
        """Every point with room for its label: the labels run right of and below their points, and
        the rightmost one was cut at the plane's edge."""
        shown = [p for p in self.points if p is not None]
        if not shown:
            return
        xs, ys = [p[0] for p in shown], [p[1] for p in shown]
        span_x, span_y = max(max(xs) - min(xs), 0.1), max(max(ys) - min(ys), 0.1)
        self.plot.setXRange(min(xs) - 0.05 * span_x, max(xs) + LABEL_ROOM * span_x, padding=0)
        self.plot.setYRange(min(ys) - 0.08 * span_y, max(ys) + 0.08 * span_y, padding=0)

    def rows(self) -> list[dict]:
        """One row per run with a point: name, label, rate, distortion and their units."""
        out = []
        for state, label, point in zip(self.states, self.labels, self.points):
            if point is None:
                continue
            unit = "nats per image" if state.model_cfg.likelihood in NORMALISED_LIKELIHOODS else "per image"
            out.append({"run": state.name, "label": label, "rate_kl": point[0], "rate_unit": "nats per image",
                        "distortion_reconstruction": point[1], "distortion_unit": unit,
                        "measured_on": "validation images, last epoch"})
        return out

    # -- linking -------------------------------------------------------------------------------------
    def _on_hover(self, item, points, event=None) -> None:
        index = int(points[0].data()) if len(points) else None
        self.hovered.emit(index)

    def _on_click(self, item, points, event=None) -> None:
        if len(points):
            self.chosen.emit(int(points[0].data()))

    # -- exports -------------------------------------------------------------------------------------
    def export(self, path: str | Path) -> Path:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise UserError(f"The rate–distortion plane is exported as .png, .svg or .csv, not as “{path.name}”.")
        if not self.rows():
            raise UserError("There is nothing to export: none of these runs has a KL term yet.")
        if suffix == ".csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(self.rows()[0]))
            writer.writeheader()
            writer.writerows(self.rows())
            atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))
        elif suffix == ".png":
            image = QImage(EXPORT_SIZE * 2, QImage.Format.Format_ARGB32)
            image.setDevicePixelRatio(2)
            atomic_write(path, lambda tmp: _save_or_raise(self._paint_onto(image) and image.save(str(tmp), "PNG"), path))
        else:
            def write_svg(tmp: str) -> None:
                svg = QSvgGenerator()
                svg.setFileName(tmp)
                svg.setSize(EXPORT_SIZE)
                svg.setViewBox(QRectF(0, 0, EXPORT_SIZE.width(), EXPORT_SIZE.height()))
                svg.setTitle("Rate–distortion plane")
                _save_or_raise(self._paint_onto(svg), path)
            atomic_write(path, write_svg)
        self.status.setText(f"Wrote {path}")
        return path

    def _paint_onto(self, device) -> bool:
        """Paint the plane, laid out at ``EXPORT_SIZE``, onto an image or SVG generator (as the loss plot)."""
        return paint_plot_onto(self.plot, device, EXPORT_SIZE, QColor("white"))

    def _export_dialog(self, suffix: str) -> None:
        from PySide6.QtWidgets import QFileDialog, QMessageBox
        start = Path.home() / f"rate-distortion{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export the rate–distortion plane", str(start),
                                              f"{suffix[1:].upper()} (*{suffix})")
        if not path:
            return
        try:
            self.export(path)
        except (UserError, OSError) as exc:
            QMessageBox.warning(self, "Export failed", str(exc))


def _save_or_raise(ok: bool, path: Path) -> None:
    if not ok:
        raise UserError(f"Could not write {path}; check that its folder exists and is writable.")

