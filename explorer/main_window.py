"""The main window: the latent map in the centre, training panel left, decoder canvas and runs
right, the loss plot below; menus, shortcuts, status bar, and the layout remembered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import platformdirs
import torch
from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.data import download_dataset, load_dataset
from engine.errors import UserError
from engine.training import TRAIN_THREADS, resolve_device
from explorer.background import BackgroundTask
from explorer.decoder_canvas import DecoderCanvas
from explorer.latent_view import LatentView
from explorer.loss_plot import LossPlot
from explorer.runs_panel import RunsPanel
from explorer.session import RunState, Session, rebind
from explorer.training_panel import TrainingPanel, format_eta

CLOSE_TIMEOUT_MS = 1800


def default_runs_dir() -> Path:
    return platformdirs.user_data_path("latent-explorer") / "runs"


def device_description() -> str:
    device = resolve_device("auto")
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    threads = TRAIN_THREADS   # the GUI thread itself keeps one (explorer/app.py)
    return f"CPU ({threads} training thread{'s' if threads != 1 else ''})"


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, settings: QSettings | None = None,
                 runs_dir: str | Path | None = None):
        super().__init__()
        self.setWindowTitle("Latent Explorer")
        self.setObjectName("mainWindow")
        self.session = session or Session(self)
        self.settings = settings
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.message_box: QMessageBox | None = None
        self._download: BackgroundTask | None = None

        self.latent_view = LatentView(self.session)
        self.setCentralWidget(self.latent_view)
        self.training_panel = TrainingPanel(self.session)
        self.decoder_canvas = DecoderCanvas(self.session)
        self.loss_plot = LossPlot(self.session)
        self.runs_panel = RunsPanel(self.session)
        self.docks = {
            "training": self._dock("Training", self.training_panel, Qt.LeftDockWidgetArea),
            "decoder": self._dock("Decoder", self.decoder_canvas, Qt.RightDockWidgetArea),
            "runs": self._dock("Runs", self.runs_panel, Qt.RightDockWidgetArea),
            "loss": self._dock("Loss", self.loss_plot, Qt.BottomDockWidgetArea),
        }
        self.resizeDocks([self.docks["training"], self.docks["decoder"]], [330, 340], Qt.Horizontal)
        self.resizeDocks([self.docks["loss"]], [230], Qt.Vertical)
        self.resizeDocks([self.docks["decoder"], self.docks["runs"]], [520, 200], Qt.Vertical)

        self._build_menus()
        self._build_status_bar()
        tp = self.training_panel
        tp.start_requested.connect(self.start_training)
        tp.pause_requested.connect(self.pause_training)
        tp.resume_requested.connect(self.resume_training)
        tp.stop_requested.connect(self.stop_training)
        tp.download_requested.connect(self.download)
        self.runs_panel.open_requested.connect(self.open_run_dialog)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.overlays_changed.connect(self.loss_plot.set_overlays)
        self.session.active_changed.connect(self._follow)
        self._state: RunState | None = None
        self.resize(1500, 920)
        self.restore_settings()

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable | QDockWidget.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    # -- menus, shortcuts, status bar ----------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open run…", self.open_run_dialog, QKeySequence.Open, "openRunAction")
        export = file.addMenu("&Export")
        self._action(export, "&Samples grid…", lambda: self.export_figure("samples"), "Ctrl+E", "exportSamplesAction")
        self._action(export, "&Reconstructions…", lambda: self.export_figure("recon"))
        self._action(export, "&Traversals…", lambda: self.export_figure("traversal"))
        self._action(export, "&Interpolations…", lambda: self.export_figure("interpolation"))
        self._action(export, "&Embeddings (CSV/NPZ)…", self.export_embeddings)
        self._action(export, "&Loss plot (PNG/SVG)…", self.export_loss_plot)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.Quit)
        train = bar.addMenu("&Training")
        self.start_action = self._action(train, "&Start", self.training_panel.start.click, "F5", "startAction")
        self.pause_action = self._action(train, "&Pause / Resume", self.training_panel.pause.click, "F6", "pauseAction")
        self.stop_action = self._action(train, "S&top", self.training_panel.stop.click, "Shift+F5", "stopAction")
        view = bar.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About Latent Explorer", self._about)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.device_label = QLabel(device_description())
        self.state_label = QLabel("Ready: choose a dataset and a model, then press Start (F5).")
        self.speed_label = QLabel("")
        self.eta_label = QLabel("")
        status.addWidget(self.state_label, 1)
        for w in (self.speed_label, self.eta_label, self.device_label):
            status.addPermanentWidget(w)

    def _about(self) -> None:
        QMessageBox.about(self, "About Latent Explorer",
                          "<b>Latent Explorer</b><br>Train autoencoders and explore their latent spaces.<br>"
                          "Drag on the latent map to decode the point under the cursor.")

    # -- errors ------------------------------------------------------------------------------
    def show_error(self, message: str, title: str = "Latent Explorer") -> None:
        """One clear sentence in a window-modal dialog; the window stays usable."""
        self.message_box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
        self.message_box.setObjectName("errorMessage")
        self.message_box.open()
        self.state_label.setText(message)

    # -- training ----------------------------------------------------------------------------
    def start_training(self, configs: tuple[DataConfig, ModelConfig, TrainConfig]) -> None:
        data, model, train = configs
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            dataset = load_dataset(data)
        except UserError as exc:
            self.show_error(str(exc), "The dataset could not be loaded")
            return
        finally:
            QApplication.restoreOverrideCursor()
        state = RunState(data, model, train, dataset=dataset)
        self.session.add(state)
        try:
            state.start(self.runs_dir)
        except UserError as exc:
            self.show_error(str(exc), "Training could not start")
        self._save_last_configs(configs)

    def pause_training(self) -> None:
        if self.session.active is not None:
            self.session.active.pause()

    def resume_training(self) -> None:
        if self.session.active is not None:
            self.session.active.resume()

    def stop_training(self) -> None:
        if self.session.active is not None:
            self.session.active.stop()

    def resume_run(self, state: RunState) -> None:
        """Continue a finished or stopped run for the number of epochs in the panel."""
        try:
            epochs = max(self.training_panel.epochs.value(), state.epoch + 1)
            state.start(self.runs_dir, epochs=epochs)
        except UserError as exc:
            self.show_error(str(exc), "The run could not be resumed")

    def download(self, data: DataConfig) -> None:
        if self._download is not None and self._download.is_running():
            return
        self._download = BackgroundTask(lambda progress: download_dataset(data, progress), self)
        self._download.progressed.connect(lambda p: self.training_panel.set_download_progress(*p))
        self._download.finished.connect(lambda _: (self.training_panel.set_download_progress(None),
                                                   self.state_label.setText(f"{data.source} is downloaded.")))
        self._download.failed.connect(lambda m: (self.training_panel.set_download_progress(None),
                                                 self.show_error(m, "Download failed")))
        self.training_panel.set_download_progress(0, 0)
        self._download.start()

    # -- runs ---------------------------------------------------------------------------------
    def open_run_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a run folder", str(self.runs_dir))
        if path:
            self.open_run(path)

    def open_run(self, path: str | Path) -> RunState | None:
        try:
            state = RunState.open(path)
        except UserError as exc:
            self.show_error(str(exc), "The run could not be opened")
            return None
        state.ensure_dataset()
        self.session.add(state)
        self.state_label.setText(f"Opened {state.name}.")
        return state

    def _follow(self, state: RunState | None) -> None:
        self._state = rebind(self._state, state, {"refreshed": self._show_progress, "status_changed": self._show_status,
                                                  "failed": self._on_failed})
        if state is not None:
            self._show_status(state.status)

    def _on_failed(self, message: str) -> None:
        self.show_error(message, "Training stopped")

    def _show_status(self, status: str) -> None:
        s = self._state
        if s is None:
            return
        words = {"running": "Training", "paused": "Paused", "completed": "Finished", "stopped": "Stopped",
                 "failed": "Failed", "new": "Ready"}.get(status, status)
        self.state_label.setText(f"{words}: {s.variant_title} on {s.dataset_name}" + (f" — {s.reason}" if s.reason else ""))
        if status not in ("running", "paused"):
            self.eta_label.setText("")

    def _show_progress(self) -> None:
        s = self._state
        if s.samples_per_sec:
            self.speed_label.setText(f"{s.samples_per_sec:,.0f} samples/s")
        if s.status == "running":
            self.eta_label.setText(f"ETA {format_eta(s.eta_s)}" if math.isfinite(s.eta_s) else "")

    # -- export -----------------------------------------------------------------------------------
    def _active_run_model(self):
        state = self.session.active
        if state is None or state.run is None:
            raise UserError("There is no saved run to export yet: train or open one first.")
        return state, state.run.load_model("latest")

    def _save_path(self, title: str, default: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / default), filters)
        return path

    def export_figure(self, what: str, path: str | None = None) -> Path | None:
        from engine import export
        try:
            state, model = self._active_run_model()
            path = path or self._save_path("Export figure", f"{state.name}-{what}.png", "Images (*.png *.jpg *.tif)")
            if not path:
                return None
            if what == "samples":
                grid = export.sample_grid(model, 64, 8, self.session.cursor.label if model.is_conditional else None)
            else:
                data = state.ensure_dataset()
                if data is None and what != "traversal":
                    raise UserError(f"The dataset of {state.name} is not available here, so it has no inputs to show.")
                if what == "recon":
                    grid = export.reconstruction_grid(model, data.val, 32, 8)
                elif what == "traversal":
                    base = self.session.cursor.code
                    grid = export.traversal_grid(model, torch.as_tensor(base) if base is not None else None,
                                                 label=self.session.cursor.label)
                else:
                    grid = export.interpolation_grid(model, data.val)
            written = export.save_grid(grid, path)
        except UserError as exc:
            self.show_error(str(exc), "Export failed")
            return None
        self.state_label.setText(f"Wrote {written}")
        return written

    def export_embeddings(self, path: str | None = None) -> Path | None:
        from engine import export
        try:
            state, model = self._active_run_model()
            data = state.ensure_dataset()
            if data is None:
                raise UserError(f"The dataset of {state.name} is not available here, so there is nothing to embed.")
            path = path or self._save_path("Export embeddings", f"{state.name}-codes.csv", "CSV (*.csv);;NumPy (*.npz)")
            if not path:
                return None
            codes, labels = export.embeddings(model, data.val)
            written = export.save_embeddings(codes, labels, path, state.class_names)
        except UserError as exc:
            self.show_error(str(exc), "Export failed")
            return None
        self.state_label.setText(f"Wrote {written}")
        return written

    def export_loss_plot(self) -> None:
        path = self._save_path("Export loss plot", "loss.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            try:
                self.loss_plot.export(path)
            except (UserError, OSError) as exc:
                self.show_error(str(exc), "Export failed")

    # -- settings and closing --------------------------------------------------------------------
    def _save_last_configs(self, configs) -> None:
        if self.settings is not None:
            data, model, train = configs
            self.settings.setValue("last_configs", json.dumps({"data": data.to_dict(), "model": model.to_dict(),
                                                               "train": train.to_dict()}))

    def restore_settings(self) -> None:
        if self.settings is None:
            return
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        raw = self.settings.value("last_configs")
        if raw:
            try:
                d = json.loads(raw)
                self.training_panel.set_configs(DataConfig.from_dict(d["data"]), ModelConfig.from_dict(d["model"]),
                                                TrainConfig.from_dict(d["train"]))
            except (UserError, ValueError, KeyError, TypeError):
                pass  # settings from another version: keep the defaults

    def save_settings(self) -> None:
        if self.settings is not None:
            self.settings.setValue("geometry", self.saveGeometry())
            self.settings.setValue("window_state", self.saveState())
            try:
                self._save_last_configs(self.training_panel.configs())
            except UserError:
                pass
            self.settings.sync()

    def closeEvent(self, event) -> None:
        """Stop every run (each saves as it stops), wait for the threads, remember the layout.
        A projection is never waited for: its process is killed first."""
        self.latent_view.shutdown()
        if not self.session.stop_all(CLOSE_TIMEOUT_MS):
            # a long step (a big convolutional batch, a checkpoint) is still finishing: a thread must
            # never be destroyed while it runs, so keep waiting rather than lose the run
            self.state_label.setText("Waiting for training to stop and save…")
            QApplication.processEvents()
            self.session.stop_all(60_000)
        if self._download is not None:
            self._download.wait(CLOSE_TIMEOUT_MS)
        self.save_settings()
        super().closeEvent(event)
