"""Projections and their inverses."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from engine.projection import (
    FittedLayout,
    IdentityProjection,
    LocalInverse,
    PCAProjection,
    TSNEProjection,
    align_layout,
    make_projection,
    nearest_neighbours,
    warm_up,
)


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
    # warm start from a mirrored layout (and another seed): the clusters follow the init.
    # umap rescales its init, so compare normalised cluster centres.
    def centres(layout):
        unit = (layout - layout.min(0)) / np.ptp(layout, axis=0)
        return np.array([unit[i * 70:(i + 1) * 70].mean(0) for i in range(3)])

    mirrored = xy * [-1.0, 1.0]
    warm = make_projection("umap", random_state=1, n_epochs=50, init=mirrored)
    again = warm.fit_transform(blobs)
    assert again.shape == (210, 2) and np.isfinite(again).all()
    assert np.abs(centres(again) - centres(mirrored)).max() < 0.25
    assert np.allclose(first.inverse(xy[:1]), blobs[:1])
    between = warm.inverse((again[:1] + again[70:71]) / 2)[0]
    assert between.shape == (8,) and blobs.min() <= between.min() and between.max() <= blobs.max()
    assert warm.transform(blobs[:2] + 0.01).shape == (2, 2)  # new codes placed among their neighbours
    assert np.abs(centres(again) - centres(mirrored)).max() < 0.25


@pytest.mark.slow
def test_umap_warm_start_uses_fewer_epochs_and_stays_aligned():
    warm_up()  # compiled here, so the fits below are timed without numba's compilation
    blobs = blob_codes(n_per=200)
    first = make_projection("umap", random_state=0).fit(blobs)
    moved = blobs + np.random.default_rng(1).normal(scale=0.05, size=blobs.shape)
    warm = make_projection("umap", random_state=0, init=first.xy).fit(moved)
    assert warm.model.n_epochs < first.model.n_epochs
    span = np.ptp(first.xy, axis=0).mean()
    assert np.linalg.norm(warm.xy - first.xy, axis=1).mean() / span < 0.1  # aligned to the layout shown


def test_pca_is_fast_to_refit_without_mirroring(codes):
    first = PCAProjection().fit(codes)
    again = PCAProjection().fit(codes + 1e-3 * np.random.default_rng(2).normal(size=codes.shape))
    assert np.all(np.sum(first.components * again.components, axis=1) > 0.99)  # same signs
    assert np.allclose(first.components @ first.components.T, np.eye(2), atol=1e-10)


@pytest.mark.parametrize("shape", [(1, 5), (2, 5), (5, 1), (4, 3)])
def test_pca_handles_few_codes_and_one_dimension(shape):
    codes = np.arange(np.prod(shape), dtype=float).reshape(shape) ** 1.5
    p = PCAProjection().fit(codes)
    xy = p.transform(codes)
    assert xy.shape == (shape[0], 2) and np.isfinite(xy).all()
    assert p.inverse(xy).shape == shape
    if shape[1] == 1 or shape[0] <= 2:  # the codes lie on a line: the inverse recovers them
        assert np.allclose(p.inverse(xy), codes)


def test_pca_and_identity_ignore_non_finite_rows(codes):
    noisy = codes.copy()
    noisy[3] = np.nan
    p = PCAProjection().fit(noisy)
    assert np.isfinite(p.components).all() and np.allclose(p.mean, np.delete(codes, 3, axis=0).mean(0))
    assert np.isfinite(IdentityProjection().fit(noisy).base).all()


def test_identity_uses_a_supplied_base_code(codes):
    base = np.arange(6.0)
    z = IdentityProjection(dims=(0, 1), base=base).fit(codes).inverse([3.0, 4.0])
    assert np.array_equal(z, [[3.0, 4.0, 2.0, 3.0, 4.0, 5.0]])


def test_identity_refuses_missing_dims(codes):
    with pytest.raises(ValueError):
        IdentityProjection(dims=(0, 9)).fit(codes)


def test_local_inverse_with_duplicates_and_few_points():
    xy = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    codes = np.array([[1.0, 1.0], [1.0, 1.0], [3.0, 3.0]])
    inv = LocalInverse(xy, codes)  # k clamps to 3
    assert np.allclose(inv([[0.0, 0.0]]), [[1.0, 1.0]])
    single = LocalInverse(xy[:1], codes[:1])
    assert np.allclose(single([[5.0, 5.0], [0.0, 1.0]]), [[1.0, 1.0], [1.0, 1.0]])


def test_local_inverse_mixes_towards_the_nearer_code():
    inv = LocalInverse(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0], [1.0]]), k=2)
    near_first, middle = inv([[0.2, 0.0], [0.5, 0.0]])[:, 0]
    assert 0.0 < near_first < 0.5 and np.isclose(middle, 0.5)


def test_make_projection_by_name():
    assert isinstance(make_projection("raw"), IdentityProjection)
    assert isinstance(make_projection("identity", dims=(1, 2)), IdentityProjection)
    assert isinstance(make_projection("PCA"), PCAProjection)
    with pytest.raises(ValueError, match="Unknown projection"):
        make_projection("isomap")


def test_embeddings_refuse_empty_or_non_finite_codes():
    with pytest.raises(ValueError):
        make_projection("pca").fit(np.zeros((0, 4)))
    with pytest.raises(ValueError):
        make_projection("tsne").fit(np.full((10, 3), np.nan))


def test_tsne_lays_out_the_fitted_codes_and_inverts_locally():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.2, size=(20, 4)) for c in (0, 5)])
    p = TSNEProjection(perplexity=5).fit(blobs)
    xy = p.transform(blobs)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert np.allclose(p.inverse(xy[5:6]), blobs[5:6])
    # new codes are placed into the fitted layout (openTSNE's transform), beside their own cluster
    placed = p.transform(np.concatenate([blobs[:3], blobs[20:23]]) + 0.01)
    assert placed.shape == (6, 2) and np.isfinite(placed).all()
    first, second = xy[:20].mean(0), xy[20:].mean(0)
    assert (np.linalg.norm(placed[:3] - first, axis=1) < np.linalg.norm(placed[:3] - second, axis=1)).all()
    assert (np.linalg.norm(placed[3:] - second, axis=1) < np.linalg.norm(placed[3:] - first, axis=1)).all()
    assert np.array_equal(p.transform(blobs), xy)  # placing new codes moved none of the fitted ones


def blob_codes(n_per: int = 70, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.3, size=(n_per, dim)) for c in (0, 4, 8)])


def test_tsne_warm_start_drifts_instead_of_jumping():
    blobs = blob_codes()
    first = TSNEProjection(perplexity=10).fit(blobs)
    moved = blobs + np.random.default_rng(1).normal(scale=0.05, size=blobs.shape)  # the next probe's codes
    warm = TSNEProjection(perplexity=10, init=first.xy).fit(moved)
    cold = TSNEProjection(perplexity=10, random_state=5).fit(moved)
    span = np.ptp(first.xy, axis=0).mean()
    drift = np.linalg.norm(warm.xy - first.xy, axis=1).mean() / span
    assert drift < 0.1, drift
    assert drift < np.linalg.norm(align_layout(cold.xy, first.xy) - first.xy, axis=1).mean() / span
    assert np.allclose(warm.inverse(warm.xy[:1]), moved[:1])
    placed = warm.transform(moved[:2] + 0.01)  # new codes land in the aligned frame of the layout shown
    assert np.linalg.norm(placed - warm.xy[:2], axis=1).max() < 0.25 * span


def test_align_layout_undoes_a_turn_a_scale_and_a_move_but_never_mirrors():
    xy = np.random.default_rng(0).normal(size=(50, 2))
    turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    assert np.allclose(align_layout(3.0 * xy @ turn + [5.0, -2.0], xy), xy)
    mirrored = align_layout(xy * [-1.0, 1.0], xy)
    assert not np.allclose(mirrored, xy)  # a mirror image stays a mirror image (turned, not flipped)


def test_nearest_neighbours_are_exact_and_start_with_the_code_itself():
    codes = np.random.default_rng(0).normal(size=(300, 5))
    idx, dist = nearest_neighbours(codes, 15)
    assert idx.shape == dist.shape == (300, 15) and idx.dtype == np.int32 and dist.dtype == np.float32
    assert (idx[:, 0] == np.arange(300)).all() and (dist[:, 0] == 0).all()
    brute = np.sort(np.linalg.norm(codes[:, None] - codes[None], axis=2), axis=1)[:, :15]
    assert np.allclose(dist, brute, atol=1e-5)


def test_fitted_layout_inverts_and_places_new_codes_locally():
    codes = blob_codes(n_per=10, dim=3)
    xy = np.concatenate([np.full((10, 2), c, float) for c in (0.0, 5.0, 10.0)]) + \
        np.random.default_rng(2).normal(scale=0.1, size=(30, 2))
    layout = FittedLayout("umap", codes, xy)
    assert layout.name == "umap" and not layout.exact
    assert np.array_equal(layout.fit_transform(codes), xy)
    assert np.allclose(layout.inverse(xy[4:5]), codes[4:5])
    assert np.linalg.norm(layout.transform(codes[12:13] + 0.01) - xy[10:20].mean(0)) < 1.0


@pytest.mark.parametrize("name", ["umap", "tsne"])
def test_embeddings_fall_back_to_pca_for_three_codes(name):
    codes = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
    p = make_projection(name).fit(codes)
    assert p.transform(codes).shape == (3, 2)
    assert np.allclose(p.inverse(p.transform(codes)), codes)


def _clusters(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centres = rng.normal(scale=8.0, size=(4, 6))
    return centres[labels] + rng.normal(size=(n, 6)), labels


def _separated(xy: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.neighbors import KNeighborsClassifier
    half = len(xy) // 2
    return KNeighborsClassifier(5).fit(xy[:half], labels[:half]).score(xy[half:], labels[half:])


@pytest.mark.parametrize("name", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_a_large_set_is_fitted_on_a_subsample_and_the_rest_placed_by_the_model(name, monkeypatch):
    import engine.projection as projection
    monkeypatch.setattr(projection, "FIT_MAX", 400)
    codes, labels = _clusters(1500)
    fitted = []
    cls = type(projection.make_projection(name))
    original = cls.fit

    def counting_fit(self, c):
        fitted.append(len(np.atleast_2d(c)))
        return original(self, c)

    monkeypatch.setattr(cls, "fit", counting_fit)
    p = projection.make_projection(name, random_state=0)
    xy = p.fit_transform(codes)
    assert fitted == [1500, 400], fitted   # the whole set asked for, 400 fitted
    assert xy.shape == (1500, 2) and np.isfinite(xy).all()
    assert len(p.fitted_subset) == 400
    assert _separated(xy, labels) > 0.95
    assert np.array_equal(p.transform(codes), xy)   # the layout of the codes it was given
    back = p.inverse(xy[:5])
    assert back.shape == (5, 6)
