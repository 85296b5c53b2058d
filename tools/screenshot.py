"""A quick screenshot of the window, mid-training, the decoder canvas showing a digit (the window's
own pixels, without a window manager's frame).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshot.py out.png [--size 1280x770] [--dataset mnist --data-root DIR]

The README's screenshots are of the real window in a real X server with a window manager, at
1280×800 and 1600×1000, taken with ../shared/tools/real-window.sh while driving it with xdotool.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def pump(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def drag(view, app, fx: float, fy: float) -> None:
    """Press the left button at a fraction of the map's viewport and move a little."""
    vp = view.plot.viewport()
    pos = QPointF(vp.width() * fx, vp.height() * fy)
    for kind, p in ((QMouseEvent.MouseButtonPress, pos), (QMouseEvent.MouseMove, pos + QPointF(3, 2)),
                    (QMouseEvent.MouseMove, pos + QPointF(6, 4))):
        app.sendEvent(vp, QMouseEvent(kind, p, vp.mapToGlobal(p), Qt.LeftButton, Qt.LeftButton, Qt.NoModifier))
        pump(app, 0.05)
    app.sendEvent(vp, QMouseEvent(QMouseEvent.MouseButtonRelease, pos + QPointF(6, 4), vp.mapToGlobal(pos + QPointF(6, 4)),
                                  Qt.LeftButton, Qt.NoButton, Qt.NoModifier))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root")
    ap.add_argument("--model", default="vae")
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--size", default="1600x1000", help="the window's size, WxH (default %(default)s)")
    a = ap.parse_args()
    import pyqtgraph as pg

    from engine.config import DataConfig
    from explorer.window.main_window import MainWindow
    from explorer.window.runtime import tune_for_gui
    tune_for_gui()
    app = QApplication([sys.argv[0]])
    pg.setConfigOptions(antialias=True)
    window = MainWindow(runs_dir=tempfile.mkdtemp(prefix="le-shot-"))
    panel = window.training_panel
    panel.set_configs(DataConfig(source=a.dataset, root=a.data_root), *panel.configs()[1:])
    panel.dataset.setCurrentIndex(panel.dataset.findData(a.dataset))
    panel.model.setCurrentIndex(panel.model.findData(a.model))
    panel.epochs.setValue(200)
    width, height = (int(v) for v in a.size.lower().split("x"))
    window.resize(width, height)
    window.show()
    pump(app, 1.0)
    panel.start.click()
    pump(app, a.seconds)
    drag(window.latent_view, app, 0.55, 0.45)
    pump(app, 1.5)
    image = window.grab()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    image.save(a.out)
    print(f"wrote {a.out} ({image.width()}×{image.height()})")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
