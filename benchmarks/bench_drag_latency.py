"""Drag latency on the latent map: mouse event -> decoded image painted, idle and while training.

A window-like layout (LatentView beside DecoderCanvas on one Session) is shown offscreen; a
16 ms QTimer (≈ 60 Hz) sends left-button mouse moves along a loop over the latent map, and
each latency is the decoder canvas's ``painted`` time minus the time the first not-yet-painted
move arrived: a mouse keeps moving at 60 Hz while the GUI thread stalls, so a move arrives at
each 16 ms tick even when the stalled timer sends it late (a stall counts in full).  A 5 ms QTimer measures how late the GUI thread serves timers (UI stalls).

Phase "training" trains an MLP (or conv) VAE with a 2-D latent on MNIST-sized data in the
background (real MNIST with ``--data-root DIR`` holding ``MNIST/raw/*.gz`` or the IDX files, or
``--mnist-gz DIR`` with the four gzipped files to unpack there; otherwise 60,000 synthetic
1×28×28 images written to a temporary .npz), with the app's default probe (5,000 codes every
200 steps) and decoder snapshots (every 25 steps).  Phase "idle" repeats the drag afterwards
with the trained model and no training.  ``--as-app`` sets the process up as explorer/window/start_up.py
does: ``tune_for_gui`` before any torch op, pyqtgraph's options, and once the views are built
``collect_garbage_on_gui_thread`` (gc.freeze, collections on a GUI-thread timer) and the
background preload (``preload_in_background``), waited for before training starts.

Each phase reports its whole drag and, separately, the drag after the first --settle-seconds
(5 s): the first probe updates of a run come in the first seconds.  Drags slower than
--spike-ms are listed with what ended while they waited (probe updates, decoder snapshots,
frames, garbage collections and the thread that ran them).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_drag_latency.py --as-app \
        [--mnist-gz /work/shared/data/mnist --data-root DIR] [--seconds 60]
    ... --sweep    # the same in child processes under each threading setting, side by side

Targets: while training, drag p95 ≤ 16 ms, and max ≤ 16 ms after the first 5 s; timer lateness p99 ≤ 20 ms.
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
    ("as the app, training not niced", ["--as-app", "--train-nice", "0"]),
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
    parser.add_argument("--mnist-gz", help="folder with the four gzipped MNIST IDX files, unpacked into "
                        "--data-root's MNIST/raw when missing there (benchmarks/common.py)")
    parser.add_argument("--settle-seconds", type=float, default=5.0,
                        help="seconds at the start of each drag that the 'after' figures leave out (default 5)")
    parser.add_argument("--spike-ms", type=float, default=16.0,
                        help="list the drags after the settling time slower than this (default 16 ms)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of dragging while training (default 30)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="seconds of dragging idle (default 10)")
    parser.add_argument("--body", choices=("mlp", "conv"), default="mlp", help="the VAE's body (default mlp)")
    parser.add_argument("--first-run", action="store_true",
                        help="train the newcomer's first run instead (engine.defaults: the bundled digits, a small "
                             "MLP VAE): a step of a few hundred microseconds, mostly Python, as a GPU's step is")
    parser.add_argument("--probe-set", choices=("validation", "test", "train", "all"), default="validation",
                        help="the images the map shows while training (default: validation, 5,000 codes; all: "
                             "every image, 70,000 for MNIST: each probe update is that many points on the GUI thread)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the background training runs (default cpu)")
    parser.add_argument("--as-app", action="store_true",
                        help="the app's thread settings (explorer.window.runtime.tune_for_gui) at start-up")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads(N) at start-up")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval(S) at start-up (default 0.005)")
    parser.add_argument("--train-nice", type=int,
                        help="the training thread's nice value (engine.training.TRAIN_NICENESS; --as-app: the app's)")
    parser.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE before torch loads")
    parser.add_argument("--watchdog", metavar="FILE",
                        help="append every thread's Python stack to FILE whenever the GUI thread stalls "
                             "longer than --watchdog-ms (faulthandler's watchdog needs no GIL: it shows who holds it)")
    parser.add_argument("--watchdog-ms", type=float, default=40.0, help="the stall that --watchdog records (default 40)")
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
    from engine.config import DataConfig
    if args.first_run:
        from engine.defaults import default_run
        return default_run()[0]
    if args.mnist_gz:
        from benchmarks.common import prepare_mnist_root
        if not args.data_root:
            sys.exit("--mnist-gz needs --data-root: the folder to unpack MNIST/raw into.")
        prepare_mnist_root(Path(args.data_root), Path(args.mnist_gz))
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


def thread_times() -> tuple[float, float]:
    """This thread's CPU seconds, and its seconds spent runnable but waiting for a core
    (/proc/thread-self/schedstat's second field; 0 where there is none)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            waited = int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        waited = 0.0
    return time.thread_time(), waited


class EventLog:
    """When things that can stall the GUI thread ended: the run's signals (recorded by slots
    connected after the views', so at the end of the views' work) and garbage collections
    (gc.callbacks, with their generation, duration and thread)."""

    def __init__(self):
        import gc
        self.events: list[tuple[float, float, str]] = []   # (start, end, what)
        self._gc_started: dict[int, float] = {}
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        import gc
        gc.callbacks.remove(self._on_gc)

    def watch(self, state) -> None:
        for name in ("probe_changed", "decoder_changed", "refreshed", "progressed"):
            getattr(state, name).connect(lambda *_, name=name: self.mark(name))

    def mark(self, what: str) -> None:
        now = time.perf_counter()
        self.events.append((now, now, what))

    def _on_gc(self, phase: str, info: dict) -> None:
        import threading
        now = time.perf_counter()
        ident = threading.get_ident()
        if phase == "start":
            self._gc_started[ident] = now
        else:
            start = self._gc_started.pop(ident, now)
            self.events.append((start, now, f"gc gen {info['generation']} ({(now - start) * 1e3:.1f} ms, "
                                             f"{threading.current_thread().name}, {info['collected']} freed)"))

    def between(self, start: float, end: float) -> list[str]:
        return [f"{(e - start) * 1e3:+.1f} {what}" for s, e, what in self.events if e >= start and s <= end]


class DragProbe:
    """Drives the drag with a 16 ms timer and the stall probe with a 5 ms timer; records latencies."""

    def __init__(self, view, canvas):
        from PySide6.QtCore import Qt, QTimer
        self.view, self.canvas = view, canvas
        self.latencies, self.handler, self.lateness = [], [], []
        self.sent: list[float] = []     # when each measured move was sent (perf_counter)
        #: for each measured move, the GUI thread's ms on a core and waiting for one until it was painted
        self.cpu_and_queue: list[tuple[float, float]] = []
        self._pending_times = (0.0, 0.0)
        self._tick = 0.0   # the latest 16 ms tick whose move has been sent
        self.started = 0.0
        self._pending: float | None = None
        self._phase = 0.0
        self._last_stall: float | None = None
        self.watchdog, self.watchdog_ms = None, 40.0   # --watchdog: an open file, and the stall that dumps
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
        self.started = self._tick = time.perf_counter()
        self.move_timer.start()
        self.stall_timer.start()

    def stop(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        if self.watchdog is not None:
            import faulthandler
            faulthandler.cancel_dump_traceback_later()
        self.move_timer.stop()
        self.stall_timer.stop()
        self._send(QEvent.Type.MouseButtonRelease, self._point(), Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
        self._pending = None

    def _move(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        t0 = time.perf_counter()
        period = TICK_MS / 1e3
        arrived = min(t0, self._tick + period)   # the first move since the last one sent
        self._tick += period * max(1, int((t0 - self._tick) / period))
        if self._pending is None:
            self._pending = arrived
            self._pending_times = thread_times()
        self._send(QEvent.Type.MouseMove, self._point(), Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
        self.handler.append((time.perf_counter() - t0) * 1e3)

    def _on_painted(self, t: float) -> None:
        if self._pending is not None:
            self.latencies.append((t - self._pending) * 1e3)
            self.sent.append(self._pending)
            cpu, queued = thread_times()
            self.cpu_and_queue.append(((cpu - self._pending_times[0]) * 1e3, (queued - self._pending_times[1]) * 1e3))
            self._pending = None

    def _stall(self) -> None:
        now = time.perf_counter()
        if self.watchdog is not None:   # re-armed at each tick: it fires only when the GUI thread stalls
            import faulthandler
            faulthandler.dump_traceback_later(self.watchdog_ms / 1e3, file=self.watchdog)
        if self._last_stall is not None:
            self.lateness.append(max(0.0, (now - self._last_stall) * 1e3 - STALL_MS))
        self._last_stall = now

    def results(self, seconds: float, settle_s: float, spike_ms: float, log: EventLog | None = None) -> dict:
        after = [(sent, ms, times) for sent, ms, times in zip(self.sent, self.latencies, self.cpu_and_queue)
                 if sent - self.started >= settle_s]
        spikes = [{"at_s": round(sent - self.started, 3), "ms": round(ms, 1), "cpu_ms": round(cpu, 1),
                   "queued_ms": round(queued, 1), "events": log.between(sent, sent + ms / 1e3) if log else []}
                  for sent, ms, (cpu, queued) in after if ms > spike_ms]
        # where the GUI thread's time went in the slow drags: on a core, waiting for a core (other
        # processes and the training thread), and the rest (waiting for the GIL, or idle in the loop)
        slow = [(ms, cpu, queued) for _, ms, (cpu, queued) in after if ms > spike_ms]
        split = {"n": len(slow), "wall_ms": sum(m for m, _, _ in slow), "cpu_ms": sum(c for _, c, _ in slow),
                 "queued_ms": sum(q for _, _, q in slow)}
        return {"drag": percentiles(self.latencies), "drag_after_settle": percentiles([ms for _, ms, _ in after]),
                "slow_split": split,
                "handler": percentiles(self.handler), "late": percentiles(self.lateness),
                "moves_per_s": len(self.handler) / seconds, "spikes": spikes}


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
    from engine.datasets import load_dataset
    from engine.probe_sets import probe_settings  # the training form's Map points
    from explorer.decoder_canvas import DecoderCanvas
    from explorer.map.latent_view import LatentView
    from explorer.session import RunState, Session

    if args.as_app:
        import pyqtgraph as pg

        from explorer.window.runtime import tune_for_gui
        tune_for_gui()
        pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")   # as explorer/window/start_up.py's before_views
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.train_nice is not None:
        import engine.training
        engine.training.TRAIN_NICENESS = args.train_nice
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
        if args.as_app:
            from explorer.window.runtime import collect_garbage_on_gui_thread, preload_in_background
            window.garbage_collector = collect_garbage_on_gui_thread()   # as explorer/window/start_up.py's with_views
            preload = preload_in_background()
            while preload.is_running():   # a person clicks Train a few seconds after launch
                run_for(0.1)
            run_for(1.1)   # the collector's next check freezes what the preload imported
        log = EventLog()
        model = ModelConfig(variant="vae", latent_dim=2, body=args.body)
        if args.first_run:
            from engine.defaults import default_run
            model = default_run()[1]
        state = session.add(RunState(data_cfg, model, TrainConfig(epochs=1000, device=args.device,
                                                                          **probe_settings(args.probe_set)), dataset=dataset))
        log.watch(state)
        probe = DragProbe(view, canvas)
        if args.watchdog:
            probe.watchdog, probe.watchdog_ms = open(args.watchdog, "a"), args.watchdog_ms
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
            training = probe.results(args.seconds, args.settle_seconds, args.spike_ms, log) | {
                "samples_per_s": samples_per_s, "points": view.points.n_points}
        finally:
            state.stop_and_wait(60_000)
        run_for(0.5)
        probe = DragProbe(view, canvas)
        probe.start()
        run_for(args.idle_seconds)
        probe.stop()
        idle = probe.results(args.idle_seconds, args.settle_seconds, args.spike_ms, log)
        log.close()
        view.shutdown()
        window.close()
    import engine.training
    return {"training": training, "idle": idle, "torch_threads": torch.get_num_threads(), "as_app": args.as_app,
            "train_nice": engine.training.TRAIN_NICENESS,
            "switch_interval_ms": sys.getswitchinterval() * 1e3, "omp": os.environ.get("OMP_WAIT_POLICY", "default")}


def print_table(rows: list[tuple[str, dict]], settle_s: float) -> None:
    head = (f"{'setting':<32} {'phase':<9} {'moves/s':>7} {'drag p50':>8} {'p95':>6} {'max':>6}   "
            f"{f'after {settle_s:g} s: p50':>15} {'p95':>6} {'max':>6}   "
            f"{'handler p95':>11}   {'timer late p50':>14} {'p99':>6} {'max':>6}   {'train img/s':>11}")
    print(head)
    print("-" * len(head))
    for title, r in rows:
        for phase in ("idle", "training"):
            p = r[phase]
            d, a, h, late = p["drag"], p["drag_after_settle"], p["handler"], p["late"]
            rate = f"{p['samples_per_s']:>11.0f}" if "samples_per_s" in p else f"{'':>11}"
            print(f"{title:<32} {phase:<9} {p['moves_per_s']:>7.1f} {d['p50']:>8.2f} {d['p95']:>6.2f} {d['max']:>6.1f}   "
                  f"{a['p50']:>15.2f} {a['p95']:>6.2f} {a['max']:>6.1f}   {h['p95']:>11.2f}   {late['p50']:>14.2f} {late['p99']:>6.2f} {late['max']:>6.1f}   {rate}")
    print("(milliseconds; drag = mouse move sent -> decoded image painted; targets while training: p95 <= 16, "
          f"max <= 16 after the first {settle_s:g} s; timer lateness p99 <= 20)")


def print_spikes(result: dict, spike_ms: float) -> None:
    for phase in ("training", "idle"):
        spikes, split = result[phase]["spikes"], result[phase]["slow_split"]
        print(f"{phase}: {len(spikes)} drag(s) over {spike_ms:g} ms after the settling time", end="")
        if split["n"]:
            other = split["wall_ms"] - split["cpu_ms"] - split["queued_ms"]
            print(f"; their GUI-thread time: {split['cpu_ms'] / split['wall_ms']:.0%} on a core, "
                  f"{split['queued_ms'] / split['wall_ms']:.0%} waiting for a core, {other / split['wall_ms']:.0%} "
                  "neither (the GIL, or idle in the event loop)", end="")
        print()
        for spike in spikes[:40]:
            print(f"  at {spike['at_s']:7.3f} s  {spike['ms']:6.1f} ms (cpu {spike['cpu_ms']:5.1f}, queued "
                  f"{spike['queued_ms']:5.1f})  " + "; ".join(spike["events"]))


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.sweep:
        result = measure(args)
        if args.json:
            print("RESULT " + json.dumps(result))
        else:
            title = ("as the app: " if result["as_app"] else "") + \
                f"GUI torch threads {result['torch_threads']}, switch {result['switch_interval_ms']:g} ms, " \
                f"{result['omp']}, training nice {result['train_nice']}"
            print_table([(title, result)], args.settle_seconds)
            print_spikes(result, args.spike_ms)
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
    print_table(rows, args.settle_seconds)


if __name__ == "__main__":
    main()
