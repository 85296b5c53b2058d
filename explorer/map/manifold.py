"""The manifold overlay of the latent map: decoded images tiled across the visible region, under
the points, rebuilt (debounced) when the view moves, the decoder learns or the label changes.

Only where a map position is a code: on raw and PCA maps (exact inverses).  On UMAP and t-SNE maps
positions are not codes (their inverse is a blend of the nearest points' codes, and far from the
points every tile would repeat the nearest one), so the tiles are off there and the toggle is
disabled, its tooltip saying why."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QTimer

from explorer.map.pictures import compose_tiles

MANIFOLD_TILES = 15          # decoded tiles along the longer side of the view
MANIFOLD_DEBOUNCE_MS = 150
TILES_TIP = "Tile decoded images over the visible region of the map"
NO_TILES_TIP = ("No manifold tiles on {title}: its positions are not codes (the map is not invertible "
                "between its points); choose Raw or PCA")


class ManifoldTiles(QObject):
    """The tiles of one map (``map_view``: a LatentView); ``image`` is the item drawn."""

    def __init__(self, map_view):
        super().__init__(map_view)
        self.map_view = map_view
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setOpacity(0.5)
        self.image.setZValue(-10)
        self.image.hide()
        map_view.plot.addItem(self.image, ignoreBounds=True)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(MANIFOLD_DEBOUNCE_MS)
        self.timer.timeout.connect(self.rebuild)

    def wanted(self) -> bool:
        toggle = self.map_view.manifold_toggle
        return toggle.isChecked() and toggle.isEnabled()

    def set_available(self, slow_title: str | None) -> None:
        """Tiles on a raw or PCA map (``slow_title`` None); off, disabled and saying why on a UMAP
        or t-SNE map (``slow_title``: its name)."""
        toggle = self.map_view.manifold_toggle
        toggle.setEnabled(slow_title is None)
        if slow_title is not None:
            toggle.setChecked(False)
        toggle.setToolTip(TILES_TIP if slow_title is None else NO_TILES_TIP.format(title=slow_title))

    def schedule(self, *_) -> None:
        """Rebuild after the debounce interval (or hide the tiles when the overlay is off)."""
        if self.wanted():
            self.timer.start()
        else:
            self.timer.stop()
            self.image.hide()

    def on_decoder_changed(self) -> None:
        if self.wanted() and not self.timer.isActive():
            self.timer.start()  # throttled: at most one rebuild per debounce interval

    def rebuild(self) -> None:
        """Decode a grid of codes across the visible region and tile the images under the points."""
        view, state = self.map_view, self.map_view.state
        projection = view.fitted_projection
        if not self.wanted() or projection is None or state is None or state.model is None:
            self.image.hide()
            return
        (x0, x1), (y0, y1) = view.view.viewRange()
        width, height = x1 - x0, y1 - y0
        if not (width > 0 and height > 0):
            return
        nx = MANIFOLD_TILES if width >= height else max(1, round(MANIFOLD_TILES * width / height))
        ny = MANIFOLD_TILES if height >= width else max(1, round(MANIFOLD_TILES * height / width))
        gx = x0 + (np.arange(nx) + 0.5) * width / nx
        gy = y0 + (np.arange(ny) + 0.5) * height / ny
        xx, yy = np.meshgrid(gx, gy)
        codes = projection.inverse(np.column_stack([xx.ravel(), yy.ravel()]))
        label = view.cursor.label if state.model.is_conditional else None
        tiles = compose_tiles(state.decode(codes, label), nx, ny)
        self.image.setImage(tiles, levels=(0, 255), autoLevels=False)
        self.image.setRect(QRectF(x0, y0, width, height))
        self.image.show()
