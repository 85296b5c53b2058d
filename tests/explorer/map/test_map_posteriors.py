"""The main map's posterior ellipses, density contours, box and lasso selection into the Attributes
view's groups, and the manifold tiles only where map positions are codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from explorer.insights.attributes import AttributesView
from explorer.map.latent_view import LatentView
from explorer.map.overlays import DENSITY_CODES, MASS_LEVELS
from explorer.session import RunState, Session

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
SHIFT, CTRL = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def shown(qtbot):
    """A shown LatentView on a session; ``shown(path)`` opens that run in it (its data loaded)."""
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    view.resize(760, 560)
    view.show()
    qtbot.waitExposed(view)

    def open_run(path) -> RunState:
        state = RunState.open(path)
        state.ensure_dataset()
        session.add(state)
        QApplication.processEvents()
        return state

    yield view, open_run
    assert view.shutdown()


def pixel_of(view: LatentView, x: float, y: float) -> QPoint:
    return view.plot.mapFromScene(view.view.mapViewToScene(QPointF(x, y)))


def mouse(view, kind, pos: QPoint, button=NONE, buttons=NONE, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = view.plot.viewport()
    QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                                                 button, buttons, modifiers))


def area_drag(view, corners, modifiers) -> None:
    """A left drag through map points ``corners`` with ``modifiers`` held (Shift: box; Ctrl+Shift: lasso)."""
    pixels = [pixel_of(view, x, y) for x, y in corners]
    mouse(view, QEvent.Type.MouseButtonPress, pixels[0], LEFT, LEFT, modifiers)
    for p in pixels[1:]:
        mouse(view, QEvent.Type.MouseMove, p, NONE, LEFT, modifiers)
    mouse(view, QEvent.Type.MouseButtonRelease, pixels[-1], LEFT, NONE, modifiers)


def empty_pixel(view) -> QPoint:
    """A pixel inside the map's view box with no point near it."""
    (x0, x1), (y0, y1) = view.view.viewRange()
    return next(pixel_of(view, x, y) for x in np.linspace(x0, x1, 40)[1:-1] for y in np.linspace(y0, y1, 40)[1:-1]
                if view._point_near(x, y) is None)


def encoder_posterior(state: RunState, position: int) -> tuple[np.ndarray, np.ndarray]:
    image = state.dataset.val.images[int(state.probe.indices[position])][None].float() / 255
    with torch.no_grad():
        mu, logvar = state.model.posterior(image)
    return mu[0].double().numpy(), logvar[0].double().numpy()


def half_widths(ellipses, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half extent along x and y) of the ±n σ polygon."""
    poly = ellipses.polygons[n - 1][:-1]      # closed: the last point repeats the first
    return poly.mean(0), (poly.max(0) - poly.min(0)) / 2


def test_the_hovered_point_of_a_2d_vae_shows_its_encoders_sigma(shown, run_paths):
    view, open_run = shown
    state = open_run(run_paths[0])            # the 2-D VAE, on its raw map
    assert view.projection == "raw" and state.model.latent_dim == 2
    position = 7
    mouse(view, QEvent.Type.MouseMove, pixel_of(view, *view._xy[position]))
    hovered = view._hovered
    assert hovered is not None and view.posteriors.hovered.items[0].isVisible()
    mu, logvar = encoder_posterior(state, hovered)
    for n in (1, 2):
        centre, half = half_widths(view.posteriors.hovered, n)
        np.testing.assert_allclose(centre, mu, atol=1e-6)
        np.testing.assert_allclose(half, n * np.exp(0.5 * logvar), rtol=2e-3)   # exactly σ, up to the polygon
    assert view.posteriors.reason() == ""
    mouse(view, QEvent.Type.MouseMove, empty_pixel(view))
    assert not view.posteriors.hovered.items[0].isVisible()


def test_the_selected_point_keeps_its_ellipse_and_pca_draws_it_through_the_components(shown, run_paths):
    view, open_run = shown
    state = open_run(run_paths[0])
    view.set_projection("pca")
    position = 11
    pixel = pixel_of(view, *view._xy[position])
    mouse(view, QEvent.Type.MouseButtonPress, pixel, LEFT, LEFT)
    mouse(view, QEvent.Type.MouseButtonRelease, pixel, LEFT, NONE)
    selected = view.points.selected()
    assert selected is not None and view.posteriors.selected.items[1].isVisible()
    mu, logvar = encoder_posterior(state, selected)
    W, mean = view.fitted_projection.components, view.fitted_projection.mean
    cov = (W * np.exp(logvar)) @ W.T          # the posterior's covariance seen through PCA
    centre, half = half_widths(view.posteriors.selected, 1)
    np.testing.assert_allclose(centre, W @ (mu - mean), atol=1e-6)
    np.testing.assert_allclose(half, np.sqrt(np.diag(cov)), rtol=2e-3)
    empty = empty_pixel(view)
    mouse(view, QEvent.Type.MouseButtonPress, empty, LEFT, LEFT)   # the handle moves: no point selected
    mouse(view, QEvent.Type.MouseButtonRelease, empty, LEFT, NONE)
    assert view.points.selected() is None and not view.posteriors.selected.items[0].isVisible()


def test_no_ellipse_density_or_tiles_on_a_tsne_map_and_the_note_says_why(qtbot, shown, run_paths):
    view, open_run = shown
    open_run(run_paths[0])
    view.manifold_toggle.setChecked(True)
    with qtbot.waitSignal(view.posteriors.density_drawn, timeout=10_000):
        view.density_toggle.setChecked(True)
    qtbot.waitUntil(view.manifold.isVisible, timeout=2000)
    assert view.posteriors.contours.curves
    view.set_projection("tsne")
    mouse(view, QEvent.Type.MouseMove, pixel_of(view, *view._xy[3]))
    assert view._hovered is not None and view.hover_card.isVisible()   # the point is hovered…
    assert not any(item.isVisible() for item in view.posteriors.hovered.items)   # …but has no ellipse
    assert "t-SNE" in view.note.full_text() and "not a linear view" in view.note.full_text()
    assert not view.density_toggle.isEnabled() and not view.density_toggle.isChecked()
    assert "not a linear view" in view.density_toggle.toolTip() and view.posteriors.contours.curves == []
    # fault 14: positions on t-SNE are not codes, so no tiles there, and the toggle says why
    assert not view.manifold_toggle.isEnabled() and not view.manifold_toggle.isChecked()
    assert not view.manifold.isVisible() and "not codes" in view.manifold_toggle.toolTip()
    view.manifold_toggle.setChecked(True)     # even when set from code: nothing is tiled on t-SNE
    view.manifold_tiles.rebuild()
    assert not view.manifold.isVisible()
    view.set_projection("pca")                # back where positions are codes: both can be on again
    assert view.manifold_toggle.isEnabled() and view.density_toggle.isEnabled()
    assert "not a linear view" not in view.note.full_text()


def test_a_deterministic_encoder_has_no_ellipse_and_says_so(shown, run_paths):
    view, open_run = shown
    open_run(run_paths[1])                    # the AE
    mouse(view, QEvent.Type.MouseMove, pixel_of(view, *view._xy[3]))
    assert view._hovered is not None and not view.posteriors.hovered.items[0].isVisible()
    assert "deterministic" in view.note.full_text()
    assert not view.density_toggle.isEnabled() and "deterministic" in view.density_toggle.toolTip()


def test_density_contours_toggle_integrate_to_one_and_follow_the_probe(qtbot, shown, run_paths):
    view, open_run = shown
    state = open_run(run_paths[0])
    contours = view.posteriors.contours
    assert not view.density_toggle.isChecked() and contours.curves == []   # off by default
    with qtbot.waitSignal(view.posteriors.density_drawn, timeout=10_000):   # computed in the background
        view.density_toggle.setChecked(True)                               # one click on
    assert len(contours.curves) == 2 * len(MASS_LEVELS)                    # q(z) and the prior, 50% and 90%
    xs, ys = contours.grid
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert contours.posterior.sum() * cell == pytest.approx(1.0, abs=0.03)
    assert contours.prior.sum() * cell == pytest.approx(1.0, abs=0.03)
    assert min(len(state.probe.codes), DENSITY_CODES) == len(state.probe.codes)
    before = contours.posterior
    with qtbot.waitSignal(view.posteriors.density_drawn, timeout=10_000):
        state.probe_changed.emit(state.probe)     # a probe update: recomputed while on
    assert contours.posterior is not before and set(view.posteriors.last_density_ms) == {"background", "gui"}
    view.density_toggle.setChecked(False)
    assert contours.curves == [] and contours.posterior is None


def test_box_and_lasso_selections_become_the_attribute_groups(shown, run_paths):
    view, open_run = shown
    state = open_run(run_paths[0])
    attributes = AttributesView(state, view.cursor)
    view.selection.groups_chosen.connect(attributes.set_groups)    # as the main window connects them
    xy = view._xy
    (x0, y0), (x1, y1), (xm, ym) = xy.min(0), xy.max(0), np.median(xy, axis=0)
    pad = 0.03 * (x1 - x0)                                          # inside the view's own padding
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    assert not view.selection.to_a.isEnabled()                     # nothing selected yet
    area_drag(view, [(x0, y0), (xm, ym)], SHIFT)                    # a box: the lower left of the points
    (bx0, by0), (bx1, by1) = (view._map_point(QPointF(pixel_of(view, x, y))) for x, y in ((x0, y0), (xm, ym)))
    box = np.flatnonzero((xy[:, 0] >= bx0) & (xy[:, 0] <= bx1) & (xy[:, 1] >= by0) & (xy[:, 1] <= by1))
    assert len(box) > 5
    np.testing.assert_array_equal(view.selection.positions, box)
    assert view.handle_position() is None                           # a selection never moves the handle
    view.selection.to_a.trigger()
    assert attributes.groups is None                                # B is still to come
    lasso = [(xm, ym), (x1, ym), (x1, y1), (xm, y1), (xm, ym + 1e-6)]   # a lasso: the upper right
    area_drag(view, lasso, SHIFT | CTRL)
    upper = np.flatnonzero((xy[:, 0] > xm) & (xy[:, 1] > ym))
    assert len(upper) > 5 and len(set(view.selection.positions) ^ set(upper)) <= 0.1 * len(upper)
    view.selection.to_b.trigger()
    attributes.figure()                                             # its throttle flushed
    codes = state.probe.codes.astype(np.float64)
    expected = codes[view.selection.positions].mean(0) - codes[box].mean(0)
    np.testing.assert_allclose(attributes.direction, expected, rtol=1e-5)
    np.testing.assert_array_equal(attributes.groups[0], box)
    area_drag(view, [(x1, y1)], SHIFT)                            # a Shift+click clears the selection
    assert len(view.selection.positions) == 0 and not view.selection.to_b.isEnabled()


def test_the_main_windows_selection_menu_feeds_the_attributes_tab(window, run_paths, qtbot):
    state = window.open_run(run_paths[0])
    view = window.latent_view
    qtbot.waitUntil(lambda: view.points.n_points == len(state.probe.codes), timeout=10_000)
    menu = [action.objectName() for action in view.selection_button.actions()]
    assert menu[:2] == ["selectionToGroupA", "selectionToGroupB"]
    order = np.argsort(view._xy[:, 0])
    a, b = np.sort(order[:20]), np.sort(order[-30:])
    view.selection.select(a)
    view.selection.to_a.trigger()
    view.selection.select(b)
    view.selection.to_b.trigger()
    attributes = window.insight_tabs.attributes
    assert window.insight_tabs.currentWidget() is attributes
    attributes.figure()
    codes = state.probe.codes.astype(np.float64)
    np.testing.assert_allclose(attributes.direction, codes[b].mean(0) - codes[a].mean(0), rtol=1e-5)
    assert any("lasso" in what for _keys, what in window.menu_actions.shortcut_rows())


def test_density_asked_again_while_computing_draws_only_the_latest_map(qtbot, shown, run_paths):
    """A probe update or projection change during a computation waits for it, its result is
    dropped (it is of the old map), and the latest map's contours are drawn, once."""
    from explorer.map.overlays import density_contours
    from explorer.map.posteriors import density_bounds
    view, open_run = shown
    state = open_run(run_paths[0])
    with qtbot.waitSignal(view.posteriors.density_drawn, timeout=10_000):
        view.density_toggle.setChecked(True)
    drawn = []
    view.posteriors.density_drawn.connect(lambda: drawn.append(view.posteriors.contours.grid))
    view.set_projection("pca")    # starts a computation for the PCA map…
    view.set_projection("raw")    # …and this one waits for it
    qtbot.waitUntil(lambda: bool(drawn), timeout=10_000)
    qtbot.wait(300)
    assert len(drawn) == 1 and view.posteriors._task is None
    mus, logvars = view.posteriors.posteriors(np.arange(len(state.probe.codes)))
    W, mean = np.eye(2), np.zeros(2)
    expected = density_contours(mus, logvars, W, mean, density_bounds(mus, logvars, W, mean))
    np.testing.assert_allclose(drawn[0][0], expected.xs, rtol=1e-6)
    np.testing.assert_allclose(view.posteriors.contours.posterior, expected.posterior, rtol=1e-6)
