"""2-D projections of latent codes, each with a fast inverse (a 2-D point -> a code) that can
serve mouse dragging.

* ``IdentityProjection`` — two chosen latent dimensions; the others held at the mean code
  (or a supplied base code).
* ``PCAProjection``      — the top two principal axes; the inverse is exact.
* ``UMAPProjection``     — umap-learn, handed exact nearest neighbours from a KD-tree
  (``precomputed_knn``: umap then skips pynndescent, whose compilation made the first fit of
  every process a minute long), warm-started from a previous layout with fewer epochs.  The
  inverse is a local one (inverse-distance weighting of the nearest projected codes), because
  umap-learn's own ``inverse_transform`` rebuilds a Delaunay triangulation on every call (~10 s).
* ``TSNEProjection``     — openTSNE's FFT-accelerated t-SNE, warm-started from a previous layout;
  its ``transform`` places new codes into the fitted layout without moving it; the same local
  inverse.
* Above ``FIT_MAX`` codes UMAP and t-SNE fit a seeded subsample and place the rest with the
  fitted model (``_Embedding._fit_subsample``).
* ``FittedLayout``       — a layout computed elsewhere (another process) with the same local
  inverse and a local forward map for new codes.

Every projection: ``fit(codes N×D) -> self``, ``transform(codes) -> N×2``,
``inverse(xy M×2) -> M×D``, ``fit_transform``; ``make_projection(name, **kw)`` builds one by key.
umap and openTSNE are imported only inside ``fit`` (umap's first fit in a process compiles numba
code for several seconds, a minute without numba's on-disk cache: ``warm_up()`` does it on a
tiny fit).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

__all__ = [
    "FittedLayout", "IdentityProjection", "LocalInverse", "PCAProjection", "Projection", "TSNEProjection",
    "UMAPProjection", "align_layout", "make_projection", "nearest_neighbours", "similarity_to", "warm_up", "WARM_UP_STAGES",
]

#: umap-learn's epochs for a fit from scratch (its own default is 500 below 10,000 codes, 200 above)
UMAP_EPOCHS = 200
#: and for a fit warm-started from the previous layout of the same points
UMAP_WARM_EPOCHS = 100
#: openTSNE's iterations from scratch: early exaggeration, then the normal phase (its defaults: 250, 500)
TSNE_EXAGGERATION_ITER, TSNE_ITER = 125, 250
#: and the normal phase alone when warm-started from the previous layout
TSNE_WARM_ITER = 150
#: UMAP and t-SNE fit at most this many codes (a seeded subsample); the rest are placed into the
#: fitted layout by the fitted model (openTSNE's ``transform``; for UMAP, inverse-distance weighting
#: of the layout of each code's nearest fitted codes, how umap-learn's ``transform`` starts), so a
#: whole dataset (70,000 codes) is mapped in seconds, not minutes
FIT_MAX = 10_000


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
    """The rows without NaN/infinity (a single zero code when there are none); ``codes`` itself when
    every row is finite (no copy: 70,000 probe codes each probe update)."""
    rows = np.isfinite(codes).all(axis=1)
    if rows.all():
        return codes
    finite = codes[rows]
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
        self._base = None if base is None else np.asarray(base, dtype=np.float64).reshape(-1)
        self._fitted: np.ndarray | None = None   # the fitted codes, until ``base`` is first asked for

    @property
    def base(self) -> np.ndarray | None:
        """The code ``inverse`` fills the other dimensions from: given, or the mean finite fitted
        code, computed when first needed (a probe update of 70,000 codes refits the raw map, and
        only a drag asks for it)."""
        if self._base is None and self._fitted is not None:
            self._base = _finite_rows(_codes(self._fitted)).mean(axis=0)
            self._fitted = None
        return self._base

    @base.setter
    def base(self, value) -> None:
        self._base, self._fitted = value, None

    def fit(self, codes) -> IdentityProjection:
        array = np.asarray(codes)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0 or not np.issubdtype(array.dtype, np.number):
            array = _codes(codes)   # raises the one ValueError for what cannot be fitted
        if max(self.dims) >= array.shape[1] and array.shape[1] > 1:
            raise ValueError(f"Dimensions {self.dims} do not exist in {array.shape[1]}-D codes.")
        if self._base is None:
            self._fitted = array
        return self

    def transform(self, codes) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes))
        if codes.shape[1] == 1:
            return np.column_stack([codes[:, 0].astype(np.float64), np.zeros(len(codes))])
        return codes[:, list(self.dims)].astype(np.float64)   # the two columns only, then float64 (a copy)

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


def nearest_neighbours(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every code among the codes (itself first), from a KD-tree:
    (indices int32 N×k, distances float32 N×k), the form umap-learn's ``precomputed_knn`` takes."""
    from sklearn.neighbors import NearestNeighbors

    k = max(1, min(int(k), len(codes)))
    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="kd_tree").fit(codes).kneighbors(codes)
    return idx.astype(np.int32), dist.astype(np.float32)


def similarity_to(xy: np.ndarray, previous: np.ndarray):
    """The move, turn and uniform scale (no mirror, no shear) that brings ``xy`` as close as it
    can to ``previous`` (the same points' earlier layout), as a function of M×2 points."""
    xy, previous = np.asarray(xy, dtype=np.float64), np.asarray(previous, dtype=np.float64)
    centre, target = xy.mean(0), previous.mean(0)
    a, b = xy - centre, previous - target
    u, sigma, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag([1.0, d]) @ vt
    norm = float((a * a).sum())
    scale = float(sigma[0] + d * sigma[1]) / norm if norm > 0 else 1.0
    return lambda points: (_points(points) - centre) @ rotation * scale + target


def align_layout(xy: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``xy`` moved, turned and scaled to lie as close as it can to ``previous``: a warm-started
    refit that umap or t-SNE rescaled or rotated as a whole then shows only what really changed."""
    return similarity_to(xy, previous)(xy)


class _LocalForward:
    """New codes placed by inverse-distance weighting of the layout of their ``k`` nearest
    fitted codes (how umap-learn's ``transform`` starts; enough to show where a code lies)."""

    def __init__(self, codes: np.ndarray, xy: np.ndarray, k: int = 8):
        from scipy.spatial import cKDTree

        self.codes, self.xy = codes, xy
        self.k = max(1, min(int(k), len(codes)))
        self.tree = cKDTree(codes)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        dist, idx = self.tree.query(codes, k=self.k)
        dist, idx = dist.reshape(len(codes), -1), idx.reshape(len(codes), -1)
        weights = 1.0 / np.maximum(dist, 1e-12) ** 2
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", weights, self.xy[idx])


class _Embedding(Projection):
    """A nonlinear embedding of the fitted codes with a local inverse."""

    def __init__(self, k: int = 8):
        self.k = k
        self.xy: np.ndarray | None = None
        self._forward: _LocalForward | None = None

    def _finish(self, codes: np.ndarray, xy: np.ndarray) -> _Embedding:
        self.codes, self.xy = codes, np.asarray(xy, dtype=np.float64)
        self.local = LocalInverse(self.xy, codes, self.k)
        self._forward = None
        return self

    def _fitted_layout(self, codes: np.ndarray) -> np.ndarray | None:
        """The fitted layout when ``codes`` are exactly the fitted codes, else None."""
        if self.xy is not None and codes.shape == self.codes.shape and np.array_equal(codes, self.codes):
            return self.xy.copy()
        return None

    def _warm_start(self, n: int) -> np.ndarray | None:
        """The supplied previous layout when it fits ``n`` points (a finite n×2 array), else None."""
        init = getattr(self, "init", None)
        if init is None:
            return None
        previous = np.asarray(init, dtype=np.float64)
        return previous if previous.shape == (n, 2) and np.isfinite(previous).all() else None

    def _place_locally(self, codes: np.ndarray) -> np.ndarray:
        if self._forward is None:
            self._forward = _LocalForward(self.codes, self.xy, self.k)
        return self._forward(codes)

    def transform(self, codes) -> np.ndarray:
        """The fitted layout for the fitted codes; new codes placed among their nearest fitted codes."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        layout = self._fitted_layout(codes)
        return layout if layout is not None else self._place_locally(codes)

    def inverse(self, xy) -> np.ndarray:
        return self.local(xy)

    def fit_transform(self, codes) -> np.ndarray:
        self.fit(codes)
        return self.xy.copy()

    def _fit_subsample(self, codes: np.ndarray) -> _Embedding:
        """Fit ``FIT_MAX`` of the codes (seeded, the same ones for the same count), place the rest
        with ``_place_rest``; a previous layout of all the codes warm-starts the fitted part."""
        n = len(codes)
        chosen = np.sort(np.random.default_rng(0).choice(n, FIT_MAX, replace=False))
        rest = np.setdiff1d(np.arange(n), chosen)
        init = getattr(self, "init", None)
        previous = self._warm_start(n)
        if init is not None:
            self.init = previous[chosen] if previous is not None else None
        try:
            self.fit(codes[chosen])
        finally:
            if init is not None:
                self.init = init
        xy = np.empty((n, 2))
        xy[chosen] = self.xy
        xy[rest] = self._place_rest(codes[rest])
        self.fitted_subset = chosen
        return self._finish(codes, xy)

    def _place_rest(self, codes: np.ndarray) -> np.ndarray:
        return self._place_locally(codes)


class FittedLayout(_Embedding):
    """A layout of ``codes`` computed elsewhere (the projection process), with the local inverse.
    ``fit`` is a no-op: the layout is given."""

    def __init__(self, name: str, codes, xy, k: int = 8):
        super().__init__(k)
        self.name = name
        codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
        self._finish(codes, _points(xy))

    def fit(self, codes) -> FittedLayout:
        return self


class UMAPProjection(_Embedding):
    """umap-learn's UMAP on exact KD-tree neighbours (``precomputed_knn``). ``init`` (N×2, a
    previous layout of the same points) warm-starts the optimisation with ``UMAP_WARM_EPOCHS``
    epochs so clusters stay where they were; with another N it is ignored. Fewer than 4 codes
    fall back to a PCA layout. ``transform`` places new codes among their nearest fitted codes."""

    name = "umap"

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, random_state: int | None = None,
                 init: np.ndarray | None = None, n_epochs: int | None = None, k: int = 8):
        super().__init__(k)
        self.n_neighbors, self.min_dist, self.random_state = n_neighbors, min_dist, random_state
        self.init, self.n_epochs = init, n_epochs
        self.model = None

    def fit(self, codes) -> UMAPProjection:
        codes = _codes(codes, require_finite=True)
        if len(codes) > FIT_MAX:
            return self._fit_subsample(codes)
        n = len(codes)
        if n < 4:
            self.model = None
            return self._finish(codes, PCAProjection().fit_transform(codes))
        import umap  # slow first import: keep it out of start-up

        previous = self._warm_start(n)
        n_neighbors = max(2, min(self.n_neighbors, n - 1))
        epochs = self.n_epochs or (UMAP_EPOCHS if previous is None else UMAP_WARM_EPOCHS)
        knn_indices, knn_dists = nearest_neighbours(codes, n_neighbors)
        self.model = umap.UMAP(n_neighbors=n_neighbors, min_dist=self.min_dist, random_state=self.random_state,
                               init="spectral" if previous is None else previous, n_epochs=epochs,
                               precomputed_knn=(knn_indices, knn_dists, None), tqdm_kwds={"disable": True})
        with warnings.catch_warnings():  # "n_jobs overridden by setting random_state", "transform won't work"
            warnings.filterwarnings("ignore", category=UserWarning, module="umap")
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            xy = self.model.fit_transform(codes)
        return self._finish(codes, xy if previous is None else align_layout(xy, previous))


class TSNEProjection(_Embedding):
    """openTSNE's t-SNE (FFT-accelerated gradients, exact KD-tree neighbours). ``init`` (N×2, a
    previous layout of the same points) warm-starts it: only ``TSNE_WARM_ITER`` iterations of
    the normal phase, no early exaggeration, so a live layout drifts instead of jumping.
    ``transform`` of new codes places them into the fitted layout (openTSNE's ``transform``)
    without moving the fitted points. Fewer than 4 codes fall back to a PCA layout."""

    name = "tsne"

    def __init__(self, perplexity: float = 30.0, random_state: int | None = 0, init: np.ndarray | None = None,
                 n_iter: int | None = None, n_jobs: int = 1, k: int = 8):
        super().__init__(k)
        self.perplexity, self.random_state, self.init, self.n_iter, self.n_jobs = perplexity, random_state, init, n_iter, n_jobs
        self.embedding = None
        self._align = None

    def fit(self, codes) -> TSNEProjection:
        codes = _codes(codes, require_finite=True)
        if len(codes) > FIT_MAX:
            return self._fit_subsample(codes)
        n = len(codes)
        self.embedding = None
        if n < 4:
            return self._finish(codes, PCAProjection().fit_transform(codes))
        from openTSNE import TSNEEmbedding, affinity
        from openTSNE.nearest_neighbors import Sklearn

        perplexity = float(min(self.perplexity, max(1.0, (n - 1) / 3)))
        k = max(1, min(n - 1, int(3 * perplexity)))
        knn = Sklearn(codes, k, metric="euclidean", n_jobs=self.n_jobs, knn_kwargs={"algorithm": "kd_tree"})
        affinities = affinity.PerplexityBasedNN(perplexity=perplexity, n_jobs=self.n_jobs, knn_index=knn)
        previous = self._warm_start(n)
        # FFT gradients from 1,000 codes (grid cells of 2 units: 3× faster than openTSNE's 1 at 5,000
        # codes, KL divergence within 1%); Barnes-Hut below, where the FFT grid's fixed cost dominates
        common = dict(n_jobs=self.n_jobs, random_state=self.random_state)
        common |= dict(negative_gradient_method="fft", ints_in_interval=2) if n >= 1000 else \
            dict(negative_gradient_method="bh")
        if previous is None:
            init = PCAProjection().fit_transform(codes)
            init = init / max(float(np.std(init[:, 0])), 1e-12) * 1e-4  # openTSNE's recommended scale
            embedding = TSNEEmbedding(init, affinities, **common)
            embedding = embedding.optimize(TSNE_EXAGGERATION_ITER, exaggeration=12, momentum=0.5)
            embedding = embedding.optimize(self.n_iter or TSNE_ITER, momentum=0.8)
        else:
            embedding = TSNEEmbedding(previous.copy(), affinities, **common)
            embedding = embedding.optimize(self.n_iter or TSNE_WARM_ITER, momentum=0.8)
        self.embedding = embedding
        xy = np.array(embedding, dtype=np.float64)  # a copy: openTSNE's transform recentres its array in place
        self._align = None if previous is None else similarity_to(xy, previous)
        return self._finish(codes, xy if self._align is None else self._align(xy))

    def _place_rest(self, codes: np.ndarray) -> np.ndarray:
        return self.transform(codes)

    def transform(self, codes) -> np.ndarray:
        """The fitted layout for the fitted codes; new codes placed into it by openTSNE."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        layout = self._fitted_layout(codes)
        if layout is not None:
            return layout
        if self.embedding is None:  # fitted on too few codes for t-SNE
            return self._place_locally(codes)
        placed = np.asarray(self.embedding.transform(codes), dtype=np.float64)
        return placed if self._align is None else self._align(placed)


WARM_UP_STAGES = ("tsne", "umap")


def warm_up(stages=WARM_UP_STAGES) -> float:
    """Get the slow projections ready, so that the first real map is quick; the seconds it took.
    Stage "tsne": import openTSNE and scikit-learn's neighbours and run a tiny t-SNE (about a
    second); stage "umap": import umap-learn and compile its numba code on tiny fits, one from
    scratch and one warm-started (seconds; ten or more without numba's on-disk cache)."""
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(64, 4))
    if "tsne" in stages:
        TSNEProjection(perplexity=5, n_iter=5).fit(codes)
    if "umap" in stages:
        xy = UMAPProjection(n_neighbors=8, random_state=0, n_epochs=5).fit_transform(codes)
        UMAPProjection(n_neighbors=8, random_state=0, n_epochs=5, init=xy).fit(codes)
    return time.perf_counter() - start


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
