"""The training panel's "Change while training" box: the training run's live-changeable values
(its variant's float parameters such as β, and the learning rate; ``engine.live_changes``) in spin
boxes, Apply (the run takes them between two steps and records them in its history), and Step
(F7): with the run paused, train to the next probe update (a new map), then pause again.

A value the engine refuses (outside its declared range) is said in one sentence in the box; the
run goes on with what it had."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.errors import UserError
from engine.live_changes import LEARNING_RATE, current_value, live_parameters
from explorer.session import RunState
from explorer.training.form import named
from explorer.training.params_form import CompactSpinBox


class LiveChangesBox(QGroupBox):
    """Spin boxes for the training run's live values, Apply and Step; hidden while nothing trains."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Change while training", parent)
        self.setObjectName("liveChangesBox")
        self.state: RunState | None = None
        self.editors: dict[str, CompactSpinBox] = {}
        self._variant: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.fields = QFormLayout()
        layout.addLayout(self.fields)
        buttons = QHBoxLayout()
        self.apply = named(QPushButton("Apply"), "applyLiveChangesButton", "Apply the changed values")
        self.apply.setToolTip("The run takes these values between two steps (a paused one at its next step); "
                                 "the loss plot marks where.")
        self.step = named(QPushButton("Step"), "stepToProbeButton", "Step to the next probe update")
        self.step.setToolTip("While paused: train until the map's next update, then pause again (F7).")
        buttons.addWidget(self.apply)
        buttons.addWidget(self.step)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.message = QLabel()
        self.message.setObjectName("liveChangesMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #d32f2f;")
        self.message.setVisible(False)
        layout.addWidget(self.message)
        self.apply.clicked.connect(self.apply_changes)
        self.step.clicked.connect(self.step_to_next_probe)
        self.setVisible(False)

    def show_run(self, state: RunState | None) -> None:
        """Follow the run that trains now (None: hide); its values fill the spin boxes."""
        training = state is not None and state.status in ("running", "paused")
        if state is not self.state or not training:
            self.message.setVisible(False)
            self._variant = None   # the next run that trains fills the boxes afresh
        self.state = state
        self.setVisible(training)
        if not training:
            return
        if state.model_cfg.variant != self._variant:
            self._build_editors(state)   # (what the person typed stays while the same run trains)
        self.step.setEnabled(state.status == "paused")

    def _build_editors(self, state: RunState) -> None:
        while self.fields.rowCount():
            self.fields.removeRow(0)
        self.editors = {}
        self._variant = state.model_cfg.variant
        for p in live_parameters(state.model_cfg):
            editor = named(CompactSpinBox(), f"live_{p.name}", f"New {p.label}")
            editor.setRange(p.minimum if p.minimum is not None else -1e9, p.maximum if p.maximum is not None else 1e9)
            if p.step:
                editor.setSingleStep(p.step)
            else:
                editor.setStepType(CompactSpinBox.StepType.AdaptiveDecimalStepType)
            editor.setValue(current_value(state.model_cfg, state.train_cfg, p.name))
            editor.setToolTip(p.help)
            self.editors[p.name] = editor
            self.fields.addRow("Learning rate" if p.name == LEARNING_RATE else p.label, editor)

    def apply_changes(self) -> None:
        """Send the values that differ from the run's to it; a refused one is said here."""
        state = self.state
        if state is None:
            return
        values = {name: editor.value() for name, editor in self.editors.items()
                  if editor.value() != current_value(state.model_cfg, state.train_cfg, name)}
        self.message.setVisible(False)
        if not values:
            return
        try:
            state.change(**values)
        except UserError as exc:
            self.message.setText(str(exc))
            self.message.setVisible(True)

    def step_to_next_probe(self) -> None:
        if self.state is not None:
            self.state.step_to_next_probe()
