"""What the main window remembers in its QSettings: its geometry and its docks' places and sizes
(``saveState``/``restoreState``), the map's projection and the last run's settings; and the sizes
it starts with where nothing is remembered (1500×920 where the screen has room, the loss dock 30 %
of the height).  ``window.layout_settings``; without settings (tests, tools) it remembers nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QApplication

from engine.errors import UserError

#: the loss dock's default share of the window's height, and its least height in pixels
LOSS_SHARE, LOSS_MIN_PX = 0.3, 230


def default_runs_dir() -> Path:
    import platformdirs
    return platformdirs.user_data_path("latent-explorer") / "runs"


def default_queue_path(settings: QSettings | None) -> Path | None:
    """The training queue's JSON lives in the settings folder (none without settings: tests, tools)."""
    if settings is None:
        return None
    from explorer.training.queue import QUEUE_FILE
    if settings.format() == QSettings.Format.IniFormat and settings.fileName():
        return Path(settings.fileName()).parent / QUEUE_FILE
    import platformdirs
    return platformdirs.user_config_path("latent-explorer") / QUEUE_FILE


class LayoutSettings:
    """Saves and restores one main window's layout and choices."""

    def __init__(self, window, settings: QSettings | None):
        self.window, self.settings = window, settings

    def fit_to_screen(self) -> None:
        """A size that fits the screen: 1500×920 where there is room, less on a laptop's screen."""
        w = self.window
        screen = w.screen() or QApplication.primaryScreen()
        if screen is None:
            w.resize(1500, 920)
            return
        room = screen.availableGeometry()
        # leave room for the window manager's frame and title bar
        w.resize(min(1500, room.width() - 8), min(920, room.height() - 40))

    def default_dock_sizes(self) -> None:
        w = self.window
        docks, height = w.docks, w.height()
        # the right-hand column as wide as the insight views need (their control rows: ~380 px)
        w.resizeDocks([docks["training"], docks["decoder"]], [330, 440], Qt.Orientation.Horizontal)
        loss = max(LOSS_MIN_PX, round(LOSS_SHARE * height))
        w.resizeDocks([docks["loss"]], [loss], Qt.Orientation.Vertical)
        rest = max(300, height - loss - 60)
        w.resizeDocks([docks["decoder"], docks["runs"]], [round(rest * 0.62), round(rest * 0.38)], Qt.Orientation.Vertical)

    def has_saved_layout(self) -> bool:
        return self.settings is not None and isinstance(self.settings.value("window_state"), QByteArray)

    def restore_layout(self) -> None:
        """The window's geometry and its docks' places and sizes, as the person left them."""
        if self.settings is None:
            return
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.window.restoreGeometry(geometry)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.window.restoreState(state)

    def restore(self) -> None:
        """Once the views are built: the layout again (the docks hold their views now), the map's
        projection and the last run's settings in the training panel."""
        if self.settings is None:
            return
        from engine.config import DataConfig, ModelConfig, TrainConfig
        w = self.window
        self.restore_layout()
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
        self.settings.setValue("window_state", w.saveState())
        if w.views_built:
            self.settings.setValue("projection", w.latent_view.projection)
            try:
                self.save_last_configs(w.training_panel.configs())
            except UserError:
                pass
        self.settings.sync()
