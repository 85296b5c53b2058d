"""The main window: the latent map in the centre, training panel left, decoder canvas and runs
right, the loss plot below; the status bar.  It composes, and keeps little else:

* explorer/window/actions.py: menus, actions, shortcuts and the F1 list (``window.menu_actions``);
* explorer/window/export_actions.py: every File → Export slot (``window.exports``);
* explorer/window/layout_settings.py: the layout and choices kept in QSettings (``window.layout_settings``);
* explorer/window/library.py: the runs library, read behind the shown window (``window.library``);
* explorer/training/controller.py: start, queue, resume, open, download, evaluate, without a
  widget (``window.training``); the window connects its signals to dialogs and the status bar.

The window comes up before torch is imported (torch alone takes about 2 s): ``MainWindow(...,
deferred=True)`` builds the frame, the menus and the docks with placeholders, and
``build_views_in_background()`` imports the engine on a plain thread while the shown window
paints, then builds the views in the GUI thread.  By default (tests, tools) it builds at once.
This module imports nothing heavy at its top for that reason.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QWidget,
)

from explorer.resources import icon_path
from explorer.shutdown import end_library_threads
from explorer.tasks import wait_for_tasks
from explorer.window.actions import WindowActions
from explorer.window.compare_actions import Comparison
from explorer.window.export_actions import ExportActions
from explorer.window.interpolation_link import InterpolationLink
from explorer.window.layout_settings import LayoutSettings, default_queue_path, default_runs_dir
from explorer.window.status_bar import device_description, short_form
from explorer.window.status_line import APP_TITLE, READY_MESSAGE, StatusLine

CLOSE_TIMEOUT_MS = 1800
#: the status line of a window with nothing under way


class MainWindow(QMainWindow):
    def __init__(self, session=None, settings: QSettings | None = None, runs_dir: str | Path | None = None,
                 deferred: bool = False, queue_path: str | Path | None = None):
        super().__init__()
        self.setWindowTitle(APP_TITLE)
        self.setObjectName("mainWindow")
        if icon_path().is_file():
            self.setWindowIcon(QIcon(str(icon_path())))
        self.settings = settings
        self.runs_dir = Path(runs_dir) if runs_dir else default_runs_dir()
        self.queue_path = Path(queue_path) if queue_path else default_queue_path(settings)
        self.resume_dialog: QInputDialog | None = None
        self.message_box: QMessageBox | None = None
        # made with the views: the training controller, its queue and metrics runner, the runs library
        self.training = self.train_queue = self.metrics_runner = self.library = None
        self.views_built = False
        self._session_given = session
        self.session = None
        self.presets = []
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        # the right-hand column (decoder / insights above the runs) runs down to the status bar, the loss plot under the map only
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCentralWidget(self._placeholder("Loading the engine…"))
        self.docks = {
            "training": self._dock("Training", Qt.DockWidgetArea.LeftDockWidgetArea),
            "decoder": self._dock("Decoder", Qt.DockWidgetArea.RightDockWidgetArea),
            "runs": self._dock("Runs", Qt.DockWidgetArea.RightDockWidgetArea),
            "loss": self._dock("Loss", Qt.DockWidgetArea.BottomDockWidgetArea),
        }
        # the insight views (traversals, interpolation, samples, reconstructions) share the decoder's place
        self.insights_dock = self._dock("Insights", Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["decoder"], self.insights_dock)
        self.docks["decoder"].raise_()
        self._deferred = deferred
        self.exports = ExportActions(self)
        self.layout_settings = LayoutSettings(self, settings)
        self.menu_actions = WindowActions(self)
        self.menu_actions.build()
        self.status_line = StatusLine(self)
        sl = self.status_line
        self.state_label, self.speed_label, self.eta_label, self.device_label = \
            sl.state_label, sl.speed_label, sl.eta_label, sl.device_label
        self.comparison = Comparison(self)
        self.layout_settings.fit_to_screen()
        self.layout_settings.restore_layout()
        if not deferred:
            self.build_views()

    # -- the frame ------------------------------------------------------------------------------
    @staticmethod
    def _placeholder(text: str) -> QLabel:
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setEnabled(False)
        return label

    def _dock(self, title: str, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(self._placeholder("Loading…"))
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    # -- the views (torch and everything that needs it) -------------------------------------------
    def build_views_in_background(self, before=None, then=None) -> None:
        """Import the engine on a plain thread while the shown window paints, then, in the GUI
        thread, call ``before()``, build the views and call ``then()`` (explorer/window/engine_import.py)."""
        from explorer.window.engine_import import import_engine_then
        self.state_label.setText("Loading the engine (torch)…")

        def build() -> None:
            if before is not None:
                before()
            self.build_views()
            if then is not None:
                then()

        import_engine_then(self, build)

    def build_views(self) -> None:
        if self.views_built:
            return
        from explorer.window.runtime import tune_for_gui
        tune_for_gui()   # before the GUI thread runs any torch op
        from explorer.decoder_canvas import DecoderCanvas
        from explorer.insights.tabs import InsightTabs
        from explorer.loss.plot import LossPlot
        from explorer.map.latent_view import LatentView
        from explorer.runs_panel import RunsPanel
        from explorer.session import Session
        from explorer.training.controller import TrainingController
        from explorer.training.panel import TrainingPanel
        from explorer.training.presets import load_presets
        from explorer.training.queue import QueuePanel, confirm_large_sweep
        from explorer.window.library import RunsLibrary

        self.session = self._session_given or Session(self)
        self.presets = load_presets()
        self.latent_view = LatentView(self.session)
        self.training_panel = TrainingPanel(self.session, self.presets)
        self.decoder_canvas = DecoderCanvas(self.session)
        self.loss_plot = LossPlot(self.session)
        self.runs_panel = RunsPanel(self.session)
        self.insight_tabs = InsightTabs(self.session)
        # the views' control rows are wider than a laptop's right-hand dock: they scroll rather than widen the window
        insights_scroll = QScrollArea()
        insights_scroll.setObjectName("insightsScroll")
        insights_scroll.setWidgetResizable(True)
        insights_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        insights_scroll.setWidget(self.insight_tabs)
        self.insights_dock.setWidget(insights_scroll)
        self.interpolation_link = InterpolationLink(self)
        for dock in (self.docks["decoder"], self.insights_dock):   # the Insights tab takes most of the column
            dock.visibilityChanged.connect(lambda _: QTimer.singleShot(0, self.layout_settings.right_tab_changed))
        self.insight_tabs.take_groups_from(self.latent_view.selection)   # the map's "Selection → group A / B"
        self.latent_view.movie_slider.step_chosen.connect(self.loss_plot.mark_step)
        self.training = TrainingController(self.session, self.runs_dir, self.queue_path, parent=self)
        self.training.confirm_sweep = lambda n: confirm_large_sweep(self, n)
        self.train_queue, self.metrics_runner = self.training.train_queue, self.training.metrics_runner
        self.library = RunsLibrary(self.session, self.runs_dir, self.settings, parent=self)
        self.queue_panel = QueuePanel(self.train_queue)
        self.runs_tabs = self._runs_tabs()
        self.setCentralWidget(self.latent_view)
        for key, widget in (("training", self.training_panel), ("decoder", self.decoder_canvas),
                            ("runs", self.runs_tabs), ("loss", self.loss_plot)):
            self.docks[key].setWidget(widget)
        self.views_built = True
        self.layout_settings.default_dock_sizes()
        if self.isVisible() and not self.layout_settings.has_saved_layout():
            # the docks' new widgets settle their sizes in the next pass of the event loop: size them again then
            QTimer.singleShot(0, self.layout_settings.default_dock_sizes)
        self.menu_actions.fill()
        self.device_label.setText(device_description())
        self._connect_views()
        self.session.active_changed.connect(self._follow)
        self.layout_settings.restore()
        self.layout_settings.right_tab = self.layout_settings.shown_right_tab()   # sized anew when the person picks the other
        self.state_label.setText(READY_MESSAGE)
        self.library.load(background=self._deferred)   # the app reads its library behind the shown window
        if self.train_queue.notes:
            self.show_error(" ".join(self.train_queue.notes), "The saved queue")
        self.train_queue.poke()   # a queue saved at the last launch goes on
        self._set_tab_order()
        self.training_panel.preset.setFocus(Qt.FocusReason.OtherFocusReason)   # where a newcomer starts

    def _connect_views(self) -> None:
        """The panels' requests to the controller, the library and the dialogs; their reports to the status bar."""
        tp, rp, mr, tc = self.training_panel, self.runs_panel, self.metrics_runner, self.training
        tp.start_requested.connect(tc.start_training)
        tp.pause_requested.connect(tc.pause_training)
        tp.resume_requested.connect(tc.resume_training)
        tp.stop_requested.connect(tc.stop_training)
        tp.download_requested.connect(tc.download)
        tp.queue_requested.connect(tc.queue_configs)
        tp.sweep_requested.connect(tc.queue_sweep)
        tp.new_run_requested.connect(self.new_run)
        tp.preset_applied.connect(self._apply_preset_view)
        tc.failed.connect(self.show_error)
        tc.reported.connect(self.say)
        tc.load_progress_changed.connect(tp.set_load_progress)
        tc.download_progress_changed.connect(lambda p: tp.set_download_progress(*(p or (None,))))
        tc.dataset_notes_changed.connect(tp.set_dataset_notes)
        tc.configs_started.connect(self.layout_settings.save_last_configs)
        self.status_line.finding_changed.connect(tp.set_finding)
        for edited in (tp.dataset.currentIndexChanged, tp.root.textChanged, tp.path.textChanged):
            edited.connect(self.status_line.forget_missing_data_error)
        self.insight_tabs.dimensions.diagnosed.connect(self.status_line.set_view_finding)
        tc.run_opened.connect(self.library.remember)
        self.library.reported.connect(self.say)
        self.library.read_ended.connect(self._library_read)
        self.train_queue.failed.connect(lambda message: self.show_error(message, "The queue"))
        rp.open_requested.connect(self.open_run_dialog)
        rp.resume_requested.connect(self.resume_run)
        rp.overlays_changed.connect(self.loss_plot.set_overlays)
        rp.checked_changed.connect(self.comparison.follow_checked_runs)
        rp.evaluate_requested.connect(tc.evaluate_run)
        rp.load_settings_requested.connect(self.load_settings_of)
        rp.can_forget = lambda state: state.run is not None and self.library.is_remembered(state.run.path)
        rp.forget_requested.connect(self.library.forget)
        rp.failed.connect(lambda message: self.show_error(message, "Latent Explorer"))
        rp.renamed.connect(lambda state: (self.status_line.update_title(), self.state_label.setText(f"Renamed to {state.name}.")))
        rp.deleted.connect(lambda path: self.state_label.setText(f"Deleted {path}."))
        mr.evaluated.connect(lambda state: self.state_label.setText(
            f"Metrics of {state.name}: " + (f"NLL {state.headline_nll:.2f} nats per image (K = {mr.nll_samples})."
                                            if state.headline_nll is not None else "written to metrics.json (no NLL: "
                                            "its model has no density).")))
        mr.failed.connect(lambda pair: self.state_label.setText(f"Metrics of {pair[0].name}: {pair[1]}"))

    def _runs_tabs(self):
        """The runs dock: the runs library and the training queue, as two tabs ("Queue (2)" while runs wait)."""
        from PySide6.QtWidgets import QTabWidget
        tabs = QTabWidget()
        tabs.setObjectName("runsTabs")
        tabs.setDocumentMode(True)
        tabs.addTab(self.runs_panel, "Runs")
        table = self.runs_panel.table   # rows as tall as their text needs: the style's 30 px showed 5 where 7 fit
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        tabs.addTab(self.queue_panel, "Queue")
        tabs.setTabToolTip(1, "Runs waiting to train, one after another.")

        def show_count(items) -> None:
            tabs.setTabText(1, f"Queue ({len(items)})" if items else "Queue")

        self.train_queue.changed.connect(show_count)
        show_count(self.train_queue.items)
        return tabs

    def _set_tab_order(self) -> None:
        """Tab goes panel → map → decoder → loss controls → runs list → Open/Resume; arrows move within."""
        chain = [self.training_panel.start, self.training_panel.pause, self.training_panel.stop,
                 self.training_panel.new_run, self.latent_view.projection_combo, self.latent_view.plot,
                 *self.decoder_canvas.focus_chain(), self.loss_plot.smoothing, self.loss_plot.raw,
                 self.loss_plot.log_y, self.loss_plot.ignore_outliers, self.loss_plot.terms_button,
                 self.runs_panel.table, self.runs_panel.open_button, self.runs_panel.resume_button]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    # -- errors ------------------------------------------------------------------------------
    def show_error(self, message: str, title: str = "Latent Explorer") -> None:
        """One clear sentence in a window-modal dialog; the window stays usable, the status bar
        shows a short form (the whole message in its tooltip)."""
        self.message_box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        self.message_box.setObjectName("errorMessage")
        self.message_box.open()
        self.state_label.setText(short_form(message))
        self.state_label.setToolTip(message)

    def say(self, message: str, tooltip: str = "") -> None:
        """A status line (its tooltip: the details, one a line)."""
        self.state_label.setText(message)
        if tooltip:
            self.state_label.setToolTip(tooltip)

    # -- runs ---------------------------------------------------------------------------------
    def new_run(self) -> None:
        """Leave the shown run: the panel's settings become editable, as the template of a new run."""
        if self.views_built:
            self.session.set_active(None)
            self.training_panel.set_dataset_notes([])

    def resume_run(self, state, more_epochs: int | None = None) -> None:
        """Train a finished or stopped run further: ask how many more epochs (a small dialog),
        then start it, or queue it while another run trains."""
        if state is None or state.run is None:
            return
        if more_epochs is None:
            dialog = QInputDialog(self)
            dialog.setObjectName("resumeEpochsDialog")
            dialog.setWindowTitle("Resume run")
            dialog.setInputMode(QInputDialog.InputMode.IntInput)
            dialog.setLabelText(f"Train {state.name} for how many more epochs? (It has trained {state.epoch}.)")
            dialog.setIntRange(1, 100_000)
            dialog.setIntValue(10)
            dialog.intValueSelected.connect(lambda n: self.resume_run(state, n))
            self.resume_dialog = dialog
            dialog.open()
            return
        self.training.resume(state, more_epochs)

    def open_run_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a run folder", str(self.runs_dir))
        if path:
            self.open_run(path)

    def open_run(self, path: str | Path, activate: bool = True):
        """The run in ``path``, shown (and remembered by the library when it lies elsewhere); None, with the reason shown."""
        return self.training.open_run(path, activate)

    def load_settings_of(self, state) -> None:
        """Put a run's settings into the training panel, as the template of a new run."""
        if state is None:
            return
        self.new_run()
        self.training_panel.set_configs(state.data_cfg, state.model_cfg, state.train_cfg)
        self.state_label.setText(f"The settings of {state.name} are in the panel: change them, then Start (F5).")

    def _library_read(self) -> None:
        if self.state_label.full_text().startswith("Reading "):
            self.state_label.setText(READY_MESSAGE)

    def _follow(self, state) -> None:
        if state is not None and state.dataset is None and state.run is not None:
            state.ensure_dataset_in_background()   # a run of the library, shown for the first time: its images
        self.status_line.follow(state)

    def compare_runs(self):
        return self.comparison.open()

    @property
    def compare_view(self):
        """The comparison window on show, if any."""
        return self.comparison.view

    # -- presets --------------------------------------------------------------------------------
    def _apply_preset_view(self, preset) -> None:
        view = preset.view
        if view.get("projection") in self.latent_view.projection_names():
            self.latent_view.set_projection(view["projection"])
        if getattr(preset, "runs", ()):   # a preset of several runs queues them all
            self.training.queue_preset(preset)
            return
        if "manifold" in view:
            self.latent_view.manifold_toggle.setChecked(bool(view["manifold"]))
        self.state_label.setText(f"Preset: {preset.title}. Press Start (F5) to train.")

    # -- closing --------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Stop every run (each saves as it stops), wait for the threads, remember the layout.
        A projection is never waited for: its process is killed first."""
        if not self.views_built:   # closed while the engine was still loading: nothing else runs yet
            wait_for_tasks(60_000)   # the import of the engine (a running thread is never destroyed)
            self.layout_settings.save()
            super().closeEvent(event)
            return
        self.latent_view.shutdown()
        self.train_queue.save()   # what waits trains at the next launch
        self.metrics_runner.cancel()
        self.metrics_runner.wait(CLOSE_TIMEOUT_MS)
        if not self.session.stop_all(CLOSE_TIMEOUT_MS):
            # a long step (a big convolutional batch, a checkpoint) is still finishing: a thread must
            # never be destroyed while it runs, so keep waiting rather than lose the run
            self.state_label.setText("Waiting for training to stop and save…")
            QApplication.processEvents()
            self.session.stop_all(60_000)
        self.comparison.close()
        self.library.cancelled = True   # the run being read is the last
        self.training.wait(CLOSE_TIMEOUT_MS)
        wait_for_tasks(60_000)   # every task (downloads, exports, loads, the preload): a running thread is never destroyed
        self.latent_view.colouring.wait()
        self.layout_settings.save()
        end_library_threads()   # nothing of ours outlives the window
        super().closeEvent(event)
