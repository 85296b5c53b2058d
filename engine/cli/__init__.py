"""The headless command line over the engine: train, resume, inspect, evaluate, export, download.

    python main.py train --dataset digits --model vae --latent-dim 2 --epochs 20 --out runs/
    python main.py info RUN
    python main.py evaluate RUN [--nll-samples K] [--json]
    python main.py export samples RUN --out grid.png

Bad input ends in one sentence on stderr and exit status 2; nothing already saved is touched.
The parser tree is ``parser.py``; each command lives in ``train.py`` (train, resume, download),
``report.py`` (info, evaluate, compare), ``export.py`` or ``sweep.py`` and is reached through
the ``func`` its sub-parser sets.
"""

from __future__ import annotations

import sys

from engine.cli.parser import COMMANDS, build_parser
from engine.cli.train import configs_from_args
from engine.errors import UserError
from engine.outputs import Terminated, signals_stop_cleanly

__all__ = ["COMMANDS", "build_parser", "configs_from_args", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            build_parser().print_help()
            return 0
        a = build_parser().parse_args(argv)
        with signals_stop_cleanly():   # SIGTERM unwinds like Ctrl-C: exports remove their temporary output
            return a.func(a)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; the run folder keeps its last saved epoch.", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"error: stopped by signal {exc.signum}; a run folder keeps its last saved epoch, an export in "
              "progress left nothing behind.", file=sys.stderr)
        return 128 + exc.signum
    except MemoryError:
        print("error: this machine ran out of memory; try a smaller batch, model or data set.", file=sys.stderr)
        return 1
    except OSError as exc:   # a disk error that no engine module turned into a sentence
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
