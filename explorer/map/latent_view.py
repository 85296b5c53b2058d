"""The latent map: the active run's probe codes as a scatter, and the handle a person drags.

Pressing the left button anywhere puts the handle there; every move of the dragged handle
maps the 2-D point back to a latent code (the identity for raw dimensions, the exact inverse
for PCA, a fast local inverse for UMAP and t-SNE) and sends it to the latent cursor, which the decoder
canvas decodes at once.  The right and middle buttons pan, the wheel zooms.  Hovering over a
point shows its input beside its reconstruction; clicking a point selects it and sends its
code to the cursor.  UMAP and t-SNE layouts are fitted on the shared ``ProjectionWorker`` (in
its child process, never in the GUI thread) and kept live while a run trains
(``explorer/map/live_layout.py``); until the first arrives the map shows PCA and says so.  The
worker compiles UMAP as soon as the map is first shown.

Its parts: the toolbar (``toolbar.py``), the mouse (``pointer.py``), the handle and view box
(``map_items.py``), the class legend beside the points (``class_legend.py``), the manifold
tiles (``manifold.py``, raw and PCA maps only), the posterior ellipses and density contours
(``posteriors.py``) and the box and lasso selection with its groups A and B (``selection.py``).
"""

from __future__ import annotations

import os

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.history import ProbeCodes
from engine.projection import IdentityProjection, PCAProjection, Projection
from explorer.map.class_legend import ClassLegend
from explorer.map.live_layout import SLOW_PROJECTIONS, LiveLayout
from explorer.map.manifold import ManifoldTiles
from explorer.map.map_items import Handle, MapViewBox
from explorer.map.movie_slider import MovieSlider
from explorer.map.pictures import HoverCard
from explorer.map.point_layer import PointLayer, palette_for
from explorer.map.pointer import MapPointer
from explorer.map.posteriors import MapPosteriors
from explorer.map.projection_worker import ProjectionWorker
from explorer.map.selection import MapSelection
from explorer.map.state import MapState
from explorer.map.toolbar import PROJECTIONS, MapToolbar, named
from explorer.map.values import CLASS, MapColouring
from explorer.session import LatentCursor, RunState, Session, rebind

PICK_RADIUS_PX = 6
#: set to "0" to keep a shown map from starting the projection process (UMAP's compilation)
WARM_UP_ENV = "LATENT_EXPLORER_WARM_UP"
#: the warm-up starts this long after the map is first shown: the window paints and settles first
WARM_UP_DELAY_MS = 500


def keep_orientation(pca: PCAProjection, previous: PCAProjection) -> None:
    """Flip the refitted axes that point against the previous fit's, so a live map never mirrors."""
    if pca.components.shape == previous.components.shape:
        signs = np.where(np.sum(pca.components * previous.components, axis=1) < 0, -1.0, 1.0)
        pca.components *= signs[:, None]


def auto_point_size(n: int) -> int:
    """A point diameter in pixels that keeps n points readable: big for few, small for many."""
    return 6 if n <= 1000 else 4 if n <= 10_000 else 3


class LatentView(QWidget):
    """The latent map of one run (the session's active run unless given one), with the draggable handle."""

    #: a click (no drag) on the map: (code, index of the point clicked or None)
    clicked = Signal(object)
    point_hovered = Signal(object)   # index into the probe codes of the point under the pointer, or None

    def __init__(self, session: Session, parent: QWidget | None = None, worker: ProjectionWorker | None = None, *,
                 state: RunState | None = None, cursor: LatentCursor | None = None, map_state: MapState | None = None):
        """``worker``: the application's shared projection worker (UMAP must not run in two
        threads); by default the view makes and owns its own.  ``state``: show this run, always
        (by default the view follows the session's active run); ``cursor``: the latent cursor
        the handle moves (the session's by default); ``map_state``: where the map's projection,
        points and handle live (a new one by default)."""
        super().__init__(parent)
        self.setObjectName("latentView")
        self.setAccessibleName("latentView")
        self.session = session
        self.cursor = cursor if cursor is not None else session.cursor
        self.map_state = map_state if map_state is not None else MapState()
        self.state: RunState | None = None
        self._placeholder = False  # the points shown are PCA standing in for a slow layout
        self._hovered: int | None = None
        #: keep the points in view as they move, until the person pans or zooms
        self._follow_points = True
        self.hover_card = HoverCard(self)
        self._owns_worker = worker is None
        self.worker = ProjectionWorker(self) if worker is None else worker
        self.live = LiveLayout(self.worker, self)
        self.live.arrived.connect(self._on_layout)
        self._warm_up_on_show = self._owns_worker and os.environ.get(WARM_UP_ENV, "1") != "0"
        palette = self.palette()

        self.plot = named(pg.PlotWidget(viewBox=MapViewBox(), background=palette.color(QPalette.ColorRole.Base)),
                          "latentPlot")
        self.view: pg.ViewBox = self.plot.getViewBox()
        self.view.setAspectLocked(True)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(palette.color(QPalette.ColorRole.Mid))
            axis.setTextPen(palette.color(QPalette.ColorRole.Text))
        self.points = PointLayer(3.0)
        self.plot.addItem(self.points)
        self.handle = Handle(palette)
        self.handle.hide()
        self.plot.addItem(self.handle, ignoreBounds=True)
        self.pointer = MapPointer(self)   # explorer/map/pointer.py: press, drag, click, hover
        # colour by a value (explorer/map/values.py): the menu, the colour bar beside the map, a caption under it
        self.colouring = MapColouring(self)
        self.plot.getPlotItem().layout.addItem(self.colouring.bar, 2, 3)
        self.colouring.apply_palette(palette)
        self.legend = ClassLegend(self.plot.getPlotItem(), palette, column=4)   # beside the points, not over them
        self.colour_caption = named(QLabel(), "colourCaption")
        self.colour_caption.setWordWrap(True)
        self.colour_caption.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.colour_caption.hide()
        self.colouring.changed.connect(self._recolour)
        # the training movie: a frame of it shown instead of the latest codes (None: live)
        self._frame: ProbeCodes | None = None
        self.movie_slider = MovieSlider(None, self)
        self.movie_slider.frame_chosen.connect(self.show_frame)
        self.interpolation_line = None   # explorer/map/overlays.py, once set_interpolation() is called

        self.toolbar = MapToolbar(self.colouring.combo)
        for name in ("projection_combo", "x_dim", "y_dim", "point_size", "manifold_toggle", "recompute", "busy",
                     "note", "density_toggle", "selection_button"):
            setattr(self, name, getattr(self.toolbar, name))
        self.projection_combo.currentIndexChanged.connect(
            lambda i: self.set_projection(self.projection_combo.itemData(i)))
        for box in (self.x_dim, self.y_dim):
            box.valueChanged.connect(lambda _: self._reproject(reset_view=True))
        self.point_size.valueChanged.connect(self._on_point_size)
        self._size_chosen = False  # until a person picks a size, it follows the number of points
        self.recompute.clicked.connect(self.request_layout)
        self.live.changed.connect(self._update_note)
        self.manifold_tiles = ManifoldTiles(self)
        self.manifold = self.manifold_tiles.image
        self.manifold_toggle.toggled.connect(self.manifold_tiles.schedule)
        self.posteriors = MapPosteriors(self)      # the hovered and selected points' ellipses, Density
        self.selection = MapSelection(self)        # Shift+drag box, Ctrl+Shift+drag lasso → groups A, B
        self.selection_button.addActions(self.selection.actions())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.colour_caption)
        layout.addWidget(self.movie_slider)

        self.view.sigRangeChanged.connect(self.manifold_tiles.schedule)
        self.view.sigRangeChangedManually.connect(self._stop_following)
        if state is None:
            session.active_changed.connect(self._bind)
        self.cursor.moved.connect(self._on_cursor_moved)
        self.cursor.label_changed.connect(self.manifold_tiles.schedule)
        self._bind(state if state is not None else session.active)

    # -- the map's state, kept in ``map_state`` ------------------------------------------------------
    _name = property(lambda self: self.map_state.name, lambda self, v: setattr(self.map_state, "name", v))
    _projection = property(lambda self: self.map_state.projection,
                           lambda self, v: setattr(self.map_state, "projection", v))
    _xy = property(lambda self: self.map_state.xy, lambda self, v: setattr(self.map_state, "xy", v))

    # -- public ---------------------------------------------------------------------------------
    @property
    def projection(self) -> str:
        """The chosen projection: "raw", "pca", "umap" or "tsne"."""
        return self._name

    @property
    def fitted_projection(self) -> Projection | None:
        """The projection the points are shown in now (None without probe codes)."""
        return self._projection

    def set_projection(self, name: str) -> None:
        if name not in PROJECTIONS:
            raise ValueError(f"Unknown projection {name!r}; choose one of {', '.join(PROJECTIONS)}.")
        self._name = name
        self.projection_combo.blockSignals(True)
        self.projection_combo.setCurrentIndex(list(PROJECTIONS).index(name))
        self.projection_combo.blockSignals(False)
        self._check_projection_action()
        self._reproject(reset_view=True)

    def projection_names(self) -> list[str]:
        return list(PROJECTIONS)

    def projection_actions(self) -> list[QAction]:
        """One checkable action per projection, with Ctrl+1, Ctrl+2, … in the order of PROJECTIONS."""
        if not hasattr(self, "_projection_actions"):
            group = QActionGroup(self)
            self._projection_actions = []
            for i, (key, title) in enumerate(PROJECTIONS.items(), start=1):
                action = QAction(title, self, checkable=True)
                action.setObjectName(f"projection_{key}")
                if i <= 9:
                    action.setShortcut(QKeySequence(f"Ctrl+{i}"))
                action.setChecked(key == self._name)
                action.triggered.connect(lambda _=False, k=key: self.set_projection(k))
                group.addAction(action)
                self._projection_actions.append(action)
            self.projection_combo.currentIndexChanged.connect(self._check_projection_action)
        return self._projection_actions

    def _check_projection_action(self, *_) -> None:
        for action in getattr(self, "_projection_actions", []):
            action.setChecked(action.objectName() == f"projection_{self._name}")

    def zoom_to_fit(self) -> None:
        """Show every point again, and follow them as they move (until the next pan or zoom)."""
        self._follow_points = True
        if len(self._xy):
            self.view.autoRange(items=[self.points], padding=0.06)

    def handle_position(self) -> tuple[float, float] | None:
        """The handle's position in map coordinates (None while it is hidden)."""
        return (self.handle.pos().x(), self.handle.pos().y()) if self.handle.isVisible() else None

    def map_to_code(self, x: float, y: float) -> np.ndarray | None:
        """The latent code at map point (x, y) (None before there is a map)."""
        if self._projection is None:
            return None
        return np.asarray(self._projection.inverse(np.array([[x, y]], dtype=np.float64)), np.float32)[0]

    @property
    def shows_placeholder(self) -> bool:
        """True while PCA stands in for the chosen UMAP or t-SNE layout that is being computed."""
        return self._placeholder

    def request_layout(self) -> None:
        """Fit the chosen UMAP or t-SNE layout to the latest probe codes in the background,
        warm-started from its last layout (Recompute)."""
        self.live.show(self._name, self.state.probe if self.state is not None else None)
        self.live.request()


    def shutdown(self) -> bool:
        """End the view's own projection thread and process (the main window calls this on close);
        never waits for a fit under way. True when the thread ended."""
        self._hide_tooltip()
        self.live.reset()
        self.posteriors.shutdown()
        if self._owns_worker:
            return self.worker.shutdown()
        self.worker.cancel(self.live)   # the shared worker's other maps keep theirs
        return True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._warm_up_on_show:   # as soon as the window is up: UMAP's first map then comes quickly
            self._warm_up_on_show = False
            QTimer.singleShot(WARM_UP_DELAY_MS, self.worker, self.worker.warm_up)  # dropped if the worker goes

    # -- the active run ---------------------------------------------------------------------------
    def _bind(self, state: RunState | None) -> None:
        self._hide_tooltip()
        self.state = rebind(self.state, state, {"probe_changed": self._on_probe,
                                                "decoder_changed": self._on_decoder_changed,
                                                "status_changed": self._on_status,
                                                "dataset_loaded": self._on_dataset_loaded})
        self.live.reset()
        self._projection, self._placeholder = None, False
        dim = state.model.latent_dim if state is not None and state.model is not None else 2
        for box in (self.x_dim, self.y_dim):
            box.blockSignals(True)
            box.setRange(0, max(0, dim - 1))
            box.setValue(0 if box is self.x_dim else min(1, dim - 1))
            box.blockSignals(False)
        self.points.set_selected(None)
        self.selection.reset()
        self.handle.hide()
        self.colouring.bind(state)
        self._frame = None
        self.movie_slider.bind(state)
        self._reproject(reset_view=True)
        if self.cursor.code is not None:
            self._on_cursor_moved(self.cursor.code, "bind")

    def _on_probe(self, probe: ProbeCodes) -> None:
        self.colouring.on_probe()
        if self._name in SLOW_PROJECTIONS:
            self.live.codes_changed(probe)
            if self._frame is not None:
                return   # a frame of the movie is shown: the slider's right end goes back to the live codes
            if self.live.layout(self._name) is None:
                self._reproject(reset_view=False)   # the PCA placeholder follows the codes
            else:
                self._update_note()                 # the last layout stays until the next arrives
        else:
            self.live.codes_changed(probe)
            if self._frame is None:
                self._reproject(reset_view=False)

    def _on_status(self, status: str) -> None:
        if status in ("completed", "stopped") and self._name in SLOW_PROJECTIONS and self.live.is_stale(self._name) \
                and not self.live.in_flight():
            self.live.request()   # the final codes get their layout now, not after a rest

    def _on_dataset_loaded(self, _dataset) -> None:
        self.posteriors.refresh()   # the posteriors need the validation images
        self._update_note()

    def _on_decoder_changed(self) -> None:
        self.manifold_tiles.on_decoder_changed()

    # -- projecting -------------------------------------------------------------------------------
    def set_interpolation(self, endpoints) -> None:
        """Draw an interpolation's endpoints (``InterpolationEndpoints``) as a line whose ends drag."""
        from explorer.map.overlays import InterpolationLine
        self.interpolation_line = InterpolationLine(self, endpoints)

    def show_frame(self, frame: ProbeCodes | None) -> None:
        """Show a frame of the training movie (its codes in the live map's projection), or the live codes."""
        if frame is None and self._frame is None:
            return
        self._frame = frame
        if frame is None:
            self._reproject(reset_view=False)
        elif self._projection is not None and self._projection.exact:
            self._show(self._projection, self._projection.transform(frame.codes), reset_view=False)
        else:   # UMAP has no fast transform: the movie is scrubbed in the PCA of the latest codes
            live = self.state.probe if self.state is not None and self.state.probe is not None else frame
            projection = PCAProjection().fit(live.codes)
            self._show(projection, projection.transform(frame.codes), reset_view=False)
            self.note.setText("movie frames in PCA")

    def _shown_probe(self) -> ProbeCodes | None:
        """The codes on the map: a movie frame being scrubbed, else the run's latest."""
        if self._frame is not None:
            return self._frame
        return self.state.probe if self.state is not None else None

    def _reproject(self, reset_view: bool) -> None:
        probe = self._shown_probe()
        dim = self.state.model.latent_dim if self.state is not None and self.state.model is not None else 2
        raw = self._name == "raw"
        self.toolbar.show_controls(dims=raw and dim > 2, slow=self._name in SLOW_PROJECTIONS)
        self.manifold_tiles.set_available(SLOW_PROJECTIONS.get(self._name))
        self.live.show(self._name, probe)
        self._update_note()
        if probe is None or len(probe.codes) == 0:
            self._projection, self._xy, self._placeholder = None, np.zeros((0, 2)), False
            self.points.set_points(self._xy, np.zeros(0, np.int64))
            self._update_legend()
            self.posteriors.refresh()
            return
        placeholder = False
        if self._name in SLOW_PROJECTIONS:
            layout = self.live.layout(self._name)
            if layout is not None:
                projection, xy = layout
            else:  # PCA at once, with a note, until the slow layout arrives
                projection, placeholder = PCAProjection().fit(probe.codes), True
                if self._placeholder and isinstance(self._projection, PCAProjection):
                    keep_orientation(projection, self._projection)
                xy = projection.transform(probe.codes)
        elif raw:
            dims = (self.x_dim.value(), self.y_dim.value()) if dim > 1 else (0, 1)
            projection = IdentityProjection(dims=dims).fit(probe.codes)
            xy = projection.transform(probe.codes)
        else:
            projection = PCAProjection().fit(probe.codes)
            if not reset_view and isinstance(self._projection, PCAProjection):
                keep_orientation(projection, self._projection)
            xy = projection.transform(probe.codes)
        reset_view = reset_view or placeholder != self._placeholder
        self._placeholder = placeholder
        self._show(projection, xy, reset_view)

    def _stop_following(self, *_) -> None:
        self._follow_points = False

    def _show(self, projection: Projection, xy: np.ndarray, reset_view: bool) -> None:
        probe = self._shown_probe()
        self._projection, self._xy = projection, np.asarray(xy, dtype=np.float64)
        if not self._size_chosen:
            self.point_size.blockSignals(True)
            self.point_size.setValue(auto_point_size(len(self._xy)))
            self.point_size.blockSignals(False)
            self.points.set_point_size(self.point_size.value())
        self.points.set_points(self._xy, *self.colouring.colours_for(probe, self._n_colors()))
        self._update_legend()
        if reset_view:
            self._follow_points = True
        if self._follow_points and len(self._xy):
            self.view.autoRange(items=[self.points], padding=0.06)
        self.manifold_tiles.schedule()
        self.selection.redraw()
        if self.interpolation_line is not None:
            self.interpolation_line.update()
        selected = self.points.selected()
        if selected is not None:
            self.handle.setPos(*self._xy[selected])
        elif self.cursor.code is not None and projection.exact:
            self._place_handle_at_code(self.cursor.code)
        elif reset_view:
            self.handle.hide()  # its place in the previous layout means nothing in this one
        self.posteriors.refresh()

    def _on_layout(self, result) -> None:
        """A UMAP or t-SNE layout arrived: show it when it is the chosen one (a first layout
        replaces the PCA placeholder and frames the view; a live update keeps the view)."""
        name, projection, xy = result
        probe = self.state.probe if self.state is not None else None
        if name != self._name or probe is None or len(xy) != len(probe.codes):
            return
        first = self._placeholder or self._projection is None
        self._placeholder = False
        if self._frame is None:   # a frame of the movie is shown: the layout waits for the live end
            self._show(projection, xy, reset_view=first)
        self._update_note()

    def _update_note(self) -> None:
        """Say what is being computed (the busy indicator turns), and what is shown meanwhile."""
        self.note.setText(" · ".join(filter(None, (self.live.note(), self.posteriors.reason()))))
        self.busy.setVisible(self.live.busy())

    def _on_point_size(self, px: int) -> None:
        self._size_chosen = True
        self.points.set_point_size(px)

    def _n_colors(self) -> int:
        """One colour per class name, and per label beyond them."""
        labels = self.state.probe.labels
        return max(len(self.state.class_names), int(labels.max()) + 1 if len(labels) else 0)

    def _recolour(self, *_) -> None:
        """The colouring changed (another kind, new values): colour the points shown again."""
        probe = self._shown_probe()
        if probe is not None and len(self._xy) == len(probe.labels):
            self.points.set_points(self._xy, *self.colouring.colours_for(probe, self._n_colors()))
        self.colour_caption.setText(self.colouring.caption)
        self.colour_caption.setVisible(bool(self.colouring.caption))
        self.legend.setVisible(bool(self.legend.names) and self.colouring.kind == CLASS)

    def _update_legend(self) -> None:
        names = self.state.class_names if self.state is not None and self.state.probe is not None else []
        self.legend.set_classes(names, palette_for(self._n_colors()) if names else [])
        self.legend.setVisible(bool(names) and self.colouring.kind == CLASS)

    # -- the cursor ---------------------------------------------------------------------------------
    def _place_handle_at_code(self, code: np.ndarray) -> None:
        dim = self.state.model.latent_dim if self.state is not None and self.state.model is not None else -1
        if self._projection is not None and self._projection.exact and code.shape == (dim,):
            x, y = self._projection.transform(code[None])[0]
            self.handle.setPos(float(x), float(y))
            self.map_state.handle_xy = (float(x), float(y))
            self.handle.show()

    def _on_cursor_moved(self, code: np.ndarray, origin: str) -> None:
        if origin not in ("map", "select"):
            self._place_handle_at_code(code)

    def _move_handle(self, x: float, y: float, origin: str, code: np.ndarray | None = None) -> None:
        self.handle.setPos(x, y)
        self.map_state.handle_xy = (x, y)
        self.handle.show()
        code = self.map_to_code(x, y) if code is None else code
        if code is not None:
            self.cursor.set_code(code, origin)

    # -- mouse ----------------------------------------------------------------------------------------
    def _map_point(self, pos: QPointF) -> tuple[float, float]:
        p = self.view.mapSceneToView(self.plot.mapToScene(pos.toPoint()))
        return p.x(), p.y()

    def _point_near(self, x: float, y: float) -> int | None:
        pw, ph = self.view.viewPixelSize()
        return self.points.nearest(x, y, max_dist=PICK_RADIUS_PX * max(pw, ph))

    def _set_hovered(self, index: int | None) -> None:
        if index != self._hovered:
            self._hovered = index
            self.point_hovered.emit(index)

    def _hide_tooltip(self) -> None:
        self._set_hovered(None)
        if self.hover_card.isVisible() or self.hover_card.index is not None:
            self.hover_card.dismiss()
