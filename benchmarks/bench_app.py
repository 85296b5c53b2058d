"""Training throughput inside the app (latent map and loss plot live, no dragging) against the
headless engine on the same config, measured alternately in one process; and the time from
launch to the window shown.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_app.py [--rounds 3] [--steps 400] [--json OUT]

Target: in-app throughput ≥ 0.9× headless.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.app import configure_threads, tune_for_gui  # noqa: E402

configure_threads()

import torch  # noqa: E402, I001

from benchmarks.common import add_common_args, median, prepare_mnist_root, write_json  # noqa: E402
from engine.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from engine.data import load_dataset  # noqa: E402
from engine.training import Trainer  # noqa: E402

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


def in_app(app, dataset, cfgs, steps: int, runs_dir: str) -> float:
    from explorer.main_window import MainWindow
    from explorer.session import RunState
    window = MainWindow(runs_dir=runs_dir)
    window.resize(1500, 920)
    window.show()
    state = RunState(*cfgs, dataset=dataset)
    window.session.add(state)
    marks = {}

    def on_progress(update):
        if "t0" not in marks and update.step >= WARMUP:
            marks["t0"], marks["s0"] = time.perf_counter(), update.step
        if "t0" in marks and "rate" not in marks and update.step >= marks["s0"] + steps:
            marks["rate"] = (update.step - marks["s0"]) * cfgs[2].batch_size / (time.perf_counter() - marks["t0"])

    state.progressed.connect(on_progress)
    state.start(runs_dir)
    while "rate" not in marks:
        app.processEvents()
        time.sleep(0.002)
    window.close()
    return marks["rate"]


def launch_time() -> float:
    """Seconds from starting a fresh interpreter to the main window shown (a warm start)."""
    code = ("import time; t0 = time.perf_counter(); from explorer.app import configure_threads; configure_threads(); "
            "from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from explorer.main_window import MainWindow; w = MainWindow(runs_dir='/tmp/le-launch'); w.show(); "
            "app.processEvents(); print(time.perf_counter() - t0)")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=400)
    a = ap.parse_args()
    root = prepare_mnist_root(a.data_root, a.mnist_gz)
    from PySide6.QtWidgets import QApplication
    app = QApplication([sys.argv[0]])
    cfgs = configs(root, a.device)
    dataset = load_dataset(cfgs[0])
    runs_dir = tempfile.mkdtemp(prefix="le-bench-app-")
    print(f"MNIST 784-512-256-2 VAE (MLP), batch 128, {a.steps} timed steps after {WARMUP}; samples/s")
    heads, apps = [], []
    cli_threads, cli_switch = torch.get_num_threads(), sys.getswitchinterval()
    for r in range(a.rounds):
        torch.set_num_threads(cli_threads)
        sys.setswitchinterval(cli_switch)
        heads.append(headless(dataset, cfgs, a.steps))   # as `python main.py train` runs
        tune_for_gui()                                   # as `python main.py` runs
        apps.append(in_app(app, dataset, cfgs, a.steps, runs_dir))
        print(f"  round {r + 1}: headless {heads[-1]:8.0f}   in app {apps[-1]:8.0f}   ratio {apps[-1] / heads[-1]:.2f}")
    ratio = median([x / h for x, h in zip(apps, heads)])
    print(f"median: headless {median(heads):.0f}, in app {median(apps):.0f}; in-app / headless {ratio:.2f} (target ≥ 0.9)")
    launch_time()  # warm the caches
    launches = [launch_time() for _ in range(3)]
    print(f"launch to window shown (warm, fresh process): median {median(launches):.2f} s")
    write_json(a.json, {"headless": heads, "in_app": apps, "ratio": ratio, "launch_s": launches})
    return 0


if __name__ == "__main__":
    sys.exit(main())
