"""Training → Compare checked runs (Ctrl+K): the comparison window of the runs list's checked runs,
brought up again while they stay the same, following them while it shows.  ``window.comparison``."""

from __future__ import annotations

from PySide6.QtCore import QObject

from engine.errors import UserError


class Comparison(QObject):
    """Opens, follows and closes one main window's comparison of 2 to 6 runs."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.view = None   # the CompareView on show, if any

    def runs_to_compare(self) -> list:
        """The checked runs of the runs list (its selected rows where it has no check boxes)."""
        panel = self.window.runs_panel
        checked = getattr(panel, "checked_runs", None)
        return list(checked()) if checked is not None else panel.selected_states()

    def open(self):
        """Open (or bring up) the comparison of the checked runs; one sentence when they are not 2 to 6."""
        from explorer.compare.view import CompareView
        w, states = self.window, self.runs_to_compare()
        if self.view is not None and self.view.states == states:
            self.view.show()
            self.view.raise_()
            return self.view
        try:
            view = CompareView(w.session, states, worker=w.latent_view.worker, parent=w)
        except UserError as exc:
            w.show_error(str(exc), "Nothing to compare")
            return None
        self.close()
        self.view = view
        view.show()
        w.state_label.setText(f"Comparing {len(states)} runs.")
        return view

    def follow_checked_runs(self, *_) -> None:
        """An open comparison follows the checked runs (while they are 2 to 6)."""
        if self.view is not None and self.view.isVisible():
            from explorer.compare.view import MAX_RUNS, MIN_RUNS
            if MIN_RUNS <= len(self.runs_to_compare()) <= MAX_RUNS:
                self.open()

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view.deleteLater()
            self.view = None
