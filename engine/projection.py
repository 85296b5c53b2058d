"""2-D projections of latent codes, each with a fast inverse (a 2-D point -> a code) that can
serve mouse dragging.

* ``IdentityProjection`` — two chosen latent dimensions; the others held at the mean code.
* ``PCAProjection``      — the top two principal axes; the inverse is exact.
* ``UMAPProjection``     — umap-learn, warm-started from a previous layout; the inverse is a
  local one (inverse-distance weighting of the nearest projected codes), because umap-learn's
  own ``inverse_transform`` rebuilds a Delaunay triangulation on every call (~10 s).
* ``TSNEProjection``     — scikit-learn's t-SNE with the same local inverse.

umap is imported only inside ``UMAPProjection.fit`` (its first import compiles for ~35 s).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _codes(codes) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError("Projections need a non-empty N×D array of codes.")
    return codes


class LocalInverse:
    """Map 2-D points back to codes by inverse-distance weighting of the ``k`` nearest
    projected points' codes; a point on top of a projected point gets exactly its code."""

    def __init__(self, xy: np.ndarray, codes: np.ndarray, k: int = 8):
        self.xy = np.asarray(xy, dtype=np.float64)
        self.codes = np.asarray(codes, dtype=np.float64)
        self.k = max(1, min(k, len(self.xy)))
        self.tree = cKDTree(self.xy)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        dist, idx = self.tree.query(xy, k=self.k)
        dist, idx = dist.reshape(len(xy), -1), idx.reshape(len(xy), -1)
        weights = 1.0 / np.maximum(dist, 1e-12) ** 2
        exact = dist[:, 0] < 1e-12
        weights[exact] = 0.0
        weights[exact, 0] = 1.0
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", weights, self.codes[idx])


class Projection:
    name = "projection"
    #: the inverse is exact and ``transform`` of a single new code is cheap
    exact = False

    def fit(self, codes) -> "Projection":
        raise NotImplementedError

    def transform(self, codes) -> np.ndarray:
        raise NotImplementedError

    def inverse(self, xy) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, codes) -> np.ndarray:
        return self.fit(codes).transform(codes)


class IdentityProjection(Projection):
    name = "raw"
    exact = True

    def __init__(self, dims: tuple[int, int] = (0, 1), base: np.ndarray | None = None):
        self.dims = tuple(dims)
        self.base = None if base is None else np.asarray(base, dtype=np.float64)

    def fit(self, codes) -> "IdentityProjection":
        codes = _codes(codes)
        if max(self.dims) >= codes.shape[1] and codes.shape[1] > 1:
            raise ValueError(f"Dimensions {self.dims} do not exist in {codes.shape[1]}-D codes.")
        if self.base is None:
            self.base = codes.mean(axis=0)
        return self

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        if codes.shape[1] == 1:
            return np.column_stack([codes[:, 0], np.zeros(len(codes))])
        return codes[:, list(self.dims)].copy()

    def inverse(self, xy) -> np.ndarray:
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        out = np.repeat(self.base.reshape(1, -1), len(xy), axis=0)
        if out.shape[1] == 1:
            out[:, 0] = xy[:, 0]
        else:
            out[:, self.dims[0]] = xy[:, 0]
            out[:, self.dims[1]] = xy[:, 1]
        return out


class PCAProjection(Projection):
    name = "pca"
    exact = True

    def fit(self, codes) -> "PCAProjection":
        codes = _codes(codes)
        self.mean = codes.mean(axis=0)
        centred = codes - self.mean
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        components = np.zeros((2, codes.shape[1]))
        n = min(2, vt.shape[0])
        components[:n] = vt[:n]
        self.components = components  # 2×D, orthonormal rows (a zero row where D < 2)
        return self

    def transform(self, codes) -> np.ndarray:
        return (np.atleast_2d(np.asarray(codes, dtype=np.float64)) - self.mean) @ self.components.T

    def inverse(self, xy) -> np.ndarray:
        return self.mean + np.atleast_2d(np.asarray(xy, dtype=np.float64)) @ self.components


class _Embedding(Projection):
    """A nonlinear embedding of the fitted codes with a local inverse."""

    def __init__(self, k: int = 8):
        self.k = k
        self.xy: np.ndarray | None = None

    def _finish(self, codes: np.ndarray, xy: np.ndarray) -> "_Embedding":
        self.codes, self.xy = codes, np.asarray(xy, dtype=np.float64)
        self.local = LocalInverse(self.xy, codes, self.k)
        return self

    def inverse(self, xy) -> np.ndarray:
        return self.local(xy)

    def fit_transform(self, codes) -> np.ndarray:
        self.fit(codes)
        return self.xy.copy()


class UMAPProjection(_Embedding):
    name = "umap"

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int | None = None,
                 init: np.ndarray | None = None, n_epochs: int | None = None, k: int = 8):
        super().__init__(k)
        self.n_neighbors, self.min_dist, self.random_state = n_neighbors, min_dist, random_state
        self.init, self.n_epochs = init, n_epochs

    def fit(self, codes) -> "UMAPProjection":
        import umap  # slow first import: keep it out of start-up

        codes = _codes(codes)
        n = len(codes)
        if n < 4:
            return self._finish(codes, PCAProjection().fit_transform(codes))
        init = "spectral"
        if self.init is not None and len(self.init) == n:
            init = np.asarray(self.init, dtype=np.float64)
        self.model = umap.UMAP(n_neighbors=min(self.n_neighbors, n - 1), min_dist=self.min_dist,
                               random_state=self.random_state, init=init, n_epochs=self.n_epochs)
        return self._finish(codes, self.model.fit_transform(codes))

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        if self.xy is not None and codes.shape == self.codes.shape and np.array_equal(codes, self.codes):
            return self.xy.copy()
        return self.model.transform(codes)


class TSNEProjection(_Embedding):
    name = "tsne"

    def __init__(self, perplexity: float = 30.0, random_state: int | None = 0, k: int = 8):
        super().__init__(k)
        self.perplexity, self.random_state = perplexity, random_state

    def fit(self, codes) -> "TSNEProjection":
        from sklearn.manifold import TSNE

        codes = _codes(codes)
        perplexity = min(self.perplexity, max(1.0, (len(codes) - 1) / 3))
        xy = TSNE(2, perplexity=perplexity, random_state=self.random_state, init="pca").fit_transform(codes)
        return self._finish(codes, xy)

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        if self.xy is not None and codes.shape == self.codes.shape and np.array_equal(codes, self.codes):
            return self.xy.copy()
        raise ValueError("t-SNE cannot place new codes; refit it on all of them.")


def make_projection(name: str, **kw) -> Projection:
    kinds = {"raw": IdentityProjection, "identity": IdentityProjection, "pca": PCAProjection,
             "umap": UMAPProjection, "tsne": TSNEProjection}
    try:
        return kinds[name.lower()](**kw)
    except KeyError:
        raise ValueError(f"Unknown projection {name!r}; choose one of raw, pca, umap, tsne.") from None
