"""The training panel's form: what to train on (Data), which model (Model) and how (Training), in
a scroll area so a variant with many parameters never makes the window taller.

``configs()`` reads the form as validated configs.  ``refusals()`` checks each field on its own
(its value with every other setting at a valid default), so every refused field is known at once,
not only the first one the configs' validation meets; ``show_refusals`` outlines each refused
editor in red (the ``refused`` property and the form's style sheet) and sets its accessible
description to the reason."""

from __future__ import annotations

import dataclasses
import html
import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import PROBE_SETS, DataConfig, ModelConfig, TrainConfig
from engine.datasets import SOURCE_TITLES, SOURCES, TORCHVISION_SOURCES, default_data_root
from engine.errors import UserError
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.models.base import check_params
from engine.probe_sets import PROBE_SET_TITLES, probe_settings
from engine.training import available_devices
from explorer.training.params_form import ParamsForm

BODY_TITLES = {"auto": "Automatic (conv where it fits)", "mlp": "Fully connected (MLP)", "conv": "Convolutional",
               "lstm": "LSTM over rows"}
LIKELIHOOD_TITLES = {"bernoulli": "Bernoulli (BCE, nats)", "gaussian_fixed": "Gaussian, σ = 0.1 (nats)",
                     "gaussian_learned": "Gaussian, learned σ (nats)", "squared_error": "Squared error (not nats)"}
#: the spin boxes accept values beyond the configs' ranges, so such a value is refused with the reason
SPIN_LIMIT = 10_000_000
#: a refused editor: a red frame (the ``refused`` dynamic property set by ``show_refusals``)
REFUSED_STYLE = '*[refused="true"] { border: 2px solid #d32f2f; border-radius: 2px; }'
WORD_JOINER = "\u2060"
#: brackets holding more characters than this are a note in words (which may wrap), not a term
PROSE_BRACKETS = 30


def named(widget: QWidget, name: str, accessible: str | None = None) -> QWidget:
    """``widget`` with its object name and accessible name set."""
    widget.setObjectName(name)
    widget.setAccessibleName(accessible or name)
    return widget


def formula_html(formula: str) -> str:
    """A formula as rich text that wraps only at spaces between terms: a space inside brackets is
    non-breaking (unless the brackets hold a note longer than ``PROSE_BRACKETS`` characters, whose
    words may wrap) and the characters of a term are joined by word joiners, so
    "KL(q(z|x) ‖ N(0, I))" never breaks after "q(z|" (a line may break after "|" otherwise)."""
    out, depth, prose_depth = [], 0, None
    for i, ch in enumerate(formula):
        if ch in "([{":
            depth += 1
            if prose_depth is None and _group_length(formula, i) > PROSE_BRACKETS:
                prose_depth = depth
        elif ch in ")]}":
            if depth == prose_depth:
                prose_depth = None
            depth -= 1
        if ch == " " and (depth <= 0 or depth == prose_depth):
            out.append(" ")
            continue
        if out and out[-1] != " ":
            out.append(WORD_JOINER)
        out.append("&nbsp;" if ch == " " else html.escape(ch))
    return "<i>" + "".join(out) + "</i>"


def _group_length(text: str, start: int) -> int:
    """The length of the bracket group opened at ``text[start]`` (to the end if it never closes)."""
    depth = 0
    for i in range(start, len(text)):
        depth += text[i] in "([{"
        depth -= text[i] in ")]}"
        if depth == 0:
            return i - start + 1
    return len(text) - start


class TrainingForm(QScrollArea):
    """Data, Model and Training settings; ``changed`` fires on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        named(self, "trainingForm", "Training settings")
        host = QWidget()
        host.setObjectName("trainingFormHost")
        host_layout = QVBoxLayout(host)
        host_layout.setContentsMargins(0, 0, 0, 0)
        host_layout.addWidget(self._build_data_box())
        host_layout.addWidget(self._build_model_box())
        host_layout.addWidget(self._build_train_box())
        host_layout.addStretch(1)
        self.forms = (self.data_form, self.model_form, self.train_form)
        for combo in (self.dataset, self.model, self.body, self.likelihood, self.device, self.probe_set):
            shrinkable(combo)
        readable_when_disabled(host)
        host.setStyleSheet(REFUSED_STYLE)
        self.setWidget(host)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.form_host = host
        self._refused: dict[QWidget, str] = {}
        for signal in (self.dataset.currentIndexChanged, self.model.currentIndexChanged, self.body.currentIndexChanged,
                       self.latent.valueChanged, self.hidden.textChanged, self.likelihood.currentIndexChanged,
                       self.params.changed, self.epochs.valueChanged, self.batch.valueChanged, self.lr.textChanged,
                       self.seed.valueChanged, self.device.currentIndexChanged, self.path.textChanged,
                       self.probe_set.currentIndexChanged,
                       self.image_size.valueChanged, self.rgb.toggled, self.root.textChanged):
            signal.connect(self.changed)
        from engine.defaults import default_run
        self.set_configs(*default_run())   # the newcomer's first run: measured to organise its latent space

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("Data")
        form = QFormLayout(box)
        self.dataset = named(QComboBox(), "datasetCombo", "Dataset")
        for key in SOURCES:
            self.dataset.addItem(SOURCE_TITLES.get(key, key), key)
        form.addRow("Dataset", self.dataset)
        self.path = named(QLineEdit(), "dataPathEdit", "Data path")
        self.path.setPlaceholderText("image folder or .npz file")
        self.browse = QPushButton("Browse…")
        self.path_row = row_of(QHBoxLayout(), self.path, self.browse)
        form.addRow("Path", self.path_row)
        self.image_size = named(QSpinBox(), "imageSizeSpin", "Image size")
        self.image_size.setRange(4, 256)
        self.image_size.setValue(28)
        self.rgb = named(QCheckBox("Colour (RGB)"), "rgbCheck", "Colour")
        self.size_row = row_of(QHBoxLayout(), self.image_size, self.rgb)
        form.addRow("Resize to", self.size_row)
        self.root = named(QLineEdit(), "dataRootEdit", "Data folder")
        self.root.setPlaceholderText(str(default_data_root()))
        self.root.setToolTip("Where torchvision datasets live; files placed here by hand are used without a download.")
        form.addRow("Data folder", self.root)
        self.download = named(QPushButton("Download"), "downloadButton", "Download dataset")
        self.download_bar = QProgressBar()
        self.download_bar.setVisible(False)
        self.download_row = row_of(QHBoxLayout(), self.download, self.download_bar)
        form.addRow("", self.download_row)
        # a dataset loading in the background before a run starts (or opens): what and that it is busy
        self.load_label = named(QLabel(), "datasetLoadLabel", "Dataset loading")
        self.load_bar = named(QProgressBar(), "datasetLoadBar", "Dataset loading progress")
        self.load_bar.setRange(0, 0)
        self.load_bar.setMaximumHeight(12)
        self.load_bar.setTextVisible(False)
        self.load_row = row_of(QVBoxLayout(), self.load_label, self.load_bar)
        self.load_row.setVisible(False)
        form.addRow(self.load_row)
        self.data_form = form
        return box

    def _build_model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.model = named(QComboBox(), "modelCombo", "Model variant")
        for key, spec in VARIANTS.items():
            self.model.addItem(spec.title, key)
            self.model.setItemData(self.model.count() - 1, f"{spec.summary}\n{spec.formula}", Qt.ItemDataRole.ToolTipRole)
        form.addRow("Variant", self.model)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("variantSummary")
        form.addRow(self.summary)
        self.formula = QLabel()
        self.formula.setWordWrap(True)
        self.formula.setTextFormat(Qt.TextFormat.RichText)
        self.formula.setObjectName("variantFormula")
        form.addRow(self.formula)
        self.body = named(QComboBox(), "bodyCombo", "Body network")
        for key in BODIES:
            self.body.addItem(BODY_TITLES[key], key)
        self.body.setCurrentIndex(self.body.findData("mlp"))  # ~15× faster than conv on a laptop CPU
        form.addRow("Body", self.body)
        self.latent = named(QSpinBox(), "latentDimSpin", "Latent size")
        self.latent.setRange(0, SPIN_LIMIT)
        self.latent.setValue(2)
        form.addRow("Latent size", self.latent)
        self.hidden = named(QLineEdit("512, 256"), "hiddenEdit", "Hidden widths")
        self.hidden.setToolTip("Hidden layer widths of the encoder (the decoder mirrors them), separated by commas. "
                               "Empty: no hidden layer.")
        self.hidden.setPlaceholderText("none: no hidden layer")
        form.addRow("Hidden widths", self.hidden)
        self.likelihood = named(QComboBox(), "likelihoodCombo", "Likelihood")
        for key in LIKELIHOODS:
            self.likelihood.addItem(LIKELIHOOD_TITLES[key], key)
        form.addRow("Likelihood", self.likelihood)
        self.model_form = form
        self.params = ParamsForm(form, self.likelihood, self)
        return box

    def _build_train_box(self) -> QGroupBox:
        box = QGroupBox("Training")
        form = QFormLayout(box)
        self.epochs = named(QSpinBox(), "epochsSpin", "Epochs")
        self.epochs.setRange(0, SPIN_LIMIT)
        self.epochs.setValue(30)
        self.epochs.setToolTip("Epochs to train a new run (Resume asks how many more).")
        form.addRow("Epochs", self.epochs)
        self.batch = named(QSpinBox(), "batchSizeSpin", "Batch size")
        self.batch.setRange(0, SPIN_LIMIT)
        self.batch.setValue(128)
        form.addRow("Batch size", self.batch)
        self.lr = named(QLineEdit("1e-3"), "learningRateEdit", "Learning rate")
        form.addRow("Learning rate", self.lr)
        self.seed = named(QSpinBox(), "seedSpin", "Seed")
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Seed", self.seed)
        self.device = named(QComboBox(), "deviceCombo", "Device")
        for key in available_devices():
            self.device.addItem({"auto": "Automatic", "cpu": "CPU", "cuda": "CUDA (GPU)"}[key], key)
        form.addRow("Device", self.device)
        self.probe_set = named(QComboBox(), "probeSetCombo", "Map points")   # the images the live map shows
        for key in PROBE_SETS:
            self.probe_set.addItem(PROBE_SET_TITLES[key], key)
        self.probe_set.setToolTip("The images whose codes the map shows while the run trains: 5,000 of the validation "
                                  "(= test) images, or up to 70,000 of the training or all images")
        form.addRow("Map points", self.probe_set)
        self.train_form = form
        return box

    # -- reading the form ------------------------------------------------------------------
    def _hidden_widths(self) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in self.hidden.text().replace(" ", "").split(",") if v)
        except ValueError:
            raise UserError("Hidden widths must be whole numbers separated by commas, e.g. 512, 256.") from None

    def _learning_rate(self) -> float:
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise UserError(f"The learning rate must be a number such as 1e-3, not {self.lr.text()!r}.") from None
        if not math.isfinite(lr):
            raise UserError(f"The learning rate must be a finite number such as 1e-3, not {self.lr.text()!r}.")
        return lr

    def _data_config(self, **values) -> DataConfig:
        return DataConfig(source=self.dataset.currentData(), **values)

    def configs(self) -> tuple[DataConfig, ModelConfig, TrainConfig]:
        """The form's values as validated configs; UserError with the (first) reason otherwise."""
        data = self._data_config(root=self.root.text().strip() or None, path=self.path.text().strip() or None,
                                 image_size=self.image_size.value(), grayscale=not self.rgb.isChecked())
        hidden, lr = self._hidden_widths(), self._learning_rate()
        model = ModelConfig(variant=self.model.currentData(), latent_dim=self.latent.value(), body=self.body.currentData(),
                            hidden=hidden, likelihood=self.likelihood.currentData(), params=self.params.values())
        train = TrainConfig(epochs=self.epochs.value(), batch_size=self.batch.value(), lr=lr, seed=self.seed.value(),
                            device=self.device.currentData(), **probe_settings(self.probe_set.currentData()))
        for cfg in (data, model, train):
            cfg.validate()
        return data, model, train

    def refusals(self) -> dict[QWidget | None, str]:
        """Every refused field, editor -> the reason in one sentence.  Each field is checked alone
        (its value, every other setting at a valid default); a refusal of the settings together
        that no single field explains is keyed ``None``."""
        source_path = "." if self.dataset.currentData() in ("folder", "npz") else None
        variant = self.model.currentData()
        checks = {
            self.path: lambda: self._data_config(path=self.path.text().strip() or None).validate(),
            self.image_size: lambda: self._data_config(path=source_path, image_size=self.image_size.value()).validate(),
            self.root: lambda: self._data_config(path=source_path, root=self.root.text().strip() or None).validate(),
            self.latent: lambda: ModelConfig(variant=variant, latent_dim=self.latent.value()).validate(),
            self.hidden: lambda: ModelConfig(variant=variant, hidden=self._hidden_widths()).validate(),
            self.body: lambda: ModelConfig(variant=variant, body=self.body.currentData()).validate(),
            self.likelihood: lambda: ModelConfig(variant=variant, likelihood=self.likelihood.currentData()).validate(),
            self.epochs: lambda: TrainConfig(epochs=self.epochs.value()).validate(),
            self.batch: lambda: TrainConfig(batch_size=self.batch.value()).validate(),
            self.lr: lambda: TrainConfig(lr=self._learning_rate()).validate(),
            self.seed: lambda: TrainConfig(seed=self.seed.value()).validate(),
            self.device: lambda: TrainConfig(device=self.device.currentData()).validate(),
        }
        defaults, values = self.params.params_class(), self.params.values()
        for name in self.params.visible_names():
            checks[self.params.editors[name]] = lambda n=name: _check_param(defaults, n, getattr(values, n))
        refused: dict[QWidget | None, str] = {}
        for widget, check in checks.items():
            try:
                check()
            except UserError as exc:
                refused[widget] = str(exc)
        if not refused:
            try:
                self.configs()
            except UserError as exc:
                refused[None] = str(exc)
        return refused

    def show_refusals(self, refused: dict[QWidget | None, str]) -> None:
        """Outline each refused editor (and only those) with its reason as accessible description."""
        for widget in set(self._refused) | set(refused):
            if widget is None:
                continue
            reason = refused.get(widget)
            if widget.property("refused") == (reason is not None) and self._refused.get(widget) == reason:
                continue
            widget.setProperty("refused", reason is not None)
            widget.setAccessibleDescription(reason or "")
            widget.style().unpolish(widget)
            widget.style().polish(widget)
            widget.update()
        self._refused = {w: r for w, r in refused.items() if w is not None}

    def refused_widgets(self) -> list[QWidget]:
        """The editors outlined as refused now."""
        return list(self._refused)

    def set_configs(self, data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
        """Put the configs' values in the editors (``changed`` fires once per edited field)."""
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
        self.probe_set.setCurrentIndex(max(0, self.probe_set.findData(train.probe_set)))

    def show_variant_and_source(self) -> None:
        """The variant's summary, formula and parameters; the rows the dataset and variant use."""
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

    def set_editable(self, editable: bool) -> None:
        for widget in (self.dataset, self.path, self.browse, self.image_size, self.rgb, self.root,
                       self.model, self.body, self.latent, self.hidden, self.likelihood, self.batch, self.lr,
                       self.seed, self.device, self.epochs, self.probe_set):
            widget.setEnabled(editable)
        self.params.set_enabled(editable)


def _check_param(defaults, name: str, value) -> None:
    try:
        check_params(dataclasses.replace(defaults, **{name: value}))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def readable_when_disabled(widget: QWidget) -> None:
    """Read-only settings stay legible: disabled editors' text is a little lighter than normal, not faint."""
    palette = widget.palette()
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        normal = palette.color(QPalette.ColorGroup.Active, role)
        base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor.fromRgbF(
            *(n + (b - n) * 0.3 for n, b in zip(normal.getRgbF()[:3], base.getRgbF()[:3]))))
    widget.setPalette(palette)


def row_of(layout, *widgets: QWidget) -> QWidget:
    """The widgets side by side (or stacked) in ``layout``, without margins, as one widget for a form row."""
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    host = QWidget()
    host.setLayout(layout)
    return host


def shrinkable(combo: QComboBox) -> None:
    """A combo box that can be narrower than its longest item (which its popup still shows whole)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
