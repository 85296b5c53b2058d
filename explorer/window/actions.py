"""The main window's menus, actions and shortcuts, kept apart from the window (as napari keeps its
actions apart from its viewer): ``WindowActions(window).build()`` makes the menu bar at once,
``fill()`` adds what comes from the views (the map's projections, the presets) once they exist,
and the F1 list (``shortcut_rows``) reads every action's shortcut.  The actions call the
window's slots; the window knows nothing of the menus but ``window.actions``.
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QToolButton

from explorer.window.status_bar import app_version

#: the mouse on the latent map (explorer/map/pointer.py) and the keys outside the menus, after the menus' shortcuts
MOUSE_ROWS = [
    ("Left drag on the map", "Move the decoder's handle: decode the point under it"),
    ("Shift+drag on the map", "Select the points inside a box"),
    ("Ctrl+Shift+drag on the map", "Select the points inside a free-hand lasso"),
    ("Right / middle drag on the map", "Pan the map"),
    ("Wheel on the map", "Zoom the map about the pointer"),
    ("Hover over a point", "Its image, label and index in a tooltip"),
    ("Tab / Shift+Tab", "Move between the panel, map, decoder, loss plot and runs"),
    ("Arrow keys in the runs list", "Show another run"),
]


def key_order(keys: str) -> tuple:
    """Sort key of a shortcut's text: fewer modifiers first, then the key, numbers by value
    (Ctrl+2 after Ctrl+1, F5 before F10)."""
    *modifiers, key = keys.split("+") if keys != "+" else [keys]
    return len(modifiers), modifiers, [(0, int(part), "") if part.isdigit() else (1, 0, part)
                                       for part in re.split(r"(\d+)", key) if part]


def _menu_shortcuts(menu):
    """(keys, text) of every action with a shortcut in ``menu`` and its submenus."""
    for action in menu.actions():
        if action.menu() is not None:
            yield from _menu_shortcuts(action.menu())
            continue
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            yield keys, action.text().replace("&", "").rstrip("…")


class WindowActions(QObject):
    """Every menu entry and shortcut of one main window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.view_actions: list[QAction] = []   # enabled once the views are built
        self.presets_menu = self.view_menu = None
        self.start_action = self.pause_action = self.stop_action = self.step_action = None
        self.resume_run_action = self.compare_action = None

    def action(self, menu, text: str, slot, shortcut=None, name: str | None = None, needs_views: bool = True) -> QAction:
        action = QAction(text, self.window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if name:
            action.setObjectName(name)
        action.triggered.connect(slot)
        menu.addAction(action)
        if needs_views:
            action.setEnabled(self.window.views_built)
            self.view_actions.append(action)
        return action

    def build(self) -> None:
        w, add = self.window, self.action
        bar = w.menuBar()
        file = bar.addMenu("&File")
        add(file, "&New run", lambda: w.new_run(), "Ctrl+N", "newRunAction")
        add(file, "&Open run…", w.open_run_dialog, QKeySequence.StandardKey.Open, "openRunAction")
        add(file, "Open &embeddings…", self.open_embeddings, name="openEmbeddingsAction")
        export = file.addMenu("&Export")
        ex = w.exports
        add(export, "&Samples grid…", lambda: ex.export_figure("samples"), "Ctrl+E", "exportSamplesAction")
        add(export, "&Reconstructions…", lambda: ex.export_figure("recon"))
        add(export, "&Traversals…", lambda: ex.export_figure("traversal"))
        add(export, "&Interpolations…", lambda: ex.export_figure("interpolation"))
        add(export, "&Embeddings (CSV/NPZ)…", lambda: ex.export_embeddings())
        add(export, "&Loss plot (PNG/SVG)…", ex.export_loss_plot)
        export.addSeparator()
        add(export, "Latent &map (PNG/SVG)…", lambda: ex.export_map(), name="exportMapAction")
        add(export, "Map &coordinates (CSV)…", lambda: ex.export_map_csv(), name="exportMapCsvAction")
        add(export, "Training &movie (GIF/MP4)…", lambda: ex.export_movie(), name="exportMovieAction")
        add(export, "Tensor&Board…", lambda: ex.export_tensorboard(), name="exportTensorBoardAction")
        file.addSeparator()
        add(file, "&Quit", w.close, QKeySequence.StandardKey.Quit, needs_views=False)
        self.presets_menu = bar.addMenu("&Presets")
        train = bar.addMenu("&Training")
        self.start_action = add(train, "&Start", lambda: w.training_panel.start.click(), "F5", "startAction")
        self.pause_action = add(train, "&Pause / Resume", lambda: w.training_panel.pause.click(), "F6", "pauseAction")
        self.stop_action = add(train, "S&top", lambda: w.training_panel.stop.click(), "Shift+F5", "stopAction")
        self.step_action = add(train, "Step to next &probe", lambda: w.training_panel.live_changes.step.click(), "F7",
                               "stepAction")
        self.resume_run_action = add(train, "&Resume run", lambda: w.runs_panel.resume_button.click(), "Ctrl+R",
                                     "resumeRunAction")
        train.addSeparator()
        self.compare_action = add(train, "&Compare checked runs", w.compare_runs, "Ctrl+K", "compareAction")
        self.compare_action.setToolTip("Compare 2 to 6 checked runs side by side (Ctrl+K)")
        # in the menu bar's corner, not a toolbar: a toolbar of one button took a whole row (~26 px) of
        # a laptop's 800
        self.compare_button = QToolButton(bar)
        self.compare_button.setObjectName("compareButton")
        self.compare_button.setDefaultAction(self.compare_action)
        self.compare_button.setAutoRaise(True)
        bar.setCornerWidget(self.compare_button, Qt.Corner.TopRightCorner)
        self.view_menu = bar.addMenu("&View")
        for dock in (*w.docks.values(), w.insights_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        help_menu = bar.addMenu("&Help")
        add(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1", "shortcutsAction", needs_views=False)
        add(help_menu, "&About Latent Explorer", self.about, needs_views=False)

    def fill(self) -> None:
        """The menu entries that come from the views: the map's projections, the presets."""
        w = self.window
        self.view_menu.addSeparator()
        projections = self.view_menu.addMenu("Map &projection")
        for action in w.latent_view.projection_actions():
            projections.addAction(action)
        w.addActions(w.latent_view.projection_actions())
        self.action(self.view_menu, "&Zoom map to fit", w.latent_view.zoom_to_fit, "Ctrl+0", "zoomToFitAction")
        self.fill_map_points()
        for preset in w.presets:
            action = self.action(self.presets_menu, preset.title,
                                 lambda _=False, p=preset: w.training_panel.apply_preset(p))
            action.setToolTip(preset.tooltip)
        self.presets_menu.setToolTipsVisible(True)
        if not w.presets:
            self.presets_menu.addAction("No presets found").setEnabled(False)
        for action in self.view_actions:
            action.setEnabled(True)

    def open_embeddings(self, path: str | None = None):
        """File → Open embeddings…: a map of codes without a run (explorer/map/embeddings_window.py)."""
        from explorer.map.embeddings_window import open_embeddings
        return open_embeddings(self.window, path)

    def fill_map_points(self) -> None:
        """View → Map points: the set of images whose codes the map shows (explorer/map/point_sets.py)."""
        from explorer.map.point_sets import MapPointSets
        w = self.window
        sets = w.map_point_sets = MapPointSets(w.session, w)
        menu = self.view_menu.addMenu("Map p&oints")
        menu.setObjectName("mapPointsMenu")
        for action in sets.actions.values():
            menu.addAction(action)
        sets.failed.connect(lambda message: w.show_error(message))
        sets.progressed.connect(lambda p: w.say(f"Encoding the map's points: {p[0]:,} of {p[1]:,} images…" if p[1]
                                                else "Loading the images for the map's points…"))
        sets.switched.connect(lambda state: w.say(f"The map shows {len(state.probe.codes):,} codes of {state.name} "
                                                  f"({sets.shown_set(state)} images)."))

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what they do): each menu's shortcuts in the menu bar's order, sorted by key within
        the menu (Ctrl+1 before Ctrl+2), then the mouse on the map and the keyboard elsewhere."""
        rows: list[tuple[str, str]] = []
        for menu_action in self.window.menuBar().actions():
            menu = menu_action.menu()
            if menu is None:
                continue
            group = sorted({row for row in _menu_shortcuts(menu)}, key=lambda row: key_order(row[0]))
            rows += [row for row in group if row not in rows]
        return rows + MOUSE_ROWS

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(keys)}</b>&nbsp;&nbsp;</td><td>{html.escape(what)}</td></tr>"
                       for keys, what in self.shortcut_rows())
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Close, self.window)
        box.setObjectName("shortcutsDialog")
        self.window.message_box = box
        box.open()

    def about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About Latent Explorer",
                          f"<b>Latent Explorer</b> {app_version()}<br>"
                          "Train autoencoders and explore their latent spaces.<br>"
                          "Drag on the latent map to decode the point under the cursor.<br>"
                          "Help → Keyboard shortcuts (F1) lists the keys.",
                          QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("aboutDialog")
        if not self.window.windowIcon().isNull():
            box.setIconPixmap(self.window.windowIcon().pixmap(64, 64))
        self.window.message_box = box
        box.open()
