"""The geometry the map draws beside the codes: a posterior's ellipse, the density of the
aggregate posterior and of the prior on the map's plane, attribute directions between two groups
of codes, and a run's point on the rate–distortion plane.

Every map is a linear or identity view of the latent space for these purposes: ``W`` (2×D) and
``mean`` (D) map a code z to ``W @ (z - mean)`` (the raw 2-D map: two rows of the identity and
mean 0; PCA: its first two components).  UMAP and t-SNE are not linear: no ellipse or density is
drawn there (``linear_map`` returns None for them).
"""

from __future__ import annotations

import math

import numpy as np


def posterior_ellipse(mu: np.ndarray, logvar: np.ndarray, W: np.ndarray, mean: np.ndarray | None = None,
                      n_sigma: float = 1.0, points: int = 64) -> np.ndarray:
    """The n-σ ellipse of N(mu, diag exp(logvar)) seen through ``z -> W (z - mean)``: a points×2
    polygon (closed: the last point equals the first).  For a 2-D latent and W = I it is exactly the
    encoder's σ along each axis."""
    mu = np.asarray(mu, dtype=np.float64)
    var = np.exp(np.asarray(logvar, dtype=np.float64))
    W = np.asarray(W, dtype=np.float64)
    centre = W @ (mu - (0.0 if mean is None else np.asarray(mean, dtype=np.float64)))
    cov = (W * var) @ W.T                                  # W diag(σ²) Wᵀ, 2×2
    values, vectors = np.linalg.eigh(cov)
    radii = n_sigma * np.sqrt(np.maximum(values, 0.0))
    t = np.linspace(0.0, 2.0 * math.pi, points)
    circle = np.stack([np.cos(t), np.sin(t)])              # 2×points
    return (centre[:, None] + vectors @ (radii[:, None] * circle)).T


def _gaussian_mixture_on_grid(centres: np.ndarray, covs: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                              weights: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
    """Σ_i w_i N(x; centre_i, cov_i) on the grid ``xs``×``ys`` (len(ys)×len(xs)), 2-D Gaussians."""
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)      # G×2
    n = len(centres)
    weights = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    density = np.zeros(len(grid))
    for start in range(0, n, chunk):
        c, s, w = centres[start:start + chunk], covs[start:start + chunk], weights[start:start + chunk]
        det = s[:, 0, 0] * s[:, 1, 1] - s[:, 0, 1] * s[:, 1, 0]
        det = np.maximum(det, 1e-300)
        # the inverse covariance [[a, b], [b, c]] written out: a 3-operand einsum was ~5x slower
        a, b, c_ = (s[:, 1, 1] / det)[:, None], (-0.5 * (s[:, 0, 1] + s[:, 1, 0]) / det)[:, None], (s[:, 0, 0] / det)[:, None]
        dx, dy = grid[None, :, 0] - c[:, 0, None], grid[None, :, 1] - c[:, 1, None]   # k×G each
        q = a * dx * dx + 2.0 * b * dx * dy + c_ * dy * dy
        density += (w / (2 * math.pi * np.sqrt(det))) @ np.exp(-0.5 * q)
    return density.reshape(len(ys), len(xs))


def aggregate_posterior_density(mus: np.ndarray, logvars: np.ndarray, W: np.ndarray, xs: np.ndarray,
                                ys: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """The density of the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n), seen through the map's
    linear view, on the grid (len(ys)×len(xs)); it integrates to ~1 over a grid that covers it."""
    mus = np.asarray(mus, dtype=np.float64)
    var = np.exp(np.asarray(logvars, dtype=np.float64))
    W = np.asarray(W, dtype=np.float64)
    centres = (mus - (0.0 if mean is None else np.asarray(mean, dtype=np.float64))) @ W.T
    covs = np.einsum("id,nd,jd->nij", W, var, W)
    return _gaussian_mixture_on_grid(centres, covs, np.asarray(xs, float), np.asarray(ys, float))


def standard_normal_density(W: np.ndarray, xs: np.ndarray, ys: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """The density of the prior N(0, I) seen through the map's linear view, on the grid."""
    W = np.asarray(W, dtype=np.float64)
    d = W.shape[1]
    centre = W @ (np.zeros(d) - (0.0 if mean is None else np.asarray(mean, dtype=np.float64)))
    return _gaussian_mixture_on_grid(centre[None], (W @ W.T)[None], np.asarray(xs, float), np.asarray(ys, float))


def attribute_direction(codes: np.ndarray, group_a, group_b) -> np.ndarray:
    """mean(B) − mean(A) in latent space (Latent Space Cartography's attribute vector)."""
    codes = np.asarray(codes, dtype=np.float64)
    a, b = codes[np.asarray(group_a)], codes[np.asarray(group_b)]
    if len(a) == 0 or len(b) == 0:
        raise ValueError("Both groups need at least one point.")
    return b.mean(0) - a.mean(0)


def along(z: np.ndarray, direction: np.ndarray, steps: int = 9, span: float = 1.0) -> np.ndarray:
    """Codes from z − span·direction to z + span·direction (steps×D), z in the middle."""
    t = np.linspace(-span, span, steps)[:, None]
    return np.asarray(z, dtype=np.float64)[None, :] + t * np.asarray(direction, dtype=np.float64)[None, :]


def rate_distortion(val: dict[str, list[float]]) -> tuple[float, float] | None:
    """(rate, distortion) of a run from its last validation epoch with both: rate = the KL term
    (nats per image), distortion = the reconstruction term (nats per image for normalised
    likelihoods; the run's own unit otherwise).  None without a KL term."""
    kl, rec = val.get("kl") or [], val.get("reconstruction") or []
    for k, r in zip(reversed(kl), reversed(rec)):
        if k is not None and r is not None and math.isfinite(k) and math.isfinite(r):
            return float(k), float(r)
    return None


def linear_map(projection, latent_dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(W, mean) with map point = W (z − mean) for a raw-dimensions or PCA map of ``latent_dim``-D
    codes; None for a map that is not linear (UMAP, t-SNE) or a 1-D latent."""
    from engine.projection import IdentityProjection, PCAProjection
    if isinstance(projection, IdentityProjection) and len(projection.dims) == 2 and latent_dim >= 2:
        W = np.zeros((2, latent_dim))
        W[0, projection.dims[0]] = W[1, projection.dims[1]] = 1.0
        return W, np.zeros(latent_dim)
    if isinstance(projection, PCAProjection) and getattr(projection, "components", None) is not None \
            and projection.components.shape == (2, latent_dim):
        return np.asarray(projection.components, dtype=np.float64), np.asarray(projection.mean, dtype=np.float64)
    return None
