"""The real window laid out on a laptop's screen (offscreen, with the platform's default font):
it fits 1280×800 and 1366×768 with every dock visible, the loss plot at least 150 px tall, the
training panel scrolling rather than growing the window, and no formula label clipped."""

import pytest
from PySide6.QtCore import QRect, QSettings
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget

from engine.models import VARIANTS
from explorer.window.main_window import MainWindow

TITLE_BAR_PX = 40   # what a window manager's title bar and a desktop panel take from the screen's height
FRAME_PX = 16       # what a window manager's frame takes from the screen's width


def formula_fits(label) -> bool:
    """The label's rich text, laid out at the label's width, is neither wider nor taller than it."""
    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)
    doc.setHtml(label.text())
    width = label.contentsRect().width()
    doc.setTextWidth(width)
    return doc.idealWidth() <= width + 0.5 and doc.size().height() <= label.contentsRect().height() + 0.5


@pytest.fixture()
def laptop(qtbot, tmp_path):
    windows = []

    def make(width: int, height: int) -> MainWindow:
        w = MainWindow(runs_dir=tmp_path / "runs")
        qtbot.addWidget(w)
        w.resize(width, height - TITLE_BAR_PX)
        w.show()
        qtbot.waitExposed(w)
        w.layout_settings.default_dock_sizes()   # as on a first launch at that size
        QApplication.processEvents()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.latent_view.shutdown()


@pytest.mark.parametrize("screen", [(1280, 800), (1366, 768)])
def test_the_window_fits_a_laptop_screen(laptop, screen):
    width, height = screen
    w = laptop(width, height)
    scrolled = 0
    for variant in ("vae", "sparse_ae", "beta_vae", "cvae", "denoising_ae", "aae", "wae_mmd", "iwae"):
        # the sparse AE and the AAE have the most fields
        p = w.training_panel
        p.model.setCurrentIndex(p.model.findData(variant))
        if variant == "sparse_ae":
            p.params.editors["penalty"].setCurrentIndex(p.params.editors["penalty"].findData("kl"))
        QApplication.processEvents()
        hint = w.minimumSizeHint()
        assert hint.width() <= width and hint.height() <= height - TITLE_BAR_PX, (variant, hint)
        scroll = p.findChild(QScrollArea)   # the form scrolls down, never sideways: wider, it is clipped
        assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width(), variant
        assert (w.width(), w.height()) == (width, height - TITLE_BAR_PX), variant
        # a form taller than the panel keeps its height and scrolls by the part that does not fit
        form, bar = scroll.widget(), scroll.verticalScrollBar()
        assert form.height() >= form.minimumSizeHint().height(), (variant, form.height())
        assert bar.maximum() == max(0, form.height() - scroll.viewport().height()), (variant, bar.maximum())
        assert not scroll.horizontalScrollBar().isVisible(), variant
        scrolled += bar.maximum() > 0
    w.latent_view.note.setText("UMAP is being computed… PCA shown until it arrives (the first UMAP map "
                               "compiles for up to a minute), and a few more words for a narrow screen")
    QApplication.processEvents()
    assert w.minimumSizeHint().width() <= width - FRAME_PX, "a long map note widened the window past the screen"
    lv = w.latent_view
    for shown, hidden, what in (((lv.recompute, lv.busy), (lv.x_dim, lv.y_dim), "UMAP being computed"),
                                ((lv.x_dim, lv.y_dim), (lv.recompute, lv.busy), "the raw map of a 4-D code")):
        for widget in shown:
            widget.show()
        for widget in hidden:
            widget.hide()
        QApplication.processEvents()
        assert w.minimumSizeHint().width() <= width - FRAME_PX, f"the map's controls for {what} widen the window"
    inside = w.rect()
    for name, dock in w.docks.items():
        assert dock.isVisible() and inside.contains(dock.geometry()), name
        assert dock.widget().height() > 60, name
    status = w.statusBar()
    assert status.isVisible() and inside.contains(status.geometry())
    assert w.loss_plot.plot.height() >= 150
    left_axis = w.loss_plot.plot_item.getAxis("left")
    assert left_axis.height() >= 120   # tick labels have room (25-30 px crushed them on top of one another)
    assert scrolled, "the tallest forms scroll in a laptop's panel"


@pytest.mark.parametrize("screen", [(1280, 800), (1600, 1000)])
def test_no_formula_label_is_clipped(laptop, screen):
    w = laptop(*screen)
    p = w.training_panel
    for key in VARIANTS:
        p.model.setCurrentIndex(p.model.findData(key))
        QApplication.processEvents()
        for label in (p.formula, p.summary):
            assert formula_fits(label), (key, label.objectName(), label.text(), label.size())
        if "I))" in p.formula.text():   # bound to what precedes it: never "I))" alone on a line
            assert "&nbsp;I))" in p.formula.text()


def test_the_loss_plot_gets_a_sensible_share_of_a_big_screen(laptop):
    w = laptop(1600, 1000)
    assert w.loss_plot.plot.height() >= 0.18 * w.height()   # about 75 px tall before


def test_the_window_fits_the_screen_it_opens_on(qtbot, tmp_path):
    w = MainWindow(runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    room = w.screen().availableGeometry()
    assert w.width() <= room.width() and w.height() <= room.height()
    w.latent_view.shutdown()


def test_every_dock_widget_is_reachable_by_name(laptop):
    w = laptop(1280, 800)
    for name in ("trainingPanel", "decoderCanvas", "runsList", "lossPlot", "latentView", "presetCombo"):
        assert w.findChild(QWidget, name) is not None, name


@pytest.mark.parametrize("screen", [(1280, 800), (1366, 768)])
def test_the_insight_views_fit_the_right_hand_dock(laptop, screen):
    """Their control rows were 490-650 px wide in a dock of about 440: every tab scrolled sideways,
    hiding the traversals' last column, the notes' ends and the export row; the picture keeps a
    usable height (a short dock scrolls the tab vertically instead)."""
    w = laptop(*screen)
    w.insights_dock.show()
    w.insights_dock.raise_()
    QApplication.processEvents()
    scroll = w.insights_dock.widget()
    for index, view in enumerate(w.insight_tabs.views):
        w.insight_tabs.setCurrentIndex(index)
        QApplication.processEvents()
        assert view.minimumSizeHint().width() <= scroll.viewport().width(), (type(view).__name__, scroll.width())
        assert not scroll.horizontalScrollBar().isVisible(), type(view).__name__
        assert view.pane.scroll.height() >= 120, type(view).__name__   # the picture: 50 px with two rows of controls


def show_insights(w) -> None:
    """Choose the Insights tab of the right-hand column, as a click on it does."""
    w.insights_dock.raise_()
    QApplication.processEvents()
    QApplication.processEvents()


def runs_rows_shown(w) -> float:
    table = w.runs_panel.table
    return table.viewport().height() / table.verticalHeader().defaultSectionSize()


@pytest.mark.parametrize("screen", [(1280, 800), (1600, 1000)])
def test_the_insights_get_most_of_the_right_hand_column(laptop, screen):
    """At 1280×800 the Insights dock was about 200 px tall under its six tabs' bar (scroll arrows):
    Reconstructions showed their first row, Traversals z0 alone; the runs list 2.5 rows."""
    w = laptop(*screen)
    assert runs_rows_shown(w) >= 5, "the runs list shows at least 5 rows beside the decoder"
    show_insights(w)
    insights, runs = w.insights_dock.height(), w.docks["runs"].height()
    assert insights >= 0.65 * (insights + runs), (insights, runs)
    assert runs_rows_shown(w) >= 5, "and beside the insights"
    bar = w.insight_tabs.tabBar()
    assert sum(bar.tabRect(i).width() for i in range(bar.count())) <= bar.width(), "every tab's title on show"
    scroll = w.insights_dock.widget()
    for index, view in enumerate(w.insight_tabs.views):
        w.insight_tabs.setCurrentIndex(index)
        QApplication.processEvents()
        assert not scroll.verticalScrollBar().isVisible(), (type(view).__name__, "scrolls inside a scroll")
        least = 120 if view is w.insight_tabs.dimensions else 220   # the dimensions' strip sits under their chart
        assert view.pane.scroll.height() >= least, (type(view).__name__, view.pane.scroll.height())
    w.docks["decoder"].raise_()
    QApplication.processEvents()
    QApplication.processEvents()
    assert runs_rows_shown(w) >= 5 and w.docks["decoder"].height() >= 0.5 * (w.docks["decoder"].height() + runs)


def test_the_loss_plot_and_the_map_keep_their_room_under_a_full_height_right_column(laptop):
    w = laptop(1280, 800)
    assert w.loss_plot.plot.width() >= 300 and w.latent_view.plot.height() >= 250


def test_each_insight_of_a_run_fits_the_dock_without_scrolling_sideways(laptop, run_paths):
    """The traversals' columns were labelled "+0.75 sd" each: nine were wider than the dock, which
    scrolled sideways and cut the title mid-word at its edge."""
    w = laptop(1280, 800)
    w.open_run(run_paths[0])
    show_insights(w)
    for view in (w.insight_tabs.traversals, w.insight_tabs.interpolation, w.insight_tabs.samples,
                 w.insight_tabs.reconstructions):
        w.insight_tabs.setCurrentWidget(view)
        QApplication.processEvents()
        assert view.figure() is not None, type(view).__name__
        QApplication.processEvents()
        canvas, scroll = view.pane.canvas, view.pane.scroll
        assert not scroll.horizontalScrollBar().isVisible(), (type(view).__name__, canvas.minimumSizeHint())
        assert canvas.toolTip() == view.figure().title   # the whole title, elided on the canvas
        assert canvas.shown_width() <= scroll.viewport().width()


def relaunch(qtbot, tmp_path, monkeypatch, room: QRect, resize=None) -> MainWindow:
    """A window on a screen with ``room`` for windows, with the settings of the previous launch; closed
    (so it saves) after ``resize`` when given."""
    from explorer.window.layout_settings import LayoutSettings
    monkeypatch.setattr(LayoutSettings, "screen_room", lambda self: QRect(room))
    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                   runs_dir=tmp_path / "runs")
    qtbot.addWidget(w)
    if resize is not None:
        w.resize(*resize)
    return w


def test_a_window_left_at_its_default_size_follows_a_bigger_screen(qtbot, tmp_path, monkeypatch):
    """At 1600×1000 the window came back at its old 1280×800 laptop size."""
    laptop = relaunch(qtbot, tmp_path, monkeypatch, QRect(0, 0, 1280, 800))
    assert (laptop.width(), laptop.height()) == (1272, 760)
    laptop.close()
    desk = relaunch(qtbot, tmp_path, monkeypatch, QRect(0, 0, 1600, 1000))
    assert (desk.width(), desk.height()) == (1500, 920)
    desk.close()


def test_a_size_the_person_chose_comes_back_within_the_screen(qtbot, tmp_path, monkeypatch):
    w = relaunch(qtbot, tmp_path, monkeypatch, QRect(0, 0, 1920, 1200), resize=(1800, 1100))
    w.close()
    again = relaunch(qtbot, tmp_path, monkeypatch, QRect(0, 0, 1920, 1200))
    assert (again.width(), again.height()) == (1800, 1100)
    again.close()
    smaller = relaunch(qtbot, tmp_path, monkeypatch, QRect(0, 0, 1600, 1000))
    assert smaller.width() <= 1600 - 8 and smaller.height() <= 1000 - 40
    assert QRect(0, 0, 1600, 1000).contains(smaller.frameGeometry())
    smaller.close()


def test_choosing_umap_moves_nothing(laptop, run_paths):
    """Choosing UMAP showed Recompute and a busy bar in place of the dimension pickers, and the
    layout shifted about 50 px; the map, the docks and the plot keep their places now."""
    w = laptop(1280, 800)
    w.open_run(run_paths[0])
    QApplication.processEvents()

    def places():
        plot = w.latent_view.plot
        return ([d.geometry() for d in w.docks.values()], plot.mapTo(w, plot.rect().topLeft()), plot.size())

    before = places()
    w.latent_view.set_projection("umap")
    for _ in range(3):
        QApplication.processEvents()
    assert w.latent_view.projection == "umap"
    assert places() == before
    w.latent_view.set_projection("raw")
    QApplication.processEvents()
    assert places() == before


def test_a_relaunch_that_builds_its_views_behind_the_window_keeps_the_loss_dock_height(qtbot, tmp_path):
    """With the right-hand column reaching the status bar, restoreState alone gave the loss dock
    about 540 of 760 px on the app's deferred launch, squeezing the map to a strip."""
    heights = []
    for _ in range(2):
        w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                       runs_dir=tmp_path / "runs", deferred=True)
        qtbot.addWidget(w)
        w.show()
        w.build_views_in_background()
        qtbot.waitUntil(lambda shown=w: shown.views_built, timeout=30_000)
        qtbot.wait(200)
        heights.append((w.docks["loss"].height(), w.latent_view.height()))
        w.close()
    assert heights[1] == heights[0], heights


def test_compare_sits_in_the_menu_bars_row_not_a_row_of_its_own(laptop):
    # a toolbar holding the one Compare button took a whole row (~26 px) of a laptop's 800
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QToolBar
    w = laptop(1280, 800)
    assert [t for t in w.findChildren(QToolBar) if t.isVisible()] == []
    button = w.menuBar().cornerWidget(Qt.Corner.TopRightCorner)
    assert button is not None and button.defaultAction() is w.menu_actions.compare_action
    assert button.isVisible() and button.geometry().bottom() <= w.menuBar().height()
