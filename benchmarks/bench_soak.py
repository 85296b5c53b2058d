"""Soak: the real window, offscreen, training a VAE on digits while the map is dragged without pause
and the projection switches; does the process's memory stay flat once it has warmed up?

The main window starts as ``python main.py`` starts it (``tune_for_gui``) and trains a VAE with a
2-D latent on the bundled digits (the panel's other settings at their defaults, epochs 100,000, so it
trains for the whole soak and saves a checkpoint every epoch).  A 48 Hz timer drags the map's handle
along a loop (left button held, released and pressed again at each switch); every ``--switch-s``
seconds the map switches to the next projection the latent view offers (its combo: Raw 2-D, PCA,
UMAP, ...), UMAP first, so that its first fit (about a minute of compiling, in the background)
overlaps the first round.

Resident memory (VmRSS) is read every second.  Warm-up lasts until every projection has been shown
once and the first UMAP layout has arrived; the RSS at the next switch is the baseline ("after
warm-up"), and the growth from it to the end is reported, with whether it stays under 5%.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_soak.py [--minutes 5] [--switch-s 30] [--json OUT]

Threads: the GUI thread keeps one torch thread and training takes torch's default (tune_for_gui), as
in the app; OMP_NUM_THREADS, when set, applies to both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRAG_HZ = 48
TARGET_GROWTH = 0.05


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the soak (default 5)")
    parser.add_argument("--switch-s", type=float, default=30.0, help="seconds between projection switches (default 30)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    return parser.parse_args(argv)


def rss_mb() -> float:
    """The process's resident set size in MB (VmRSS; the peak from getrusage where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Soak:
    """Drives the drags, the switches and the RSS samples from Qt timers on the GUI thread."""

    def __init__(self, window, switch_s: float):
        from PySide6.QtCore import Qt, QTimer
        self.window, self.view = window, window.latent_view
        combo = self.view.projection_combo
        offered = [combo.itemData(i) for i in range(combo.count())]
        # UMAP first: its first fit (a minute of compiling) overlaps the rest of the first round
        self.projections = sorted(offered, key=lambda name: name != "umap")
        self.switch_s = switch_s
        self.shown: set[str] = set()
        self.umap_arrived_s: float | None = None
        self.warm: tuple[float, float] | None = None   # (seconds, RSS MB) at the end of warm-up
        self.samples: list[tuple[float, float]] = []
        self.switches: list[tuple[float, str]] = []
        self.moves = 0
        self._phase = 0.0
        self._next = 0
        self.t0 = time.perf_counter()
        self.view.worker.computed.connect(self._on_computed)
        self.drag_timer = QTimer(interval=round(1000 / DRAG_HZ), timerType=Qt.TimerType.PreciseTimer,
                                 timeout=self._move)
        self.switch_timer = QTimer(interval=round(switch_s * 1000), timeout=self._switch)
        self.sample_timer = QTimer(interval=1000, timeout=self._sample)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    # -- the mouse --------------------------------------------------------------------------------
    def _send(self, kind, button, buttons) -> None:
        from PySide6.QtCore import QPoint, QPointF, Qt
        from PySide6.QtGui import QMouseEvent
        from PySide6.QtWidgets import QApplication
        viewport = self.view.plot.viewport()
        w, h = viewport.width(), viewport.height()
        point = QPoint(int(w / 2 + 0.35 * w * math.sin(self._phase)), int(h / 2 + 0.35 * h * math.sin(1.7 * self._phase)))
        event = QMouseEvent(kind, QPointF(point), QPointF(viewport.mapToGlobal(point)), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, event)

    def _press(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        self._send(QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)

    def _release(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        self._send(QEvent.Type.MouseButtonRelease, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)

    def _move(self) -> None:
        from PySide6.QtCore import QEvent, Qt
        self._phase += 0.04
        self._send(QEvent.Type.MouseMove, Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
        self.moves += 1

    # -- switches and samples ---------------------------------------------------------------------
    def _on_computed(self, _result) -> None:
        if self.umap_arrived_s is None:
            self.umap_arrived_s = self.now()

    def _switch(self) -> None:
        warmed = self.warm is None and self.shown >= set(self.projections) and \
            (self.umap_arrived_s is not None or "umap" not in self.projections)
        if warmed:
            self.warm = (self.now(), rss_mb())
        self._release()
        name = self.projections[self._next % len(self.projections)]
        self._next += 1
        self.view.set_projection(name)
        self.shown.add(name)
        self.switches.append((self.now(), name))
        self._press()

    def _sample(self) -> None:
        self.samples.append((self.now(), rss_mb()))

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.samples.append((0.0, rss_mb()))
        self._switch()
        self.drag_timer.start()
        self.switch_timer.start()
        self.sample_timer.start()

    def stop(self) -> None:
        for timer in (self.drag_timer, self.switch_timer, self.sample_timer):
            timer.stop()
        self._release()
        self.samples.append((self.now(), rss_mb()))


def run_for(seconds: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    loop.exec()


def measure(args) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from explorer.window.runtime import tune_for_gui
    tune_for_gui()
    import pyqtgraph as pg
    import torch
    from PySide6.QtWidgets import QApplication

    from engine.training import TRAIN_THREADS
    from explorer.window.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    rss_launch = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(runs_dir=Path(tmp) / "runs")
        window.resize(1400, 900)
        window.show()
        panel = window.training_panel
        panel.dataset.setCurrentIndex(panel.dataset.findData("digits"))
        panel.model.setCurrentIndex(panel.model.findData("vae"))
        panel.latent.setValue(2)
        panel.epochs.setValue(100_000)
        panel.start.click()
        state = window.session.active
        t_wait = time.perf_counter()
        while (state is None or state.probe is None) and time.perf_counter() - t_wait < 120:
            run_for(0.05)
            state = window.session.active
        if state is None or state.probe is None:
            raise SystemExit("training did not start: " + window.state_label.text())
        soak = Soak(window, args.switch_s)
        step0 = state.step
        soak.start()
        run_for(args.minutes * 60)
        soak.stop()
        seconds = soak.now()
        steps = state.step - step0
        window.close()
        app.processEvents()
    start_t, start_rss = soak.samples[0]
    end_t, end_rss = soak.samples[-1]
    warm_t, warm_rss = soak.warm if soak.warm is not None else (math.nan, math.nan)
    growth = (end_rss - warm_rss) / warm_rss if soak.warm is not None else math.nan
    after_warm = [rss for t, rss in soak.samples if soak.warm is not None and t >= warm_t]
    return {
        "minutes": args.minutes, "switch_s": args.switch_s, "projections": soak.projections,
        "switches": soak.switches, "umap_arrived_s": soak.umap_arrived_s,
        "rss_launch_mb": rss_launch, "rss_start_mb": start_rss, "rss_after_warmup_mb": warm_rss,
        "warmup_s": warm_t, "rss_end_mb": end_rss, "rss_max_after_warmup_mb": max(after_warm, default=math.nan),
        "growth_after_warmup": growth, "passes": bool(growth < TARGET_GROWTH),
        "drag_moves_per_s": soak.moves / seconds, "training_steps_per_s": steps / seconds,
        "gui_torch_threads": torch.get_num_threads(), "train_threads": TRAIN_THREADS,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "seconds": seconds,
        "samples": soak.samples,
    }


def report(r: dict) -> None:
    print(f"soak of {r['seconds'] / 60:.1f} min: VAE on digits training ({r['training_steps_per_s']:.0f} steps/s), "
          f"drags at {r['drag_moves_per_s']:.1f} moves/s, projection switched every {r['switch_s']:g} s "
          f"through {', '.join(r['projections'])}")
    print(f"  first UMAP layout arrived at {r['umap_arrived_s']:.0f} s" if r["umap_arrived_s"] is not None
          else "  no UMAP layout arrived")
    print(f"  RSS at launch      {r['rss_launch_mb']:8.0f} MB")
    print(f"  RSS at start       {r['rss_start_mb']:8.0f} MB   (training, before the first drag)")
    if math.isnan(r["rss_after_warmup_mb"]):
        print("  warm-up did not end: lengthen --minutes (every projection once and the first UMAP layout)")
        return
    print(f"  RSS after warm-up  {r['rss_after_warmup_mb']:8.0f} MB   (at {r['warmup_s']:.0f} s)")
    print(f"  RSS at the end     {r['rss_end_mb']:8.0f} MB   (max after warm-up {r['rss_max_after_warmup_mb']:.0f} MB)")
    print(f"  growth after warm-up {100 * r['growth_after_warmup']:+.1f}% over {r['seconds'] - r['warmup_s']:.0f} s "
          f"-> {'PASS' if r['passes'] else 'FAIL'} (target < {100 * TARGET_GROWTH:.0f}%)")
    print(f"  threads: GUI thread torch {r['gui_torch_threads']}, training {r['train_threads']}, "
          f"OMP_NUM_THREADS {r['omp_num_threads']}")


def main(argv=None) -> None:
    args = parse_args(argv)
    result = measure(args)
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
