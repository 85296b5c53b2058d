"""Projections and their inverses."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from engine.projection import IdentityProjection, LocalInverse, PCAProjection, make_projection


@pytest.fixture()
def codes():
    rng = np.random.default_rng(0)
    return rng.normal(size=(500, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])


def test_pca_inverse_is_the_projection_onto_the_principal_plane(codes):
    p = PCAProjection().fit(codes)
    sk = PCA(2).fit(codes)
    back = p.inverse(p.transform(codes))
    expected = sk.inverse_transform(sk.transform(codes))
    assert np.allclose(back, expected, atol=1e-8)


def test_identity_picks_dims_and_fills_the_rest_with_the_mean(codes):
    p = IdentityProjection(dims=(2, 4)).fit(codes)
    assert np.array_equal(p.transform(codes), codes[:, [2, 4]])
    z = p.inverse([[1.0, -2.0]])[0]
    assert z[2] == 1.0 and z[4] == -2.0 and np.isclose(z[0], codes[:, 0].mean())


def test_local_inverse_is_exact_at_data_and_a_convex_mix_between():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    codes = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    inv = LocalInverse(xy, codes, k=3)
    assert np.allclose(inv(xy), codes)
    mid = inv([[0.5, 0.0]])[0]
    assert codes.min(0).min() <= mid.min() and mid.max() <= codes.max()


def test_local_inverse_serves_70k_points():
    rng = np.random.default_rng(1)
    inv = LocalInverse(rng.normal(size=(70_000, 2)), rng.normal(size=(70_000, 16)))
    assert inv(np.zeros((1, 2))).shape == (1, 16)


@pytest.mark.slow
def test_umap_fits_warm_starts_and_inverts():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.3, size=(70, 8)) for c in (0, 4, 8)])
    first = make_projection("umap", random_state=0, n_epochs=50)
    xy = first.fit_transform(blobs)
    assert xy.shape == (210, 2)
    again = make_projection("umap", random_state=0, n_epochs=50, init=xy).fit_transform(blobs)
    assert again.shape == (210, 2)
    assert np.allclose(first.inverse(xy[:1]), blobs[:1])
