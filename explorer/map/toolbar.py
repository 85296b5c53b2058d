"""The latent map's toolbar, two rows: the projection, the raw dimensions or Recompute and the
busy indicator, a note on what is being computed and the selection's menu; then the colouring,
the point size, the manifold and the density contours.

The raw dimensions (a raw map of a code with more than two dimensions) and Recompute with the
busy indicator (UMAP, t-SNE) share one slot as wide and tall as the larger of them, so choosing
a projection never changes the toolbar's size: the map, and the docks beside it, stay put (the
slot appearing moved them ~50 px).  The colour menu shows short complete names ("KL",
"Nearest distance"), the full title in each item's tooltip: in a narrow map the long titles
were cut to "Reconst", "KL of ea"."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSpinBox,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.widgets import ElidedLabel

PROJECTIONS = {"raw": "Raw 2-D", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
#: the colour menu's names: short, and never cut (the full titles are the items' tooltips)
SHORT_COLOUR_NAMES = {"class": "Class", "reconstruction_error": "Reconstruction error", "kl": "KL",
                      "nearest_distance": "Nearest distance"}
COMBO_CHROME_PX = 36   # a combo box's frame and arrow beside its text


def named(widget, name: str):
    """``widget`` with ``name`` as its object name and accessible name (for tests and screen readers)."""
    widget.setObjectName(name)
    widget.setAccessibleName(name)
    return widget


class MapToolbar(QWidget):
    """The map's controls in one row; the latent view connects them."""

    def __init__(self, colour_combo: QComboBox, parent: QWidget | None = None):
        super().__init__(parent)
        self.projection_combo = named(QComboBox(), "projectionCombo")
        for key, title in PROJECTIONS.items():
            self.projection_combo.addItem(title, key)
        self.x_dim, self.y_dim = named(QSpinBox(), "xDim"), named(QSpinBox(), "yDim")
        for box, value in ((self.x_dim, 0), (self.y_dim, 1)):
            box.setPrefix("x: z" if box is self.x_dim else "y: z")
            box.setValue(value)
        self.point_size = named(QSpinBox(), "pointSize")
        self.point_size.setRange(1, 16)
        self.point_size.setValue(3)
        self.point_size.setSuffix(" px")
        self.point_size.setToolTip("Point size")
        self.manifold_toggle = named(QCheckBox("Manifold"), "manifoldToggle")
        self.manifold_toggle.setToolTip("Tile decoded images over the visible region of the map")
        self.density_toggle = named(QCheckBox("Density"), "densityToggle")   # its tip: explorer/map/posteriors.py
        self.selection_button = named(QToolButton(), "selectionButton")   # its menu: explorer/map/selection.py
        self.selection_button.setText("Selection")
        self.selection_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.selection_button.setToolTip("Shift+drag: box, Ctrl+Shift+drag: lasso; the selected points become "
                                         "group A or B of the Attributes view")
        self.recompute = named(QToolButton(), "recomputeMap")
        self.recompute.setText("Recompute")   # an icon in the row (the text took 85 of a laptop's pixels)
        self.recompute.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.recompute.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.recompute.setToolTip("Recompute: fit the layout again to the latest codes")
        self.busy = named(QProgressBar(), "projectionBusy")
        self.busy.setRange(0, 0)
        self.busy.setFixedWidth(40)   # every pixel of this row counts on a 1280-pixel screen
        self.busy.setTextVisible(False)
        self.busy.setToolTip("The layout is being computed in the background")
        keep_place(self.busy)
        self.busy.hide()
        # elided: a long note ("UMAP is being computed… (the first UMAP map compiles…)") widened
        # the window past a 1280-pixel screen, pushing the decoder and the runs off it
        self.note = named(ElidedLabel(), "mapNote")
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.colour_combo = colour_combo
        colour_combo.model().rowsInserted.connect(self._shorten_colour_names)
        self._shorten_colour_names()

        self.slot = named(QStackedWidget(), "mapControlsSlot")
        self.slot.addWidget(QWidget())                                     # PCA: nothing
        self.slot.addWidget(_row_of(self.x_dim, self.y_dim))               # raw, more than 2 dimensions
        self.slot.addWidget(_row_of(self.recompute, self.busy))            # UMAP, t-SNE

        # two rows: the projection row's width no longer adds to the colouring row's, so the map's
        # minimum width is the wider of the two (the right-hand dock gets the difference)
        rows = QVBoxLayout(self)
        rows.setContentsMargins(6, 4, 6, 2)
        rows.setSpacing(2)
        projection_row, colour_row = QHBoxLayout(), QHBoxLayout()
        for row in (projection_row, colour_row):
            row.setSpacing(6)
            rows.addLayout(row)
        projection_row.addWidget(QLabel("Map"))
        projection_row.addWidget(self.projection_combo)
        projection_row.addWidget(self.slot)
        projection_row.addWidget(self.note, 1)   # says what is being computed, elided to the room left
        projection_row.addWidget(self.selection_button)   # here: the colouring row is the wider one
        colour_row.addWidget(QLabel("Colour"))
        colour_row.addWidget(colour_combo)
        colour_row.addWidget(QLabel("Points"))
        colour_row.addWidget(self.point_size)
        colour_row.addWidget(self.manifold_toggle)
        colour_row.addWidget(self.density_toggle)
        colour_row.addStretch(1)

    def show_controls(self, dims: bool, slow: bool) -> None:
        """The raw dimension pickers, or Recompute and the busy indicator, or neither, in the slot."""
        self.slot.setCurrentIndex(1 if dims else 2 if slow else 0)   # (the other pages' widgets hide with them)

    def _shorten_colour_names(self, *_) -> None:
        combo = self.colour_combo
        for i in range(combo.count()):
            key, text = combo.itemData(i), combo.itemText(i)
            short = SHORT_COLOUR_NAMES.get(key)
            if short is not None and text != short:
                combo.setItemData(i, text, Qt.ItemDataRole.ToolTipRole)   # the full title
                combo.setItemText(i, short)
        longest = max(SHORT_COLOUR_NAMES.values(), key=combo.fontMetrics().horizontalAdvance)
        combo.setMinimumWidth(combo.fontMetrics().horizontalAdvance(longest) + COMBO_CHROME_PX)


def keep_place(widget: QWidget) -> None:
    """The widget keeps its room in the layout while hidden."""
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def _row_of(*widgets: QWidget) -> QWidget:
    host = QWidget()
    row = QHBoxLayout(host)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(6)
    for widget in widgets:
        row.addWidget(widget)
    return host
