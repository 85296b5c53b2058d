"""GUI-thread cost of the insight views on an MNIST-sized model, and how the reconstruction
pass shares the event loop.

The model is the pytorch/examples VAE shape (784-400-20 MLP; ``--body conv`` for the conv body)
on 1×28×28 images, untrained (decoding costs the same); the images are generated (uint8 noise,
10,000 validation images), so no data set is needed.  The GUI thread runs torch on one thread,
as in the app (``explorer.window.runtime.tune_for_gui``).

Measured, each in this run:
- one full render of each view (decode + picture; the median and the maximum of ``--repeats``),
  against one decode of the decoder canvas (one image) as the baseline;
- the reconstruction pass over ``EVALUATED`` images: how many event-loop turns, the longest
  chunk, and the lateness of a 5 ms timer during the pass against the same timer idle.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_insight_views.py [--body conv] [--repeats 30]

Targets: each view renders within a frame (≤ 16 ms); the longest reconstruction chunk ≤ 2×
the chunk budget (4 ms); timer lateness p99 during the pass ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

STALL_MS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body", default="mlp", choices=("mlp", "conv"))
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    return parser.parse_args(argv)


def timed(function, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median": statistics.median(times), "max": max(times)}


def turn_times(app, view, repeats: int) -> dict:
    """Wall and CPU time (this thread's) of each piece of a live render (the refresh, then each
    decoding turn) while the event loop runs, over ``repeats`` renders: the stalls a drag sees.
    CPU time leaves out the time other processes took the core (this machine is shared)."""
    decoder, original = view.decoder, view.decoder._turn
    wall, cpu = [], []

    def timed_piece(function):
        w, c = time.perf_counter(), time.thread_time()
        function()
        wall.append((time.perf_counter() - w) * 1e3)
        cpu.append((time.thread_time() - c) * 1e3)

    decoder.timer.timeout.disconnect()
    decoder.timer.timeout.connect(lambda: timed_piece(original))
    for _ in range(repeats):
        timed_piece(view.refresh)
        while decoder.busy:
            app.processEvents()
    decoder.timer.timeout.disconnect()
    decoder.timer.timeout.connect(original)
    return {"pieces": len(wall) / repeats, "wall_p95": float(np.percentile(wall, 95)), "wall_max": max(wall),
            "cpu_p95": float(np.percentile(cpu, 95)), "cpu_max": max(cpu)}


def lateness_while(app, busy, seconds_cap: float = 30.0) -> list[float]:
    """Lateness (ms) of a 5 ms timer while ``busy()`` is true (or for 1 s when busy is None)."""
    from PySide6.QtCore import QTimer
    late, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1e3 - STALL_MS))
        last[0] = now

    timer = QTimer(interval=STALL_MS)
    timer.timeout.connect(tick)
    timer.start()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds_cap:
        app.processEvents()
        if busy is None and time.perf_counter() - start > 1.0:
            break
        if busy is not None and not busy():
            break
        time.sleep(0.0005)
    timer.stop()
    return late


def main(argv=None) -> None:
    args = parse_args(argv)
    from explorer.window.runtime import tune_for_gui
    tune_for_gui()
    import torch
    from PySide6.QtWidgets import QApplication

    from engine.config import DataConfig, ModelConfig, TrainConfig
    from engine.datasets import DatasetSplit, ImageSet
    from engine.history import ProbeCodes
    from explorer.insights import reconstruction as reconstruction_view
    from explorer.insights.tabs import InsightTabs
    from explorer.session import RunState, Session

    app = QApplication.instance() or QApplication([])
    gen = torch.Generator().manual_seed(0)
    images = lambda n: ImageSet(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),  # noqa: E731
                                torch.randint(0, 10, (n,), generator=gen), [str(i) for i in range(10)])
    split = DatasetSplit("generated", images(1000), images(10_000))
    model_cfg = ModelConfig(variant="vae", latent_dim=args.latent_dim, body=args.body, hidden=(400,))
    state = RunState(DataConfig(source="digits"), model_cfg, TrainConfig(device="cpu"), dataset=split)
    codes = np.random.default_rng(0).normal(size=(5000, args.latent_dim)).astype(np.float32)
    state.probe = ProbeCodes(codes, split.val.labels[:5000].numpy(), np.arange(5000))
    session = Session()
    tabs = InsightTabs(session)
    tabs.resize(900, 700)
    tabs.show()
    session.add(state)
    session.cursor.set_code(codes[0], "bench")
    print(f"torch threads on the GUI thread: {torch.get_num_threads()}; body {args.body}, latent {args.latent_dim}, "
          f"1×28×28 images")

    baseline = timed(lambda: state.decode(codes[:1]), args.repeats)
    print(f"{'decoder canvas baseline: 1 image':<46} median {baseline['median']:7.2f} ms   max {baseline['max']:7.2f} ms")
    print(f"{'view':<34} {'whole render':>11}   GUI-thread turns of a live render")
    trav = tabs.traversals
    for title, view, setup in (("traversals 10×9", trav, lambda: trav.rows_spin.setValue(10)),
                               ("traversals 20×9", trav, lambda: trav.rows_spin.setValue(20)),
                               ("interpolation 10 steps", tabs.interpolation, None),
                               ("samples 64", tabs.samples, None)):
        tabs.setCurrentWidget(view)
        if setup:
            setup()
        view.figure()
        whole = timed(lambda v=view: (v.refresh(), v.decoder.finish_now()), args.repeats)
        t = turn_times(app, view, args.repeats)
        print(f"{title:<34} {whole['median']:8.2f} ms   {t['pieces']:5.1f} turns; wall p95 {t['wall_p95']:5.2f} "
              f"max {t['wall_max']:5.2f} ms; CPU p95 {t['cpu_p95']:5.2f} max {t['cpu_max']:5.2f} ms")
    rec = tabs.reconstructions
    tabs.setCurrentWidget(rec)
    rec.throttle.flush()
    rec.finish_now()
    show = timed(rec._show_sorted, args.repeats)
    print(f"{'reconstructions: sort + show 32 (after a pass)':<46} median {show['median']:7.2f} ms   max {show['max']:.2f} ms")

    idle = lateness_while(app, None)
    chunks, chunks_cpu = [], []
    original = rec._next_chunk

    def measured_chunk():
        start, cpu = time.perf_counter(), time.thread_time()
        original()
        chunks.append((time.perf_counter() - start) * 1e3)
        chunks_cpu.append((time.thread_time() - cpu) * 1e3)

    rec.chunk_timer.timeout.disconnect()
    rec.chunk_timer.timeout.connect(measured_chunk)
    start = time.perf_counter()
    rec.refresh()
    busy = lateness_while(app, lambda: rec.computing)
    total = (time.perf_counter() - start) * 1e3
    p99 = lambda v: float(np.percentile(v, 99)) if v else float("nan")  # noqa: E731
    print(f"reconstruction pass over {reconstruction_view.EVALUATED:,} images: {len(chunks)} event-loop turns, "
          f"{total:.0f} ms in all; longest chunk {max(chunks):.2f} ms (budget {reconstruction_view.CHUNK_BUDGET_S * 1e3:.0f} ms), "
          f"median {statistics.median(chunks):.2f} ms; CPU time p95 {np.percentile(chunks_cpu, 95):.2f} ms, "
          f"max {max(chunks_cpu):.2f} ms")
    print(f"5 ms timer lateness: idle p99 {p99(idle):.2f} ms (max {max(idle):.2f}); during the pass p99 "
          f"{p99(busy):.2f} ms (max {max(busy):.2f})")
    tabs.close()


if __name__ == "__main__":
    main()
