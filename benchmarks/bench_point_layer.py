"""PointLayer versus pyqtgraph's ScatterPlotItem on 70,000 points in 10 classes.

Run: ``python benchmarks/bench_point_layer.py [--points 70000] [--repeats 10] [--size 3]``

Two 800×600 PlotWidgets in one process (offscreen unless a display is set), one per item.
A "full update" is new coordinates + one synchronous repaint (``widget.viewport().repaint()``
paints the whole scene; ``widget.repaint()`` alone does not reach the graphics view's viewport);
a "pan" is ``ViewBox.translateBy`` + the same repaint, a "zoom" ``ViewBox.scaleBy`` + the repaint
(frames alternate; median and p95 reported; at 1,000,000 points the target is p95 ≤ 33 ms). The two items are timed alternately and
the medians compared. The ScatterPlotItem update includes building its per-point brush list.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402

from explorer.map.point_layer import PointLayer, palette_for  # noqa: E402


def make_layouts(n: int, classes: int, count: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """A few slightly different layouts of the same labelled points (like successive epochs)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(scale=4.0, size=(classes, 2))
    base = centres[labels] + rng.normal(size=(n, 2))
    return [base + rng.normal(scale=0.05, size=base.shape) for _ in range(count)], labels


def timed(action, *args) -> float:
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=70_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=float, default=3.0)
    args = parser.parse_args()

    app = pg.mkQApp()
    layouts, labels = make_layouts(args.points, args.classes, count=4)
    colors = palette_for(args.classes)
    brushes = [pg.mkBrush(c) for c in colors]

    widgets = {}
    for name in ("PointLayer", "ScatterPlotItem"):
        widget = pg.PlotWidget(title=name)
        widget.resize(800, 600)
        widget.show()
        widgets[name] = widget
    layer = PointLayer(point_size=args.size)
    scatter = pg.ScatterPlotItem(pxMode=True)
    widgets["PointLayer"].addItem(layer)
    widgets["ScatterPlotItem"].addItem(scatter)

    def update_layer(xy: np.ndarray) -> None:
        layer.set_points(xy, labels, colors)
        widgets["PointLayer"].viewport().repaint()

    def update_scatter(xy: np.ndarray) -> None:
        scatter.setData(x=xy[:, 0], y=xy[:, 1], brush=[brushes[i] for i in labels], size=args.size, pen=None)
        widgets["ScatterPlotItem"].viewport().repaint()

    def pan(widget: pg.PlotWidget, step: float) -> None:
        widget.getViewBox().translateBy(x=step, y=step / 2)
        widget.viewport().repaint()

    # Warm-up: first data, fit the views, let Qt settle.
    update_layer(layouts[0])
    update_scatter(layouts[0])
    for widget in widgets.values():
        widget.autoRange()
    app.processEvents()

    times: dict[str, list[float]] = {"PointLayer": [], "ScatterPlotItem": []}
    for r in range(args.repeats):
        xy = layouts[(r + 1) % len(layouts)]
        times["PointLayer"].append(timed(update_layer, xy))
        times["ScatterPlotItem"].append(timed(update_scatter, xy))
        app.processEvents()

    def zoom(widget: pg.PlotWidget, factor: float) -> None:
        widget.getViewBox().scaleBy((factor, factor))
        widget.viewport().repaint()

    pans: dict[str, list[float]] = {"PointLayer": [], "ScatterPlotItem": []}
    for r in range(args.repeats * 2):   # pan and zoom frames alternate, as a person's navigation does
        for name, widget in widgets.items():
            if r % 2 == 0:
                pans[name].append(timed(pan, widget, 0.3 if r % 4 == 0 else -0.3))
            else:
                pans[name].append(timed(zoom, widget, 0.9 if r % 4 == 1 else 1 / 0.9))
        app.processEvents()

    ours, theirs = statistics.median(times["PointLayer"]), statistics.median(times["ScatterPlotItem"])
    pan_ours, pan_theirs = statistics.median(pans["PointLayer"]), statistics.median(pans["ScatterPlotItem"])
    print(f"{args.points} points, {args.classes} classes, size {args.size:g} px, 800x600, "
          f"{args.repeats} repeats, platform {app.platformName()}")
    print(f"full update (set data + repaint): PointLayer {ours:7.1f} ms | ScatterPlotItem {theirs:7.1f} ms "
          f"| speed-up {theirs / ours:5.1f}x")
    p95_ours, p95_theirs = (float(np.percentile(pans[n], 95)) for n in ("PointLayer", "ScatterPlotItem"))
    print(f"pan/zoom frame (median):          PointLayer {pan_ours:7.1f} ms | ScatterPlotItem {pan_theirs:7.1f} ms "
          f"| speed-up {pan_theirs / pan_ours:5.1f}x")
    print(f"pan/zoom frame (p95):             PointLayer {p95_ours:7.1f} ms | ScatterPlotItem {p95_theirs:7.1f} ms "
          f"| speed-up {p95_theirs / p95_ours:5.1f}x")
    if args.points >= 1_000_000:
        print(f"target at 1M: pan/zoom p95 <= 33 ms: {'met' if p95_ours <= 33 else 'NOT met'}")
    print(f"target at 70k: full update <= 30 ms and >= 8x: {'met' if ours <= 30 and theirs / ours >= 8 else 'NOT met'}")


if __name__ == "__main__":
    main()
