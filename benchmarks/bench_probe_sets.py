"""Probe updates of every MNIST image (the ``all`` probe set, 70,000 codes) and a map of a million codes.

Run: ``python benchmarks/bench_probe_sets.py [--data-root DIR] [--latent-dim 2] [--updates 5] [--million-points 1000000] [--threads N] [--json OUT]``

1. Training thread: ``ProbeHook`` (engine/training_hooks.py) encodes its 70,000 images with a VAE
   of the default MLP body (784-512-256-D), chunk by chunk; wall time per probe update with
   ``engine.training.TRAIN_THREADS`` torch threads.
2. GUI thread: a probe update of 70,000 codes reaches ``RunState._absorb`` (the movie keeps it,
   ``probe_changed``), the map (explorer/map/latent_view.py) and the decoder canvas
   (explorer/decoder_canvas.py) take it in and the map repaints once: wall time of
   the absorb + ``processEvents`` (the update) and of the repaint, per update, for the raw map
   (2-D) and PCA (``--latent-dim 16``).  Target: the update ≤ 16 ms.
3. A million codes: an .npz of ``--million-points`` 16-D codes with labels is written, then read and
   laid out for a map (``explorer.map.embeddings_window.load_for_map``: read, PCA, KD-tree): wall
   time and the process's peak RSS growth.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=str(Path.home() / ".cache/latent-explorer-bench/data"))
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--million-points", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, help="torch threads of the training thread's encoding (default TRAIN_THREADS)")
    p.add_argument("--json", help="also write the results to this JSON file")
    a = p.parse_args()
    results: dict = {"latent_dim": a.latent_dim, "updates": a.updates}

    import numpy as np
    import torch

    from engine.config import DataConfig, ModelConfig, TrainConfig
    from engine.datasets import load_dataset
    from engine.models import build_model
    from engine.training import TRAIN_THREADS, TrainingUpdate
    from engine.training_hooks import LoopState, ProbeHook

    data = DataConfig(source="mnist", root=a.data_root)
    split = load_dataset(data)
    model_cfg = ModelConfig(variant="vae", latent_dim=a.latent_dim, hidden=(512, 256))
    train_cfg = TrainConfig(probe_set="all", probe_size=70_000, device="cpu")
    model = build_model(model_cfg, split.train.shape, 10).eval()

    class NoMovie:
        def add(self, probe):
            pass

    threads = a.threads or TRAIN_THREADS
    torch.set_num_threads(threads)
    hook = ProbeHook(split.val, train_cfg.probe_size, 0, 200, "cpu", NoMovie(), train_set=split.train, probe_set="all")
    state = LoopState(model, {})
    encode_s = []
    for _ in range(a.updates):
        start = time.perf_counter()
        hook._probe(state)
        encode_s.append(time.perf_counter() - start)
    probe = state.probe
    print(f"training thread: probe update of {len(probe.codes):,} codes ({a.latent_dim}-D), "
          f"{threads} torch thread(s): median {statistics.median(encode_s):.2f} s, "
          f"max {max(encode_s):.2f} s over {a.updates}")

    results.update(points=len(probe.codes), threads=threads, encode_s=encode_s)
    from PySide6.QtWidgets import QApplication

    from explorer.map.latent_view import LatentView
    from explorer.session import RunState, Session
    app = QApplication.instance() or QApplication([])
    import pyqtgraph as pg
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    session = Session()
    run_state = RunState(data, model_cfg, train_cfg, dataset=split)
    session.add(run_state)
    view = LatentView(session)
    view.resize(900, 700)
    view.show()
    from explorer.decoder_canvas import DecoderCanvas
    canvas = DecoderCanvas(session)   # the window's other view of every probe update (its nearest-code index)
    canvas.show()
    app.processEvents()
    rng = np.random.default_rng(0)
    absorb_ms, update_ms, paint_ms = [], [], []
    for i in range(a.updates + 1):
        codes = (probe.codes + rng.normal(scale=0.01, size=probe.codes.shape)).astype(np.float32)
        moved = type(probe)(codes, probe.labels, probe.indices, i + 1, probe.splits)
        update = TrainingUpdate("progress", 0, i + 1, 1000, np.zeros(0, np.int64), {}, probe=moved)
        start = time.perf_counter()
        run_state._absorb(update)
        absorbed = time.perf_counter()
        app.processEvents()
        mid = time.perf_counter()
        view.plot.viewport().repaint()
        end = time.perf_counter()
        if i:   # the first builds what later updates reuse
            absorb_ms.append((absorbed - start) * 1000)
            update_ms.append((mid - start) * 1000)
            paint_ms.append((end - mid) * 1000)
    print(f"GUI thread: a probe update of {len(probe.codes):,} codes in the map ({view.projection}): "
          f"taken in (RunState._absorb: movie, probe_changed, the map's projection and points) median "
          f"{statistics.median(absorb_ms):.1f} ms, max {max(absorb_ms):.1f} ms (target <= 16 ms); with the events "
          f"that follow (a paint included) median {statistics.median(update_ms):.1f} ms; "
          f"then one repaint: median {statistics.median(paint_ms):.1f} ms")
    view.shutdown()
    results.update(projection=view.projection, absorb_ms=absorb_ms, update_ms=update_ms, paint_ms=paint_ms)

    from explorer.map.embeddings_window import load_for_map
    n = a.million_points
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "million.npz"
        np.savez(path, codes=rng.normal(size=(n, 16)).astype(np.float32), labels=rng.integers(0, 10, n))
        del codes
        before = peak_rss_mib()
        start = time.perf_counter()
        loaded = load_for_map(path)
        took = time.perf_counter() - start
        print(f"embeddings file: {n:,} codes of 16 dimensions ({path.stat().st_size / 2**20:.0f} MiB .npz) read, "
              f"laid out by PCA and indexed for hovering in {took:.2f} s; peak RSS {before:.0f} -> "
              f"{peak_rss_mib():.0f} MiB")
        from explorer.map.embeddings_window import EmbeddingsWindow
        start = time.perf_counter()
        window = EmbeddingsWindow(loaded)
        window.show()
        app.processEvents()
        window.plot.viewport().repaint()
        results.update(file_points=n, load_s=took, peak_rss_mib=[before, peak_rss_mib()])
        print(f"  its window built and first painted in {(time.perf_counter() - start) * 1000:.0f} ms (GUI thread); "
              f"a hover: {timed_hover(window, loaded):.2f} ms")
    if a.json:
        import json
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


def timed_hover(window, loaded) -> float:
    start = time.perf_counter()
    for i in range(100):
        window.hover_at(*loaded.xy[(i * 997) % len(loaded.xy)])
    return (time.perf_counter() - start) * 10


if __name__ == "__main__":
    sys.exit(main())
