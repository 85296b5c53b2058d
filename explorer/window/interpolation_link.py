"""The interpolation between the map and the Insights dock: the map's dashed line and its ends show
only while the Interpolation view is on show, and a click on the map then picks its next end."""

from __future__ import annotations

from PySide6.QtCore import QTimer


class InterpolationLink:
    def __init__(self, window):
        self.window = window
        tabs, dock = window.insight_tabs, window.insights_dock
        window.latent_view.set_interpolation(tabs.endpoints)
        # after the layout has settled: a dock raised from its tab has no visible region yet
        tabs.currentChanged.connect(lambda _: QTimer.singleShot(0, self.show_line))
        dock.visibilityChanged.connect(lambda _: QTimer.singleShot(0, self.show_line))
        window.latent_view.clicked.connect(self.map_clicked)
        self.show_line()

    def on_show(self) -> bool:
        w = self.window
        return w.insights_dock.isVisible() and not w.insights_dock.visibleRegion().isEmpty() \
            and w.insight_tabs.currentWidget() is w.insight_tabs.interpolation

    def show_line(self) -> None:
        """The interpolation's line and ends are on the map while its view is on show, not over
        every map (a freshly opened run showed two stray dots and a dashed line)."""
        line = self.window.latent_view.interpolation_line
        if line is not None:
            line.set_shown(self.on_show())

    def map_clicked(self, click) -> None:
        """A click on the map picks the interpolation's next end while the Interpolation tab shows."""
        code, index = click
        if self.on_show():
            which = self.window.insight_tabs.interpolation.endpoints.pick(code, index)
            self.window.state_label.setText(f"Interpolation: {which.upper()} set"
                                            + (f" to image {index}." if index is not None else " to the clicked code."))
