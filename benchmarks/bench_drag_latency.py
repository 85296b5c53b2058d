"""Drag latency on the latent map: mouse event -> decoded image painted, idle and while training.

A window-like layout (LatentView beside DecoderCanvas on one Session) is shown offscreen; a
16 ms QTimer (≈ 60 Hz) sends left-button mouse moves along a loop over the latent map, and
each latency is the decoder canvas's ``painted`` time minus the time the first not-yet-painted
move was sent.  A 5 ms QTimer measures how late the GUI thread serves timers (UI stalls).

Phase "training" trains an MLP (or conv) VAE with a 2-D latent on MNIST-sized data in the
background (real MNIST with ``--data-root DIR`` holding ``MNIST/raw/*.gz`` or the IDX files;
otherwise 60,000 synthetic 1×28×28 images written to a temporary .npz), with the app's
default probe (5,000 codes every 200 steps) and decoder snapshots (every 25 steps).  Phase
"idle" repeats the drag afterwards with the trained model and no training.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_drag_latency.py --as-app [--data-root DIR] [--seconds 30]
    ... --sweep    # the same in child processes under each threading setting, side by side

Targets: drag p95 ≤ 16 ms while training; timer lateness p99 ≤ 20 ms.
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

ROOT = Path(__file__).resolve().parents[1]
TICK_MS, STALL_MS = 16, 5
#: --sweep: (title, extra arguments) for each setting compared
SETTINGS = [
    ("as the app (tune_for_gui)", ["--as-app"]),
    ("default", []),
    ("switchinterval 1 ms", ["--switch-interval", "0.001"]),
    ("torch threads 1", ["--torch-threads", "1"]),
    ("OMP_WAIT_POLICY=PASSIVE", ["--omp-passive"]),
    ("threads 1 + switch 1 ms", ["--torch-threads", "1", "--switch-interval", "0.001"]),
    ("passive + switch 1 ms", ["--omp-passive", "--switch-interval", "0.001"]),
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", help="folder with MNIST/raw (IDX files or their .gz); default: synthetic data")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of dragging while training (default 30)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="seconds of dragging idle (default 10)")
    parser.add_argument("--body", choices=("mlp", "conv"), default="mlp", help="the VAE's body (default mlp)")
    parser.add_argument("--as-app", action="store_true",
                        help="the app's thread settings (explorer.app.tune_for_gui) at start-up")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads(N) at start-up")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval(S) at start-up (default 0.005)")
    parser.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE before torch loads")
    parser.add_argument("--sweep", action="store_true", help="compare the threading settings in child processes")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child mode: print one JSON line
    return parser.parse_args(argv)


def percentiles(values_ms: list[float], qs=(50, 95, 99)) -> dict[str, float]:
    import numpy as np
    if not values_ms:
        return {f"p{q}": float("nan") for q in qs} | {"max": float("nan"), "n": 0}
    a = np.asarray(values_ms)
    return {f"p{q}": float(np.percentile(a, q)) for q in qs} | {"max": float(a.max()), "n": len(a)}


def data_config(args, tmp: Path):
    from engine.data import DataConfig
    if args.data_root:
        return DataConfig(source="mnist", root=str(Path(args.data_root).expanduser()))
    import numpy as np
    rng = np.random.default_rng(0)
    n, size = 60_000, 28
    labels = rng.integers(0, 10, n)
    yy, xx = np.mgrid[:size, :size]
    centres = rng.uniform(7, 21, (n, 2)).astype(np.float32)
    widths = (2.0 + labels * 0.4 + rng.uniform(0, 1, n)).astype(np.float32)
    images = np.empty((n, size, size), np.uint8)
    for s in range(0, n, 5000):  # Gaussian blobs whose width follows the label
        c, w = centres[s:s + 5000, :, None, None], widths[s:s + 5000, None, None]
        blob = np.exp(-((xx - c[:, 0]) ** 2 + (yy - c[:, 1]) ** 2) / (2 * w**2))
        images[s:s + 5000] = (blob * 255).astype(np.uint8)
    path = tmp / "synthetic.npz"
    np.savez(path, x=images, y=labels)
    return DataConfig(source="npz", path=str(path), val_fraction=1 / 7)


class DragProbe:
    """Drives the drag with a 16 ms timer and the stall probe with a 5 ms timer; records latencies."""

    def __init__(self, view, canvas):
        from PySide6.QtCore import Qt, QTimer
        self.view, self.canvas = view, canvas
        self.latencies, self.handler, self.lateness = [], [], []
        self._pending: float | None = None
        self._phase = 0.0
        self._last_stall: float | None = None
        canvas.painted.connect(self._on_painted)
        self.move_timer = QTimer(interval=TICK_MS, timerType=Qt.TimerType.PreciseTimer, timeout=self._move)
        self.stall_timer = QTimer(interval=STALL_MS, timerType=Qt.TimerType.PreciseTimer, timeout=self._stall)

    def _send(self, kind, point, button, buttons) -> None:
        from PySide6.QtCore import QPointF, Qt
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtWidgets import QApplication
        viewport = self.view.plot.viewport()
        event = QMouseEvent(kind, QPointF(point), QPointF(viewport.mapToGlobal(point)), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, event)

    def _point(self):
        """The next point of a Lissajous loop over the middle of the viewport."""
        import math

        from PySide6.QtCore import QPoint
        vp = self.view.plot.viewport()
        w, h = vp.width(), vp.height()
        self._phase += 0.05
        return QPoint(int(w / 2 + 0.35 * w * math.sin(self._phase)), int(h / 2 + 0.35 * h * math.sin(1.7 * self._phase)))

    def start(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        left = Qt.MouseButton.LeftButton
        self._send(QEvent.Type.MouseButtonPress, self._point(), left, left)
        self._last_stall = None
        self.move_timer.start()
        self.stall_timer.start()

    def stop(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        self.move_timer.stop()
        self.stall_timer.stop()
        self._send(QEvent.Type.MouseButtonRelease, self._point(), Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
        self._pending = None

    def _move(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        t0 = time.perf_counter()
        if self._pending is None:
            self._pending = t0
        self._send(QEvent.Type.MouseMove, self._point(), Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
        self.handler.append((time.perf_counter() - t0) * 1e3)

    def _on_painted(self, t: float) -> None:
        if self._pending is not None:
            self.latencies.append((t - self._pending) * 1e3)
            self._pending = None

    def _stall(self) -> None:
        now = time.perf_counter()
        if self._last_stall is not None:
            self.lateness.append(max(0.0, (now - self._last_stall) * 1e3 - STALL_MS))
        self._last_stall = now

    def results(self, seconds: float) -> dict:
        return {"drag": percentiles(self.latencies), "handler": percentiles(self.handler),
                "late": percentiles(self.lateness), "moves_per_s": len(self.handler) / seconds}


def run_for(seconds: float) -> None:
    """Run the Qt event loop (as the application would) for ``seconds``."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()


def measure(args) -> dict:
    """Both phases in this process, under the threading settings in ``args``."""
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    import torch
    from PySide6.QtWidgets import QApplication, QHBoxLayout, QWidget

    from engine.config import ModelConfig, TrainConfig
    from engine.data import load_dataset
    from explorer.decoder_canvas import DecoderCanvas
    from explorer.latent_view import LatentView
    from explorer.session import RunState, Session

    if args.as_app:
        from explorer.app import tune_for_gui
        tune_for_gui()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    _app = QApplication.instance() or QApplication([])  # noqa: F841 — kept alive for the measurement
    with tempfile.TemporaryDirectory() as tmp:
        data_cfg = data_config(args, Path(tmp))
        dataset = load_dataset(data_cfg)
        session = Session()
        window = QWidget()
        layout = QHBoxLayout(window)
        view, canvas = LatentView(session), DecoderCanvas(session)
        layout.addWidget(view, 3)
        layout.addWidget(canvas, 1)
        window.resize(1200, 750)
        window.show()
        model = ModelConfig(variant="vae", latent_dim=2, body=args.body)
        state = session.add(RunState(data_cfg, model, TrainConfig(epochs=1000, device="cpu"), dataset=dataset))
        probe = DragProbe(view, canvas)
        try:
            state.start(Path(tmp) / "runs")
            t0 = time.perf_counter()
            while state.probe is None and time.perf_counter() - t0 < 120:
                run_for(0.05)
            step0, t_train = state.step, time.perf_counter()
            probe.start()
            run_for(args.seconds)
            probe.stop()
            samples_per_s = (state.step - step0) * state.train_cfg.batch_size / (time.perf_counter() - t_train)
            training = probe.results(args.seconds) | {"samples_per_s": samples_per_s, "points": view.points.n_points}
        finally:
            state.stop_and_wait(60_000)
        run_for(0.5)
        probe = DragProbe(view, canvas)
        probe.start()
        run_for(args.idle_seconds)
        probe.stop()
        idle = probe.results(args.idle_seconds)
        view.shutdown()
        window.close()
    return {"training": training, "idle": idle, "torch_threads": torch.get_num_threads(), "as_app": args.as_app,
            "switch_interval_ms": sys.getswitchinterval() * 1e3, "omp": os.environ.get("OMP_WAIT_POLICY", "default")}


def print_table(rows: list[tuple[str, dict]]) -> None:
    head = (f"{'setting':<32} {'phase':<9} {'moves/s':>7} {'drag p50':>8} {'p95':>6} {'max':>6}   "
            f"{'handler p95':>11}   {'timer late p50':>14} {'p99':>6} {'max':>6}   {'train img/s':>11}")
    print(head)
    print("-" * len(head))
    for title, r in rows:
        for phase in ("idle", "training"):
            p = r[phase]
            d, h, late = p["drag"], p["handler"], p["late"]
            rate = f"{p['samples_per_s']:>11.0f}" if "samples_per_s" in p else f"{'':>11}"
            print(f"{title:<32} {phase:<9} {p['moves_per_s']:>7.1f} {d['p50']:>8.2f} {d['p95']:>6.2f} {d['max']:>6.1f}   "
                  f"{h['p95']:>11.2f}   {late['p50']:>14.2f} {late['p99']:>6.2f} {late['max']:>6.1f}   {rate}")
    print("(milliseconds; drag = mouse move sent -> decoded image painted; target p95 <= 16 while training, "
          "timer lateness p99 <= 20)")


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.sweep:
        result = measure(args)
        if args.json:
            print("RESULT " + json.dumps(result))
        else:
            title = ("as the app: " if result["as_app"] else "") + \
                f"GUI-thread torch threads {result['torch_threads']}, switch {result['switch_interval_ms']:g} ms, {result['omp']}"
            print_table([(title, result)])
        return
    rows = []
    base = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--sweep"]
    for title, extra in SETTINGS:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        proc = subprocess.run([sys.executable, __file__, *base, *extra, "--json"], capture_output=True, text=True,
                              env=env, cwd=ROOT)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"{title}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append((title, json.loads(line[7:])))
        print(f"... {title} done", file=sys.stderr)
    print_table(rows)


if __name__ == "__main__":
    main()
