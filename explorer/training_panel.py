"""The training panel: what to train on, which model, how, and Start / Pause / Stop.

Every value is checked as it changes; Start stays disabled while anything is invalid, and the
reason is shown under the form in one sentence."""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.data import SOURCE_TITLES, SOURCES, TORCHVISION_SOURCES, default_data_root
from engine.errors import UserError
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.training import available_devices
from explorer.session import RunState, Session, rebind

BODY_TITLES = {"auto": "Automatic (conv where it fits)", "mlp": "Fully connected (MLP)", "conv": "Convolutional",
               "lstm": "LSTM over rows"}
LIKELIHOOD_TITLES = {"bernoulli": "Bernoulli (BCE, nats)", "gaussian_fixed": "Gaussian, σ = 0.1 (nats)",
                     "gaussian_learned": "Gaussian, learned σ (nats)", "squared_error": "Squared error (not nats)"}


def _name(widget: QWidget, name: str, accessible: str | None = None) -> QWidget:
    widget.setObjectName(name)
    widget.setAccessibleName(accessible or name)
    return widget


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class ParamsForm(QWidget):
    """Editors for a variant's own parameters, built from its dataclass fields' metadata."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self.params_class = None

    def set_params_class(self, params_class) -> None:
        if params_class is self.params_class:
            return
        self.params_class = params_class
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        for f in dataclasses.fields(params_class):
            meta = f.metadata
            if meta.get("choices"):
                editor = QComboBox()
                editor.addItems([str(c) for c in meta["choices"]])
                editor.setCurrentText(str(f.default))
                editor.currentIndexChanged.connect(self.changed)
            else:
                editor = QDoubleSpinBox()
                editor.setDecimals(4)
                editor.setRange(meta.get("min") if meta.get("min") is not None else -1e9,
                                meta.get("max") if meta.get("max") is not None else 1e9)
                editor.setSingleStep(meta.get("step") or 0.1)
                editor.setValue(f.default)
                editor.valueChanged.connect(self.changed)
            editor.setToolTip(meta.get("help", ""))
            _name(editor, f"param_{f.name}", meta.get("label", f.name))
            self.editors[f.name] = editor
            self.form.addRow(meta.get("label", f.name), editor)
        self.setVisible(bool(self.editors))

    def values(self):
        kw = {}
        for f in dataclasses.fields(self.params_class):
            editor = self.editors[f.name]
            kw[f.name] = editor.currentText() if isinstance(editor, QComboBox) else type(f.default)(editor.value())
        return self.params_class(**kw)

    def set_values(self, params) -> None:
        self.set_params_class(type(params))
        for name, editor in self.editors.items():
            value = getattr(params, name)
            editor.setCurrentText(str(value)) if isinstance(editor, QComboBox) else editor.setValue(value)


class TrainingPanel(QWidget):
    """Dataset, model, hyperparameters, device; Start/Pause/Stop and the progress of the active run."""

    start_requested = Signal(object)   # (DataConfig, ModelConfig, TrainConfig)
    download_requested = Signal(object)  # DataConfig
    pause_requested = Signal()
    resume_requested = Signal()
    stop_requested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        _name(self, "trainingPanel", "Training panel")
        self.session = session
        self._state: RunState | None = None
        layout = QVBoxLayout(self)

        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        self.dataset = _name(QComboBox(), "datasetCombo", "Dataset")
        for key in SOURCES:
            self.dataset.addItem(SOURCE_TITLES.get(key, key), key)
        data_form.addRow("Dataset", self.dataset)
        self.path = _name(QLineEdit(), "dataPathEdit", "Data path")
        self.path.setPlaceholderText("image folder or .npz file")
        self.browse = QPushButton("Browse…")
        path_row = QHBoxLayout()
        path_row.addWidget(self.path)
        path_row.addWidget(self.browse)
        self.path_row = QWidget()
        self.path_row.setLayout(path_row)
        path_row.setContentsMargins(0, 0, 0, 0)
        data_form.addRow("Path", self.path_row)
        self.image_size = _name(QSpinBox(), "imageSizeSpin", "Image size")
        self.image_size.setRange(4, 256)
        self.image_size.setValue(28)
        self.rgb = _name(QCheckBox("Colour (RGB)"), "rgbCheck", "Colour")
        size_row = QHBoxLayout()
        size_row.setContentsMargins(0, 0, 0, 0)
        size_row.addWidget(self.image_size)
        size_row.addWidget(self.rgb)
        self.size_row = QWidget()
        self.size_row.setLayout(size_row)
        data_form.addRow("Resize to", self.size_row)
        self.root = _name(QLineEdit(), "dataRootEdit", "Data folder")
        self.root.setPlaceholderText(str(default_data_root()))
        self.root.setToolTip("Where torchvision datasets live; files placed here by hand are used without a download.")
        data_form.addRow("Data folder", self.root)
        self.download = _name(QPushButton("Download"), "downloadButton", "Download dataset")
        self.download_bar = QProgressBar()
        self.download_bar.setVisible(False)
        dl_row = QHBoxLayout()
        dl_row.setContentsMargins(0, 0, 0, 0)
        dl_row.addWidget(self.download)
        dl_row.addWidget(self.download_bar)
        self.download_row = QWidget()
        self.download_row.setLayout(dl_row)
        data_form.addRow("", self.download_row)
        self.data_form = data_form
        layout.addWidget(data_box)

        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        self.model = _name(QComboBox(), "modelCombo", "Model variant")
        for key, spec in VARIANTS.items():
            self.model.addItem(spec.title, key)
            self.model.setItemData(self.model.count() - 1, f"{spec.summary}\n{spec.formula}", Qt.ToolTipRole)
        model_form.addRow("Variant", self.model)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("variantSummary")
        model_form.addRow(self.summary)
        self.body = _name(QComboBox(), "bodyCombo", "Body network")
        for key in BODIES:
            self.body.addItem(BODY_TITLES[key], key)
        self.body.setCurrentIndex(self.body.findData("mlp"))  # ~15× faster than conv on a laptop CPU
        model_form.addRow("Body", self.body)
        self.latent = _name(QSpinBox(), "latentDimSpin", "Latent size")
        self.latent.setRange(1, 512)
        self.latent.setValue(2)
        model_form.addRow("Latent size", self.latent)
        self.hidden = _name(QLineEdit("512, 256"), "hiddenEdit", "Hidden widths")
        self.hidden.setToolTip("Hidden layer widths of the encoder (the decoder mirrors them), separated by commas.")
        model_form.addRow("Hidden widths", self.hidden)
        self.likelihood = _name(QComboBox(), "likelihoodCombo", "Likelihood")
        for key in LIKELIHOODS:
            self.likelihood.addItem(LIKELIHOOD_TITLES[key], key)
        model_form.addRow("Likelihood", self.likelihood)
        self.params = ParamsForm()
        model_form.addRow(self.params)
        self.model_form = model_form
        layout.addWidget(model_box)

        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        self.epochs = _name(QSpinBox(), "epochsSpin", "Epochs")
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(30)
        train_form.addRow("Epochs", self.epochs)
        self.batch = _name(QSpinBox(), "batchSizeSpin", "Batch size")
        self.batch.setRange(1, 65_536)
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
        layout.addWidget(train_box)

        self.error = QLabel()
        self.error.setObjectName("validationMessage")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d32f2f;")
        layout.addWidget(self.error)

        buttons = QHBoxLayout()
        self.start = _name(QPushButton("Start"), "startButton", "Start training")
        self.pause = _name(QPushButton("Pause"), "pauseButton", "Pause or resume training")
        self.stop = _name(QPushButton("Stop"), "stopButton", "Stop training")
        self.start.setDefault(True)
        for b in (self.start, self.pause, self.stop):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.progress = _name(QProgressBar(), "trainingProgress", "Training progress")
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        layout.addStretch(1)

        for signal in (self.dataset.currentIndexChanged, self.model.currentIndexChanged, self.body.currentIndexChanged,
                       self.latent.valueChanged, self.hidden.textChanged, self.likelihood.currentIndexChanged,
                       self.params.changed, self.epochs.valueChanged, self.batch.valueChanged, self.lr.textChanged,
                       self.seed.valueChanged, self.device.currentIndexChanged, self.path.textChanged,
                       self.image_size.valueChanged, self.rgb.toggled, self.root.textChanged):
            signal.connect(self._refresh)
        self.browse.clicked.connect(self._browse)
        self.download.clicked.connect(self._download)
        self.start.clicked.connect(self._start)
        self.pause.clicked.connect(self._toggle_pause)
        self.stop.clicked.connect(self.stop_requested)
        session.active_changed.connect(self._follow)
        self._refresh()
        self._show_state()

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
        model = ModelConfig(variant=self.model.currentData(), latent_dim=self.latent.value(), body=self.body.currentData(),
                            hidden=hidden, likelihood=self.likelihood.currentData(), params=self.params.values())
        train = TrainConfig(epochs=self.epochs.value(), batch_size=self.batch.value(), lr=lr, seed=self.seed.value(),
                            device=self.device.currentData())
        for cfg in (data, model, train):
            cfg.validate()
        return data, model, train

    def set_configs(self, data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
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
        self.params.set_values(model.params)
        self.epochs.setValue(train.epochs)
        self.batch.setValue(train.batch_size)
        self.lr.setText(f"{train.lr:g}")
        self.seed.setValue(train.seed)
        self.device.setCurrentIndex(max(0, self.device.findData(train.device)))
        self._refresh()

    def _refresh(self) -> None:
        source = self.dataset.currentData()
        spec = VARIANTS[self.model.currentData()]
        self.summary.setText(f"{spec.summary}<br><i>{spec.formula}</i>")
        self.model.setToolTip(f"{spec.summary}\n{spec.formula}")
        self.params.set_params_class(spec.params_class)
        self.data_form.setRowVisible(self.path_row, source in ("folder", "npz"))
        self.data_form.setRowVisible(self.size_row, source == "folder")
        self.data_form.setRowVisible(self.download_row, source in TORCHVISION_SOURCES)
        self.data_form.setRowVisible(self.root, source in TORCHVISION_SOURCES)
        self.model_form.setRowVisible(self.likelihood, not spec.fixed_likelihood)
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

    def set_download_progress(self, done: int | None, total: int | None = None) -> None:
        """Show a download's progress; ``None`` hides the bar."""
        self.download_bar.setVisible(done is not None)
        self.download.setEnabled(done is None)
        if done is not None:
            self.download_bar.setRange(0, total or 0)
            self.download_bar.setValue(done)

    def _start(self) -> None:
        try:
            configs = self.configs()
        except UserError as exc:
            self.error.setText(str(exc))
            self.error.setVisible(True)
            return
        self.start_requested.emit(configs)

    def _toggle_pause(self) -> None:
        if self._state is not None and self._state.status == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    # -- following the active run -------------------------------------------------------------
    def _follow(self, state: RunState | None) -> None:
        self._state = rebind(self._state, state, {"status_changed": self._show_state, "refreshed": self._show_progress})
        self._show_state()
        self._show_progress()

    def _show_state(self, *_) -> None:
        status = self._state.status if self._state is not None else "new"
        live = status in ("running", "paused")
        self.start.setEnabled(getattr(self, "_valid", False) and not any(r.is_training for r in self.session.runs))
        self.pause.setEnabled(live)
        self.stop.setEnabled(live)
        self.pause.setText("Resume" if status == "paused" else "Pause")
        if not live and self._state is not None and status not in ("new",):
            self.progress.setFormat(f"{status} — {self._state.reason or ''}".strip(" —"))

    def _show_progress(self, *_) -> None:
        s = self._state
        if s is None or s.total_steps == 0:
            self.progress.setValue(0)
            self.progress.setFormat("idle" if s is None else s.status)
            return
        self.progress.setValue(int(1000 * s.step / s.total_steps))
        if s.status in ("running", "paused"):
            self.progress.setFormat(f"epoch {min(s.epoch + 1, s.train_cfg.epochs)}/{s.train_cfg.epochs} · step {s.step}"
                                    f" · {s.samples_per_sec:,.0f}/s · ETA {format_eta(s.eta_s)}")
