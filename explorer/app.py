"""Start-up: thread settings for a responsive GUI beside a training thread, then the window."""

from __future__ import annotations

import os
import sys
import threading


def tune_for_gui() -> None:
    """Set the GUI thread up to live beside a training thread; call it before the GUI thread runs
    any torch op.

    - The GUI thread runs torch ops on one thread (its decodes are a few images at a time), so it
      never starts an OpenMP team of its own.  OpenMP (libgomp) spins briefly instead of for a
      while once it manages more threads than there are cores; with a GUI team beside the
      training team on 2 cores, the training team fell asleep and woke at every parallel region
      (110,000 context switches where there had been 400) and trained 12–20% slower.  The
      training thread keeps torch's default count (``engine.training.use_threads``).
    - The GIL switches every millisecond, so the GUI thread gets its turn quickly.
    - OpenMP keeps its default wait policy: OMP_WAIT_POLICY=PASSIVE cost a quarter of the in-app
      throughput and made drag latency and timer lateness slightly worse
      (benchmarks/bench_drag_latency.py --sweep)."""
    from engine.training import use_threads  # importing it records torch's default count first
    use_threads(1)
    sys.setswitchinterval(0.001)


def preload_in_background() -> None:
    """Import, behind the shown window, the modules that the first run needs but start-up does not
    (about a second on 2 cores), so the first redraw or drag does not pay for them."""
    def preload() -> None:
        import scipy.signal  # noqa: F401
        import scipy.spatial  # noqa: F401
    threading.Thread(target=preload, name="preload", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and \
            os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal", "vnc") and sys.platform.startswith("linux"):
        print("error: no display found; run Latent Explorer in a desktop session (or under xvfb-run).", file=sys.stderr)
        return 2
    tune_for_gui()   # first: before anything on this thread can run a torch op
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Latent Explorer")
    app.setOrganizationName("LatentExplorer")
    pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")
    window = MainWindow(settings=QSettings())
    window.show()
    preload_in_background()
    for path in argv:
        window.open_run(path)
    return app.exec()
