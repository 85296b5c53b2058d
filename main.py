"""Latent Explorer.  ``python main.py`` opens the app; ``python main.py train|resume|info|evaluate|export|sweep|compare|download ...``
runs headless (``python main.py --help``)."""

from __future__ import annotations

import os
import signal
import sys


def _opens_the_app(argv: list[str]) -> bool:
    """No arguments, or run folders to open: the app.  A command (or --help): the CLI.  Decided
    without importing the engine, so that the window shows before torch is imported."""
    return not argv or os.path.exists(argv[0]) or os.sep in argv[0] or "/" in argv[0]


def _main(argv: list[str]) -> int:
    if not _opens_the_app(argv):
        from engine.cli import main as cli_main
        return cli_main(argv)
    from explorer.window.start_up import main as app_main
    return app_main(argv)


_interrupted = False   # a Ctrl+C arrived (set by the SIGINT handler main() installs)


def _on_sigint(signum, frame) -> None:
    """Python's own SIGINT behaviour (KeyboardInterrupt), remembering that it happened."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:   # Ctrl+C while torch and Qt are still importing: one line, not a traceback
        return _main(argv)
    except (KeyboardInterrupt, ImportError) as exc:
        # a Ctrl+C inside an extension module's initialisation comes out as an ImportError (NumPy:
        # 'PyCapsule_Import could not import module "datetime"'); one without a Ctrl+C is a real fault
        if isinstance(exc, ImportError) and not _interrupted:
            raise
        print("error: interrupted while starting; nothing was changed.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
