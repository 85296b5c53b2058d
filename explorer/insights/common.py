"""What the insight views share: decoding with the GUI's model copy, redraws at most once a
frame (and none while a view is hidden), the export row (size, PNG, SVG, last folder) and the
pane that holds the picture, its note and that row."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRect, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import UserError
from engine.models import AutoencoderModel, variant
from explorer.insights.figure import FigureCanvas, GridFigure, export_figure

FRAME_INTERVAL_MS = 16            # cursor moves are coalesced to one redraw a frame
DECODE_BUDGET_S = 0.004           # GUI-thread time per decoding turn; a larger batch is split over turns
EXPORT_FOLDER_KEY = "export/last_folder"
EXPORT_SIZES = (32, 64, 96, 128, 192, 256)   # each image's longer side in an export, pixels
DEFAULT_EXPORT_SIZE = 96
FIGURE_MIN_PX = 120               # a view's picture never shorter: a short dock scrolls the tab instead
PRIOR_WORDS = {"standard_normal": "N(0, I)", "chosen": "the model's chosen prior",
               "fitted": "a Gaussian fitted to the training codes"}

_memory_settings: dict[str, str] = {}


# -- the model --------------------------------------------------------------------------------
def prior_kind(state) -> str:
    """The registry's word for the run's prior: standard_normal, chosen or fitted."""
    try:
        return variant(state.model_cfg.variant).prior
    except ValueError:
        return "fitted"


def class_name(names: list[str], label: int) -> str:
    """A class's name, or its number where the run names fewer classes."""
    return names[label] if label < len(names) else str(label)


def model_device(model: AutoencoderModel) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def decode_codes(model: AutoencoderModel, codes: np.ndarray, labels=None) -> np.ndarray:
    """Images (M×C×H×W float in [0, 1]) of codes (M×D); ``labels`` an int or M ints for conditional models."""
    device = model_device(model)
    z = torch.as_tensor(np.asarray(codes, dtype=np.float32).reshape(-1, model.latent_dim), device=device)
    y = None
    if model.is_conditional:
        y = torch.as_tensor(np.broadcast_to(np.asarray(0 if labels is None else labels), (z.shape[0],)).copy(),
                            device=device).long()
    return model.decode(z, y).float().cpu().numpy()


@torch.no_grad()
def encode_images(model: AutoencoderModel, images_u8: torch.Tensor, labels: torch.Tensor | None) -> np.ndarray:
    """Codes (N×D float32) of uint8 images, with the model's latest weights."""
    device = model_device(model)
    x = images_u8.to(device).float().div_(255.0)
    y = labels.to(device) if model.is_conditional and labels is not None else None
    return model.encode(x, y).float().cpu().numpy()


class ChunkedDecoder(QObject):
    """Decodes a batch of codes on the GUI thread within ``DECODE_BUDGET_S`` per event-loop turn.

    A batch that the measured cost per image says fits the budget is decoded at once (an MLP's
    traversal grid: well under a millisecond); a larger one (a conv body's: 20–40 ms on 2 cores)
    is split over turns, so a drag on the map never waits for it.  ``done(images)`` gets the
    whole batch.  A new batch asked for while one is under way replaces any waiting one and
    starts when the current one ends (the picture lags one pass rather than stalling)."""

    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.per_image_s = 0.0      # measured; 0 until the first decode
        self._job = None            # (model, codes, labels, done, position, parts)
        self._next = None
        self.timer = QTimer(self, interval=0)
        self.timer.timeout.connect(self._turn)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, model: AutoencoderModel, codes: np.ndarray, labels, done: Callable[[np.ndarray], None]) -> None:
        codes = np.asarray(codes, np.float32).reshape(-1, model.latent_dim)
        labels = None if labels is None else np.broadcast_to(np.asarray(labels), (len(codes),)).copy()
        if len(codes) == 0:
            done(np.zeros((0, *model.image_shape), np.float32))
            return
        if self._job is not None:
            self._next = (model, codes, labels, done)
            return
        self._job = [model, codes, labels, done, 0, []]
        if self.per_image_s * len(codes) <= DECODE_BUDGET_S:
            self.finish_now()
        else:
            self.timer.start()

    def finish_now(self) -> None:
        """Decode what is left (and any waiting batch) now: an export, a test."""
        while self._job is not None:
            self._turn(whole=True)

    def cancel(self) -> None:
        self.timer.stop()
        self._job = self._next = None

    def _turn(self, whole: bool = False) -> None:
        model, codes, labels, done, position, parts = self._job
        n = len(codes) - position if whole or not self.per_image_s else \
            max(1, int(DECODE_BUDGET_S / self.per_image_s))
        part = slice(position, min(position + max(n, 1), len(codes)))
        start = time.perf_counter()
        parts.append(decode_codes(model, codes[part], None if labels is None else labels[part]))
        count = part.stop - part.start
        if count:
            measured = (time.perf_counter() - start) / count
            self.per_image_s = measured if not self.per_image_s else 0.5 * (self.per_image_s + measured)
        self._job[4] = part.stop
        if part.stop < len(codes):
            return
        self.timer.stop()
        self._job = None
        images = np.concatenate(parts) if parts else np.zeros((0,), np.float32)
        done(images)
        if self._next is not None and self._job is None:
            waiting, self._next = self._next, None
            self.start(*waiting)


# -- redraws ---------------------------------------------------------------------------------------
class FrameThrottle(QObject):
    """``request()`` runs ``render`` once within a frame however often it is called; while
    ``widget`` is hidden it only remembers, and renders when the widget is shown."""

    def __init__(self, widget: QWidget, render: Callable[[], None], interval_ms: int = FRAME_INTERVAL_MS):
        super().__init__(widget)
        self.widget, self.render = widget, render
        self.pending = False
        self.timer = QTimer(self, singleShot=True, interval=interval_ms)
        self.timer.timeout.connect(self._fire)
        widget.installEventFilter(self)

    def request(self) -> None:
        self.pending = True
        if not self.timer.isActive():
            self.timer.start()

    def flush(self) -> None:
        """Render now (an export, a test) if anything is waiting."""
        self.timer.stop()
        if self.pending:
            self.pending = False
            self.render()

    def _fire(self) -> None:
        if self.widget.isVisible():
            self.flush()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget and event.type() == QEvent.Type.Show and self.pending:
            self.timer.start()
        return False


# -- export --------------------------------------------------------------------------------------
def _settings() -> QSettings | None:
    if os.environ.get("LATENT_EXPLORER_SETTINGS") == "memory" or not QCoreApplication.organizationName():
        return None
    return QSettings()


def last_export_folder() -> Path:
    """The folder of the last export from any view (the home folder before the first)."""
    settings = _settings()
    value = settings.value(EXPORT_FOLDER_KEY) if settings is not None else _memory_settings.get(EXPORT_FOLDER_KEY)
    folder = Path(str(value)) if value else Path.home()
    return folder if folder.is_dir() else Path.home()


def remember_export_folder(folder: Path) -> None:
    settings = _settings()
    if settings is not None:
        settings.setValue(EXPORT_FOLDER_KEY, str(folder))
    else:
        _memory_settings[EXPORT_FOLDER_KEY] = str(folder)


def control_rows(parent: QWidget, *rows) -> QVBoxLayout:
    """The views' controls as short rows of (words or None, widget), so a view fits a laptop's
    right-hand dock (about 440 px) instead of scrolling sideways."""
    layout = QVBoxLayout()
    for row in rows:
        line = QHBoxLayout()
        for words, widget in row:
            if words:
                line.addWidget(QLabel(words, parent))
            line.addWidget(widget)
        line.addStretch(1)
        layout.addLayout(line)
    return layout


class ExportBar(QWidget):
    """Image size, "PNG…" and "SVG…": writes what ``figure()`` returns (the view's current picture)."""

    def __init__(self, figure: Callable[[], GridFigure | None], default_name: Callable[[], str],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.figure, self.default_name = figure, default_name
        self.size_combo = QComboBox(self)
        self.size_combo.setObjectName("exportSize")
        self.size_combo.setToolTip("Each image's longer side in the exported file")
        for px in EXPORT_SIZES:
            self.size_combo.addItem(f"{px} px", px)
        self.size_combo.setCurrentIndex(EXPORT_SIZES.index(DEFAULT_EXPORT_SIZE))
        self.png_button = QPushButton("PNG…", self)
        self.svg_button = QPushButton("SVG…", self)
        self.png_button.setToolTip("Export what this view shows, with its captions, as a PNG image")
        self.svg_button.setToolTip("Export what this view shows, with its captions, as an SVG drawing")
        self.png_button.clicked.connect(lambda: self.export_dialog(".png"))
        self.svg_button.clicked.connect(lambda: self.export_dialog(".svg"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addStretch(1)
        layout.addWidget(QLabel("Export images at", self))
        for widget in (self.size_combo, self.png_button, self.svg_button):
            layout.addWidget(widget)

    @property
    def cell_px(self) -> int:
        return int(self.size_combo.currentData())

    def export(self, path: str | Path) -> Path:
        """Write the view's picture to ``path`` (.png or .svg) at the chosen size; UserError on bad input."""
        written = export_figure(self.figure(), path, self.cell_px)
        remember_export_folder(written.parent)
        return written

    def export_dialog(self, suffix: str) -> Path | None:
        kind = "PNG image (*.png)" if suffix == ".png" else "SVG drawing (*.svg)"
        start = last_export_folder() / f"{self.default_name()}{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export the view", str(start), kind)
        if not path:
            return None
        if Path(path).suffix.lower() != suffix:
            path += suffix
        try:
            return self.export(path)
        except UserError as exc:
            QMessageBox.warning(self, "Export failed", str(exc))
            return None


def safe_file_stem(text: str) -> str:
    """A file name stem from a run name: letters, digits, '-', '_' and '.' kept."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text).strip("-.")
    return stem or "figure"


def run_file_stem(state, what: str) -> str:
    """The default export name of a view of ``state``: "<run name>-<what>"."""
    return safe_file_stem(f"{state.name if state is not None else 'run'}-{what}")


# -- the picture -----------------------------------------------------------------------------------
class FigurePane(QWidget):
    """The lower part of every insight view: its ``GridFigure`` on a canvas in a scroll area, an
    optional note under it, and the export row.  ``show_figure`` puts a figure (or, for None, a
    placeholder sentence) up and emits ``rendered`` with it; ``figure()`` first runs ``settle``
    (the view's waiting redraw, the decoding under way), so it returns what the view shows now."""

    rendered = Signal(object)   # the GridFigure just shown, or None

    def __init__(self, parent: QWidget, file_stem: Callable[[], str], settle: tuple[Callable[[], None], ...],
                 note: QLabel | None = None):
        super().__init__(parent)
        self.shown: GridFigure | None = None
        self.settle = settle
        self.canvas = FigureCanvas(self)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.canvas)
        self.scroll.setMinimumHeight(FIGURE_MIN_PX)
        self.export_bar = ExportBar(self.figure, file_stem, self)
        self.large_button = QToolButton(self.export_bar)
        self.large_button.setText("⤢")
        self.large_button.setAccessibleName("Open large")
        self.large_button.setObjectName("openLarge")
        self.large_button.setToolTip("Open large: this view in a window of its own, as large as the screen "
                                     "allows; it follows the cursor and the training like the view here")
        self.large_button.clicked.connect(self.open_large)
        self.export_bar.layout().insertWidget(0, self.large_button)
        self.large: LargeFigureWindow | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll, 1)
        if note is not None:
            layout.addWidget(note)
        layout.addWidget(self.export_bar)

    def figure(self) -> GridFigure | None:
        for finish in self.settle:
            finish()
        return self.shown

    def show_figure(self, figure: GridFigure | None, placeholder: str | None = None) -> None:
        self.shown = figure
        self.canvas.set_figure(figure, placeholder)
        if self.large is not None:
            self.large.canvas.set_figure(figure, placeholder)
        self.rendered.emit(figure)

    def open_large(self) -> LargeFigureWindow:
        """The view's picture in a window of its own (80% of the screen), following the view."""
        if self.large is None:
            self.large = LargeFigureWindow(self)
        self.large.canvas.set_figure(self.figure(), self.canvas.placeholder)
        self.large.show()
        self.large.raise_()
        self.large.activateWindow()
        return self.large


class LargeFigureWindow(QWidget):
    """A view's picture alone in a large window: on a laptop's short dock the traversals show
    a row or two; here every row at a legible size.  Closing it only hides it."""

    def __init__(self, pane: FigurePane):
        super().__init__(pane, Qt.WindowType.Window)
        self.setObjectName("largeFigureWindow")
        view = pane.parentWidget()
        title = view.accessibleName() if view is not None else ""
        self.setWindowTitle(f"{title.removesuffix('View').capitalize() or 'View'} — Latent Explorer")
        self.canvas = FigureCanvas(self, min_scale=1.0)
        self.canvas.setObjectName("largeFigureCanvas")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.canvas)
        screen = pane.screen().availableGeometry() if pane.screen() is not None else QRect(0, 0, 1280, 800)
        self.resize(int(screen.width() * 0.8), int(screen.height() * 0.8))
