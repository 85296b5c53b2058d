"""The main window's exports (File → Export): figures, embeddings, the loss plot, the latent map
as a picture or its coordinates, the training movie and TensorBoard logs.  Each asks for a file
(starting in the folder the last export used), writes it, and says "Wrote …" in the status bar or
one sentence in a dialog; the slow ones (the movie, TensorBoard) are written in the background.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from engine.errors import UserError


class ExportActions(QObject):
    """The export slots of one main window (``window.exports``)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.tasks: list = []   # background exports under way (TensorBoard, the movie)

    def _active_run_model(self):
        state = self.window.session.active
        if state is None or state.run is None:
            raise UserError("There is no saved run to export yet: train or open one first.")
        return state, state.run.load_model("latest")

    def _save_path(self, title: str, default: str, filters: str) -> str:
        """A file to write, starting in the last folder any export used (shared with the insight views)."""
        from explorer.insights.common import last_export_folder, remember_export_folder
        path, _ = QFileDialog.getSaveFileName(self.window, title, str(last_export_folder() / default), filters)
        if path:
            remember_export_folder(Path(path).parent)
        return path

    #: File → Export's figures and the insight view each writes (``window.insight_tabs.<view>``)
    FIGURE_VIEWS = {"samples": "samples", "recon": "reconstructions", "traversal": "traversals",
                    "interpolation": "interpolation"}

    def export_figure(self, what: str, path: str | None = None) -> Path | None:
        """What the insight view of ``what`` shows (samples, recon, traversal, interpolation), with
        its title and captions, each image at the view's export size (its ExportBar; 96 px unless
        changed there), as PNG or SVG: the same file as the view's own "PNG…"/"SVG…" buttons."""
        try:
            state = self.window.session.active
            if state is None or state.run is None:
                raise UserError("There is no saved run to export yet: train or open one first.")
            view = getattr(self.window.insight_tabs, self.FIGURE_VIEWS[what])
            if what in ("recon", "interpolation") and state.ensure_dataset() is None:
                raise UserError(f"The dataset of {state.name} is not available here, so it has no inputs to show.")
            path = path or self._save_path("Export figure", f"{state.name}-{what}.png", "PNG (*.png);;SVG (*.svg)")
            if not path:
                return None
            written = view.pane.export_bar.export(path)
        except UserError as exc:
            self.window.show_error(str(exc), "Export failed")
            return None
        self.window.state_label.setText(f"Wrote {written}")
        return written

    def export_embeddings(self, path: str | None = None) -> Path | None:
        """The codes of the images the map shows (View → Map points), each encoded with the run's model."""
        from engine.probe_sets import save_set_embeddings
        try:
            state, model = self._active_run_model()
            data = state.ensure_dataset()
            if data is None:
                raise UserError(f"The dataset of {state.name} is not available here, so there is nothing to embed.")
            path = path or self._save_path("Export embeddings", f"{state.name}-codes.csv", "CSV (*.csv);;NumPy (*.npz)")
            if not path:
                return None
            sets = getattr(self.window, "map_point_sets", None)   # the images the map shows (View → Map points)
            written = save_set_embeddings(model, data, sets.shown_set(state) if sets else "validation", path,
                                          state.class_names)
        except UserError as exc:
            self.window.show_error(str(exc), "Export failed")
            return None
        self.window.state_label.setText(f"Wrote {written}")
        return written

    def export_loss_plot(self) -> None:
        path = self._save_path("Export loss plot", "loss.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            try:
                self.window.loss_plot.export(path)
            except (UserError, OSError) as exc:
                self.window.show_error(str(exc), "Export failed")

    def export_map(self, path: str | None = None) -> Path | None:
        """The latent map as shown (points, colour bar, interpolation line) as PNG or SVG."""
        from explorer.map.exports import export_map_picture
        name = self.window.session.active.name if self.window.session.active is not None else "map"
        path = path or self._save_path("Export the latent map", f"{name}-map.png", "PNG (*.png);;SVG (*.svg)")
        return self._finish_export(lambda: export_map_picture(self.window.latent_view, path)) if path else None

    def export_map_csv(self, path: str | None = None) -> Path | None:
        """The map's 2-D coordinates with index, label, class and the coloured value, as CSV."""
        from explorer.map.exports import export_map_csv
        name = self.window.session.active.name if self.window.session.active is not None else "map"
        path = path or self._save_path("Export the map's coordinates", f"{name}-map.csv", "CSV (*.csv)")
        return self._finish_export(lambda: export_map_csv(self.window.latent_view, path)) if path else None

    def export_movie(self, path: str | None = None):
        """The active run's training movie as GIF or MP4, drawn in the background."""
        from explorer.map.exports import movie_export_job
        state = self.window.session.active
        name = state.name if state is not None else "run"
        try:
            if state is None or len(state.movie) < 1:
                raise UserError("There is no training movie to export: train or open a run first.")
            path = path or self._save_path("Export the training movie", f"{name}-movie.gif", "GIF (*.gif);;MP4 (*.mp4)")
            if not path:
                return None
            job = movie_export_job(state, path, self.window.latent_view.handle_position())
        except UserError as exc:
            self.window.show_error(str(exc), "Export failed")
            return None
        return self._run_export(job, "the training movie")

    def export_tensorboard(self, folder: str | None = None):
        """The active run for TensorBoard (scalars and the projector's codes), written in the background."""
        from engine import export
        state = self.window.session.active
        try:
            if state is None or state.run is None:
                raise UserError("There is no saved run to export yet: train or open one first.")
            if folder is None:
                from explorer.insights.common import last_export_folder, remember_export_folder
                folder = QFileDialog.getExistingDirectory(self.window, "TensorBoard log folder", str(last_export_folder()))
                if not folder:
                    return None
                remember_export_folder(Path(folder))
            run, images = state.run, state.dataset.val if state.dataset is not None else None
        except UserError as exc:
            self.window.show_error(str(exc), "Export failed")
            return None
        return self._run_export(lambda progress: export.export_tensorboard(run, folder, images=images),
                                "the TensorBoard logs")

    def _finish_export(self, write) -> Path | None:
        try:
            written = write()
        except (UserError, OSError) as exc:
            self.window.show_error(str(exc), "Export failed")
            return None
        self.window.state_label.setText(f"Wrote {written}")
        return written

    def _run_export(self, job, what: str):
        """Run a slow export on a background thread; the status bar says when it is written."""
        from explorer.tasks import BackgroundTask
        task = BackgroundTask(job, self)
        task.finished.connect(lambda written: self.window.state_label.setText(f"Wrote {written}"))
        task.failed.connect(lambda message: self.window.show_error(message, "Export failed"))
        task.thread.finished.connect(lambda: self.tasks.remove(task) if task in self.tasks else None)
        self.tasks.append(task)
        self.window.state_label.setText(f"Writing {what}…")
        task.start()
        return task
