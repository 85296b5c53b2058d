"""Does the window stay responsive while a dataset loads? (issue 10, section 5)

A 5 ms QTimer runs in the GUI thread while MNIST (60,000 + 10,000 images, from the IDX files that
benchmarks/common.py unpacks from --mnist-gz) loads three ways, each measured in this one run:

* idle        — nothing loads (the timer's own lateness on this machine),
* GUI thread  — ``load_dataset`` called in the GUI thread, as the app did before,
* background  — ``RunState.ensure_dataset_in_background``, as the app does now.

For each: the timer's lateness (time between ticks minus 5 ms) p50/p99/max in ms over --repeats loads
(one MNIST load lasts only ~15 ticks, so a single load's p99 is its maximum), and the mean load's wall
time.  Target: background p99 ≤ 20 ms.  torch threads are set to --threads on every side.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_load.py [--mnist-gz DIR] [--data-root DIR] [--threads 1]
        [--repeats 10]
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


def measure(app, start, done, repeats: int = 1) -> dict:
    """The lateness of a 5 ms timer over ``repeats`` runs of the event loop until ``done()``
    (``start()`` is called from the loop in each)."""
    runs = [measure_once(app, start, done) for _ in range(repeats)]
    gaps = np.concatenate([gaps for gaps, _ in runs])
    return {"p50_ms": float(np.percentile(gaps, 50)), "p99_ms": float(np.percentile(gaps, 99)),
            "max_ms": float(gaps.max()), "wall_s": float(np.mean([wall for _, wall in runs])),
            "ticks": int(len(gaps)), "repeats": repeats}


def measure_once(app, start, done) -> tuple[np.ndarray, float]:
    """Run the event loop with a 5 ms timer until ``done()``; ``start()`` is called from the loop.
    Returns the timer's lateness at each tick (ms) and the seconds from ``start()`` to ``done()``."""
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
    return gaps, ended - began[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--repeats", type=int, default=10, help="loads measured on each side (default %(default)s)")
    args = parser.parse_args()
    import torch
    from PySide6.QtWidgets import QApplication

    from engine.config import DataConfig, ModelConfig, TrainConfig
    from engine.datasets import load_dataset
    from explorer.session import RunState
    if args.threads:
        torch.set_num_threads(args.threads)
    root = prepare_mnist_root(args.data_root, args.mnist_gz)
    config = DataConfig(source="mnist", root=str(root))
    app = QApplication.instance() or QApplication([])
    load_dataset(config)   # warm the file cache: every side reads the same files from memory

    idle_until = []
    results = {"idle": measure(app, lambda: idle_until.append(time.perf_counter() + IDLE_S),
                               lambda: time.perf_counter() >= idle_until[-1])}
    loaded = []

    def load_in_gui_thread() -> None:
        loaded.clear()
        loaded.append(load_dataset(config))

    results["gui_thread"] = measure(app, load_in_gui_thread, lambda: bool(loaded), args.repeats)
    states = []

    def load_in_background() -> None:   # a fresh RunState each time: one that holds its dataset loads nothing
        for previous in states:
            previous.wait_for_dataset()
        states[:] = [RunState(config, ModelConfig(variant="ae", latent_dim=2), TrainConfig())]
        states[-1].ensure_dataset_in_background()

    results["background"] = measure(app, load_in_background,
                                    lambda: states[-1].dataset is not None and not states[-1].is_loading_dataset(),
                                    args.repeats)
    state = states[-1]
    state.wait_for_dataset()
    print(f"MNIST load ({len(state.dataset.train):,} + {len(state.dataset.val):,} images) ×{args.repeats}, a "
          f"{PERIOD_MS} ms timer's lateness; torch threads {torch.get_num_threads()}")
    print(f"{'':12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'load s':>8}")
    for name, r in results.items():
        print(f"{name:12} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f} {r['wall_s']:8.2f}")
    ok = results["background"]["p99_ms"] <= 20
    print(f"background p99 ≤ 20 ms: {'yes' if ok else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
