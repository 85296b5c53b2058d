"""2-D projections of latent codes, each with a fast inverse (a 2-D point -> a code) that can
serve mouse dragging.

* ``IdentityProjection`` — two chosen latent dimensions; the others held at the mean code
  (or a supplied base code).
* ``PCAProjection``      — the top two principal axes; the inverse is exact.
* ``UMAPProjection``     — umap-learn, warm-started from a previous layout; the inverse is a
  local one (inverse-distance weighting of the nearest projected codes), because umap-learn's
  own ``inverse_transform`` rebuilds a Delaunay triangulation on every call (~10 s).
* ``TSNEProjection``     — scikit-learn's t-SNE with the same local inverse.

Every projection: ``fit(codes N×D) -> self``, ``transform(codes) -> N×2``,
``inverse(xy M×2) -> M×D``, ``fit_transform``; ``make_projection(name, **kw)`` builds one by key.
umap is imported only inside ``UMAPProjection.fit`` (its first import compiles for ~35 s).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "IdentityProjection", "LocalInverse", "PCAProjection", "Projection", "TSNEProjection",
    "UMAPProjection", "make_projection",
]


def _codes(codes, require_finite: bool = False) -> np.ndarray:
    """Fitted codes as a non-empty float64 N×D array (a 1-D array is N×1)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim == 1:
        codes = codes[:, None]
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError("Projections need a non-empty N×D array of codes.")
    if require_finite and not np.isfinite(codes).all():
        raise ValueError("Projections need finite codes (the model produced NaN or infinity).")
    return codes


def _finite_rows(codes: np.ndarray) -> np.ndarray:
    """The rows without NaN/infinity (a single zero code when there are none)."""
    finite = codes[np.isfinite(codes).all(axis=1)]
    return finite if len(finite) else np.zeros((1, codes.shape[1]))


def _points(xy) -> np.ndarray:
    """Query points as float64 M×2."""
    return np.asarray(xy, dtype=np.float64).reshape(-1, 2)


class LocalInverse:
    """Map 2-D points back to codes by inverse-distance weighting of the ``k`` nearest
    projected points' codes; a point on top of a projected point gets exactly its code.

    The result is always a convex combination of fitted codes. One query at N = 70,000 takes
    ~60 µs (a KD-tree lookup plus a k×D weighted sum).
    """

    def __init__(self, xy: np.ndarray, codes: np.ndarray, k: int = 8):
        xy, codes = _points(xy), np.asarray(codes, dtype=np.float64).reshape(len(xy), -1)
        keep = np.isfinite(xy).all(axis=1)
        if not keep.any():
            raise ValueError("A local inverse needs at least one finite projected point.")
        self.xy, self.codes = xy[keep], codes[keep]
        self.k = max(1, min(int(k), len(self.xy)))
        from scipy.spatial import cKDTree  # here, not at start-up: scipy.spatial takes 0.5 s to import
        self.tree = cKDTree(self.xy)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = _points(xy)
        dist, idx = self.tree.query(xy, k=self.k)
        dist, idx = dist.reshape(len(xy), -1), idx.reshape(len(xy), -1)
        weights = 1.0 / np.maximum(dist, 1e-12) ** 2
        exact = dist[:, 0] < 1e-12  # on a projected point (or a stack of duplicates): its code
        weights[exact] = 0.0
        weights[exact, 0] = 1.0
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", weights, self.codes[idx])


class Projection:
    """Base class: a fitted map from codes to the plane and back."""

    name = "projection"
    #: the inverse is exact and ``transform`` of a single new code is cheap
    exact = False

    def fit(self, codes) -> Projection:
        raise NotImplementedError

    def transform(self, codes) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, xy) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, codes) -> np.ndarray:
        return self.fit(codes).transform(codes)


class IdentityProjection(Projection):
    """Two latent dimensions as they are; ``inverse`` fills the others from ``base``
    (the mean finite fitted code unless one is supplied). 1-D codes are shown as (z, 0)."""

    name = "raw"
    exact = True

    def __init__(self, dims: tuple[int, int] = (0, 1), base: np.ndarray | None = None):
        self.dims = tuple(int(d) for d in dims)
        self.base = None if base is None else np.asarray(base, dtype=np.float64).reshape(-1)

    def fit(self, codes) -> IdentityProjection:
        codes = _codes(codes)
        if max(self.dims) >= codes.shape[1] and codes.shape[1] > 1:
            raise ValueError(f"Dimensions {self.dims} do not exist in {codes.shape[1]}-D codes.")
        if self.base is None:
            self.base = _finite_rows(codes).mean(axis=0)
        return self

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        if codes.shape[1] == 1:
            return np.column_stack([codes[:, 0], np.zeros(len(codes))])
        return codes[:, list(self.dims)].copy()

    def inverse(self, xy) -> np.ndarray:
        xy = _points(xy)
        out = np.repeat(self.base.reshape(1, -1), len(xy), axis=0)
        if out.shape[1] == 1:
            out[:, 0] = xy[:, 0]
        else:
            out[:, self.dims[0]] = xy[:, 0]
            out[:, self.dims[1]] = xy[:, 1]
        return out


class PCAProjection(Projection):
    """The top two principal axes; ``inverse`` is exact: ``mean + xy @ components``.

    Rows with NaN/infinity are left out of the fit. Fitted through the D×D covariance's eigendecomposition (~10 ms at 70,000×16, where an SVD
    of the data takes ~300 ms). Each axis is signed so its largest loading is positive, so
    refits on slowly changing codes do not mirror the map. Missing axes (D = 1, or all codes
    on a line) are zero rows: that coordinate is then always 0.
    """

    name = "pca"
    exact = True

    def fit(self, codes) -> PCAProjection:
        codes = _codes(codes)
        if not np.isfinite(codes).all():
            codes = _finite_rows(codes)
        self.mean = np.ones(len(codes)) @ codes / len(codes)  # BLAS; faster than codes.mean(0)
        centred = codes - self.mean
        values, vectors = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        top = vectors[:, ::-1][:, :2].T  # ≤ 2×D, orthonormal rows
        tol = max(values.max(), 0.0) * 1e-12
        top[values[::-1][: len(top)] <= tol] = 0.0  # no variance along it: not an axis
        top *= np.where(top[np.arange(len(top)), np.abs(top).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
        self.components = np.zeros((2, codes.shape[1]))
        self.components[: len(top)] = top
        self.explained_variance = np.zeros(2)
        self.explained_variance[: len(top)] = np.clip(values[::-1][: len(top)], 0, None) / max(len(codes) - 1, 1)
        return self

    def transform(self, codes) -> np.ndarray:
        return (np.atleast_2d(np.asarray(codes, dtype=np.float64)) - self.mean) @ self.components.T

    def inverse(self, xy) -> np.ndarray:
        return self.mean + _points(xy) @ self.components


class _Embedding(Projection):
    """A nonlinear embedding of the fitted codes with a local inverse."""

    def __init__(self, k: int = 8):
        self.k = k
        self.xy: np.ndarray | None = None

    def _finish(self, codes: np.ndarray, xy: np.ndarray) -> _Embedding:
        self.codes, self.xy = codes, np.asarray(xy, dtype=np.float64)
        self.local = LocalInverse(self.xy, codes, self.k)
        return self

    def _fitted_layout(self, codes: np.ndarray) -> np.ndarray | None:
        """The fitted layout when ``codes`` are exactly the fitted codes, else None."""
        if self.xy is not None and codes.shape == self.codes.shape and np.array_equal(codes, self.codes):
            return self.xy.copy()
        return None

    def inverse(self, xy) -> np.ndarray:
        return self.local(xy)

    def fit_transform(self, codes) -> np.ndarray:
        self.fit(codes)
        return self.xy.copy()


class UMAPProjection(_Embedding):
    """umap-learn's UMAP. ``init`` (N×2, a previous layout of the same points) warm-starts the
    optimisation so clusters stay where they were; with another N it is ignored. Fewer than 4
    codes fall back to a PCA layout. ``transform`` of new codes uses umap's own transform."""

    name = "umap"

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int | None = None,
                 init: np.ndarray | None = None, n_epochs: int | None = None, k: int = 8):
        super().__init__(k)
        self.n_neighbors, self.min_dist, self.random_state = n_neighbors, min_dist, random_state
        self.init, self.n_epochs = init, n_epochs
        self.model = None

    def fit(self, codes) -> UMAPProjection:
        codes = _codes(codes, require_finite=True)
        n = len(codes)
        if n < 4:
            self.model = None
            return self._finish(codes, PCAProjection().fit_transform(codes))
        import umap  # slow first import: keep it out of start-up

        init = "spectral"
        if self.init is not None:
            previous = np.asarray(self.init, dtype=np.float64)
            if previous.shape == (n, 2) and np.isfinite(previous).all():
                init = previous
        self.model = umap.UMAP(n_neighbors=max(2, min(self.n_neighbors, n - 1)), min_dist=self.min_dist,
                               random_state=self.random_state, init=init, n_epochs=self.n_epochs)
        with warnings.catch_warnings():  # "n_jobs overridden by setting random_state" is expected
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            xy = self.model.fit_transform(codes)
        return self._finish(codes, xy)

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        layout = self._fitted_layout(codes)
        if layout is not None:
            return layout
        if self.model is None:
            raise ValueError("This UMAP layout was fitted on too few codes to place new ones.")
        return np.asarray(self.model.transform(codes), dtype=np.float64)


class TSNEProjection(_Embedding):
    """scikit-learn's t-SNE. It cannot place new codes: ``transform`` of anything but the
    fitted codes raises ValueError. Fewer than 4 codes fall back to a PCA layout."""

    name = "tsne"

    def __init__(self, perplexity: float = 30.0, random_state: int | None = 0, k: int = 8):
        super().__init__(k)
        self.perplexity, self.random_state = perplexity, random_state

    def fit(self, codes) -> TSNEProjection:
        codes = _codes(codes, require_finite=True)
        if len(codes) < 4:
            return self._finish(codes, PCAProjection().fit_transform(codes))
        from sklearn.manifold import TSNE

        perplexity = min(self.perplexity, max(1.0, (len(codes) - 1) / 3))
        init = "pca" if codes.shape[1] >= 2 else "random"
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=self.random_state, init=init).fit_transform(codes)
        return self._finish(codes, xy)

    def transform(self, codes) -> np.ndarray:
        layout = self._fitted_layout(np.atleast_2d(np.asarray(codes, dtype=np.float64)))
        if layout is None:
            raise ValueError("t-SNE cannot place new codes; refit it on all of them.")
        return layout


_KINDS: dict[str, type[Projection]] = {
    "raw": IdentityProjection, "identity": IdentityProjection, "pca": PCAProjection,
    "umap": UMAPProjection, "tsne": TSNEProjection, "t-sne": TSNEProjection,
}


def make_projection(name: str, **kw) -> Projection:
    """A projection by key: "raw"/"identity", "pca", "umap", "tsne"; ``kw`` go to its constructor."""
    try:
        kind = _KINDS[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown projection {name!r}; choose one of raw, pca, umap, tsne.") from None
    return kind(**kw)
