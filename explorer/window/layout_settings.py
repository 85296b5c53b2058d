"""What the main window remembers in its QSettings: its geometry and its docks' places and sizes
(``saveState``/``restoreState``), the map's projection and the last run's settings; and the sizes
it starts with where nothing is remembered (1500×920 where the screen has room, the loss dock 30 %
of the height).  ``window.layout_settings``; without settings (tests, tools) it remembers nothing.

The window's size: one the person chose (resized away from the default) comes back, made smaller
only where this screen is smaller; one left at the default comes back at this screen's default
(``restored_size``); a window that would reach past the screen moves onto it.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt, QTimer
from PySide6.QtWidgets import QApplication, QTabBar

from engine.errors import UserError

#: the loss dock's default share of the window's height, and its least height in pixels
LOSS_SHARE, LOSS_MIN_PX = 0.3, 230
#: the window's size where nothing is remembered and the screen has room, and what a window
#: manager's frame and title bar take from the screen's width and height
DEFAULT_SIZE, FRAME_PX, TITLE_BAR_PX = QSize(1500, 920), 8, 40
#: the runs list shows at least this many rows; the Insights tab takes the rest of the right-hand column
RUNS_ROWS = 5
#: the decoder's share of the right-hand column's height while the Decoder tab shows (its sliders and image)
DECODER_SHARE = 0.6


def default_runs_dir() -> Path:
    import platformdirs
    return platformdirs.user_data_path("latent-explorer") / "runs"


def default_size(room: QRect | None) -> QSize:
    """1500×920 where the screen has room, else the screen less a window manager's frame and title bar."""
    if room is None:
        return QSize(DEFAULT_SIZE)
    return DEFAULT_SIZE.boundedTo(QSize(room.width() - FRAME_PX, room.height() - TITLE_BAR_PX))


def default_queue_path(settings: QSettings | None) -> Path | None:
    """The training queue's JSON lives in the settings folder (none without settings: tests, tools)."""
    if settings is None:
        return None
    from explorer.resources import QUEUE_FILE  # not the queue module: it imports torch, the window comes first
    if settings.format() == QSettings.Format.IniFormat and settings.fileName():
        return Path(settings.fileName()).parent / QUEUE_FILE
    import platformdirs
    return platformdirs.user_config_path("latent-explorer") / QUEUE_FILE


class LayoutSettings:
    """Saves and restores one main window's layout and choices."""

    def __init__(self, window, settings: QSettings | None):
        self.window, self.settings = window, settings
        self.right_tab = None   # the dock on show in the right-hand column's tabs (Decoder or Insights), once built

    def shown_right_tab(self):
        """The Decoder or the Insights dock, whichever tab is current (read from the main window's
        own tab bar of that pair, which knows it before the window shows), or None when they are not tabbed."""
        w = self.window
        for bar in w.findChildren(QTabBar):
            titles = [bar.tabText(i) for i in range(bar.count())]
            # the layout keeps tab bars it no longer uses, hidden: only the one in use tells
            if bar.parent() is w and not bar.isHidden() and w.insights_dock.windowTitle() in titles \
                    and bar.currentIndex() >= 0:
                return w.insights_dock if titles[bar.currentIndex()] == w.insights_dock.windowTitle() \
                    else w.docks["decoder"]
        return None

    def right_tab_changed(self) -> None:
        """The person chose the Decoder or the Insights tab: the column is shared anew for it
        (the Insights take all but the runs list's rows).  The first call only notes the tab, so a
        restored layout keeps its sizes."""
        shown = self.shown_right_tab()
        if shown is None or shown is self.right_tab:
            return
        if self.right_tab is not None:
            self.fit_right_column()
        self.right_tab = shown

    def screen_room(self) -> QRect | None:
        """The screen's room for windows (its available geometry), None without a screen."""
        w = self.window
        screen = w.screen() or QApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def fit_to_screen(self) -> None:
        """A size that fits the screen: 1500×920 where there is room, less on a laptop's screen."""
        self.window.resize(default_size(self.screen_room()))

    def restored_size(self) -> QSize:
        """The size the window comes back at.  A size the person chose (a resize away from the
        default) is kept, made smaller only where it exceeds this screen; a window left at the
        default size comes back at this screen's default, so a layout saved on a 1280×800 laptop
        opens at 1500×920 on a 1600×1000 screen instead of at its old size."""
        room = self.screen_room()
        saved = self.settings.value("window_size") if self.settings is not None else None
        chosen = self.settings is not None and str(self.settings.value("size_chosen", "false")).lower() == "true"
        if not isinstance(saved, QSize) or not saved.isValid() or not chosen:
            return default_size(room)
        if room is None:
            return saved
        return saved.boundedTo(QSize(room.width() - FRAME_PX, room.height() - TITLE_BAR_PX))

    def default_dock_sizes(self) -> None:
        """The docks' sizes on a first launch: the training panel 330 px wide and the right-hand
        column 440; the loss dock (under the map only: the right-hand column runs from the menus to
        the status bar) 30 % of the height; in the right-hand column the runs list ``RUNS_ROWS``
        rows, or 40 % while the Decoder tab shows."""
        w = self.window
        docks, height = w.docks, w.height()
        # the right-hand column as wide as the insight views need (their control rows: ~380 px)
        w.resizeDocks([docks["training"], docks["decoder"]], [330, 440], Qt.Orientation.Horizontal)
        loss = max(LOSS_MIN_PX, round(LOSS_SHARE * height))
        w.resizeDocks([docks["loss"]], [loss], Qt.Orientation.Vertical)
        self.fit_right_column()

    def runs_dock_height(self) -> int:
        """The runs dock's height that shows ``RUNS_ROWS`` whole rows of the runs list: the rows
        plus what the dock holds besides them (its title, the Runs/Queue tabs, the header, the buttons)."""
        w = self.window
        panel = getattr(w, "runs_panel", None)
        if panel is None:
            return 260
        table = panel.table
        row = table.rowHeight(0) if table.model().rowCount() else table.verticalHeader().defaultSectionSize()
        rows = row * RUNS_ROWS
        besides = w.docks["runs"].height() - table.viewport().height()
        if not table.isVisible() or table.viewport().height() <= 0:
            besides = 140   # measured at 1280×800 (Fusion, 9 pt): title 22, tabs 27, header 24, buttons 40, margins
        return rows + besides + 2

    def fit_right_column(self) -> None:
        """The right-hand column between the Decoder/Insights dock and the runs: the Insights tab takes
        all but the runs list's ``RUNS_ROWS`` rows; the decoder ``DECODER_SHARE`` (its sliders need no more)."""
        w = self.window
        docks = w.docks
        top = self.shown_right_tab() or docks["decoder"]
        column = top.height() + docks["runs"].height()
        if column <= 0:
            return
        runs = self.runs_dock_height()
        if top is docks["decoder"]:
            runs = max(runs, round(column * (1 - DECODER_SHARE)))
        w.resizeDocks([top, docks["runs"]], [max(1, column - runs), runs], Qt.Orientation.Vertical)

    def has_saved_layout(self) -> bool:
        return self.settings is not None and isinstance(self.settings.value("window_state"), QByteArray)

    def restore_layout(self) -> None:
        """The window's geometry and its docks' places and sizes, as the person left them."""
        if self.settings is None:
            return
        w = self.window
        geometry = self.settings.value("geometry")
        # once: before the window shows (again on a shown window, the window manager's answer to the
        # restored size came after the docks' sizes and squeezed the map to a strip)
        if isinstance(geometry, QByteArray) and not w.isVisible():
            w.restoreGeometry(geometry)   # the place, and maximized or not
            if not (w.isMaximized() or w.isFullScreen()):
                w.resize(self.restored_size())
                room = self.screen_room()
                if room is not None and not room.contains(w.frameGeometry()):   # saved on a larger or another screen
                    w.move(room.topLeft())
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.window.restoreState(state)

    def restore_dock_heights(self) -> None:
        """The loss plot's and the runs list's heights as saved: restoreState alone gave the loss dock
        540 of 760 px once the right-hand column reaches the status bar (the views built behind the
        shown window), squeezing the map to a strip."""
        w = self.window
        for key in ("loss", "runs"):
            height = self.settings.value(f"{key}_height")
            try:
                height = int(height)
            except (TypeError, ValueError):
                continue
            if height > 0 and w.docks[key].isVisible() or not w.isVisible():
                w.resizeDocks([w.docks[key]], [height], Qt.Orientation.Vertical)

    def restore(self) -> None:
        """Once the views are built: the layout again (the docks hold their views now), the map's
        projection and the last run's settings in the training panel."""
        if self.settings is None:
            return
        from engine.config import DataConfig, ModelConfig, TrainConfig
        w = self.window
        self.restore_layout()
        self.restore_dock_heights()
        QTimer.singleShot(0, self.restore_dock_heights)   # again once the docks' new views have settled
        projection = self.settings.value("projection")
        if isinstance(projection, str) and projection in w.latent_view.projection_names():
            w.latent_view.set_projection(projection)
        raw = self.settings.value("last_configs")
        if raw:
            try:
                d = json.loads(raw)
                w.training_panel.set_configs(DataConfig.from_dict(d["data"]), ModelConfig.from_dict(d["model"]),
                                             TrainConfig.from_dict(d["train"]))
            except (UserError, ValueError, KeyError, TypeError, RecursionError):
                pass  # settings from another version (or damaged: nested too deeply): keep the defaults

    def save_last_configs(self, configs) -> None:
        if self.settings is not None:
            data, model, train = configs
            self.settings.setValue("last_configs", json.dumps({"data": data.to_dict(), "model": model.to_dict(),
                                                               "train": train.to_dict()}))

    def save(self) -> None:
        if self.settings is None:
            return
        w = self.window
        self.settings.setValue("geometry", w.saveGeometry())
        if not (w.isMaximized() or w.isFullScreen()):
            self.settings.setValue("window_size", w.size())
            self.settings.setValue("size_chosen", w.size() != default_size(self.screen_room()))
        self.settings.setValue("window_state", w.saveState())
        for key in ("loss", "runs"):
            self.settings.setValue(f"{key}_height", w.docks[key].height())
        if w.views_built:
            self.settings.setValue("projection", w.latent_view.projection)
            try:
                self.save_last_configs(w.training_panel.configs())
            except UserError:
                pass
        self.settings.sync()
