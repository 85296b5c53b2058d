"""The state of one latent map, kept outside the widget that draws it.

A ``LatentView`` reads and writes its projection (the one chosen and the one fitted), the
2-D points and the handle's position in map coordinates here, so the
comparison can bind N maps to N runs, read any map's layout (to find the image nearest a
point) and keep a map's place when its widget is rebuilt.
"""

from __future__ import annotations

import numpy as np

from engine.projection import Projection


class MapState:
    """Projection, points and handle of one latent map (no Qt: plain data)."""

    def __init__(self, projection: str = "raw"):
        self.name = projection                       # chosen: "raw", "pca", "umap" or "tsne"
        self.projection: Projection | None = None    # fitted; the points are shown in it
        self.xy = np.zeros((0, 2))                   # the points in map coordinates (N×2)
        self.handle_xy: tuple[float, float] | None = None   # the cursor in map coordinates

    def code_at(self, x: float, y: float) -> np.ndarray | None:
        """The latent code at map point (x, y) (None before there is a map)."""
        if self.projection is None:
            return None
        return np.asarray(self.projection.inverse(np.array([[x, y]], dtype=np.float64)), np.float32)[0]
