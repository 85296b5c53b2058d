"""The status bar's pieces and the words of the About box: a label that never widens the window,
the short form of a long message, the device the runs train on, the app's version."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


def device_description() -> str:
    import torch

    from engine.training import TRAIN_THREADS, resolve_device
    device = resolve_device("auto")
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    threads = TRAIN_THREADS   # the GUI thread itself keeps one (explorer/app.py)
    return f"CPU ({threads} training thread{'s' if threads != 1 else ''})"


def app_version() -> str:
    try:
        from importlib.metadata import version
        return version("latent-explorer")
    except Exception:  # noqa: BLE001 — not installed (run from a clone): the package's own number
        from engine import __version__
        return __version__


def short_form(message: str, limit: int = 90) -> str:
    """The first clause of a message, for the status bar (the whole message is in a dialog)."""
    first = re.split(r"(?<=[.;:])\s", message.strip(), maxsplit=1)[0].rstrip(":;")
    return first if len(first) <= limit else first[:limit - 1].rsplit(" ", 1)[0] + "…"


class ElidedLabel(QLabel):
    """A one-line label that never widens the window: too long a text is elided, the whole in its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 — Qt's name
        self._full = text
        self.setToolTip(text if text else "")
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width() - 4, 20)
        super().setText(QFontMetrics(self.font()).elidedText(self._full, Qt.TextElideMode.ElideRight, width))
