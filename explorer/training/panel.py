"""The training panel: a preset, the form (explorer.training.form: what to train on, which model,
how), and Start / Pause / Stop with the progress of the active run.

Every value is checked as it changes; Start stays disabled while anything is invalid, every refused
field is outlined in red and the reasons are listed under the form, one sentence each (a value out
of range stays as typed and is refused there, never quietly replaced).  Notes that are not errors
(a batch larger than the training set, no hidden layer, files a dataset skipped) show below them.
It shows the settings of the active run: editable while the run is new, read-only for a run that
has started (New run makes them editable again, as the template of a new run).  While a run trains,
"Change while training" (explorer.training.live_changes) changes its β, learning rate, ... and steps
a paused run to its next probe update."""

from __future__ import annotations

import html
import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyleOptionProgressBar,
    QVBoxLayout,
    QWidget,
)

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import SOURCE_TITLES, expected_files
from engine.datasets.cifar10 import CIFAR_TARBALL
from engine.errors import UserError
from explorer.session import RunState, Session, rebind
from explorer.training.form import TrainingForm, named, shrinkable
from explorer.training.live_changes import LiveChangesBox
from explorer.training.presets import Preset

#: training-set sizes of the built-in sources (digits: 1,797 less the seeded 10% held out)
KNOWN_TRAIN_SIZES = {"digits": 1617, "mnist": 60_000, "fashion-mnist": 60_000, "kmnist": 60_000, "cifar10": 50_000}
#: the form's editors, reachable as the panel's own attributes (panel.latent, panel.epochs, ...)
FORM_WIDGETS = ("dataset", "path", "browse", "image_size", "rgb", "root", "download", "download_bar", "download_row",
                "load_row", "load_label", "model", "summary", "formula", "body", "latent", "hidden", "likelihood",
                "params", "epochs", "batch", "lr", "seed", "device", "form_host", "forms")
NO_HIDDEN_NOTE = "No hidden layers: the encoder and the decoder are each a single layer (a valid choice, e.g. for a linear AE)."


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def missing_data_note(source: str, root_text: str) -> str:
    """For a torchvision source whose files are not in the data folder typed (or the default one),
    where they go and that Download fetches them; "" when they are there (as IDX files, .gz copies
    or CIFAR-10's tarball) or the source is not torchvision's."""
    root = Path(root_text).expanduser() if root_text.strip() else None
    missing = [p for p in expected_files(source, root) if not p.is_file() and not p.with_name(p.name + ".gz").is_file()]
    if not missing or (source == "cifar10" and (missing[0].parent.parent / CIFAR_TARBALL).is_file()):
        return ""
    title = SOURCE_TITLES.get(source, source).split(" ")[0]
    return f"{title} is not in {missing[0].parent}: press Download, or place its files there."


def batch_note(batch: int, n_train: int | None, source_name: str) -> str:
    if n_train is None or batch <= n_train:
        return ""
    return (f"The batch size {batch:,} is larger than the {n_train:,} training images of {source_name}: "
            f"each epoch will be one batch of {n_train:,}.")


class TrainingPanel(QWidget):
    """Preset, dataset, model, hyperparameters, device; Start/Pause/Stop and the progress of the active run."""

    start_requested = Signal(object)   # (DataConfig, ModelConfig, TrainConfig)
    download_requested = Signal(object)  # DataConfig
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()
    queue_requested = Signal(object)   # (DataConfig, ModelConfig, TrainConfig): add to the training queue
    sweep_requested = Signal(object)   # ((DataConfig, ModelConfig, TrainConfig), axis, values text)
    new_run_requested = Signal()       # leave the shown run: the form becomes the template of a new one
    preset_applied = Signal(object)    # Preset, after its settings are in the form

    def __init__(self, session: Session, presets: list[Preset] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        named(self, "trainingPanel", "Training panel")
        self.session = session
        self._state: RunState | None = None
        self._training: RunState | None = None   # the run that trains now (Pause and Stop act on it)
        self._valid = False
        self._applying = False
        self._dataset_notes: list[str] = []
        self._dataset_notes_for: tuple = ()   # the data settings (source, folder, path) those notes are about
        self._note_name: str | None = None
        self.presets = list(presets or [])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        self.preset = named(QComboBox(), "presetCombo", "Preset")
        self.preset.addItem("Choose a classic experiment…", None)
        for preset in self.presets:
            self.preset.addItem(preset.title, preset.key)
            self.preset.setItemData(self.preset.count() - 1, preset.tooltip, Qt.ItemDataRole.ToolTipRole)
        self.preset.setToolTip("Set up a classic experiment from the papers in one click (resources/presets/*.json).")
        shrinkable(self.preset)
        preset_row = QHBoxLayout()
        preset_label = QLabel("&Preset")
        preset_label.setBuddy(self.preset)
        preset_row.addWidget(preset_label)
        preset_row.addWidget(self.preset, 1)
        layout.addLayout(preset_row)

        self.read_only_note = QLabel()
        self.read_only_note.setObjectName("readOnlyNote")
        self.read_only_note.setWordWrap(True)
        self.read_only_note.setVisible(False)
        layout.addWidget(self.read_only_note)
        self.form = self.scroll = TrainingForm()
        for name in FORM_WIDGETS:   # the editors, as the panel's own attributes
            setattr(self, name, getattr(self.form, name))
        layout.addWidget(self.form, 1)

        self.error = QLabel()
        self.error.setObjectName("validationMessage")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d32f2f;")
        layout.addWidget(self.error)
        self.notice = QLabel()
        self.notice.setObjectName("panelNotes")
        self.notice.setWordWrap(True)
        self.notice.setForegroundRole(self.notice.foregroundRole())
        self.notice.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.notice)
        self.finding = QLabel()   # the shown run's collapse or prior mismatch (engine.diagnostics), in words
        self.finding.setObjectName("panelFinding")
        self.finding.setWordWrap(True)
        self.finding.setStyleSheet("QLabel { color: #b03020; font-weight: bold; }")
        self.finding.setVisible(False)
        layout.addWidget(self.finding)

        buttons = QHBoxLayout()
        self.start = named(QPushButton("Start"), "startButton", "Start training")
        self.pause = named(QPushButton("Pause"), "pauseButton", "Pause or resume training")
        self.stop = named(QPushButton("Stop"), "stopButton", "Stop training")
        self.new_run = named(QPushButton("New"), "newRunButton", "New run")
        self.new_run.setToolTip("Edit these settings as the template of a new run (Ctrl+N).")
        self.start.setDefault(True)
        for b in (self.start, self.pause, self.stop, self.new_run):
            b.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.live_changes = LiveChangesBox()   # β, the learning rate, ... and Step, while a run trains
        layout.addWidget(self.live_changes)
        layout.addWidget(self._build_queue_row())
        self.progress = named(TextProgressBar(), "trainingProgress", "Training progress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)

        self.form.changed.connect(self._refresh)
        self.preset.activated.connect(self._on_preset_chosen)
        self.browse.clicked.connect(self._browse)
        self.download.clicked.connect(self._download)
        self.start.clicked.connect(self._start)
        self.pause.clicked.connect(self._toggle_pause)
        self.stop.clicked.connect(self.stop_requested)
        self.new_run.clicked.connect(self.new_run_requested)
        self.queue_button.clicked.connect(self._queue)
        self.sweep_button.clicked.connect(self._sweep)
        self.sweep_values.returnPressed.connect(self._sweep)
        session.active_changed.connect(self._follow)
        session.training_changed.connect(self._follow_training)
        self._training = rebind(None, session.training_run(), {"status_changed": self._on_training_status})
        self._refresh()
        self._show_state()

    def _build_queue_row(self) -> QWidget:
        """Queue (these settings, to train after the runs before them) and a sweep over one parameter."""
        from explorer.training.queue import SWEEP_AXES
        box = QGroupBox("Queue")
        box.setObjectName("queueBox")
        rows = QVBoxLayout(box)
        rows.setContentsMargins(4, 4, 4, 4)
        self.queue_button = named(QPushButton("Queue"), "queueButton", "Queue these settings")
        self.queue_button.setToolTip("Add these settings to the training queue: queued runs train one after another.")
        self.sweep_axis = named(QComboBox(), "sweepAxisCombo", "Sweep parameter")
        for key, title in SWEEP_AXES.items():
            self.sweep_axis.addItem(title, key)
        self.sweep_axis.setToolTip("The parameter the sweep varies; every other setting is the form's.")
        shrinkable(self.sweep_axis)
        self.sweep_axis.setMinimumContentsLength(6)
        self.sweep_values = named(QLineEdit(), "sweepValuesEdit", "Sweep values")
        self.sweep_values.setPlaceholderText("values, e.g. 1, 4")
        self.sweep_values.setToolTip("The values, separated by commas (variants by their keys: vae, beta_vae, ...).")
        self.sweep_button = named(QPushButton("Queue sweep"), "sweepButton", "Queue a sweep")
        self.sweep_button.setToolTip("Queue one run per value.")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.queue_button)
        row.addWidget(self.sweep_axis, 1)
        row.addWidget(self.sweep_values, 1)
        row.addWidget(self.sweep_button)
        rows.addLayout(row)
        return box

    def _configs_or_say_why(self):
        """The panel's settings, or None with the reasons shown under the form."""
        try:
            return self.configs()
        except UserError:
            self._refresh()   # outlines every refused field and lists the reasons
            return None

    def _queue(self) -> None:
        configs = self._configs_or_say_why()
        if configs is None:
            return
        self.queue_requested.emit(configs)

    def _sweep(self) -> None:
        configs = self._configs_or_say_why()
        if configs is None:
            return
        self.sweep_requested.emit((configs, self.sweep_axis.currentData(), self.sweep_values.text()))

    # -- reading the form ------------------------------------------------------------------
    def configs(self) -> tuple[DataConfig, ModelConfig, TrainConfig]:
        """The form's values as validated configs; UserError with the reason otherwise."""
        return self.form.configs()

    def set_configs(self, data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
        applying, self._applying = self._applying, True
        try:
            self.form.set_configs(data, model, train)
        finally:
            self._applying = applying
        self._refresh()

    def apply_preset(self, preset: Preset) -> None:
        """Put a preset's settings in the form (a new run's: the shown run, if any, is left)."""
        if not self.is_editable():
            self.new_run_requested.emit()
        self.set_configs(preset.data, preset.model, preset.train)
        index = self.preset.findData(preset.key)
        self.preset.setCurrentIndex(max(0, index))
        self.preset_applied.emit(preset)

    def _on_preset_chosen(self, index: int) -> None:
        key = self.preset.itemData(index)
        preset = next((p for p in self.presets if p.key == key), None)
        if preset is not None:
            self.apply_preset(preset)

    def set_dataset_notes(self, notes: list[str]) -> None:
        """Sentences about the dataset as loaded (e.g. "3 files skipped: not images")."""
        self._dataset_notes = [str(n) for n in notes]
        self._dataset_notes_for = self._data_settings()
        self._refresh()

    def _data_settings(self) -> tuple:
        return self.dataset.currentData(), self.root.text().strip(), self.path.text().strip()

    def set_finding(self, finding) -> None:
        """The shown run's finding (an engine.diagnostics.Diagnosis: its sentence, what helps as the
        tooltip), or None to hide it."""
        self.finding.setText(finding.message[:1].upper() + finding.message[1:] + "." if finding is not None else "")
        self.finding.setToolTip(finding.help if finding is not None else "")
        self.finding.setVisible(finding is not None)

    def is_editable(self) -> bool:
        """The form edits a new run's settings (not those of a run that has started)."""
        return self._state is None or self._state.status == "new"

    def _notes(self) -> list[str]:
        notes = []
        source = self.dataset.currentData()
        note = batch_note(self.batch.value(), KNOWN_TRAIN_SIZES.get(source), SOURCE_TITLES.get(source, source).split(" (")[0])
        if note:
            notes.append(note)
        if not self.hidden.text().strip():
            notes.append(NO_HIDDEN_NOTE)
        if self.is_editable():   # where the data folder typed lacks the dataset's files; follows the field
            missing = missing_data_note(source, self.root.text())
            notes += [missing] if missing else []
        # notes about the dataset as loaded hold while the data settings are those it was loaded with
        return notes + (self._dataset_notes if self._data_settings() == self._dataset_notes_for else [])

    def _refresh(self) -> None:
        self.form.show_variant_and_source()
        if not self._applying and self.preset.currentIndex() > 0 and self.sender() is not None:
            self.preset.setCurrentIndex(0)   # edited since: no longer the preset
        refused = self.form.refusals()
        self.form.show_refusals(refused)
        self._valid = not refused
        self.error.setText("\n".join(refused.values()))
        self.error.setVisible(bool(refused))
        notes = self._notes()
        self.notice.setText("\n".join(notes))
        self.notice.setVisible(bool(notes))
        self._show_state()

    def _browse(self) -> None:
        if self.dataset.currentData() == "npz":
            path, _ = QFileDialog.getOpenFileName(self, "Choose an .npz file", "", "NumPy archives (*.npz)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder of images")
        if path:
            self.path.setText(path)

    def _download(self) -> None:
        self.download_requested.emit(DataConfig(source=self.dataset.currentData(), root=self.root.text().strip() or None,
                                                download=True))

    def set_load_progress(self, text: str | None) -> None:
        """Say that a dataset loads in the background (``None`` hides it)."""
        self.load_row.setVisible(text is not None)
        self.load_label.setText(text or "")

    def set_download_progress(self, done: int | None, total: int | None = None) -> None:
        """Show a download's progress; ``None`` hides the bar."""
        self.download_bar.setVisible(done is not None)
        self.download.setEnabled(done is None)
        if done is None:
            self._refresh()   # the files a download brought: the missing-data note goes
        if done is not None:
            self.download_bar.setRange(0, total or 0)
            self.download_bar.setValue(done)

    def _start(self) -> None:
        configs = self._configs_or_say_why()
        if configs is None:
            return
        self.start_requested.emit(configs)

    def _toggle_pause(self) -> None:
        if self._training is not None and self._training.status == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    # -- following the active run -------------------------------------------------------------
    def _follow(self, state: RunState | None) -> None:
        self._state = rebind(self._state, state, {"status_changed": self._show_state, "refreshed": self._show_progress})
        if state is not None:
            self.set_configs(state.data_cfg, state.model_cfg, state.train_cfg)
        self._show_state()
        self._show_progress()

    def _follow_training(self, state: RunState | None) -> None:
        self._training = rebind(self._training, state, {"status_changed": self._on_training_status})
        self._show_state()

    def _on_training_status(self, _status: str) -> None:
        """(A slot of its own: the training run may also be the shown one, followed by _show_state.)"""
        self._show_state()

    def _set_editable(self, editable: bool) -> None:
        self.preset.setEnabled(editable)
        self.form.set_editable(editable)   # (Resume asks how many more epochs)

    def _show_state(self, *_) -> None:
        status = self._state.status if self._state is not None else "new"
        live = status in ("running", "paused")
        training = self.session.training_run()
        editable = self.is_editable()
        focused = QApplication.focusWidget()
        focused = focused if focused is not None and self.isAncestorOf(focused) else None
        self._set_editable(editable)
        # one training at a time: while another run trains, Start queues; the shown live run has no Start
        shown_trains = live or (training is not None and training is self._state)
        self.start.setEnabled(self._valid and not shown_trains)
        what = "training a new run with these settings" if editable else "a new run with the settings shown"
        self.start.setToolTip(f"Queue {what}: another run is training (F5)." if training is not None else
                              f"Start {what} (F5).")
        self.queue_button.setEnabled(self._valid)
        self.sweep_button.setEnabled(self._valid)
        # Pause and Stop act on the run that trains, whichever run is shown
        self.pause.setEnabled(training is not None)
        self.stop.setEnabled(training is not None)
        self.pause.setToolTip(f"Pause or resume {training.name} (F6)." if training is not None else "Nothing trains.")
        self.new_run.setEnabled(not editable)
        self._show_read_only_note()
        self.pause.setText("Resume" if training is not None and training.status == "paused" else "Pause")
        self.live_changes.show_run(training)
        if focused is not None and not focused.isEnabled():
            # a button that disabled itself (Start once training runs) hands focus to its neighbour
            # instead of Qt's next widget in the chain, far from where the person was
            for neighbour in (self.pause, self.stop, self.start, self.new_run):
                if neighbour.isEnabled():
                    neighbour.setFocus(Qt.FocusReason.OtherFocusReason)
                    break
        if not live and self._state is not None and status not in ("new",):
            self.progress.setFormat(f"{status} — {self._state.reason or ''}".strip(" —"))

    def _show_read_only_note(self) -> None:
        editable = self.is_editable()
        self.read_only_note.setVisible(not editable)
        self._note_name = self._state.name if self._state is not None else None
        if not editable:
            from explorer.runs_panel import short_name
            self.read_only_note.setText(f"<b>{html.escape(short_name(self._state.name))}</b>: its settings, read-only. "
                                        "<b>New</b> (Ctrl+N) edits them for a new run.")

    def _show_progress(self, *_) -> None:
        s = self._state
        if s is not None and s.name != self._note_name:
            self._show_read_only_note()   # the run folder (and its name) came with the first update
        if s is None or s.total_steps == 0:
            self.progress.setValue(0)
            self.progress.setFormat("idle" if s is None else s.status)
            return
        self.progress.setValue(int(1000 * s.step / s.total_steps))
        if s.status in ("running", "paused"):
            rate = f" · {s.samples_per_sec:,.0f}/s · ETA {format_eta(s.eta_s)}" if s.status == "running" and s.samples_per_sec else ""
            self.progress.setFormat(f"epoch {min(s.epoch + 1, s.train_cfg.epochs)}/{s.train_cfg.epochs} · step {s.step}{rate}")



class TextProgressBar(QProgressBar):
    """A progress bar whose text stays legible over the fill and the empty part alike: the style
    draws the bar without its text (Fusion draws it in two colours, switching where the fill ends),
    and the bar draws the text once, in the window's text colour with a halo of the base colour."""

    def paintEvent(self, _event) -> None:
        option = QStyleOptionProgressBar()
        self.initStyleOption(option)
        text = option.text if self.isTextVisible() else ""
        option.textVisible = False
        painter = QPainter(self)
        self.style().drawControl(QStyle.ControlElement.CE_ProgressBar, option, painter, self)
        if not text:
            return
        metrics = self.fontMetrics()
        text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, max(0, self.width() - 8))
        x = (self.width() - metrics.horizontalAdvance(text)) / 2
        y = (self.height() + metrics.ascent() - metrics.descent()) / 2
        path = QPainterPath()
        path.addText(x, y, self.font(), text)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.strokePath(path, QPen(palette.color(QPalette.ColorRole.Base), 3))
        painter.fillPath(path, palette.color(QPalette.ColorRole.WindowText))
