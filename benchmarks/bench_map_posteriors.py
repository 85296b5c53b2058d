"""The GUI thread's share of the map's posteriors: Density's contours, a probe update, a hovered ellipse.

Run: ``python benchmarks/bench_map_posteriors.py [--body mlp|conv] [--rounds 8] [--json OUT]``

A shown 800×600 LatentView (offscreen unless a display is set) on an MNIST-shaped VAE with a 2-D
latent (random weights; 10,000 random 28×28 validation images, 1,000 of them probe points). With
Density on, each probe update (``probe_changed``) is timed on the GUI thread, then the contours it
starts in the background (400 posteriors, the 48² grid, the contour lines: "background") and their
drawing on the GUI thread ("gui").  Then 20 hovered points' ellipses (one posterior each, on the
GUI thread).  Medians and maxima in milliseconds; the budget is one 60 Hz frame, ~16 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LATENT_EXPLORER_WARM_UP", "0")
os.environ.setdefault("LATENT_EXPLORER_SETTINGS", "memory")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from engine.data import DataConfig, DatasetSplit, ImageSet  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engine.config import ModelConfig, TrainConfig  # noqa: E402
from engine.history import ProbeCodes  # noqa: E402
from explorer.map.latent_view import LatentView  # noqa: E402
from explorer.session import RunState, Session  # noqa: E402
from explorer.window.runtime import tune_for_gui  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", default="mlp", choices=("mlp", "conv"))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    tune_for_gui()
    g = torch.Generator().manual_seed(0)

    def images(n: int) -> ImageSet:
        return ImageSet(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                        torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])

    data = DatasetSplit("random-28x28", images(2000), images(10_000))
    session = Session()
    view = LatentView(session)
    view.resize(800, 600)
    view.show()
    app.processEvents()
    state = session.add(RunState(DataConfig(), ModelConfig(variant="vae", latent_dim=2, body=args.body),
                                 TrainConfig(device="cpu"), dataset=data))
    idx = np.sort(np.random.default_rng(0).choice(10_000, 1000, replace=False))
    with torch.no_grad():
        codes = state.model.encode(data.val.images[torch.as_tensor(idx)].float() / 255).numpy()
    state.probe = ProbeCodes(codes, data.val.labels[torch.as_tensor(idx)].numpy(), idx)
    state.probe_changed.emit(state.probe)
    drawn: list[int] = []
    view.posteriors.density_drawn.connect(lambda: drawn.append(1))

    def wait_drawn(count: int) -> None:
        started = time.time()
        while len(drawn) < count and time.time() - started < 60:
            app.processEvents()
            time.sleep(0.002)

    view.density_toggle.setChecked(True)
    wait_drawn(1)
    update, gui, background, hover = [], [], [], []
    for r in range(args.rounds):
        started = time.perf_counter()
        state.probe_changed.emit(state.probe)
        update.append(1000 * (time.perf_counter() - started))
        wait_drawn(r + 2)
        gui.append(view.posteriors.last_density_ms["gui"])
        background.append(view.posteriors.last_density_ms["background"])
    view.density_toggle.setChecked(False)
    for i in range(20):
        view._hovered = i
        started = time.perf_counter()
        view.posteriors.refresh_ellipses()
        hover.append(1000 * (time.perf_counter() - started))
    view.shutdown()
    rows = {"probe update, GUI thread": update, "contours drawn, GUI thread": gui,
            "contours computed, background": background, "hovered ellipse, GUI thread": hover}
    results = {name: {"median_ms": float(np.median(v)), "max_ms": float(np.max(v))} for name, v in rows.items()}
    print(f"MNIST-shaped VAE, {args.body} body, latent 2, 1,000 probe points, Density on ({args.rounds} rounds):")
    for name, r in results.items():
        print(f"  {name:32s} median {r['median_ms']:7.1f} ms   max {r['max_ms']:7.1f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps({"body": args.body, "rounds": args.rounds, "results": results}, indent=2))


if __name__ == "__main__":
    main()
