"""Training throughput inside the app (latent map and loss plot live, no dragging) against the
headless engine on the same config; and the time from launch to the window shown.

The two are measured alternately, round by round, each as its own program runs: the headless
baseline in a child process started as ``python main.py train`` starts, the app in this process
with the window shown, as ``python main.py`` runs it (``tune_for_gui``, an event loop, no
polling).  Each round gives a ratio and the median of them is reported: the machines here are
shared and their speed drifts by ±15% over a minute.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_app.py [--rounds 5] [--steps 400] [--json OUT]
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_app.py --launch-only [--launches 5]

Target: in-app throughput ≥ 0.9× headless; the window shown ≤ 2 s after launch (warm).

Each round opens a new window, and each window's latent map warms the projection child up (it
compiles umap-learn's numba code: seconds of a whole core).  The app does that once per launch, so
the training starts once it has finished (``--during-warm-up``: at once, as a person who presses
Start within seconds of launching).  No nice value protects the training from a busy core: its
OpenMP team progresses only while both of its threads run, so any other busy process on a 2-core
machine costs it most of its speed (0.16× with the warm-up beside it, measured).

Launch time is measured as a person starts the app, ``python main.py`` in a fresh process
(``LATENT_EXPLORER_LAUNCH_PROBE=1`` makes it print when its window was shown and when its views
were built, then quit): *shown* is the window with its menus on screen (before torch is imported),
*built* the views usable (after torch, imported behind the shown window).  Warm: one launch
first fills the file cache; the medians of the next ones are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import add_common_args, median, prepare_mnist_root, write_json  # noqa: E402
from engine.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from engine.datasets import load_dataset  # noqa: E402
from engine.training import Trainer  # noqa: E402
from explorer.window.runtime import tune_for_gui  # noqa: E402

HEADLESS_CHILD = "--headless-child"

WARMUP = 30
ROOT = Path(__file__).resolve().parents[1]


def configs(root: Path, device: str):
    data = DataConfig(source="mnist", root=str(root))
    model = ModelConfig(variant="vae", latent_dim=2, body="mlp", hidden=(512, 256))
    train = TrainConfig(epochs=50, batch_size=128, device=device)
    return data, model, train


def headless(dataset, cfgs, steps: int) -> float:
    trainer = Trainer(*cfgs, dataset=dataset)
    t0 = None
    for update in trainer.updates():
        if t0 is None and update.step >= WARMUP:
            t0, s0 = time.perf_counter(), update.step
        if t0 is not None and update.step >= s0 + steps:
            rate = (update.step - s0) * cfgs[2].batch_size / (time.perf_counter() - t0)
            trainer.stop()
    return rate


def in_app(app, dataset, cfgs, steps: int, runs_dir: str, wait_for_warm_up: bool = True) -> float:
    from explorer.session import RunState
    from explorer.window.main_window import MainWindow
    window = MainWindow(runs_dir=runs_dir)
    window.resize(1500, 920)
    window.show()
    if wait_for_warm_up:   # the projection child compiles umap once per window: seconds of a busy core
        worker, deadline = window.latent_view.worker, time.monotonic() + 180
        while not worker.is_warm() and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.05)
    state = RunState(*cfgs, dataset=dataset)
    window.session.add(state)
    rate = train_in_window(state, steps, runs_dir)
    window.close()
    return rate


def train_in_window(state, steps: int, runs_dir: str) -> float:
    """Start ``state`` and serve the window with an event loop (as app.exec() does: no polling)
    until ``steps`` optimizer steps after the first WARMUP; their samples/s."""
    from PySide6.QtCore import QEventLoop
    marks = {}
    loop = QEventLoop()

    def on_progress(update):
        if "t0" not in marks and update.step >= WARMUP:
            marks["t0"], marks["s0"] = time.perf_counter(), update.step
        if "t0" in marks and "rate" not in marks and update.step >= marks["s0"] + steps:
            marks["rate"] = (update.step - marks["s0"]) * state.train_cfg.batch_size / (time.perf_counter() - marks["t0"])
            loop.quit()

    state.progressed.connect(on_progress)
    state.start(runs_dir)
    loop.exec()
    return marks["rate"]


def launch_time() -> tuple[float, float]:
    """Seconds from starting ``python main.py`` to its window shown, and to its views built; the
    child's exit, which tears down torch and Qt, is not counted.  Its settings live in a scratch
    folder (a first launch's layout)."""
    with tempfile.TemporaryDirectory(prefix="le-launch-") as home:
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   LATENT_EXPLORER_LAUNCH_PROBE="1", XDG_CONFIG_HOME=home, XDG_DATA_HOME=home)
        start = time.time()
        out = subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True)
    marks = dict(line.split() for line in out.stdout.splitlines() if line.startswith(("shown ", "built ")))
    return float(marks["shown"]) - start, float(marks["built"]) - start


def report_launches(n: int) -> list[tuple[float, float]]:
    launch_time()  # warm the caches
    launches = [launch_time() for _ in range(n)]
    for i, (shown, built) in enumerate(launches, 1):
        print(f"  launch {i}: window shown {shown:.2f} s, views built {built:.2f} s")
    print(f"launch (warm, fresh process, python main.py): window shown median {median([s for s, _ in launches]):.2f} s, "
          f"views built median {median([b for _, b in launches]):.2f} s (target: shown ≤ 2 s)")
    return launches


def headless_in_child(a) -> float:
    """One headless measurement in a fresh interpreter started as the CLI is."""
    cmd = [sys.executable, __file__, HEADLESS_CHILD, "--steps", str(a.steps), "--device", a.device,
           "--data-root", str(a.data_root), "--mnist-gz", str(a.mnist_gz)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rate"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--launch-only", action="store_true", help="only measure the launch time (no MNIST needed)")
    ap.add_argument("--launches", type=int, default=3, help="launches measured after a warm-up one")
    ap.add_argument("--during-warm-up", action="store_true",
                    help="start training at once, while the projection child compiles umap")
    ap.add_argument(HEADLESS_CHILD, action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.launch_only:
        launches = report_launches(a.launches)
        write_json(a.json, {"launch_shown_s": [s for s, _ in launches], "launch_built_s": [b for _, b in launches]})
        return 0
    root = prepare_mnist_root(a.data_root, a.mnist_gz)
    cfgs = configs(root, a.device)
    if a.headless_child:
        print(json.dumps({"rate": headless(load_dataset(cfgs[0]), cfgs, a.steps)}))
        return 0
    tune_for_gui()   # as the app does, before its GUI thread runs any torch op (loading the data does)
    dataset = load_dataset(cfgs[0])
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])
    runs_dir = tempfile.mkdtemp(prefix="le-bench-app-")
    print(f"MNIST 784-512-256-2 VAE (MLP), batch 128, {a.steps} timed steps after {WARMUP}; samples/s")
    heads, apps = [], []
    for r in range(a.rounds):
        heads.append(headless_in_child(a))   # as `python main.py train` runs
        apps.append(in_app(app, dataset, cfgs, a.steps, runs_dir, not a.during_warm_up))   # as `python main.py` runs
        print(f"  round {r + 1}: headless {heads[-1]:8.0f}   in app {apps[-1]:8.0f}   ratio {apps[-1] / heads[-1]:.2f}")
    ratio = median([x / h for x, h in zip(apps, heads)])
    print(f"median: headless {median(heads):.0f}, in app {median(apps):.0f}; in-app / headless {ratio:.2f} (target ≥ 0.9)")
    launches = report_launches(a.launches)
    write_json(a.json, {"headless": heads, "in_app": apps, "ratio": ratio,
                        "launch_shown_s": [s for s, _ in launches], "launch_built_s": [b for _, b in launches]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
