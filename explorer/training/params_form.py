"""Editors for a variant's own parameters, built from its dataclass fields' metadata
(``engine.models.base.param``): the editor follows the default's type (a check box for a bool,
a whole-number box for an int, a number box for a float, a combo box for choices, which shows
the choices' ``labels`` and stores their keys), and a field whose ``when`` condition does not
hold is hidden.  The rows go into the host form itself, so they line up with its other rows."""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

INT_LIMIT = 2**31 - 1


def compact_number(value: float) -> str:
    """A number as a person writes it: 0, 4, 0.05, 0.001, 1e-05 (never 0.0000)."""
    return f"{value:.6g}"


class CompactSpinBox(QDoubleSpinBox):
    """A QDoubleSpinBox that shows its value without trailing zeros and accepts 1e-4."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(10)   # what it stores; what it shows is compact_number's

    def textFromValue(self, value: float) -> str:
        return compact_number(value)

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        try:
            value = float(stripped)
        except ValueError:
            partial = stripped in ("", "-", "+", ".", "-.") or stripped.lower().endswith(("e", "e-", "e+"))
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, pos
        if not math.isfinite(value):
            return QValidator.State.Invalid, text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos


def _editor_for(f: dataclasses.Field) -> QWidget:
    meta, default = f.metadata, f.default
    if meta.get("choices"):
        editor = QComboBox()
        # narrower than its longest item ("Mixture of Gaussians on a circle"; the popup shows it
        # whole): the AAE's form was 368 px in a panel of 324 and clipped its summary and combos
        editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        editor.setMinimumContentsLength(10)
        labels = meta.get("labels") or {}
        for choice in meta["choices"]:
            editor.addItem(labels.get(choice, str(choice)), choice)
        editor.setCurrentIndex(max(0, editor.findData(default)))
    elif isinstance(default, bool):
        editor = QCheckBox()
        editor.setChecked(default)
    elif isinstance(default, int):
        editor = QSpinBox()
        editor.setRange(int(meta["min"]) if meta.get("min") is not None else -INT_LIMIT,
                        int(meta["max"]) if meta.get("max") is not None else INT_LIMIT)
        editor.setSingleStep(int(meta.get("step") or 1))
        editor.setValue(default)
    else:
        editor = CompactSpinBox()
        editor.setRange(meta["min"] if meta.get("min") is not None else -1e9,
                        meta["max"] if meta.get("max") is not None else 1e9)
        editor.setSingleStep(meta.get("step") or 0.1)
        editor.setValue(default)
    return editor


def editor_value(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    return editor.value()


def set_editor_value(editor: QWidget, value) -> None:
    if isinstance(editor, QComboBox):
        editor.setCurrentIndex(max(0, editor.findData(value)))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    else:
        editor.setValue(value)


def _changed_signal(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    if isinstance(editor, QCheckBox):
        return editor.toggled
    return editor.valueChanged


class ParamsForm(QObject):
    """The rows of a variant's parameters inside ``form``, placed after the row of ``after``."""

    changed = Signal()

    def __init__(self, form: QFormLayout, after: QWidget, parent: QObject | None = None):
        super().__init__(parent)
        self.form, self.after = form, after
        self.editors: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self.params_class = None

    def set_params_class(self, params_class) -> None:
        if params_class is self.params_class:
            return
        self.params_class = params_class
        for editor in self.editors.values():
            self.form.removeRow(editor)   # deletes the editor and its label
        self.editors, self.labels = {}, {}
        row = self.form.getWidgetPosition(self.after)[0] + 1
        for f in dataclasses.fields(params_class):
            editor = _editor_for(f)
            label = QLabel(f.metadata.get("label", f.name))
            help_text = f.metadata.get("help", "")
            editor.setToolTip(help_text)
            label.setToolTip(help_text)
            editor.setObjectName(f"param_{f.name}")
            editor.setAccessibleName(f.metadata.get("label", f.name))
            label.setBuddy(editor)
            self.form.insertRow(row, label, editor)
            row += 1
            self.editors[f.name], self.labels[f.name] = editor, label
            _changed_signal(editor).connect(self._on_changed)
        self._apply_when()

    def values(self):
        """The parameters as the editors hold them (an int field gets an int)."""
        kw = {}
        for f in dataclasses.fields(self.params_class):
            value = editor_value(self.editors[f.name])
            kw[f.name] = int(value) if isinstance(f.default, int) and not isinstance(f.default, bool) else value
        return self.params_class(**kw)

    def set_values(self, params) -> None:
        self.set_params_class(type(params))
        for name, editor in self.editors.items():
            editor.blockSignals(True)
            set_editor_value(editor, getattr(params, name))
            editor.blockSignals(False)
        self._apply_when()

    def visible_names(self) -> list[str]:
        """The parameters whose rows show (their ``when`` holds)."""
        return [name for name in self.editors if self._applies(name)]

    def set_enabled(self, enabled: bool) -> None:
        for editor in self.editors.values():
            editor.setEnabled(enabled)

    def _applies(self, name: str) -> bool:
        f = next(f for f in dataclasses.fields(self.params_class) if f.name == name)
        when = f.metadata.get("when") or {}
        return all(other not in self.editors or editor_value(self.editors[other]) in allowed
                   for other, allowed in when.items())

    def _apply_when(self) -> None:
        for name, editor in self.editors.items():
            self.form.setRowVisible(editor, self._applies(name))

    def _on_changed(self, *_) -> None:
        self._apply_when()
        self.changed.emit()
