"""The insight views of the active run as tabs (beside the decoder canvas): traversals,
interpolation, samples, reconstructions, dimensions and attribute directions.

Each view is bound to a run (``bind(state)``) and knows nothing of the session; this widget
binds all four to the session's active run.  The interpolation's endpoints are exposed as
``endpoints`` (an ``InterpolationEndpoints`` with a ``changed`` signal) for the latent map to
draw and drag, and ``pick_from_map(code)`` takes a click on the map.  A hidden tab does no work
until it is shown.
"""

from __future__ import annotations

from PySide6.QtWidgets import QProxyStyle, QStyle, QTabWidget, QWidget

from explorer.insights.attributes import AttributesView
from explorer.insights.dimensions import DimensionsView
from explorer.insights.interpolation import InterpolationEndpoints, InterpolationView
from explorer.insights.reconstruction import ReconstructionView
from explorer.insights.samples import SamplesView
from explorer.insights.traversal import TraversalView
from explorer.session import LatentCursor, RunState, Session

#: the tabs' titles, short enough that all six fit a laptop's 440 px dock (the full names are their tooltips' first words)
TAB_TITLES = ("Traversals", "Interpolation", "Samples", "Recon.", "Dims", "Attributes")
TAB_SPACE_PX = 12   # the padding either side of a tab's title (Fusion's 24 made six tabs 560 px wide)


class CompactTabStyle(QProxyStyle):
    """The application's style with less padding in the tabs' titles."""

    def pixelMetric(self, metric, option=None, widget=None) -> int:  # noqa: N802 — Qt's name
        if metric == QStyle.PixelMetric.PM_TabBarTabHSpace:
            return TAB_SPACE_PX
        return super().pixelMetric(metric, option, widget)


class InsightTabs(QTabWidget):
    """Traversals, interpolation, samples and reconstructions of the session's active run."""

    def __init__(self, session: Session, cursor: LatentCursor | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("insightTabs")
        self.setAccessibleName("insightTabs")
        self.session = session
        cursor = cursor if cursor is not None else session.cursor
        self.endpoints = InterpolationEndpoints(self)
        state = session.active
        self.traversals = TraversalView(state, cursor, self)
        self.interpolation = InterpolationView(state, cursor, self.endpoints, self)
        self.samples = SamplesView(state, self)
        self.reconstructions = ReconstructionView(state, self)
        self.dimensions = DimensionsView(state, cursor, self)
        self.attributes = AttributesView(state, cursor, self)
        for view, title in zip(self.views, TAB_TITLES):
            self.addTab(view, title)
        self.tab_style = CompactTabStyle()   # kept: a QProxyStyle set on a widget is not owned by it
        self.tabBar().setStyle(self.tab_style)
        self.tabBar().setUsesScrollButtons(True)   # a narrower dock still reaches every tab
        for index, tip in enumerate((
                "Traversals: each latent dimension swept through the cursor's code, decoded",
                "Interpolation: the decoded path between two points (pick them on the map or from the cursor)",
                "Samples from the model's prior, from the same noise as the model learns",
                "Reconstructions: validation images beside their reconstructions, worst first",
                "Dimensions: what each latent dimension carries (KL or code variance), which are active, collapse named",
                "Attributes: the cursor's code moved along the direction from one group of points to another (A → B)")):
            self.setTabToolTip(index, tip)
        session.active_changed.connect(self.bind)

    @property
    def views(self) -> list[QWidget]:
        return [self.traversals, self.interpolation, self.samples, self.reconstructions, self.dimensions,
                self.attributes]

    def bind(self, state: RunState | None) -> None:
        for view in self.views:
            view.bind(state)

    def take_groups_from(self, selection) -> None:
        """A map's "Selection → group A / B" (explorer/map/selection.py) sets the Attributes view's two
        groups and brings that view to the front."""
        selection.groups_chosen.connect(self.attributes.set_groups)
        selection.groups_chosen.connect(lambda *_: self.setCurrentWidget(self.attributes))

    def pick_from_map(self, code) -> str:
        """A click on the latent map sets the interpolation's next endpoint (A, then B)."""
        return self.interpolation.pick_from_map(code)
