"""Projection costs at MNIST scale: PCA fit time and the latency of the 2-D -> code inverse.

Run: ``python benchmarks/bench_projection.py [--points 70000] [--dim 16] [--umap-inverse]``

* PCA fit on N×D codes: ours (covariance eigendecomposition) vs scikit-learn ``PCA(2)`` vs a
  NumPy SVD of the data.
* Inverse of one point (what mouse dragging needs) and of a 64×64 grid (the manifold overlay):
  PCA's exact inverse and the local inverse used by UMAP/t-SNE (k = 8 nearest projected points).
* With ``--umap-inverse``: fit UMAP on the codes (slow: about a minute at 70k on two cores) and
  time umap-learn's own ``inverse_transform`` of one point once, against our local inverse of
  the same layout.
Synthetic codes: 10 Gaussian clusters in D dimensions, the size of MNIST's encoded training set.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.projection import LocalInverse, PCAProjection, make_projection  # noqa: E402


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def synthetic_codes(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(10, dim))
    return (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the one-point inverse")
    parser.add_argument("--umap-inverse", action="store_true", help="also time umap-learn's inverse_transform (slow)")
    args = parser.parse_args()

    from sklearn.decomposition import PCA

    codes = synthetic_codes(args.points, args.dim)
    print(f"codes: {args.points} x {args.dim} (float32)")

    fit_ours = median_ms(lambda: PCAProjection().fit(codes), 5)
    fit_sklearn = median_ms(lambda: PCA(2).fit(codes), 5)
    fit_svd = median_ms(lambda: np.linalg.svd(codes - codes.mean(0), full_matrices=False), 3)
    print(f"PCA fit:      ours {fit_ours:8.1f} ms | sklearn PCA(2) {fit_sklearn:8.1f} ms "
          f"({fit_sklearn / fit_ours:.1f}x) | numpy SVD {fit_svd:8.1f} ms ({fit_svd / fit_ours:.1f}x)")

    pca = PCAProjection().fit(codes)
    xy = pca.transform(codes)
    one = xy[:1] + 0.01
    grid = np.stack(np.meshgrid(np.linspace(*np.percentile(xy[:, 0], [1, 99]), 64),
                                np.linspace(*np.percentile(xy[:, 1], [1, 99]), 64)), -1).reshape(-1, 2)
    print(f"PCA inverse:  one point {median_ms(lambda: pca.inverse(one), args.repeats) * 1000:8.1f} us | "
          f"64x64 grid {median_ms(lambda: pca.inverse(grid), 20):6.2f} ms")

    start = time.perf_counter()
    local = LocalInverse(xy, codes, k=8)
    build = (time.perf_counter() - start) * 1000
    print(f"local inverse (k=8): build {build:6.1f} ms | "
          f"one point {median_ms(lambda: local(one), args.repeats) * 1000:8.1f} us | "
          f"64x64 grid {median_ms(lambda: local(grid), 20):6.2f} ms")

    if args.umap_inverse:
        start = time.perf_counter()
        umap_projection = make_projection("umap", random_state=0).fit(codes)
        print(f"UMAP fit: {time.perf_counter() - start:.1f} s")
        layout_point = umap_projection.xy[:1] + 0.01
        ours = median_ms(lambda: umap_projection.inverse(layout_point), args.repeats)
        start = time.perf_counter()
        umap_projection.model.inverse_transform(layout_point)
        theirs = (time.perf_counter() - start) * 1000
        print(f"UMAP inverse of one point: ours {ours * 1000:8.1f} us | umap-learn inverse_transform "
              f"{theirs:10.1f} ms | speed-up {theirs / ours:,.0f}x")


if __name__ == "__main__":
    main()
