"""The main window: the latent map in the centre, training panel left, decoder canvas and runs
right, the loss plot below; menus, shortcuts, status bar, and the layout remembered.

The window comes up before torch is imported (torch alone takes about 2 s): ``MainWindow(...,
deferred=True)`` builds the frame, the menus and the docks with placeholders, and
``build_views_in_background()`` imports the engine on a background task while the shown window
paints, then builds the views in the GUI thread.  By default (tests, tools) it builds at once.
This module imports nothing heavy at its top for that reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QKeySequence
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

from engine.errors import UserError
from explorer.resources import icon_path
from explorer.shutdown import end_library_threads
from explorer.tasks import BackgroundTask, wait_for_tasks
from explorer.widgets import ElidedLabel
from explorer.window.status_bar import app_version, device_description, short_form

CLOSE_TIMEOUT_MS = 1800
APP_TITLE = "Latent Explorer"
#: what the background thread imports before the views are built (all of it without Qt widgets)
ENGINE_MODULES = ("torch", "engine.config", "engine.datasets", "engine.models", "engine.runs", "engine.training",
                  "engine.projection")
#: the loss dock's default share of the window's height, and its least height in pixels
LOSS_SHARE, LOSS_MIN_PX = 0.3, 230


def default_runs_dir() -> Path:
    import platformdirs
    return platformdirs.user_data_path("latent-explorer") / "runs"


#: the status line of a window with nothing under way
READY_MESSAGE = "Ready: choose a preset, or a dataset and a model, then press Start (F5)."


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
        self.queue_path = Path(queue_path) if queue_path else self._default_queue_path(settings)
        self.resume_dialog: QInputDialog | None = None
        self.train_queue = None
        self.metrics_runner = None
        self._last_training = None   # the run that trained last (evaluated once it completes)
        self._queued_state = None    # the run the queue started last
        self.message_box: QMessageBox | None = None
        self._download = None
        self._state = None
        self.compare_view = None
        self._built = False
        self._session_given = session
        self.session = None
        self.presets = []
        self.view_actions: list[QAction] = []   # enabled once the views are built
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
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
        self._exports: list = []   # background exports under way (TensorBoard, the movie)
        self._loading = None       # the RunState whose dataset loads before it trains
        self._deferred = deferred
        self._library_task = None  # the runs library being read in the background (deferred windows)
        self._library_cancelled = False
        self._library_busy = False
        self._library_skipped: list[str] = []
        self._build_menus()
        self._build_status_bar()
        self._fit_to_screen()
        self._restore_layout()
        if not deferred:
            self.build_views()

    @staticmethod
    def _default_queue_path(settings) -> Path | None:
        """The training queue's JSON lives in the settings folder (none without settings: tests, tools)."""
        if settings is None:
            return None
        from explorer.training.queue import QUEUE_FILE
        if settings.format() == QSettings.Format.IniFormat and settings.fileName():
            return Path(settings.fileName()).parent / QUEUE_FILE
        import platformdirs
        return platformdirs.user_config_path("latent-explorer") / QUEUE_FILE

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

    def _fit_to_screen(self) -> None:
        """A size that fits the screen: 1500×920 where there is room, less on a laptop's screen."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            self.resize(1500, 920)
            return
        room = screen.availableGeometry()
        # leave room for the window manager's frame and title bar
        self.resize(min(1500, room.width() - 8), min(920, room.height() - 40))

    def _default_dock_sizes(self) -> None:
        height = self.height()
        # the right-hand column as wide as the insight views need (their control rows: ~380 px)
        self.resizeDocks([self.docks["training"], self.docks["decoder"]], [330, 440], Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["loss"]], [max(LOSS_MIN_PX, round(LOSS_SHARE * height))], Qt.Orientation.Vertical)
        rest = max(300, height - max(LOSS_MIN_PX, round(LOSS_SHARE * height)) - 60)
        self.resizeDocks([self.docks["decoder"], self.docks["runs"]], [round(rest * 0.62), round(rest * 0.38)],
                         Qt.Orientation.Vertical)

    # -- the views (torch and everything that needs it) -------------------------------------------
    def build_views_in_background(self, before=None, then=None) -> None:
        """Import the engine on a background task's thread while the shown window paints, then, in the GUI
        thread, call ``before()``, build the views and call ``then()``."""
        failure: list[BaseException] = []

        def load(_progress) -> None:
            import importlib
            try:
                for name in ENGINE_MODULES:
                    importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 — reported in the GUI thread
                failure.append(exc)

        loader = BackgroundTask(load, self, name="engine-import")   # closing waits for it, as for every task
        loader.start()
        self.state_label.setText("Loading the engine (torch)…")
        # meanwhile this thread imports the plotting library (Qt's, so not on the other thread)
        QTimer.singleShot(0, lambda: __import__("pyqtgraph"))
        poll = QTimer(self)
        poll.setInterval(15)

        def check() -> None:
            if loader.is_running():
                return
            poll.stop()
            poll.deleteLater()
            if failure:
                raise failure[0]
            if before is not None:
                before()
            self.build_views()
            if then is not None:
                then()

        poll.timeout.connect(check)
        poll.start()

    def build_views(self) -> None:
        if self._built:
            return
        from explorer.window.runtime import tune_for_gui
        tune_for_gui()   # before the GUI thread runs any torch op
        from explorer.decoder_canvas import DecoderCanvas
        from explorer.insights.tabs import InsightTabs
        from explorer.loss.plot import LossPlot
        from explorer.map.latent_view import LatentView
        from explorer.run_metrics import MetricsRunner
        from explorer.runs_panel import RunsPanel
        from explorer.session import Session
        from explorer.training.panel import TrainingPanel
        from explorer.training.presets import load_presets
        from explorer.training.queue import QueuePanel, TrainQueue

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
        self.latent_view.set_interpolation(self.insight_tabs.endpoints)
        # after the layout has settled: a dock raised from its tab has no visible region yet
        self.insight_tabs.currentChanged.connect(lambda _: QTimer.singleShot(0, self._show_interpolation_line))
        self.insights_dock.visibilityChanged.connect(lambda _: QTimer.singleShot(0, self._show_interpolation_line))
        self._show_interpolation_line()
        self.latent_view.clicked.connect(self._map_clicked)
        self.latent_view.movie_slider.step_chosen.connect(self.loss_plot.mark_step)
        self.metrics_runner = MetricsRunner(parent=self)
        self.train_queue = TrainQueue(self.session, self._start_queued, self.queue_path,
                                      can_start=lambda: not self.metrics_runner.is_busy() and not self.is_loading_dataset(),
                                      parent=self)
        self.queue_panel = QueuePanel(self.train_queue)
        self.runs_tabs = self._runs_tabs()
        self.setCentralWidget(self.latent_view)
        for key, widget in (("training", self.training_panel), ("decoder", self.decoder_canvas),
                            ("runs", self.runs_tabs), ("loss", self.loss_plot)):
            self.docks[key].setWidget(widget)
        self._built = True
        self._default_dock_sizes()
        if self.isVisible() and not self._has_saved_layout():
            # the docks' new widgets settle their sizes in the next pass of the event loop: size them again then
            QTimer.singleShot(0, self._default_dock_sizes)
        self._fill_menus()
        self.device_label.setText(device_description())
        tp = self.training_panel
        tp.start_requested.connect(self.start_training)
        tp.pause_requested.connect(self.pause_training)
        tp.resume_requested.connect(self.resume_training)
        tp.stop_requested.connect(self.stop_training)
        tp.download_requested.connect(self.download)
        tp.new_run_requested.connect(self.new_run)
        tp.preset_applied.connect(self._apply_preset_view)
        self.runs_panel.open_requested.connect(self.open_run_dialog)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.overlays_changed.connect(self.loss_plot.set_overlays)
        if hasattr(self.runs_panel, "checked_changed"):   # the runs library's check boxes
            self.runs_panel.checked_changed.connect(self._follow_checked_runs)
        self._connect_library()
        self.session.active_changed.connect(self._follow)
        self.restore_settings()
        self.state_label.setText(READY_MESSAGE)
        self.load_library(background=self._deferred)   # the app reads its library behind the shown window
        if self.train_queue.notes:
            self.show_error(" ".join(self.train_queue.notes), "The saved queue")
        self.train_queue.poke()   # a queue saved at the last launch goes on
        self._set_tab_order()
        self.training_panel.preset.setFocus(Qt.FocusReason.OtherFocusReason)   # where a newcomer starts

    def _runs_tabs(self):
        """The runs dock: the runs library and the training queue, as two tabs ("Queue (2)" while runs wait)."""
        from PySide6.QtWidgets import QTabWidget
        tabs = QTabWidget()
        tabs.setObjectName("runsTabs")
        tabs.setDocumentMode(True)
        tabs.addTab(self.runs_panel, "Runs")
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

    # -- menus, shortcuts, status bar ----------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, name: str | None = None, needs_views: bool = True) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        action.triggered.connect(slot)
        menu.addAction(action)
        if needs_views:
            action.setEnabled(self._built)
            self.view_actions.append(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&New run", lambda: self.new_run(), "Ctrl+N", "newRunAction")
        self._action(file, "&Open run…", self.open_run_dialog, QKeySequence.StandardKey.Open, "openRunAction")
        export = file.addMenu("&Export")
        self._action(export, "&Samples grid…", lambda: self.export_figure("samples"), "Ctrl+E", "exportSamplesAction")
        self._action(export, "&Reconstructions…", lambda: self.export_figure("recon"))
        self._action(export, "&Traversals…", lambda: self.export_figure("traversal"))
        self._action(export, "&Interpolations…", lambda: self.export_figure("interpolation"))
        self._action(export, "&Embeddings (CSV/NPZ)…", lambda: self.export_embeddings())
        self._action(export, "&Loss plot (PNG/SVG)…", self.export_loss_plot)
        export.addSeparator()
        self._action(export, "Latent &map (PNG/SVG)…", lambda: self.export_map(), name="exportMapAction")
        self._action(export, "Map &coordinates (CSV)…", lambda: self.export_map_csv(), name="exportMapCsvAction")
        self._action(export, "Training &movie (GIF/MP4)…", lambda: self.export_movie(), name="exportMovieAction")
        self._action(export, "Tensor&Board…", lambda: self.export_tensorboard(), name="exportTensorBoardAction")
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit, needs_views=False)
        self.presets_menu = bar.addMenu("&Presets")
        train = bar.addMenu("&Training")
        self.start_action = self._action(train, "&Start", lambda: self.training_panel.start.click(), "F5", "startAction")
        self.pause_action = self._action(train, "&Pause / Resume", lambda: self.training_panel.pause.click(), "F6",
                                         "pauseAction")
        self.stop_action = self._action(train, "S&top", lambda: self.training_panel.stop.click(), "Shift+F5", "stopAction")
        self.step_action = self._action(train, "Step to next &probe", lambda: self.training_panel.live_changes.step.click(),
                                        "F7", "stepAction")
        self.resume_run_action = self._action(train, "&Resume run", lambda: self.runs_panel.resume_button.click(),
                                              "Ctrl+R", "resumeRunAction")
        train.addSeparator()
        self.compare_action = self._action(train, "&Compare checked runs", self.compare_runs, "Ctrl+K", "compareAction")
        self.compare_action.setToolTip("Compare 2 to 6 checked runs side by side (Ctrl+K)")
        toolbar = self.addToolBar("Compare")
        toolbar.setObjectName("compareToolBar")
        toolbar.addAction(self.compare_action)
        self.view_menu = bar.addMenu("&View")
        for dock in (*self.docks.values(), self.insights_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1", "shortcutsAction", needs_views=False)
        self._action(help_menu, "&About Latent Explorer", self._about, needs_views=False)

    def _fill_menus(self) -> None:
        """The menu entries that come from the views: the map's projections, the presets."""
        self.view_menu.addSeparator()
        projections = self.view_menu.addMenu("Map &projection")
        for action in self.latent_view.projection_actions():
            projections.addAction(action)
        self.addActions(self.latent_view.projection_actions())
        self._action(self.view_menu, "&Zoom map to fit", self.latent_view.zoom_to_fit, "Ctrl+0", "zoomToFitAction")
        for preset in self.presets:
            action = self._action(self.presets_menu, preset.title, lambda _=False, p=preset: self.training_panel.apply_preset(p))
            action.setToolTip(preset.tooltip)
        self.presets_menu.setToolTipsVisible(True)
        if not self.presets:
            self.presets_menu.addAction("No presets found").setEnabled(False)
        for action in self.view_actions:
            action.setEnabled(True)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.device_label = QLabel("")
        self.state_label = ElidedLabel("Starting…")
        self.state_label.setObjectName("statusMessage")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("etaLabel")
        status.addWidget(self.state_label, 1)
        for w in (self.speed_label, self.eta_label, self.device_label):
            status.addPermanentWidget(w)

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do) for every menu action with a shortcut, then the mouse on the map."""
        rows = []
        for action in self.findChildren(QAction):
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                rows.append((keys, action.text().replace("&", "").rstrip("…")))
        rows = sorted(set(rows), key=lambda r: r[1])
        rows += [("Left drag on the map", "Decode the point under the handle"),
                 ("Right / middle drag, wheel", "Pan and zoom the map"),
                 ("Tab / Shift+Tab", "Move between the panel, map, decoder, loss plot and runs"),
                 ("Arrow keys in the runs list", "Show another run")]
        return rows

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{keys}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for keys, what in self.shortcut_rows())
        self.message_box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                                       QMessageBox.StandardButton.Close, self)
        self.message_box.setObjectName("shortcutsDialog")
        self.message_box.open()

    def _about(self) -> None:
        self.message_box = QMessageBox(QMessageBox.Icon.NoIcon, "About Latent Explorer",
                                       f"<b>Latent Explorer</b> {app_version()}<br>"
                                       "Train autoencoders and explore their latent spaces.<br>"
                                       "Drag on the latent map to decode the point under the cursor.<br>"
                                       "Help → Keyboard shortcuts (F1) lists the keys.",
                                       QMessageBox.StandardButton.Ok, self)
        self.message_box.setObjectName("aboutDialog")
        if not self.windowIcon().isNull():
            self.message_box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        self.message_box.open()

    # -- errors ------------------------------------------------------------------------------
    def show_error(self, message: str, title: str = "Latent Explorer") -> None:
        """One clear sentence in a window-modal dialog; the window stays usable, the status bar
        shows a short form (the whole message in its tooltip)."""
        self.message_box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        self.message_box.setObjectName("errorMessage")
        self.message_box.open()
        self.state_label.setText(short_form(message))
        self.state_label.setToolTip(message)

    # -- training ----------------------------------------------------------------------------
    def start_training(self, configs):
        """Start a new run with these settings, or queue it while another run trains or its dataset
        loads (one training at a time).  The dataset loads in the background, with progress in the
        panel, unless it is the bundled digits (milliseconds)."""
        from engine.datasets import load_dataset
        from explorer.session import loads_quickly
        from explorer.tasks import BackgroundTask
        if self.session.is_busy() or self.is_loading_dataset():
            self.queue_configs(configs)
            return None
        self._save_last_configs(configs)
        data, model, train = configs
        if loads_quickly(data):
            return self._start_new(data, model, train)
        task = self._loading = BackgroundTask(lambda progress: load_dataset(data), self)
        self.training_panel.set_load_progress(f"Loading {data.source}…")
        self.state_label.setText(f"Loading {data.source} in the background…")

        def loaded(dataset) -> None:
            self.training_panel.set_load_progress(None)
            self._start_with(configs, dataset)
            self.train_queue.poke()

        def failed(message: str) -> None:
            self.training_panel.set_load_progress(None)
            self.show_error(message, "The dataset could not be loaded")
            self.train_queue.poke()

        task.finished.connect(loaded)
        task.failed.connect(failed)
        task.start()
        return None

    def is_loading_dataset(self) -> bool:
        return self._loading is not None and self._loading.is_running()

    def _start_new(self, data, model, train, run_name: str | None = None, activate: bool = True):
        """Load the dataset here and start the run (the queue's runs, which start one after another,
        and the bundled digits); None, with the reason shown, when it cannot start."""
        from engine.datasets import load_dataset
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            dataset = load_dataset(data)
        except UserError as exc:
            self.show_error(str(exc), "The dataset could not be loaded")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        return self._start_with((data, model, train), dataset, run_name, activate)

    def _start_with(self, configs, dataset, run_name: str | None = None, activate: bool = True):
        from explorer.session import RunState
        data, model, train = configs
        if activate:
            self.training_panel.set_dataset_notes(self._dataset_notes(dataset, train.batch_size))
        state = RunState(data, model, train, dataset=dataset)
        state.run_name = run_name
        self.session.add(state, activate=activate)
        try:
            state.start(self.runs_dir)
        except UserError as exc:
            self.show_error(str(exc), "Training could not start")
            return None
        return state

    # -- the queue (one training at a time) --------------------------------------------------------
    def queue_configs(self, configs) -> None:
        from explorer.training.queue import QueueItem
        try:
            item = QueueItem.new(*configs)
        except UserError as exc:
            self.show_error(str(exc), "The run could not be queued")
            return
        self.train_queue.add(item)
        self._say_queued([item])

    def queue_sweep(self, request) -> None:
        from explorer.training.queue import confirm_large_sweep, sweep_items
        configs, axis, text = request
        try:
            items = sweep_items(configs, axis, text)
        except UserError as exc:
            self.show_error(str(exc), "The sweep could not be queued")
            return
        if not confirm_large_sweep(self, len(items)):
            return
        self.train_queue.add(items)
        self._say_queued(items)

    def _say_queued(self, items) -> None:
        training = self.session.training_run()
        what = items[0].title if len(items) == 1 else f"{len(items)} runs"
        when = (f"they train after {training.name}" if len(items) > 1 else f"it trains after {training.name}") \
            if training is not None else "they train one after another" if len(items) > 1 else "it starts now"
        ahead = len(self.train_queue.items) - len(items)
        more = f" and {ahead} queued before" if ahead > 0 and training is not None else ""
        self.state_label.setText(f"Queued {what}: {when}{more}.")
        self.state_label.setToolTip("\n".join(item.title for item in items))

    def _start_queued(self, item):
        """The queue's starter: begin the item's training (None, with the reason shown, when it cannot)."""
        follow = self.session.active is None or self.session.active is self._queued_state
        if item.kind == "resume":
            state = self.session.find(item.path) or self.open_run(item.path, activate=follow)
            if state is None or not self._resume_now(state, item.more_epochs):
                return None
        else:
            state = self._start_new(item.data, item.model, item.train, run_name=item.name, activate=follow)
            if state is None:
                return None
        self._queued_state = state
        n = len(self.train_queue.items)
        self.state_label.setText(f"Training {item.title} from the queue" + (f"; {n} more waiting." if n else "."))
        return state

    def _on_training_changed(self, state) -> None:
        """A run that has just completed gets its metrics, in the background (before the queue goes on)."""
        previous, self._last_training = self._last_training, state
        if previous is not None and previous is not state and previous.status == "completed" \
                and previous.run is not None and previous in self.session.runs:
            self.metrics_runner.evaluate(previous)

    def evaluate_run(self, state) -> None:
        """Compute a run's metrics on request (the runs menu's Evaluate)."""
        if state is None or state.run is None:
            return
        if state.is_training:
            self.show_error(f"{state.name} is training: evaluate it once it has stopped.", "Not evaluated")
            return
        self.metrics_runner.evaluate(state)
        self.state_label.setText(f"Evaluating {state.name} (NLL with K = {self.metrics_runner.nll_samples} "
                                 "importance samples per image) in the background…")

    def _connect_library(self) -> None:
        rp, mr = self.runs_panel, self.metrics_runner
        rp.evaluate_requested.connect(self.evaluate_run)
        rp.load_settings_requested.connect(self.load_settings_of)
        rp.failed.connect(lambda message: self.show_error(message, "Latent Explorer"))
        rp.renamed.connect(lambda state: (self._update_title(), self.state_label.setText(f"Renamed to {state.name}.")))
        rp.deleted.connect(lambda path: self.state_label.setText(f"Deleted {path}."))
        mr.evaluated.connect(lambda state: self.state_label.setText(
            f"Metrics of {state.name}: " + (f"NLL {state.headline_nll:.2f} nats per image (K = {mr.nll_samples})."
                                            if state.headline_nll is not None else "written to metrics.json (no NLL: "
                                            "its model has no density).")))
        mr.failed.connect(lambda pair: self.state_label.setText(f"Metrics of {pair[0].name}: {pair[1]}"))
        mr.became_idle.connect(self.train_queue.poke)
        self.training_panel.queue_requested.connect(self.queue_configs)
        self.training_panel.sweep_requested.connect(self.queue_sweep)
        self.session.training_changed.connect(self._on_training_changed)
        self.train_queue.failed.connect(lambda message: self.show_error(message, "The queue"))

    def load_library(self, background: bool = False) -> None:
        """Every run in the runs folder, newest first (saved runs from earlier launches included).
        In the background (the app at launch: ~40 ms a run for MNIST-sized ones, seconds for a
        big library), each run joins the library as soon as it has been read."""
        from engine.runs import list_runs
        from explorer.session import RunState
        from explorer.tasks import BackgroundTask

        def read(path):   # the run as read, or why it cannot be
            try:
                return RunState.read(path)
            except UserError as exc:
                return exc

        if self.library_loading():
            return
        paths = [p for p in reversed(list_runs(self.runs_dir)) if self.session.find(p) is None]
        self._library_skipped = []
        if not background or not paths:
            for path in paths:
                self._add_library_run(path, read(path))
            self._library_read()
            return

        def read_all(progress) -> None:
            for path in paths:
                if self._library_cancelled:
                    return
                progress((path, read(path)), len(paths))

        self.state_label.setText(f"Reading {len(paths)} saved run(s) from {self.runs_dir}…")
        self._library_busy = True
        self._library_task = BackgroundTask(read_all, self)   # kept after it ends: closing waits for its thread
        self._library_task.progressed.connect(lambda pair: self._add_library_run(*pair[0]))   # ((path, read), total)
        self._library_task.finished.connect(lambda _: self._library_read())
        self._library_task.failed.connect(lambda message: (self._library_skipped.append(message), self._library_read()))
        self._library_task.start()

    def library_loading(self) -> bool:
        """True while the runs library is still being read in the background."""
        return self._library_busy

    def _add_library_run(self, path, saved) -> None:
        """One run of the library as read (a ``SavedRun``), or the UserError that says why not."""
        from explorer.session import RunState
        if isinstance(saved, UserError):
            self._library_skipped.append(f"{Path(path).name}: {saved}")
        elif self.session.find(path) is None:   # not opened meanwhile (a path on the command line)
            self.session.add(RunState.from_saved(saved), activate=False)

    def _library_read(self) -> None:
        self._library_busy = False
        skipped = self._library_skipped
        if skipped:
            self.state_label.setText(f"{len(skipped)} folder(s) in {self.runs_dir} could not be read as runs.")
            self.state_label.setToolTip("\n".join(skipped))
        elif self.state_label.full_text().startswith("Reading "):
            self.state_label.setText(READY_MESSAGE)

    def load_settings_of(self, state) -> None:
        """Put a run's settings into the training panel, as the template of a new run."""
        if state is None:
            return
        self.new_run()
        self.training_panel.set_configs(state.data_cfg, state.model_cfg, state.train_cfg)
        self.state_label.setText(f"The settings of {state.name} are in the panel: change them, then Start (F5).")

    @staticmethod
    def _dataset_notes(dataset, batch_size: int) -> list[str]:
        """What the panel says about a dataset as loaded: files it skipped, a batch it clamps."""
        notes = list(getattr(dataset, "notes", None) or [])
        for split in (dataset.train, dataset.val):
            notes += [n for n in getattr(split, "notes", None) or [] if n not in notes]
        n_train = len(dataset.train)
        if batch_size > n_train:
            notes.append(f"The batch size {batch_size:,} is larger than the {n_train:,} training images: "
                         f"each epoch is one batch of {n_train:,}.")
        return notes

    def pause_training(self) -> None:
        """Pause, Resume and Stop act on the run that trains, whichever run is shown."""
        training = self.session.training_run()
        if training is not None:
            training.pause()

    def resume_training(self) -> None:
        training = self.session.training_run()
        if training is not None:
            training.resume()

    def stop_training(self) -> None:
        training = self.session.training_run()
        if training is not None:
            training.stop()

    def new_run(self) -> None:
        """Leave the shown run: the panel's settings become editable, as the template of a new run."""
        if self._built:
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
        if self.session.is_busy():
            from explorer.training.queue import QueueItem
            item = QueueItem.resume(state.run.path, more_epochs, state.name)
            self.train_queue.add(item)
            self._say_queued([item])
            return
        self._resume_now(state, more_epochs)

    def _resume_now(self, state, more_epochs: int) -> bool:
        try:
            state.start(self.runs_dir, epochs=state.epoch + int(more_epochs))
        except UserError as exc:
            self.show_error(str(exc), "The run could not be resumed")
            return False
        return True

    def download(self, data) -> None:
        from engine.datasets import download_dataset
        from explorer.tasks import BackgroundTask
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

    def open_run(self, path: str | Path, activate: bool = True):
        from explorer.session import RunState
        known = self.session.find(path)
        if known is not None:   # already in the library: show it
            if activate:
                self.session.set_active(known)
            return known
        try:
            state = RunState.open(path)
        except UserError as exc:
            self.show_error(str(exc), "The run could not be opened")
            return None
        # the bundled digits load at once (the views see them as they bind); other sources in the background
        if state.ensure_dataset_in_background(lambda dataset: self.training_panel.set_load_progress(None)):
            self.training_panel.set_load_progress(f"Loading the images of {state.dataset_name}…")
        self.session.add(state, activate=activate)
        self.state_label.setText(f"Opened {state.name}.")
        return state

    def _interpolation_on_show(self) -> bool:
        tabs = self.insight_tabs
        return self.insights_dock.isVisible() and not self.insights_dock.visibleRegion().isEmpty() \
            and tabs.currentWidget() is tabs.interpolation

    def _show_interpolation_line(self) -> None:
        """The interpolation's line and ends are on the map while its view is on show, not over
        every map (a freshly opened run showed two stray dots and a dashed line)."""
        line = self.latent_view.interpolation_line
        if line is not None:
            line.set_shown(self._interpolation_on_show())

    def _map_clicked(self, click) -> None:
        """A click on the map picks the interpolation's next end while the Interpolation tab shows."""
        code, index = click
        tabs = self.insight_tabs
        if self._interpolation_on_show():
            which = tabs.interpolation.endpoints.pick(code, index)
            self.state_label.setText(f"Interpolation: {which.upper()} set"
                                     + (f" to image {index}." if index is not None else " to the clicked code."))

    def _follow(self, state) -> None:
        from explorer.session import rebind
        self._state = rebind(self._state, state, {"refreshed": self._show_progress, "status_changed": self._show_status,
                                                  "failed": self._on_failed})
        if state is not None and state.dataset is None and state.run is not None:
            state.ensure_dataset()   # a run of the library, shown for the first time: its images for the views
        self._update_title()
        if state is not None:
            self._show_status(state.status)
        else:
            self.speed_label.setText("")
            self.eta_label.setText("")
            self.state_label.setText("New run: choose the settings, then press Start (F5).")

    def _update_title(self) -> None:
        """The window's title names the active run (its folder's name once training has made it)."""
        title = f"{self._state.name} — {APP_TITLE}" if self._state is not None else APP_TITLE
        if title != self.windowTitle():
            self.setWindowTitle(title)

    def _on_failed(self, message: str) -> None:
        self.show_error(message, "Training stopped")

    def _show_status(self, status: str) -> None:
        s = self._state
        if s is None:
            return
        self._update_title()
        words = {"running": "Training", "paused": "Paused", "completed": "Finished", "stopped": "Stopped",
                 "failed": "Failed", "new": "Ready"}.get(status, status)
        self.state_label.setText(f"{words}: {s.variant_title} on {s.dataset_name}" + (f" — {s.reason}" if s.reason else ""))
        if status != "running":   # an idle status bar keeps no stale rate
            self.speed_label.setText("")
            self.eta_label.setText("")

    def _show_progress(self) -> None:
        from explorer.training.panel import format_eta
        s = self._state
        if s is None or s.status != "running":
            return
        self._update_title()
        self.speed_label.setText(f"{s.samples_per_sec:,.0f} samples/s" if s.samples_per_sec else "")
        self.eta_label.setText(f"ETA {format_eta(s.eta_s)}" if math.isfinite(s.eta_s) else "")

    # -- the comparison -------------------------------------------------------------------------
    def runs_to_compare(self) -> list:
        """The checked runs of the runs list (its selected rows where it has no check boxes)."""
        checked = getattr(self.runs_panel, "checked_runs", None)
        return list(checked()) if checked is not None else self.runs_panel.selected_states()

    def compare_runs(self):
        """Open (or bring up) the comparison of the checked runs; one sentence when they are not 2 to 6."""
        from explorer.compare.view import CompareView
        states = self.runs_to_compare()
        if self.compare_view is not None and self.compare_view.states == states:
            self.compare_view.show()
            self.compare_view.raise_()
            return self.compare_view
        try:
            view = CompareView(self.session, states, worker=self.latent_view.worker, parent=self)
        except UserError as exc:
            self.show_error(str(exc), "Nothing to compare")
            return None
        self._close_compare()
        self.compare_view = view
        view.show()
        self.state_label.setText(f"Comparing {len(states)} runs.")
        return view

    def _follow_checked_runs(self, *_) -> None:
        """An open comparison follows the checked runs (while they are 2 to 6)."""
        if self.compare_view is not None and self.compare_view.isVisible():
            from explorer.compare.view import MAX_RUNS, MIN_RUNS
            if MIN_RUNS <= len(self.runs_to_compare()) <= MAX_RUNS:
                self.compare_runs()

    def _close_compare(self) -> None:
        if self.compare_view is not None:
            self.compare_view.close()
            self.compare_view.deleteLater()
            self.compare_view = None

    # -- presets --------------------------------------------------------------------------------
    def _apply_preset_view(self, preset) -> None:
        if getattr(preset, "runs", ()):
            self._queue_preset_runs(preset)
            return
        view = preset.view
        if view.get("projection") in self.latent_view.projection_names():
            self.latent_view.set_projection(view["projection"])
        if "manifold" in view:
            self.latent_view.manifold_toggle.setChecked(bool(view["manifold"]))
        self.state_label.setText(f"Preset: {preset.title}. Press Start (F5) to train.")

    def _queue_preset_runs(self, preset) -> None:
        """A preset of several runs (IWAE beside a VAE) queues them all: they train one after another."""
        from explorer.training.queue import QueueItem
        view = preset.view
        if view.get("projection") in self.latent_view.projection_names():
            self.latent_view.set_projection(view["projection"])
        try:
            items = [QueueItem.new(data, model, train, title=title) for title, data, model, train in preset.runs]
        except UserError as exc:
            self.show_error(str(exc), "The preset could not be queued")
            return
        self.train_queue.add(items)
        self._say_queued(items)

    # -- export -----------------------------------------------------------------------------------
    def _active_run_model(self):
        state = self.session.active
        if state is None or state.run is None:
            raise UserError("There is no saved run to export yet: train or open one first.")
        return state, state.run.load_model("latest")

    def _save_path(self, title: str, default: str, filters: str) -> str:
        """A file to write, starting in the last folder any export used (shared with the insight views)."""
        from explorer.insights.common import last_export_folder, remember_export_folder
        path, _ = QFileDialog.getSaveFileName(self, title, str(last_export_folder() / default), filters)
        if path:
            remember_export_folder(Path(path).parent)
        return path

    def export_figure(self, what: str, path: str | None = None) -> Path | None:
        import torch

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

    def export_map(self, path: str | None = None) -> Path | None:
        """The latent map as shown (points, colour bar, interpolation line) as PNG or SVG."""
        from explorer.map.exports import export_map_picture
        name = self.session.active.name if self.session.active is not None else "map"
        path = path or self._save_path("Export the latent map", f"{name}-map.png", "PNG (*.png);;SVG (*.svg)")
        return self._finish_export(lambda: export_map_picture(self.latent_view, path)) if path else None

    def export_map_csv(self, path: str | None = None) -> Path | None:
        """The map's 2-D coordinates with index, label, class and the coloured value, as CSV."""
        from explorer.map.exports import export_map_csv
        name = self.session.active.name if self.session.active is not None else "map"
        path = path or self._save_path("Export the map's coordinates", f"{name}-map.csv", "CSV (*.csv)")
        return self._finish_export(lambda: export_map_csv(self.latent_view, path)) if path else None

    def export_movie(self, path: str | None = None):
        """The active run's training movie as GIF or MP4, drawn in the background."""
        from explorer.map.exports import movie_export_job
        state = self.session.active
        name = state.name if state is not None else "run"
        try:
            if state is None or len(state.movie) < 1:
                raise UserError("There is no training movie to export: train or open a run first.")
            path = path or self._save_path("Export the training movie", f"{name}-movie.gif", "GIF (*.gif);;MP4 (*.mp4)")
            if not path:
                return None
            job = movie_export_job(state, path, self.latent_view.handle_position())
        except UserError as exc:
            self.show_error(str(exc), "Export failed")
            return None
        return self._run_export(job, "the training movie")

    def export_tensorboard(self, folder: str | None = None):
        """The active run for TensorBoard (scalars and the projector's codes), written in the background."""
        from engine import export
        state = self.session.active
        try:
            if state is None or state.run is None:
                raise UserError("There is no saved run to export yet: train or open one first.")
            if folder is None:
                from explorer.insights.common import last_export_folder, remember_export_folder
                folder = QFileDialog.getExistingDirectory(self, "TensorBoard log folder", str(last_export_folder()))
                if not folder:
                    return None
                remember_export_folder(Path(folder))
            run, images = state.run, state.dataset.val if state.dataset is not None else None
        except UserError as exc:
            self.show_error(str(exc), "Export failed")
            return None
        return self._run_export(lambda progress: export.export_tensorboard(run, folder, images=images),
                                "the TensorBoard logs")

    def _finish_export(self, write) -> Path | None:
        try:
            written = write()
        except (UserError, OSError) as exc:
            self.show_error(str(exc), "Export failed")
            return None
        self.state_label.setText(f"Wrote {written}")
        return written

    def _run_export(self, job, what: str):
        """Run a slow export on a background thread; the status bar says when it is written."""
        from explorer.tasks import BackgroundTask
        task = BackgroundTask(job, self)
        task.finished.connect(lambda written: self.state_label.setText(f"Wrote {written}"))
        task.failed.connect(lambda message: self.show_error(message, "Export failed"))
        task.thread.finished.connect(lambda: self._exports.remove(task) if task in self._exports else None)
        self._exports.append(task)
        self.state_label.setText(f"Writing {what}…")
        task.start()
        return task

    # -- settings and closing --------------------------------------------------------------------
    def _save_last_configs(self, configs) -> None:
        if self.settings is not None:
            data, model, train = configs
            self.settings.setValue("last_configs", json.dumps({"data": data.to_dict(), "model": model.to_dict(),
                                                               "train": train.to_dict()}))

    def _has_saved_layout(self) -> bool:
        return self.settings is not None and isinstance(self.settings.value("window_state"), QByteArray)

    def _restore_layout(self) -> None:
        """The window's geometry and its docks' places and sizes, as the person left them."""
        if self.settings is None:
            return
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def restore_settings(self) -> None:
        if self.settings is None:
            return
        from engine.config import DataConfig, ModelConfig, TrainConfig
        self._restore_layout()   # again, now that the docks hold their views
        projection = self.settings.value("projection")
        if isinstance(projection, str) and projection in self.latent_view.projection_names():
            self.latent_view.set_projection(projection)
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
            if self._built:
                self.settings.setValue("projection", self.latent_view.projection)
                try:
                    self._save_last_configs(self.training_panel.configs())
                except UserError:
                    pass
            self.settings.sync()

    def closeEvent(self, event) -> None:
        """Stop every run (each saves as it stops), wait for the threads, remember the layout.
        A projection is never waited for: its process is killed first."""
        if not self._built:   # closed while the engine was still loading: nothing else runs yet
            wait_for_tasks(60_000)   # the import of the engine (a running thread is never destroyed)
            self.save_settings()
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
        self._close_compare()
        self._library_cancelled = True   # the run being read is the last
        wait_for_tasks(60_000)   # every task (downloads, exports, loads, the preload): a running thread is never destroyed
        self.latent_view.colouring.wait()
        self.save_settings()
        end_library_threads()   # nothing of ours outlives the window
        super().closeEvent(event)
