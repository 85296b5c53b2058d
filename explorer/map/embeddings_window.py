"""A map of codes without a run: File → Open embeddings… (or ``python main.py FILE.npz|FILE.csv``)
reads an embeddings file (``engine.embeddings_file``: an .npz of codes with optional labels, or a
.csv of z0 … z{D-1} with an optional label column) and shows it in a window of its own.

The points are coloured by label (one colour when the file has none) and drawn raw for 1- and 2-D
codes, otherwise in their top two principal axes (PCA).  Hovering shows the point's index and
label; there is no decoder, since no model comes with the codes.  Reading, projecting and the hit
test's KD-tree are built on a ``BackgroundTask``, so a file of a million codes leaves the GUI
thread free while it loads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QCursor, QPalette
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QToolTip, QWidget

from explorer.map.map_items import MapViewBox
from explorer.map.point_layer import PointLayer, palette_for

PICK_RADIUS_PX = 6


@dataclass
class LoadedEmbeddings:
    """What the background load hands the window: the file, its 2-D layout, the hit test's tree."""

    file: object          # engine.embeddings_file.EmbeddingsFile
    xy: np.ndarray        # N×2
    layout: str           # how xy came from the codes, in words
    tree: object          # scipy cKDTree over xy
    seconds: float        # reading and laying out, wall clock


def load_for_map(path) -> LoadedEmbeddings:
    """Read ``path`` and lay its codes out in 2-D (off the GUI thread); UserError for a bad file."""
    from scipy.spatial import cKDTree

    from engine.embeddings_file import load_embeddings
    from engine.projection import PCAProjection
    start = time.perf_counter()
    emb = load_embeddings(path)
    n, d = emb.codes.shape
    if d == 1:
        xy, layout = np.column_stack([emb.codes[:, 0], np.zeros(n, np.float32)]), "z0 (1-D codes)"
    elif d == 2:
        xy, layout = emb.codes, "z0, z1"
    else:
        xy, layout = PCAProjection().fit(emb.codes).transform(emb.codes), f"PCA of {d}-D codes"
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    return LoadedEmbeddings(emb, xy, layout, cKDTree(xy), time.perf_counter() - start)


def auto_point_size(n: int) -> int:
    return 6 if n <= 1000 else 4 if n <= 10_000 else 3 if n <= 100_000 else 2


class EmbeddingsWindow(QMainWindow):
    """The map of one embeddings file: points by label, the index and label of the hovered one."""

    point_hovered = Signal(object)   # index of the point under the pointer, or None

    def __init__(self, loaded: LoadedEmbeddings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("embeddingsWindow")
        self.loaded = loaded
        emb = loaded.file
        n, d = emb.codes.shape
        self.setWindowTitle(f"{emb.path.name} — {n:,} codes of {d} dimensions")
        palette = self.palette()
        self.plot = pg.PlotWidget(viewBox=MapViewBox(), background=palette.color(QPalette.ColorRole.Base))
        self.plot.setObjectName("embeddingsPlot")
        self.view = self.plot.getViewBox()
        self.view.setAspectLocked(True)
        self.plot.setLabel("bottom", loaded.layout)
        self.points = PointLayer(auto_point_size(n))
        labels = emb.labels if emb.has_labels else np.zeros(n, np.int64)
        self.points.set_points(loaded.xy, labels, palette_for(int(labels.max()) + 1))
        # the hit test's KD-tree was built with the load, off the GUI thread (PointLayer builds it lazily)
        self.points._tree, self.points._tree_index = loaded.tree, np.arange(n)
        self.plot.addItem(self.points)
        self.setCentralWidget(self.plot)
        self.hover_note = QLabel()
        self.hover_note.setObjectName("embeddingsHoverNote")
        self.statusBar().addWidget(self.hover_note, 1)
        kinds = "coloured by label" if emb.has_labels else "no labels in the file"
        self.summary = (f"{n:,} codes ({kinds}; {loaded.layout}); no model, so nothing is decoded. "
                        f"Read and laid out in {loaded.seconds:.1f} s.")
        self.hover_note.setText(self.summary)
        self.hovered: int | None = None
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.resize(820, 640)
        self.view.autoRange(padding=0.05)

    def hover_text(self, index: int) -> str:
        emb = self.loaded.file
        label = int(emb.labels[index])
        return f"point {index:,}: {emb.label_name(label)}" + (f" (label {label})" if emb.class_names and label >= 0 else "")

    def hover_at(self, x: float, y: float) -> int | None:
        """The point near map position (x, y), shown in the status line and a tooltip; None if none is near."""
        pw, ph = self.view.viewPixelSize()
        index = self.points.nearest(x, y, max_dist=PICK_RADIUS_PX * max(pw, ph))
        if index != self.hovered:
            self.hovered = index
            self.points.set_selected(index)
            self.point_hovered.emit(index)
        if index is None:
            self.hover_note.setText(self.summary)
            QToolTip.hideText()
        else:
            text = self.hover_text(index)
            self.hover_note.setText(text)
            QToolTip.showText(QCursor.pos(), text, self.plot)
        return index

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        p = self.view.mapSceneToView(scene_pos)
        self.hover_at(p.x(), p.y())


def open_embeddings(window, path: str | None = None):
    """File → Open embeddings…: ask for a file (unless given), load it in the background, then show
    its map in a window of its own; a bad file is one sentence in ``window.show_error``.  Returns
    the loading task (None when the dialog was cancelled)."""
    from explorer.tasks import BackgroundTask
    if path is None:
        path, _ = QFileDialog.getOpenFileName(window, "Open embeddings", "", "Embeddings (*.npz *.csv)")
        if not path:
            return None
    window.say(f"Reading the codes in {path}…")
    task = BackgroundTask(lambda _progress: load_for_map(path), window, name="embeddings")

    def loaded(result: LoadedEmbeddings) -> None:
        shown = EmbeddingsWindow(result, window)
        window.embeddings_windows = [w for w in getattr(window, "embeddings_windows", []) if w.isVisible()] + [shown]
        shown.show()
        window.say(f"Opened {len(result.file.codes):,} codes from {result.file.path.name}.")

    task.finished.connect(loaded)
    task.failed.connect(lambda message: window.show_error(message, "Cannot open the embeddings"))
    task.start()
    return task
