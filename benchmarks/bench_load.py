"""Does the window stay responsive while a dataset loads? (issue 10, section 5)

A 5 ms QTimer runs in the GUI thread while MNIST (60,000 + 10,000 images, from the IDX files that
benchmarks/common.py unpacks from --mnist-gz) loads three ways, each measured in this one run:

* idle        — nothing loads (the timer's own lateness on this machine),
* GUI thread  — ``load_dataset`` called in the GUI thread, as the app did before,
* background  — ``RunState.ensure_dataset_in_background``, as the app does now.

For each: the timer's lateness (time between ticks minus 5 ms) p50/p99/max in ms, and the load's
wall time.  Target: background p99 ≤ 20 ms.  torch threads are set to --threads on every side.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_load.py [--mnist-gz DIR] [--data-root DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

from benchmarks.common import add_common_args, prepare_mnist_root  # noqa: E402

PERIOD_MS = 5
IDLE_S = 1.0


def measure(app, start, done) -> dict:
    """Run the event loop with a 5 ms timer until ``done()``; ``start()`` is called from the loop."""
    from PySide6.QtCore import QTimer
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(PERIOD_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    began = []

    def kick() -> None:
        began.append(time.perf_counter())
        start()

    poll = QTimer()
    poll.setInterval(1)
    poll.timeout.connect(lambda: app.quit() if began and done() else None)
    timer.start()
    QTimer.singleShot(50, kick)
    poll.start()
    app.exec()
    ended = time.perf_counter()
    timer.stop()
    poll.stop()
    before = [t for t in ticks if t < began[0]][-1:]   # the gap that spans the start counts too
    gaps = np.diff(before + [t for t in ticks if t >= began[0]] + [ended]) * 1000 - PERIOD_MS
    gaps = np.clip(gaps, 0, None) if len(gaps) else np.zeros(1)
    return {"p50_ms": float(np.percentile(gaps, 50)), "p99_ms": float(np.percentile(gaps, 99)),
            "max_ms": float(gaps.max()), "wall_s": ended - began[0], "ticks": int(len(gaps))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    args = parser.parse_args()
    import torch
    from PySide6.QtWidgets import QApplication

    from engine.config import ModelConfig, TrainConfig
    from engine.data import DataConfig, load_dataset
    from explorer.session import RunState
    if args.threads:
        torch.set_num_threads(args.threads)
    root = prepare_mnist_root(args.data_root, args.mnist_gz)
    config = DataConfig(source="mnist", root=str(root))
    app = QApplication.instance() or QApplication([])
    load_dataset(config)   # warm the file cache: every side reads the same files from memory

    idle_until = []
    results = {"idle": measure(app, lambda: idle_until.append(time.perf_counter() + IDLE_S),
                               lambda: time.perf_counter() >= idle_until[0])}
    loaded = []
    results["gui_thread"] = measure(app, lambda: loaded.append(load_dataset(config)), lambda: bool(loaded))
    state = RunState(config, ModelConfig(variant="ae", latent_dim=2), TrainConfig())
    results["background"] = measure(app, lambda: state.ensure_dataset_in_background(),
                                    lambda: state.dataset is not None and not state.is_loading_dataset())
    state.wait_for_dataset()
    print(f"MNIST load ({len(state.dataset.train):,} + {len(state.dataset.val):,} images), a {PERIOD_MS} ms timer's "
          f"lateness; torch threads {torch.get_num_threads()}")
    print(f"{'':12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'load s':>8}")
    for name, r in results.items():
        print(f"{name:12} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f} {r['wall_s']:8.2f}")
    ok = results["background"]["p99_ms"] <= 20
    print(f"background p99 ≤ 20 ms: {'yes' if ok else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
