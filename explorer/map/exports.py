"""What File → Export writes from the latent map: the map as PNG or SVG (its scene painted into
memory, then written in one step; the points are vector circles in SVG), its 2-D coordinates as
CSV (engine.export.save_map_csv, with the value the map is coloured by), and the training movie
as GIF or MP4 (engine.export's movie frames of the run's in-memory ``ProbeMovie``, so a live
run's movie exports too)."""

from __future__ import annotations

import copy
from pathlib import Path

from engine.errors import UserError
from engine.outputs import output_target

PICTURE_SUFFIXES = (".png", ".svg")
PNG_SCALE = 2   # a PNG's pixels per screen pixel


def export_map_picture(view, path) -> Path:
    """The map as it is shown (points, colour bar, interpolation line): PNG at twice the screen's
    pixel density, SVG with vector points.  The picture is rendered in memory and then written
    atomically (engine.runs.atomic_write), so neither a failed write nor a fault while painting
    leaves a temporary file beside the target.  (pyqtgraph's SVGExporter fails on the closed paths
    Qt 6.11 writes, as the loss plot found, so the scene is painted directly.)"""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSize
    from PySide6.QtGui import QImage, QPainter

    from engine.storage import atomic_write
    path = output_target(path, PICTURE_SUFFIXES, "the map")
    if view.points.n_points == 0:
        raise UserError("The map has no points to export yet.")
    plot = view.plot
    source = plot.mapToScene(plot.viewport().rect()).boundingRect()
    size = QSize(max(1, round(source.width())), max(1, round(source.height())))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    svg = path.suffix.lower() == ".svg"
    if svg:
        from PySide6.QtSvg import QSvgGenerator
        device = QSvgGenerator()
        device.setOutputDevice(buffer)
        device.setSize(size)
        device.setViewBox(QRectF(0, 0, size.width(), size.height()))
        device.setTitle(view.state.name if view.state is not None else "latent map")
    else:
        device = QImage(size * PNG_SCALE, QImage.Format.Format_ARGB32)
        device.setDevicePixelRatio(PNG_SCALE)
        device.fill(plot.backgroundBrush().color())
    painter = QPainter(device)
    try:
        plot.scene().render(painter, QRectF(0, 0, size.width(), size.height()), source)
    finally:
        painter.end()
    if not svg and not device.save(buffer, "PNG"):
        raise UserError(f"The map could not be encoded as PNG for {path}.")
    buffer.close()
    picture = bytes(data.data())
    if not picture:
        raise UserError(f"The map could not be drawn for {path}.")
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(picture), len(picture))
    return path


def export_map_csv(view, path) -> Path:
    """The shown points' map coordinates, index, label, class and coloured value."""
    from engine.export import save_map_csv
    probe = view._shown_probe()
    if probe is None or len(view._xy) != len(probe.labels):
        raise UserError("The map has no points to export yet.")
    values, name = view.colouring.value_column()
    return save_map_csv(path, view._xy, probe.labels, probe.indices, value=values, value_name=name,
                        class_names=view.state.class_names)


def movie_export_job(state, path, point=None, fps: float = 10):
    """A function for a background thread that writes the run's movie (checked here, in the GUI thread)."""
    from engine.export import check_animation_target, movie_frames, save_animation
    check_animation_target(path, fps)
    if state.model is None or len(state.movie) == 0:
        raise UserError("There is no training movie to export: train or open a run first.")
    movie, model = copy.deepcopy(state.movie), copy.deepcopy(state.model).eval()
    names, title = list(state.class_names), state.name
    # the handle's place on the map is in the map's projection; the movie lays out its own (raw or
    # PCA), so the decoded point is the movie's own default unless the map is raw
    point = point if point is not None and model.latent_dim <= 2 else None

    def job(progress):
        frames = movie_frames(movie, model, point=point, class_names=names, title=title)
        return save_animation(frames, path, fps)

    return job
