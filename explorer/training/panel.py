"""The training panel: a preset, what to train on, which model, how, and Start / Pause / Stop.

Every value is checked as it changes; Start stays disabled while anything is invalid, and the
reason is shown under the form in one sentence (a value out of range stays as typed and is
refused there, never quietly replaced).  Notes that are not errors (a batch larger than the
training set, no hidden layer, files a dataset skipped) show below it.  The form scrolls, so a
variant with many parameters never makes the window taller.  It shows the settings of the
active run: editable while the run is new, read-only for a run that has started (New run makes
them editable again, as the template of a new run)."""

from __future__ import annotations

import html
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import SOURCE_TITLES, SOURCES, TORCHVISION_SOURCES, default_data_root
from engine.errors import UserError
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.training import available_devices
from explorer.session import RunState, Session, rebind
from explorer.training.params_form import ParamsForm
from explorer.training.presets import Preset

BODY_TITLES = {"auto": "Automatic (conv where it fits)", "mlp": "Fully connected (MLP)", "conv": "Convolutional",
               "lstm": "LSTM over rows"}
LIKELIHOOD_TITLES = {"bernoulli": "Bernoulli (BCE, nats)", "gaussian_fixed": "Gaussian, σ = 0.1 (nats)",
                     "gaussian_learned": "Gaussian, learned σ (nats)", "squared_error": "Squared error (not nats)"}
#: training-set sizes of the built-in sources (digits: 1,797 less the seeded 10% held out)
KNOWN_TRAIN_SIZES = {"digits": 1617, "mnist": 60_000, "fashion-mnist": 60_000, "kmnist": 60_000, "cifar10": 50_000}
#: the spin boxes accept values beyond the configs' ranges, so such a value is refused with the reason
SPIN_LIMIT = 10_000_000
NO_HIDDEN_NOTE = "No hidden layers: the encoder and the decoder are each a single layer (a valid choice, e.g. for a linear AE)."


def _name(widget: QWidget, name: str, accessible: str | None = None) -> QWidget:
    widget.setObjectName(name)
    widget.setAccessibleName(accessible or name)
    return widget


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def formula_html(formula: str) -> str:
    """A formula as rich text that wraps only between its top-level terms: spaces inside
    brackets become non-breaking, so "KL(q(z|x) ‖ N(0, I))" never leaves "I))" on a line alone."""
    out, depth = [], 0
    for ch in formula:
        depth += ch in "([{"
        depth -= ch in ")]}"
        out.append("&nbsp;" if ch == " " and depth > 0 else html.escape(ch))
    return "<i>" + "".join(out) + "</i>"


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
        _name(self, "trainingPanel", "Training panel")
        self.session = session
        self._state: RunState | None = None
        self._training: RunState | None = None   # the run that trains now (Pause and Stop act on it)
        self._valid = False
        self._applying = False
        self._dataset_notes: list[str] = []
        self._note_name: str | None = None
        self.presets = list(presets or [])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        self.preset = _name(QComboBox(), "presetCombo", "Preset")
        self.preset.addItem("Choose a classic experiment…", None)
        for preset in self.presets:
            self.preset.addItem(preset.title, preset.key)
            self.preset.setItemData(self.preset.count() - 1, preset.tooltip, Qt.ItemDataRole.ToolTipRole)
        self.preset.setToolTip("Set up a classic experiment from the papers in one click (resources/presets/*.json).")
        _shrinkable(self.preset)
        preset_row = QHBoxLayout()
        preset_label = QLabel("&Preset")
        preset_label.setBuddy(self.preset)
        preset_row.addWidget(preset_label)
        preset_row.addWidget(self.preset, 1)
        layout.addLayout(preset_row)

        form_host = QWidget()
        host_layout = QVBoxLayout(form_host)
        host_layout.setContentsMargins(0, 0, 0, 0)
        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        self.dataset = _name(QComboBox(), "datasetCombo", "Dataset")
        for key in SOURCES:
            self.dataset.addItem(SOURCE_TITLES.get(key, key), key)
        data_form.addRow("Dataset", self.dataset)
        self.path = _name(QLineEdit(), "dataPathEdit", "Data path")
        self.path.setPlaceholderText("image folder or .npz file")
        self.browse = QPushButton("Browse…")
        self.path_row = _row(QHBoxLayout(), self.path, self.browse)
        data_form.addRow("Path", self.path_row)
        self.image_size = _name(QSpinBox(), "imageSizeSpin", "Image size")
        self.image_size.setRange(4, 256)
        self.image_size.setValue(28)
        self.rgb = _name(QCheckBox("Colour (RGB)"), "rgbCheck", "Colour")
        self.size_row = _row(QHBoxLayout(), self.image_size, self.rgb)
        data_form.addRow("Resize to", self.size_row)
        self.root = _name(QLineEdit(), "dataRootEdit", "Data folder")
        self.root.setPlaceholderText(str(default_data_root()))
        self.root.setToolTip("Where torchvision datasets live; files placed here by hand are used without a download.")
        data_form.addRow("Data folder", self.root)
        self.download = _name(QPushButton("Download"), "downloadButton", "Download dataset")
        self.download_bar = QProgressBar()
        self.download_bar.setVisible(False)
        self.download_row = _row(QHBoxLayout(), self.download, self.download_bar)
        data_form.addRow("", self.download_row)
        # a dataset loading in the background before a run starts (or opens): what and that it is busy
        self.load_label = _name(QLabel(), "datasetLoadLabel", "Dataset loading")
        self.load_bar = _name(QProgressBar(), "datasetLoadBar", "Dataset loading progress")
        self.load_bar.setRange(0, 0)
        self.load_bar.setMaximumHeight(12)
        self.load_bar.setTextVisible(False)
        self.load_row = _row(QVBoxLayout(), self.load_label, self.load_bar)
        self.load_row.setVisible(False)
        data_form.addRow(self.load_row)
        self.data_form = data_form
        host_layout.addWidget(data_box)

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        self.model = _name(QComboBox(), "modelCombo", "Model variant")
        for key, spec in VARIANTS.items():
            self.model.addItem(spec.title, key)
            self.model.setItemData(self.model.count() - 1, f"{spec.summary}\n{spec.formula}", Qt.ItemDataRole.ToolTipRole)
        model_form.addRow("Variant", self.model)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("variantSummary")
        model_form.addRow(self.summary)
        self.formula = QLabel()
        self.formula.setWordWrap(True)
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setObjectName("variantFormula")
        model_form.addRow(self.formula)
        self.body = _name(QComboBox(), "bodyCombo", "Body network")
        for key in BODIES:
            self.body.addItem(BODY_TITLES[key], key)
        self.body.setCurrentIndex(self.body.findData("mlp"))  # ~15× faster than conv on a laptop CPU
        model_form.addRow("Body", self.body)
        self.latent = _name(QSpinBox(), "latentDimSpin", "Latent size")
        self.latent.setRange(0, SPIN_LIMIT)
        self.latent.setValue(2)
        model_form.addRow("Latent size", self.latent)
        self.hidden = _name(QLineEdit("512, 256"), "hiddenEdit", "Hidden widths")
        self.hidden.setToolTip("Hidden layer widths of the encoder (the decoder mirrors them), separated by commas. "
                               "Empty: no hidden layer.")
        self.hidden.setPlaceholderText("none: no hidden layer")
        model_form.addRow("Hidden widths", self.hidden)
        self.likelihood = _name(QComboBox(), "likelihoodCombo", "Likelihood")
        for key in LIKELIHOODS:
            self.likelihood.addItem(LIKELIHOOD_TITLES[key], key)
        model_form.addRow("Likelihood", self.likelihood)
        self.model_form = model_form
        self.params = ParamsForm(model_form, self.likelihood, self)
        host_layout.addWidget(model_box)

        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        self.epochs = _name(QSpinBox(), "epochsSpin", "Epochs")
        self.epochs.setRange(0, SPIN_LIMIT)
        self.epochs.setValue(30)
        self.epochs.setToolTip("Epochs to train a new run (Resume asks how many more).")
        train_form.addRow("Epochs", self.epochs)
        self.batch = _name(QSpinBox(), "batchSizeSpin", "Batch size")
        self.batch.setRange(0, SPIN_LIMIT)
        self.batch.setValue(128)
        train_form.addRow("Batch size", self.batch)
        self.lr = _name(QLineEdit("1e-3"), "learningRateEdit", "Learning rate")
        train_form.addRow("Learning rate", self.lr)
        self.seed = _name(QSpinBox(), "seedSpin", "Seed")
        self.seed.setRange(0, 2**31 - 1)
        train_form.addRow("Seed", self.seed)
        self.device = _name(QComboBox(), "deviceCombo", "Device")
        for key in available_devices():
            self.device.addItem({"auto": "Automatic", "cpu": "CPU", "cuda": "CUDA (GPU)"}[key], key)
        train_form.addRow("Device", self.device)
        host_layout.addWidget(train_box)
        host_layout.addStretch(1)
        self.forms = (data_form, model_form, train_form)
        for combo in (self.dataset, self.model, self.body, self.likelihood, self.device):
            _shrinkable(combo)

        _readable_when_disabled(form_host)
        self.read_only_note = QLabel()
        self.read_only_note.setObjectName("readOnlyNote")
        self.read_only_note.setWordWrap(True)
        self.read_only_note.setVisible(False)
        layout.addWidget(self.read_only_note)
        self.scroll = _name(QScrollArea(), "trainingForm", "Training settings")
        self.scroll.setWidget(form_host)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.form_host = form_host
        layout.addWidget(self.scroll, 1)

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

        buttons = QHBoxLayout()
        self.start = _name(QPushButton("Start"), "startButton", "Start training")
        self.pause = _name(QPushButton("Pause"), "pauseButton", "Pause or resume training")
        self.stop = _name(QPushButton("Stop"), "stopButton", "Stop training")
        self.new_run = _name(QPushButton("New"), "newRunButton", "New run")
        self.new_run.setToolTip("Edit these settings as the template of a new run (Ctrl+N).")
        self.start.setDefault(True)
        for b in (self.start, self.pause, self.stop, self.new_run):
            b.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            buttons.addWidget(b)
        layout.addLayout(buttons)
        layout.addWidget(self._build_queue_row())
        self.progress = _name(QProgressBar(), "trainingProgress", "Training progress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)

        for signal in (self.dataset.currentIndexChanged, self.model.currentIndexChanged, self.body.currentIndexChanged,
                       self.latent.valueChanged, self.hidden.textChanged, self.likelihood.currentIndexChanged,
                       self.params.changed, self.epochs.valueChanged, self.batch.valueChanged, self.lr.textChanged,
                       self.seed.valueChanged, self.device.currentIndexChanged, self.path.textChanged,
                       self.image_size.valueChanged, self.rgb.toggled, self.root.textChanged):
            signal.connect(self._refresh)
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
        self.queue_button = _name(QPushButton("Queue"), "queueButton", "Queue these settings")
        self.queue_button.setToolTip("Add these settings to the training queue: queued runs train one after another.")
        self.sweep_axis = _name(QComboBox(), "sweepAxisCombo", "Sweep parameter")
        for key, title in SWEEP_AXES.items():
            self.sweep_axis.addItem(title, key)
        self.sweep_axis.setToolTip("The parameter the sweep varies; every other setting is the form's.")
        _shrinkable(self.sweep_axis)
        self.sweep_axis.setMinimumContentsLength(6)
        self.sweep_values = _name(QLineEdit(), "sweepValuesEdit", "Sweep values")
        self.sweep_values.setPlaceholderText("values, e.g. 1, 4")
        self.sweep_values.setToolTip("The values, separated by commas (variants by their keys: vae, beta_vae, ...).")
        self.sweep_button = _name(QPushButton("Queue sweep"), "sweepButton", "Queue a sweep")
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
        """The panel's settings, or None with the reason shown under the form."""
        try:
            return self.configs()
        except UserError as exc:
            self.error.setText(str(exc))
            self.error.setVisible(True)
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
        source = self.dataset.currentData()
        data = DataConfig(source=source, root=self.root.text().strip() or None, path=self.path.text().strip() or None,
                          image_size=self.image_size.value(), grayscale=not self.rgb.isChecked())
        try:
            hidden = tuple(int(v) for v in self.hidden.text().replace(" ", "").split(",") if v)
        except ValueError:
            raise UserError("Hidden widths must be whole numbers separated by commas, e.g. 512, 256.") from None
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise UserError(f"The learning rate must be a number such as 1e-3, not {self.lr.text()!r}.") from None
        if not math.isfinite(lr):
            raise UserError(f"The learning rate must be a finite number such as 1e-3, not {self.lr.text()!r}.")
        model = ModelConfig(variant=self.model.currentData(), latent_dim=self.latent.value(), body=self.body.currentData(),
                            hidden=hidden, likelihood=self.likelihood.currentData(), params=self.params.values())
        train = TrainConfig(epochs=self.epochs.value(), batch_size=self.batch.value(), lr=lr, seed=self.seed.value(),
                            device=self.device.currentData())
        for cfg in (data, model, train):
            cfg.validate()
        return data, model, train

    def set_configs(self, data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
        applying, self._applying = self._applying, True
        try:
            self.dataset.setCurrentIndex(max(0, self.dataset.findData(data.source)))
            self.path.setText(data.path or "")
            self.root.setText(data.root or "")
            self.image_size.setValue(data.image_size)
            self.rgb.setChecked(not data.grayscale)
            self.model.setCurrentIndex(max(0, self.model.findData(model.variant)))
            self.body.setCurrentIndex(max(0, self.body.findData(model.body)))
            self.latent.setValue(model.latent_dim)
            self.hidden.setText(", ".join(map(str, model.hidden)))
            self.likelihood.setCurrentIndex(max(0, self.likelihood.findData(model.likelihood)))
            if model.params is not None:
                self.params.set_values(model.params)
            self.epochs.setValue(train.epochs)
            self.batch.setValue(train.batch_size)
            self.lr.setText(f"{train.lr:g}")
            self.seed.setValue(train.seed)
            self.device.setCurrentIndex(max(0, self.device.findData(train.device)))
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
        self._refresh()

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
        return notes + self._dataset_notes

    def _refresh(self) -> None:
        source = self.dataset.currentData()
        spec = VARIANTS[self.model.currentData()]
        self.summary.setText(spec.summary)
        self.formula.setText(formula_html(spec.formula))
        self.model.setToolTip(f"{spec.summary}\n{spec.formula}")
        self.params.set_params_class(spec.params_class)
        self.data_form.setRowVisible(self.path_row, source in ("folder", "npz"))
        self.data_form.setRowVisible(self.size_row, source == "folder")
        self.data_form.setRowVisible(self.download_row, source in TORCHVISION_SOURCES)
        self.data_form.setRowVisible(self.root, source in TORCHVISION_SOURCES)
        self.model_form.setRowVisible(self.likelihood, not spec.fixed_likelihood)
        if not self._applying and self.preset.currentIndex() > 0 and self.sender() is not None:
            self.preset.setCurrentIndex(0)   # edited since: no longer the preset
        try:
            self.configs()
        except UserError as exc:
            self.error.setText(str(exc))
            self.error.setVisible(True)
            self._valid = False
        else:
            self.error.clear()
            self.error.setVisible(False)
            self._valid = True
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

    def _set_editable(self, editable: bool, resumable: bool) -> None:
        for widget in (self.preset, self.dataset, self.path, self.browse, self.image_size, self.rgb, self.root,
                       self.model, self.body, self.latent, self.hidden, self.likelihood, self.batch, self.lr,
                       self.seed, self.device):
            widget.setEnabled(editable)
        self.params.set_enabled(editable)
        self.epochs.setEnabled(editable)   # (Resume asks how many more epochs)

    def _show_state(self, *_) -> None:
        status = self._state.status if self._state is not None else "new"
        live = status in ("running", "paused")
        training = self.session.training_run()
        editable = self.is_editable()
        focused = QApplication.focusWidget()
        focused = focused if focused is not None and self.isAncestorOf(focused) else None
        self._set_editable(editable, status in ("stopped", "completed"))
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


def _readable_when_disabled(widget: QWidget) -> None:
    """Read-only settings stay legible: disabled editors' text is a little lighter than normal, not faint."""
    palette = widget.palette()
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        normal = palette.color(QPalette.ColorGroup.Active, role)
        base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor.fromRgbF(
            *(n + (b - n) * 0.3 for n, b in zip(normal.getRgbF()[:3], base.getRgbF()[:3]))))
    widget.setPalette(palette)


def _row(layout, *widgets: QWidget) -> QWidget:
    """The widgets side by side (or stacked) in ``layout``, without margins, as one widget for a form row."""
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    host = QWidget()
    host.setLayout(layout)
    return host


def _shrinkable(combo: QComboBox) -> None:
    """A combo box that can be narrower than its longest item (which its popup still shows whole)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
