"""Linked latent maps for the comparison: one map and one decoder per run, bound to that run.

Every run gets its own ``LatentCursor``; ``MapLinks`` copies a person's move of one cursor to
the others: the same code for runs of the same latent size, and for runs of another size the
code of the nearest data point (its reconstruction), saying so.  Hovering a point in any map
rings the same image in every map (images are matched by their index in the validation set,
``ProbeCodes.indices``); Shift+drag draws a box and Ctrl+Shift+drag a lasso (the gestures of
explorer/map/selection.py, as on the main map), and the images inside light up in all maps.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from explorer.decoder_canvas import DecoderCanvas
from explorer.map.latent_view import LatentView
from explorer.map.selection import SELECTED_RING_PX, AreaDrag, SelectionOutline, points_in_polygon, starts_area_drag
from explorer.runs_panel import short_name
from explorer.session import LatentCursor, RunState, Session

#: cursor moves a person makes (the others are echoes: "linked", "bind", "reset")
PERSON_ORIGINS = ("map", "slider", "select")
HOVER_RING_PX = 14


class CompareColumn(QWidget):
    """One run in the comparison: its name, map (``compareMap``), decoder (``compareDecoder``) and a note."""

    def __init__(self, session: Session, state: RunState, worker, colour: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.cursor = LatentCursor(self)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setToolTip(state.name)
        self.map = LatentView(session, worker=worker, state=state, cursor=self.cursor)
        self.map.setObjectName("compareMap")
        self.map.setAccessibleName(f"compareMap {state.name}")
        self.map.setMinimumHeight(160)
        self.map.selection_button.hide()   # MapLinks selects across the maps here; the groups A/B are the main map's
        self.decoder = DecoderCanvas(session, state=state, cursor=self.cursor)
        self.decoder.setObjectName("compareDecoder")
        self.decoder.setAccessibleName(f"compareDecoder {state.name}")
        self.decoder.scroll.setMaximumHeight(120)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.colour = colour
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.map, 3)
        layout.addWidget(self.decoder, 2)
        layout.addWidget(self.note)
        ring = pg.mkPen(self.palette().color(QPalette.ColorRole.Text), width=2)
        self.hover_ring = pg.ScatterPlotItem(size=HOVER_RING_PX, pen=ring, brush=None, symbol="o")
        self.hover_ring.setZValue(30)
        self.selected_rings = pg.ScatterPlotItem(size=SELECTED_RING_PX, pen=pg.mkPen("#f03e3e", width=1.5),
                                                 brush=None, symbol="o", pxMode=True)
        self.selected_rings.setZValue(25)
        for item in (self.hover_ring, self.selected_rings):
            self.map.plot.addItem(item, ignoreBounds=True)
        self.lasso = SelectionOutline(self.map.plot)   # explorer/map/selection.py, as on the main map
        self._positions = np.zeros(0, np.int64)   # validation index -> position in the probe (-1: absent)
        state.probe_changed.connect(self._index_probe)
        state.status_changed.connect(lambda _: self.update_title())
        self._index_probe(state.probe)
        self.update_title()

    @property
    def latent_dim(self) -> int | None:
        return self.state.model.latent_dim if self.state.model is not None else None

    def update_title(self) -> None:
        dim = self.latent_dim
        status = self.state.status + (f", step {self.state.step:,}" if self.state.is_training else "")
        self.title.setText(f"<span style='color:{self.colour}'>■</span> <b>{short_name(self.state.name)}</b>"
                           f"<br><small>{self.state.variant_title}, z {dim}, {status}</small>")

    def _index_probe(self, probe) -> None:
        """Where each validation image sits; a training image (a map of the train or all probe set,
        engine/probe_sets.py) is not linked across the maps."""
        rows = np.flatnonzero(probe.splits == 0) if probe is not None else np.zeros(0, np.int64)
        if len(rows) == 0:
            self._positions = np.zeros(0, np.int64)
            return
        positions = np.full(int(probe.indices[rows].max()) + 1, -1, np.int64)
        positions[probe.indices[rows]] = rows
        self._positions = positions

    def position_of(self, image: int) -> int | None:
        """Where validation image ``image`` sits among this run's map points (None: not shown)."""
        if 0 <= image < len(self._positions) and self._positions[image] >= 0:
            return int(self._positions[image])
        return None

    def image_at(self, position: int) -> int | None:
        probe = self.state.probe
        if probe is None or not 0 <= position < len(probe.indices) or probe.splits[position] != 0:
            return None   # no point there, or a training image (only validation images are linked)
        return int(probe.indices[position])

    def show_hover(self, image: int | None) -> None:
        position = None if image is None else self.position_of(image)
        xy = self.map.map_state.xy
        if position is None or position >= len(xy):
            self.hover_ring.setData([], [])
        else:
            self.hover_ring.setData([xy[position, 0]], [xy[position, 1]])

    def hovered_position(self) -> int | None:
        """The ringed point (for tests and benchmarks)."""
        data = self.hover_ring.data
        if len(data) == 0:
            return None
        return self.map.points.nearest(float(data["x"][0]), float(data["y"][0]))

    def show_selection(self, images: np.ndarray) -> None:
        xy = self.map.map_state.xy
        if len(images) == 0 or len(self._positions) == 0:
            self.selected_rings.setData([], [])
            return
        inside = images[images < len(self._positions)]
        positions = self._positions[inside]
        positions = positions[(positions >= 0) & (positions < len(xy))]
        self.selected_rings.setData(xy[positions, 0], xy[positions, 1])


class MapLinks(QObject):
    """The links between the columns: cursors, hover and selection."""

    hovered = Signal(object)            # validation image index, or None
    selection_changed = Signal(object)  # np.ndarray of validation image indices
    linked = Signal(float)              # time.perf_counter() after a move reached every column

    def __init__(self, columns: list[CompareColumn], parent: QObject | None = None):
        super().__init__(parent)
        self.columns = columns
        self.selection = np.zeros(0, np.int64)
        self._linking = False
        self._drag: tuple[CompareColumn, AreaDrag] | None = None
        for column in columns:
            column.cursor.moved.connect(lambda code, origin, c=column: self._on_moved(c, code, origin))
            column.map.point_hovered.connect(lambda position, c=column: self._on_hovered(c, position))
            column.map.plot.viewport().installEventFilter(self)   # after the map's own: called first
            column.state.probe_changed.connect(lambda _probe: self._refresh_marks())

    # -- one point through several decoders --------------------------------------------------------
    def _on_moved(self, source: CompareColumn, code: np.ndarray, origin: str) -> None:
        if self._linking or origin not in PERSON_ORIGINS:
            return
        self._linking = True
        try:
            nearest_image = None
            for column in self.columns:
                if column is source or column.state.model is None:
                    continue
                if column.latent_dim == source.latent_dim:
                    column.note.setText("")
                    column.cursor.set_code(code, "linked")
                    continue
                if nearest_image is None:
                    nearest_image = self._nearest_image(source, code)
                position = None if nearest_image is None else column.position_of(nearest_image)
                if position is None:
                    column.note.setText(f"Latent size {column.latent_dim} ≠ {source.latent_dim}: this model "
                                        "cannot decode that code, and the nearest data point is not on its map.")
                    continue
                column.note.setText(f"Latent size {column.latent_dim} ≠ {source.latent_dim}: showing the "
                                    f"reconstruction of the nearest data point (validation image {nearest_image}).")
                column.cursor.set_code(column.state.probe.codes[position], "linked")
            source.note.setText("")
        finally:
            self._linking = False
        self.linked.emit(time.perf_counter())

    @staticmethod
    def _nearest_image(column: CompareColumn, code: np.ndarray) -> int | None:
        probe = column.state.probe
        if probe is None or len(probe.codes) == 0:
            return None
        d2 = np.einsum("nd,nd->n", probe.codes - code, probe.codes - code)
        return column.image_at(int(np.argmin(d2)))

    # -- hover ---------------------------------------------------------------------------------
    def _on_hovered(self, source: CompareColumn, position: int | None) -> None:
        image = None if position is None else source.image_at(position)
        self.highlight(image)

    def highlight(self, image: int | None) -> None:
        """Ring validation image ``image`` in every map (None: no ring)."""
        for column in self.columns:
            column.show_hover(image)
        self.hovered.emit(image)

    # -- selection -----------------------------------------------------------------------------
    def select(self, images) -> None:
        self.selection = np.unique(np.asarray(images, dtype=np.int64))
        self._refresh_marks()
        self.selection_changed.emit(self.selection.copy())

    def _refresh_marks(self) -> None:
        for column in self.columns:
            column.show_selection(self.selection)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not isinstance(event, QMouseEvent):
            return False
        column = next((c for c in self.columns if c.map.plot.viewport() is watched), None)
        if column is None:
            return False
        if starts_area_drag(event):
            self._drag = (column, AreaDrag.from_press(event, column.map._map_point(event.position())))
            return True
        if self._drag is None or self._drag[0] is not column:
            return False
        drag = self._drag[1]
        if event.type() == QEvent.Type.MouseMove:
            drag.move_to(column.map._map_point(event.position()))
            column.lasso.draw(drag.polygon())
            return True
        if event.type() == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            polygon = drag.polygon()
            column.lasso.hide()
            self._drag = None
            xy = column.map.map_state.xy
            probe = column.state.probe
            if polygon is None:
                self.select([])   # a Shift+click clears the selection
            elif probe is not None and len(xy) == len(probe.indices):
                inside = points_in_polygon(xy, polygon)
                self.select(probe.indices[inside][probe.splits[inside] == 0])   # the validation images
            return True
        return False
