"""The picture every insight view shows and exports: a grid of decoded images with a title, row
and column labels and a caption under each image.

One painter routine draws it on the widget (scaled to fit, whole pixels where it can, nearest
neighbour) and into a PNG (``QImage``) or an SVG (``QSvgGenerator``: the images embedded as PNG,
the captions as text), so an export holds exactly what the view shows, at the size chosen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.errors import UserError
from engine.outputs import output_target
from engine.storage import atomic_write
from explorer.widgets import to_qimage

PAD = 4.0          # space between cells and around the figure, in pixels at scale 1
EXPORT_FORMATS = (".png", ".svg")


@dataclass
class GridFigure:
    """Rows of images (C×H×W float in [0, 1], or None for an empty cell) and their words.

    ``captions[r][c]`` goes under cell (r, c); ``marks`` are cells drawn with a highlight frame
    (e.g. the traversal step nearest the cursor's own value)."""

    cells: list[list[np.ndarray | None]]
    title: str = ""
    row_labels: list[str] = field(default_factory=list)
    col_labels: list[str] = field(default_factory=list)
    captions: list[list[str]] | None = None
    marks: set[tuple[int, int]] = field(default_factory=set)
    _qimages: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_rows(self) -> int:
        return len(self.cells)

    @property
    def n_cols(self) -> int:
        return max((len(row) for row in self.cells), default=0)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of one image, from the first cell that holds one; (0, 0) when empty."""
        for row in self.cells:
            for image in row:
                if image is not None:
                    return int(image.shape[2]), int(image.shape[1])
        return 0, 0

    def qimage(self, r: int, c: int) -> QImage | None:
        if (r, c) not in self._qimages:
            image = self.cells[r][c] if c < len(self.cells[r]) else None
            self._qimages[(r, c)] = None if image is None else to_qimage(image)
        return self._qimages[(r, c)]

    def caption(self, r: int, c: int) -> str:
        if self.captions is None or r >= len(self.captions) or c >= len(self.captions[r]):
            return ""
        return self.captions[r][c]


@dataclass
class _Layout:
    scale: float
    cell_w: float
    cell_h: float        # the image's height
    caption_h: float
    label_w: float
    title_h: float
    header_h: float
    width: float
    height: float

    def cell_origin(self, r: int, c: int) -> QPointF:
        x = PAD + self.label_w + c * (self.cell_w + PAD)
        y = PAD + self.title_h + self.header_h + r * (self.cell_h + self.caption_h + PAD)
        return QPointF(x, y)


def _fonts(base: QFont) -> tuple[QFont, QFont]:
    small = QFont(base)
    small.setPointSizeF(max(6.0, base.pointSizeF() * 0.8) if base.pointSizeF() > 0 else 7.0)
    return base, small


def _layout(figure: GridFigure, scale: float, font: QFont, whole_title: bool = True) -> _Layout:
    """Where everything goes; ``whole_title``: the width makes room for the whole title (exports),
    otherwise the title is elided to the grid's width (the widget)."""
    normal, small = _fonts(font)
    fm, fs = QFontMetricsF(normal), QFontMetricsF(small)
    img_w, img_h = figure.image_size
    captions = [figure.caption(r, c) for r in range(figure.n_rows) for c in range(figure.n_cols)]
    caption_w = max((fs.horizontalAdvance(t) for t in captions if t), default=0.0)
    col_w = max((fs.horizontalAdvance(t) for t in figure.col_labels if t), default=0.0)
    cell_w = max(img_w * scale, caption_w + 2, col_w + 2)
    cell_h = img_h * scale
    caption_h = fs.height() + 1 if any(captions) else 0.0
    label_w = max((fm.horizontalAdvance(t) for t in figure.row_labels if t), default=0.0)
    label_w = label_w + PAD if label_w else 0.0
    title_h = fm.height() + PAD if figure.title else 0.0
    header_h = fs.height() + 1 if any(figure.col_labels) else 0.0
    cols, rows = figure.n_cols, figure.n_rows
    width = 2 * PAD + label_w + cols * cell_w + max(cols - 1, 0) * PAD
    title_w = 2 * PAD + fm.horizontalAdvance(figure.title) if figure.title and whole_title else 0.0
    height = 2 * PAD + title_h + header_h + rows * (cell_h + caption_h) + max(rows - 1, 0) * PAD
    return _Layout(scale, cell_w, cell_h, caption_h, label_w, title_h, header_h, max(width, title_w), height)


def fit_scale(figure: GridFigure, size: QSize, font: QFont, whole: bool = True) -> float:
    """The largest image scale at which the figure fits ``size`` (whole pixels when it is ≥ 1)."""
    img_w, img_h = figure.image_size
    if not img_w or not figure.n_rows:
        return 1.0
    fixed = _layout(figure, 0.0, font, whole_title=False)
    spare_w = size.width() - (fixed.width - figure.n_cols * fixed.cell_w)
    spare_h = size.height() - fixed.height
    scale = max(min(spare_w / (figure.n_cols * img_w), spare_h / (figure.n_rows * img_h)), 0.25)
    return float(math.floor(scale)) if whole and scale >= 1 else scale


def figure_size(figure: GridFigure, scale: float, font: QFont, whole_title: bool = True) -> QSize:
    layout = _layout(figure, scale, font, whole_title)
    return QSize(math.ceil(layout.width), math.ceil(layout.height))


def paint_figure(painter: QPainter, figure: GridFigure, scale: float, background: QColor, text: QColor,
                 frame: QColor, accent: QColor, prescale: bool = False, width: float | None = None) -> None:
    """Draw ``figure`` with its top-left corner at the painter's origin.  ``prescale`` scales each
    image to its drawn size first (nearest neighbour), so an SVG embeds crisp pixels; ``width``
    (the widget's) elides the title to fit instead of making room for all of it."""
    normal, small = _fonts(painter.font())
    layout = _layout(figure, scale, normal, whole_title=width is None)
    title_width = (width if width is not None else layout.width) - 2 * PAD
    painter.fillRect(QRectF(0, 0, layout.width, layout.height), background)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
    painter.setPen(text)
    if figure.title:
        painter.setFont(normal)
        title = QFontMetricsF(normal).elidedText(figure.title, Qt.TextElideMode.ElideRight, title_width)
        painter.drawText(QRectF(PAD, PAD, title_width, layout.title_h), Qt.AlignmentFlag.AlignLeft
                         | Qt.AlignmentFlag.AlignVCenter, title)
    painter.setFont(small)
    for c, label in enumerate(figure.col_labels):
        origin = layout.cell_origin(0, c)
        painter.drawText(QRectF(origin.x(), origin.y() - layout.header_h, layout.cell_w, layout.header_h),
                         Qt.AlignmentFlag.AlignCenter, label)
    img_w, img_h = figure.image_size
    for r in range(figure.n_rows):
        origin = layout.cell_origin(r, 0)
        if r < len(figure.row_labels) and figure.row_labels[r]:
            painter.setFont(normal)
            painter.setPen(text)
            painter.drawText(QRectF(PAD, origin.y(), layout.label_w - PAD, layout.cell_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, figure.row_labels[r])
        painter.setFont(small)
        for c in range(len(figure.cells[r])):
            origin = layout.cell_origin(r, c)
            image = figure.qimage(r, c)
            target = QRectF(origin.x() + (layout.cell_w - img_w * scale) / 2, origin.y(), img_w * scale, img_h * scale)
            if image is not None:
                if prescale:
                    image = image.scaled(max(1, round(target.width())), max(1, round(target.height())),
                                         Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)
                painter.drawImage(target, image)
                marked = (r, c) in figure.marks
                painter.setPen(QPen(accent if marked else frame, 2 if marked else 0))
                painter.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
            caption = figure.caption(r, c)
            if caption:
                painter.setPen(text)
                painter.drawText(QRectF(origin.x(), origin.y() + layout.cell_h, layout.cell_w, layout.caption_h),
                                 Qt.AlignmentFlag.AlignCenter, caption)


def export_figure(figure: GridFigure | None, path: str | Path, cell_px: int = 96) -> Path:
    """Write ``figure`` as PNG or SVG (by suffix), each image's longer side ``cell_px`` pixels,
    black on white; atomically, so a failed export leaves an existing file as it was."""
    path = output_target(path, EXPORT_FORMATS, "a figure")
    suffix = path.suffix.lower()
    if figure is None or not figure.n_rows or not figure.image_size[0]:
        raise UserError("There is nothing to export yet: the view has no images.")
    if not 8 <= cell_px <= 2048:
        raise UserError(f"The image size must be between 8 and 2048 pixels, not {cell_px}.")
    img_w, img_h = figure.image_size
    scale = cell_px / max(img_w, img_h)
    font = QFont()
    font.setPointSizeF(max(8.0, min(14.0, cell_px / 8)))
    size = figure_size(figure, scale, font)
    colours = QColor("white"), QColor("black"), QColor(160, 160, 160), QColor(220, 60, 30)

    def write(tmp: str) -> None:
        if suffix == ".png":
            image = QImage(size, QImage.Format.Format_RGB32)
            image.fill(colours[0])
            painter = QPainter(image)
            painter.setFont(font)
            paint_figure(painter, figure, scale, *colours)
            painter.end()
            if not image.save(tmp, "PNG"):
                raise UserError(f"Could not write {path}.")
            return
        generator = QSvgGenerator()
        generator.setFileName(tmp)
        generator.setSize(size)
        generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
        generator.setTitle(figure.title or "Latent Explorer figure")
        generator.setDescription("Exported by Latent Explorer")
        painter = QPainter()
        if not painter.begin(generator):
            raise UserError(f"Could not write {path}.")
        painter.setFont(font)
        paint_figure(painter, figure, scale, *colours, prescale=True)
        painter.end()

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise UserError(f"Could not write {path}: {exc.strerror or exc}.") from None
    return path


class FigureCanvas(QWidget):
    """Shows a ``GridFigure`` scaled to fit the widget, never below ``min_scale`` (then it asks a
    scroll area around it for room)."""

    painted = Signal(float)

    def __init__(self, parent: QWidget | None = None, min_scale: float = 2.0):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.figure: GridFigure | None = None
        self.placeholder = "No model"
        self.min_scale = min_scale

    def set_figure(self, figure: GridFigure | None, placeholder: str | None = None) -> None:
        self.figure = figure
        self.setToolTip(figure.title if figure is not None else "")
        if placeholder is not None:
            self.placeholder = placeholder
        self.updateGeometry()
        self.update()

    def minimumSizeHint(self) -> QSize:
        if self.figure is None or not self.figure.n_rows:
            return QSize(120, 80)
        img_w, img_h = self.figure.image_size
        scale = max(self.min_scale, 16 / max(img_w, img_h, 1))   # at least 16 px an image
        return figure_size(self.figure, scale, self.font(), whole_title=False)

    def sizeHint(self) -> QSize:
        return self.minimumSizeHint().expandedTo(QSize(320, 240))

    def scale(self) -> float:
        return fit_scale(self.figure, self.size(), self.font()) if self.figure is not None else 1.0

    def shown_width(self) -> int:
        """The width on show: a scroll area's viewport when the canvas is wider (the title is elided
        to it, with the whole title as the tooltip, rather than cut mid-word at the viewport's edge)."""
        viewport = self.parentWidget()
        if viewport is not None and viewport.objectName() == "qt_scrollarea_viewport":
            return min(self.width(), viewport.width())
        return self.width()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Window)
        if self.figure is None or not self.figure.n_rows:
            painter.fillRect(self.rect(), background)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
        else:
            painter.fillRect(self.rect(), background)
            paint_figure(painter, self.figure, self.scale(), background, palette.color(QPalette.ColorRole.WindowText),
                         palette.color(QPalette.ColorRole.Mid), palette.color(QPalette.ColorRole.Highlight),
                         width=self.shown_width())
        painter.end()
        self.painted.emit(time.perf_counter())
