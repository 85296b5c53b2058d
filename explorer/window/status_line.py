"""The main window's status bar and title, following the active run: what it does ("Training: VAE
on MNIST"), its rate (samples per second, smoothed) and ETA while it trains, the device, the
window's title naming the run, and the run's finding (``engine.diagnostics``: "posterior collapse:
the decoder ignores z …" in a warning colour, what helps in its tooltip; hidden while healthy),
from the validation KL of its history after each epoch, or from its metrics.json when one is read
and it does not train; the Dimensions tab's finding (active units of the shown codes) when those say
nothing.  ``finding_changed`` carries it to the training panel.  ``window.status_line``; its labels are also the window's
``state_label``, ``speed_label``, ``eta_label`` and ``device_label``.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from explorer.widgets import ElidedLabel

APP_TITLE = "Latent Explorer"
STATUS_WORDS = {"running": "Training", "paused": "Paused", "completed": "Finished", "stopped": "Stopped",
                "failed": "Failed", "new": "Ready"}


FINDING_STYLE = "QLabel { color: #b03020; font-weight: bold; }"


def run_finding(state):
    """The active run's finding (engine.diagnostics.Diagnosis) or None: from the latest validation KL
    of its history while it trains or has no metrics, else from the metrics.json it has read."""
    from engine import diagnostics
    if state is None:
        return None
    if state.metrics and state.status not in ("running", "paused"):
        found = diagnostics.from_metrics(state.metrics)
        return found[0] if found else None
    return diagnostics.from_history(state.history.val, state.model_cfg.latent_dim,
                                    training=state.status in ("running", "paused"))


READY_MESSAGE = "Ready: choose a preset, or a dataset and a model, then press Start (F5)."

class StatusLine(QObject):
    """The status bar's labels and the title, bound to the session's active run."""

    finding_changed = Signal(object)   # engine.diagnostics.Diagnosis of the active run, or None when healthy

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.state = None   # the run followed
        self.finding = None
        self.view_finding = None   # the Dimensions tab's, for the run it shows
        self.val_epochs_seen = 0   # validation epochs of the followed run's history the finding has seen
        self.finding_label = QLabel("")
        self.finding_label.setObjectName("findingLabel")
        self.finding_label.setStyleSheet(FINDING_STYLE)
        self.finding_label.setVisible(False)
        self.device_label = QLabel("")
        self.state_label = ElidedLabel("Starting…")
        self.state_label.setObjectName("statusMessage")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("etaLabel")
        bar = window.statusBar()
        bar.addWidget(self.state_label, 1)
        bar.addPermanentWidget(self.finding_label)
        for label in (self.speed_label, self.eta_label, self.device_label):
            bar.addPermanentWidget(label)

    def follow(self, state) -> None:
        from explorer.session import rebind
        changed = state is not self.state
        self.state = rebind(self.state, state, {"refreshed": self.show_progress, "status_changed": self.show_status,
                                                "failed": self._on_failed, "metrics_changed": self.show_finding})
        if changed:
            self.view_finding = None
        self.val_epochs_seen = len(state.history.val.get("kl") or ()) if state is not None else 0
        self.show_finding()
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
        self.show_finding()   # a run that stops with metrics read: theirs
        words = STATUS_WORDS.get(status, status)
        self.state_label.setText(f"{words}: {s.variant_title} on {s.dataset_name}" + (f" — {s.reason}" if s.reason else ""))
        if status != "running":   # an idle status bar keeps no stale rate
            self.speed_label.setText("")
            self.eta_label.setText("")

    def set_view_finding(self, finding) -> None:
        """The Dimensions tab's finding for the shown run (``DimensionsView.diagnosed``)."""
        self.view_finding = finding
        self.show_finding()

    def show_finding(self) -> None:
        """The run's finding in the status bar (its help as the tooltip); nothing while healthy."""
        finding = run_finding(self.state) or self.view_finding
        if finding == self.finding:
            return
        self.finding = finding
        self.finding_label.setText(f"⚠ {finding.message}" if finding is not None else "")
        self.finding_label.setToolTip(finding.help if finding is not None else "")
        self.finding_label.setVisible(finding is not None)
        self.finding_changed.emit(finding)

    def show_progress(self) -> None:
        from explorer.training.panel import format_eta
        s = self.state
        if s is None:
            return
        if len(s.history.val.get("kl") or ()) != self.val_epochs_seen:
            self.val_epochs_seen = len(s.history.val.get("kl") or ())
            self.show_finding()   # after each validation epoch
        if s.status != "running":
            return
        self.update_title()
        self.speed_label.setText(f"{s.samples_per_sec:,.0f} samples/s" if s.samples_per_sec else "")
        self.eta_label.setText(f"ETA {format_eta(s.eta_s)}" if math.isfinite(s.eta_s) else "")

    def forget_missing_data_error(self) -> None:
        """The status line's "MNIST is not in <folder>…" is stale once the data settings change (the
        panel's own note says whether the new folder has the files)."""
        shown, whole = self.state_label.full_text().rstrip("…"), self.state_label.toolTip()
        if " is not in " in whole and whole.startswith(shown):   # the error is still the status line's
            self.state_label.setText(READY_MESSAGE)
            self.state_label.setToolTip("")
