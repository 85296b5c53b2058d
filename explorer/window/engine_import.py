"""The engine imported behind the shown window: torch and the engine's modules on a background
task's thread (torch alone takes about 2 s; closing waits for it, as for every task), pyqtgraph meanwhile on the GUI thread (it is Qt's), then a callback
in the GUI thread.  ``MainWindow.build_views_in_background`` builds the views with it."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

#: what the background thread imports before the views are built (all of it without Qt widgets)
ENGINE_MODULES = ("torch", "engine.config", "engine.datasets", "engine.models", "engine.runs", "engine.training",
                  "engine.projection")


def import_engine_then(owner: QObject, then: Callable[[], None]) -> None:
    """Import ``ENGINE_MODULES`` on a background task's thread; once done, call ``then()`` in the GUI thread (an
    import's exception is raised there instead)."""
    failure: list[BaseException] = []

    def load(_progress) -> None:
        import importlib
        try:
            for name in ENGINE_MODULES:
                importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 — reported in the GUI thread
            failure.append(exc)

    from explorer.tasks import BackgroundTask
    loader = BackgroundTask(load, owner, name="engine-import")   # closing waits for it, as for every task
    loader.start()
    # meanwhile this thread imports the plotting library (Qt's, so not on the other thread)
    QTimer.singleShot(0, lambda: __import__("pyqtgraph"))
    poll = QTimer(owner)
    poll.setInterval(15)

    def check() -> None:
        if loader.is_running():
            return
        poll.stop()
        poll.deleteLater()
        if failure:
            raise failure[0]
        then()

    poll.timeout.connect(check)
    poll.start()
