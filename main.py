"""Latent Explorer.  ``python main.py`` opens the app; ``python main.py train|resume|info|export|download ...``
runs headless (``python main.py --help``)."""

from __future__ import annotations

import sys


def _main(argv: list[str]) -> int:
    from engine.cli import COMMANDS
    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help")):
        from engine.cli import main as cli_main
        return cli_main(argv)
    from explorer.app import main as app_main
    return app_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:   # Ctrl+C while torch and Qt are still importing: one line, not a traceback
        return _main(argv)
    except KeyboardInterrupt:
        print("error: interrupted while starting; nothing was changed.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
