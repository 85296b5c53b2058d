"""The main window's status bar and title, following the active run: what it does ("Training: VAE
on MNIST"), its rate (samples per second, smoothed) and ETA while it trains, the device, and the
window's title naming the run.  ``window.status_line``; its labels are also the window's
``state_label``, ``speed_label``, ``eta_label`` and ``device_label``.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from explorer.widgets import ElidedLabel

APP_TITLE = "Latent Explorer"
STATUS_WORDS = {"running": "Training", "paused": "Paused", "completed": "Finished", "stopped": "Stopped",
                "failed": "Failed", "new": "Ready"}


class StatusLine(QObject):
    """The status bar's labels and the title, bound to the session's active run."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.state = None   # the run followed
        self.device_label = QLabel("")
        self.state_label = ElidedLabel("Starting…")
        self.state_label.setObjectName("statusMessage")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("etaLabel")
        bar = window.statusBar()
        bar.addWidget(self.state_label, 1)
        for label in (self.speed_label, self.eta_label, self.device_label):
            bar.addPermanentWidget(label)

    def follow(self, state) -> None:
        from explorer.session import rebind
        self.state = rebind(self.state, state, {"refreshed": self.show_progress, "status_changed": self.show_status,
                                                "failed": self._on_failed})
        self.update_title()
        if state is not None:
            self.show_status(state.status)
        else:
            self.speed_label.setText("")
            self.eta_label.setText("")
            self.state_label.setText("New run: choose the settings, then press Start (F5).")

    def update_title(self) -> None:
        """The window's title names the active run (its folder's name once training has made it)."""
        title = f"{self.state.name} — {APP_TITLE}" if self.state is not None else APP_TITLE
        if title != self.window.windowTitle():
            self.window.setWindowTitle(title)

    def _on_failed(self, message: str) -> None:
        self.window.show_error(message, "Training stopped")

    def show_status(self, status: str) -> None:
        s = self.state
        if s is None:
            return
        self.update_title()
        words = STATUS_WORDS.get(status, status)
        self.state_label.setText(f"{words}: {s.variant_title} on {s.dataset_name}" + (f" — {s.reason}" if s.reason else ""))
        if status != "running":   # an idle status bar keeps no stale rate
            self.speed_label.setText("")
            self.eta_label.setText("")

    def show_progress(self) -> None:
        from explorer.training.panel import format_eta
        s = self.state
        if s is None or s.status != "running":
            return
        self.update_title()
        self.speed_label.setText(f"{s.samples_per_sec:,.0f} samples/s" if s.samples_per_sec else "")
        self.eta_label.setText(f"ETA {format_eta(s.eta_s)}" if math.isfinite(s.eta_s) else "")
