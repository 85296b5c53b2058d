"""Projection costs: PCA fit time and the 2-D -> code inverse at MNIST scale; UMAP and t-SNE maps
of 5,000 codes after launch and live; openTSNE against scikit-learn's t-SNE.

Run: ``python benchmarks/bench_projection.py [--points 70000] [--dim 16] [--umap-inverse]``
     ``python benchmarks/bench_projection.py --maps [--map-points 5000] [--updates 3] [--cold-cache]``
     ``python benchmarks/bench_projection.py --tsne [--map-points 5000]``

* PCA fit on N×D codes: ours (covariance eigendecomposition) vs scikit-learn ``PCA(2)`` vs a
  NumPy SVD of the data.
* Inverse of one point (what mouse dragging needs) and of a 64×64 grid (the manifold overlay):
  PCA's exact inverse and the local inverse used by UMAP/t-SNE (k = 8 nearest projected points).
* With ``--umap-inverse``: fit UMAP on the codes (slow: about a minute at 70k on two cores) and
  time umap-learn's own ``inverse_transform`` of one point once, against our local inverse of
  the same layout.
* With ``--maps``: the app's way, through ``explorer.map.projection_worker.ProjectionWorker`` and
  its child process, timed from the worker's warm-up (the map starts it when the window is
  shown): the first UMAP map of ``--map-points`` codes requested at once (or
  ``--request-after`` seconds later), then ``--updates`` later maps of drifting codes
  warm-started from the last layout, as while training; the same for t-SNE with a fresh worker.  Baseline, in the same run: a fresh
  process that imports umap-learn and fits it with its defaults twice (pynndescent, 500
  epochs), and one that fits scikit-learn's TSNE twice.  Every side runs on one thread
  (OMP/BLAS/numba 1; umap-learn with a random_state is single-threaded) at the projection
  process's priority (nice ``CHILD_NICE``).  ``--cold-cache``
  points numba at an empty cache folder, as on a machine where umap never ran; ``--after-install``
  fills such an empty folder with ``tools/warm_caches.py`` first, as ``make run`` and ``make test``
  do after installing.
* With ``--tsne``: openTSNE (ours, engine.projection.TSNEProjection) against scikit-learn's
  TSNE on the same ``--map-points`` codes in this process, one thread each: time, KL
  divergence, and how many of each code's 10 nearest codes stay among its 10 nearest points.
Synthetic codes: 10 Gaussian clusters in D dimensions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[1]

#: a fresh process that fits the library's defaults twice and prints the seconds since it started
BASELINE = """
import os, time, sys
start = time.perf_counter()
os.nice(int(sys.argv[3]))  # the priority our projection process runs at
import numpy as np
codes = np.load(sys.argv[1])
if sys.argv[2] == "umap":
    import umap
    fit = lambda: umap.UMAP(random_state=0).fit_transform(codes)
else:
    from sklearn.manifold import TSNE
    fit = lambda: TSNE(n_components=2, random_state=0, init="pca", n_jobs=1).fit_transform(codes)
fit(); first = time.perf_counter() - start
t = time.perf_counter(); fit(); second = time.perf_counter() - t
print("RESULT", first, second)
"""


def drifting(codes: np.ndarray, updates: int, seed: int = 1) -> list[np.ndarray]:
    """The codes of later probe updates: each a small step from the last, as while training."""
    rng = np.random.default_rng(seed)
    out, current = [], codes
    for _ in range(updates):
        current = (current + rng.normal(scale=0.1, size=codes.shape)).astype(np.float32)
        out.append(current)
    return out


def maps_after_launch(name: str, codes: np.ndarray, updates: int, env: dict, delay_s: float = 0.0):
    """The app's path: a fresh ProjectionWorker (its child process) warmed up as the window shows
    it, the first map requested ``delay_s`` later, then warm-started maps of drifting codes.
    Returns (seconds from launch to the first map, [seconds for each later map])."""
    from PySide6.QtCore import QCoreApplication

    from explorer.map.live_layout import LAYOUT_PARAMS
    from explorer.map.projection_worker import ProjectionWorker

    app = QCoreApplication.instance() or QCoreApplication([])
    saved = dict(os.environ)
    os.environ.update(env)
    results = []
    try:
        start = time.perf_counter()
        worker = ProjectionWorker()
        worker.computed.connect(lambda result: results.append((time.perf_counter(), result[2])))

        def wait(count: int) -> None:
            while len(results) < count:
                app.processEvents()
                time.sleep(0.005)

        worker.warm_up()
        while time.perf_counter() - start < delay_s:
            app.processEvents()
            time.sleep(0.005)
        worker.request(name, codes, **LAYOUT_PARAMS[name])
        wait(1)
        first = results[-1][0] - start
        later = []
        for moved in drifting(codes, updates):
            t = time.perf_counter()
            worker.request(name, moved, **LAYOUT_PARAMS[name], init=results[-1][1])
            wait(len(results) + 1)
            later.append(results[-1][0] - t)
        worker.shutdown()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return first, later


def baseline(name: str, path: Path, env: dict) -> tuple[float, float]:
    from engine.projection_service import CHILD_NICE

    proc = subprocess.run([sys.executable, "-c", BASELINE, str(path), name, str(CHILD_NICE)], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"the {name} baseline failed:\n{proc.stderr[-2000:]}")
    first, second = map(float, line.split()[1:])
    return first, second


def bench_maps(args) -> dict:
    codes = synthetic_codes(args.map_points, args.dim)
    env = dict(ONE_THREAD)
    cache = tempfile.TemporaryDirectory() if args.cold_cache or args.after_install else None
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = cache.name
    if args.after_install:   # an empty cache filled as `make run` fills it after installing
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "tools" / "warm_caches.py")], check=True, cwd=ROOT,
                       env={**os.environ, **env}, stdout=subprocess.DEVNULL)
        print(f"tools/warm_caches.py filled an empty numba cache in {time.perf_counter() - start:.1f} s")
        cache_kept, cache = cache, None   # both sides use the filled cache
    print(f"maps of {args.map_points} x {args.dim} codes, one thread each side"
          + (", numba cache empty" if cache else ", numba's on-disk cache as found" if not args.after_install
             else ", numba cache as the install left it"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "codes.npy"
        np.save(path, codes)
        for name, title, library in (("umap", "UMAP", "umap-learn defaults"), ("tsne", "t-SNE", "scikit-learn TSNE")):
            if cache is not None and name == "tsne":  # a fresh empty cache for each side
                cache.cleanup()
                cache = tempfile.TemporaryDirectory()
                env["NUMBA_CACHE_DIR"] = cache.name
            first, later = maps_after_launch(name, codes, args.updates, env, args.request_after)
            if cache is not None:
                cache.cleanup()
                cache = tempfile.TemporaryDirectory()
                env["NUMBA_CACHE_DIR"] = cache.name
            base_first, base_second = baseline(name, path, env)
            results[name] = {"first_s": first, "later_s": later, "baseline_first_s": base_first,
                             "baseline_second_s": base_second}
            print(f"{title:>6} first map after launch: ours {first:6.1f} s | {library} {base_first:6.1f} s "
                  f"({base_first / first:.1f}x)   target <= 10 s")
            print(f"{title:>6} later maps (warm starts): ours {', '.join(f'{t:.1f}' for t in later)} s, "
                  f"max {max(later):.1f} s | {library}, second fit {base_second:6.1f} s "
                  f"({base_second / max(later):.1f}x)   target <= 5 s")
    if cache is not None:
        cache.cleanup()
    if args.after_install:
        cache_kept.cleanup()
    return results


def neighbours_kept(codes: np.ndarray, xy: np.ndarray, k: int = 10) -> float:
    """The mean fraction of each code's k nearest codes that are among its k nearest points."""
    from engine.projection import nearest_neighbours
    near_codes, _ = nearest_neighbours(codes, k + 1)
    near_xy, _ = nearest_neighbours(xy, k + 1)
    return float(np.mean([len(set(a[1:]) & set(b[1:])) / k for a, b in zip(near_codes, near_xy)]))


def bench_tsne(args) -> dict:
    from sklearn.manifold import TSNE

    from engine.projection import TSNEProjection

    codes = synthetic_codes(args.map_points, args.dim)
    start = time.perf_counter()
    ours = TSNEProjection(random_state=0).fit(codes)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    sk = TSNE(n_components=2, random_state=0, init="pca", n_jobs=1)
    sk_xy = sk.fit_transform(codes)
    sk_s = time.perf_counter() - start
    result = {"openTSNE_s": ours_s, "sklearn_s": sk_s, "openTSNE_kl": float(ours.embedding.kl_divergence),
              "sklearn_kl": float(sk.kl_divergence_), "openTSNE_knn": neighbours_kept(codes, ours.xy),
              "sklearn_knn": neighbours_kept(codes, sk_xy)}
    print(f"t-SNE of {args.map_points} x {args.dim} codes, one thread each: openTSNE (ours) {ours_s:.1f} s, "
          f"KL {result['openTSNE_kl']:.3f}, 10-NN kept {result['openTSNE_knn']:.3f} | scikit-learn {sk_s:.1f} s, "
          f"KL {result['sklearn_kl']:.3f}, 10-NN kept {result['sklearn_knn']:.3f} | speed-up {sk_s / ours_s:.1f}x")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=70_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=200, help="repeats of the one-point inverse")
    parser.add_argument("--umap-inverse", action="store_true", help="also time umap-learn's inverse_transform (slow)")
    parser.add_argument("--maps", action="store_true", help="UMAP and t-SNE maps after launch and live, against baselines")
    parser.add_argument("--tsne", action="store_true", help="openTSNE against scikit-learn's TSNE")
    parser.add_argument("--map-points", type=int, default=5000, help="codes in the --maps and --tsne maps (default 5000)")
    parser.add_argument("--updates", type=int, default=3, help="later maps timed by --maps (default 3)")
    parser.add_argument("--cold-cache", action="store_true", help="--maps with an empty numba cache")
    parser.add_argument("--after-install", action="store_true",
                        help="--maps with an empty numba cache that tools/warm_caches.py fills first, as the "
                             "Makefile does after installing")
    parser.add_argument("--request-after", type=float, default=0.0,
                        help="--maps: seconds from launch to the first map's request (default 0: at once)")
    parser.add_argument("--json", help="also write the --maps/--tsne results here")
    args = parser.parse_args()
    if args.maps or args.tsne:
        from threadpoolctl import threadpool_limits

        results = {}
        if args.tsne:
            with threadpool_limits(1):  # BLAS and OpenMP: one thread on both sides
                results["tsne"] = bench_tsne(args)
        if args.maps:
            results["maps"] = bench_maps(args)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return

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
