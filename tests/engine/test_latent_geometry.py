"""Ellipses, densities and directions of engine.latent_geometry, against what they must equal."""

from __future__ import annotations

import numpy as np
import pytest

from engine import diagnostics
from engine.latent_geometry import (
    aggregate_posterior_density,
    along,
    posterior_ellipse,
    standard_normal_density,
)


def test_the_ellipse_of_a_2d_posterior_is_the_encoders_sigma():
    mu, logvar = np.array([0.5, -1.0]), np.log(np.array([0.3, 0.1]) ** 2)
    for n in (1.0, 2.0):
        poly = posterior_ellipse(mu, logvar, np.eye(2), n_sigma=n, points=721)
        assert np.allclose(poly[0], poly[-1])
        half_widths = (poly.max(0) - poly.min(0)) / 2
        assert half_widths == pytest.approx(n * np.array([0.3, 0.1]), rel=1e-4)
        assert (poly.max(0) + poly.min(0)) / 2 == pytest.approx(mu, abs=1e-9)


def test_the_ellipse_through_a_projection_is_its_covariance():
    rng = np.random.default_rng(0)
    W = np.linalg.qr(rng.normal(size=(5, 2)))[0].T          # 2×5, orthonormal rows (as PCA's)
    mu, logvar = rng.normal(size=5), rng.normal(size=5) * 0.3
    poly = posterior_ellipse(mu, logvar, W, points=2001)[:-1]
    cov = (W * np.exp(logvar)) @ W.T
    centre = W @ mu
    d = poly - centre
    # every point of the 1-σ ellipse has Mahalanobis distance 1
    assert np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d) == pytest.approx(np.ones(len(d)), rel=1e-6)


def test_the_aggregate_posterior_density_integrates_to_one():
    rng = np.random.default_rng(1)
    mus, logvars = rng.normal(size=(200, 3)), np.log(rng.uniform(0.05, 0.5, size=(200, 3)))
    W = np.eye(3)[:2]
    xs = ys = np.linspace(-7, 7, 281)
    density = aggregate_posterior_density(mus, logvars, W, xs, ys)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert density.sum() * cell == pytest.approx(1.0, abs=0.01)
    prior = standard_normal_density(W, xs, ys)
    assert prior.sum() * cell == pytest.approx(1.0, abs=0.01)
    assert prior.max() == pytest.approx(1 / (2 * np.pi), rel=1e-3)


def test_along_walks_the_direction_through_the_code():
    path = along(np.zeros(3), np.array([1.0, 0, 0]), steps=5, span=2.0)
    assert path[:, 0].tolist() == [-2, -1, 0, 1, 2]


def test_findings_in_words():
    assert diagnostics.collapse(0.06, 1, 2).message.startswith("posterior collapse: the decoder ignores z (KL 0.06")
    assert diagnostics.collapse(3.0, 2, 2) is None
    assert diagnostics.collapse(3.0, 3, 4).kind == "inactive_dims"
    assert diagnostics.collapse(None, 0, 4).kind == "collapse"
    assert diagnostics.prior_mismatch(0.38).kind == "prior_mismatch"
    assert diagnostics.prior_mismatch(0.01) is None
    assert diagnostics.active_units(np.array([[0.0, 1.0], [0.0, -1.0], [0.01, 0.5]])) == 1
