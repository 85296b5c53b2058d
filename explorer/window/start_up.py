"""Start-up: the window first, then the engine behind it, with thread settings for a responsive
GUI beside a training thread.

``main()`` imports no torch before the window is shown: the frame, its menus and placeholders
come up in a fraction of a second, torch and the engine are imported on a background task
(explorer/tasks.py) while it paints, and the views are built in the GUI thread once they are there
(``MainWindow.build_views_in_background``).  ``LATENT_EXPLORER_LAUNCH_PROBE=1`` makes ``main()``
print when the window was shown and when its views were built, then quit
(benchmarks/bench_app.py measures launches that way)."""

from __future__ import annotations

import os
import sys
import time

from explorer.window.runtime import (
    PRELOADED,  # noqa: F401 — tests and benchmarks read it here
    collect_garbage_on_gui_thread,
    preload_in_background,
    tune_for_gui,
)

LAUNCH_PROBE = "LATENT_EXPLORER_LAUNCH_PROBE"


def open_paths(window, paths: list[str]) -> list:
    """What the command line names: run folders, and embeddings files (.npz, .csv) each in a map of
    its own (explorer/map/embeddings_window.py).  Returns the embeddings' loading tasks."""
    tasks = []
    for path in paths:
        if path.lower().endswith((".npz", ".csv")):
            tasks.append(window.menu_actions.open_embeddings(path))
        else:
            window.open_run(path)
    return tasks


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and \
            os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal", "vnc") and sys.platform.startswith("linux"):
        print("error: no display found; run Latent Explorer in a desktop session (or under xvfb-run).", file=sys.stderr)
        return 2
    sys.setswitchinterval(0.001)   # the GUI thread gets its turn while the engine imports behind it
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from explorer.resources import icon_path
    from explorer.window.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Latent Explorer")
    app.setOrganizationName("LatentExplorer")
    app.setDesktopFileName("latent-explorer")
    if icon_path().is_file():
        app.setWindowIcon(QIcon(str(icon_path())))
    window = MainWindow(settings=QSettings(), deferred=True)
    window.show()
    app.processEvents()   # painted now, before torch is imported
    probe = os.environ.get(LAUNCH_PROBE) == "1"
    if probe:
        print(f"shown {time.time():.6f}", flush=True)

    def before_views() -> None:
        tune_for_gui()   # first: before anything on this thread can run a torch op
        import pyqtgraph as pg
        pg.setConfigOptions(antialias=True, imageAxisOrder="row-major")

    def with_views() -> None:
        window.garbage_collector = collect_garbage_on_gui_thread()
        open_paths(window, argv)
        if probe:
            app.processEvents()
            print(f"built {time.time():.6f}", flush=True)
            app.quit()
            return
        preloads.append(preload_in_background())

    preloads: list = []   # the preload's BackgroundTask, once started
    window.build_views_in_background(before=before_views, then=with_views)
    code = app.exec()
    for task in filter(None, preloads):   # its rehearsal step inside torch must not meet the exit (an abort)
        task.wait(30_000)
    return code
