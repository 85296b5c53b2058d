"""The map's posterior ellipses and density contours, on a plain plot."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from explorer.map.overlays import MASS_LEVELS, DensityContours, PosteriorEllipses, mass_level


def test_ellipses_of_a_2d_posterior_span_one_and_two_sigma(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    ellipses = PosteriorEllipses(widget)
    ellipses.show(np.array([1.0, 2.0]), np.log(np.array([0.5, 0.25]) ** 2), np.eye(2))
    for n, item in zip((1, 2), ellipses.items):
        x, y = item.getData()
        assert item.isVisible()
        assert (x.max() - x.min()) / 2 == pytest.approx(0.5 * n, rel=1e-3)
        assert (y.max() - y.min()) / 2 == pytest.approx(0.25 * n, rel=1e-3)
    ellipses.clear()
    assert not any(item.isVisible() for item in ellipses.items)


def test_mass_levels_enclose_their_share_of_the_mass():
    xs = ys = np.linspace(-6, 6, 241)
    gx, gy = np.meshgrid(xs, ys)
    density = np.exp(-(gx ** 2 + gy ** 2) / 2) / (2 * np.pi)
    cell = (xs[1] - xs[0]) ** 2
    for mass in (0.5, 0.9):
        level = mass_level(density, cell, mass)
        assert density[density >= level].sum() * cell == pytest.approx(mass, abs=0.01)
        # for N(0, I) the p-mass region is the disc of radius sqrt(-2 ln(1 - p))
        assert level == pytest.approx(np.exp(np.log(1 - mass)) / (2 * np.pi), rel=0.05)


def test_contours_of_the_codes_and_the_prior_are_drawn_where_the_codes_are(qtbot):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    contours = DensityContours(widget)
    rng = np.random.default_rng(0)
    mus = rng.normal(loc=[3.0, 0.0], scale=0.3, size=(200, 2))
    contours.show(mus, np.full((200, 2), np.log(0.1 ** 2)), np.eye(2), np.zeros(2), (-5, 6, -5, 5))
    assert len(contours.curves) == 2 * len(MASS_LEVELS)
    xs, ys = contours.grid
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert contours.posterior.sum() * cell == pytest.approx(1.0, abs=0.02)
    peak = np.unravel_index(np.argmax(contours.posterior), contours.posterior.shape)
    assert xs[peak[1]] == pytest.approx(3.0, abs=0.3) and ys[peak[0]] == pytest.approx(0.0, abs=0.3)
    bounds = contours.curves[0].mapRectToParent(contours.curves[0].boundingRect())
    assert 2.0 < bounds.center().x() < 4.0
    contours.clear()
    assert contours.curves == []
