"""The argparse tree of the command line and the argument types its commands share.

Each command module adds its own sub-parser (``add_parser(sub)``) and names the function that
runs it with ``set_defaults(func=...)``; ``engine.cli.main`` calls ``args.func(args)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from engine.config import DEVICES, MAX_SEED, PRECISIONS
from engine.datasets import SOURCES
from engine.errors import UserError
from engine.history import METRICS_FILE
from engine.metrics import DEFAULT_NLL_SAMPLES
from engine.models import VARIANTS

COMMANDS = ("train", "resume", "info", "evaluate", "export", "download", "sweep", "compare")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence, no usage dump
        raise UserError(f"{message[0].upper()}{message[1:]} (see --help).")


def param_fields() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """Each variant parameter's name -> the (variant key, field) pairs that have it."""
    fields: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    for key, spec in VARIANTS.items():
        for f in dataclasses.fields(spec.params_class):
            fields.setdefault(f.name, []).append((key, f))
    return fields


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


finite_float.__name__ = "float"   # what argparse and the sweep's comma lists call it


def seed_value(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED} (what torch and NumPy accept), "
                                         f"not {text}")
    return value


seed_value.__name__ = "int"


def number_type(default):
    """The argparse type of a variant parameter: floats must be finite."""
    return finite_float if type(default) is float else type(default)


def param_help(owners: list[tuple[str, dataclasses.Field]]) -> str:
    """The flag's help: what it is, and each variant's own default."""
    labels = dict.fromkeys(f.metadata.get("label", f.name) for _, f in owners)
    defaults = "; ".join(f"{key} {f.default}" for key, f in owners)
    return f"{' / '.join(labels)} (default: {defaults})"


def hidden_widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths must be numbers separated by commas, not {text!r}") from None


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", choices=SOURCES, help="data source (default: digits, bundled)")
    g.add_argument("--data-root", help="folder for torchvision datasets (default: the user data folder)")
    g.add_argument("--path", help="image folder or .npz file for --dataset folder/npz")
    g.add_argument("--image-size", type=int, default=28, help="folder: square size to resize to")
    g.add_argument("--rgb", action="store_true", help="folder: keep colour (default: grayscale)")
    g.add_argument("--download", action="store_true", help="download a torchvision dataset when it is missing")


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=finite_float, default=1e-3)
    g.add_argument("--seed", type=seed_value, default=0)
    g.add_argument("--device", default="auto", choices=DEVICES)
    g.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="bf16: mixed precision for the training steps (forward and loss in bfloat16 under "
                        "autocast, weights and Adam in float32; validation in float32); default fp32")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def nll_samples(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000000, not {text!r}")
    return k


def add_evaluate_args(p: argparse.ArgumentParser, after_training: bool) -> None:
    """The evaluate command's options; on train, --evaluate runs it when training ends."""
    g = p.add_argument_group("evaluation")
    if after_training:
        g.add_argument("--evaluate", action="store_true",
                       help=f"when training ends, evaluate the latest weights (as `evaluate RUN`) and write {METRICS_FILE}")
    g.add_argument("--nll-samples", type=nll_samples, default=DEFAULT_NLL_SAMPLES, metavar="K",
                   help=f"importance samples per image for the test NLL (default {DEFAULT_NLL_SAMPLES})")
    if after_training:
        return
    g.add_argument("--best", action="store_true", help="evaluate the best weights instead of the latest")
    g.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    g.add_argument("--device", default="auto", choices=DEVICES, help="where to compute (default: auto)")
    g.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def map_point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers X,Y, not {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected two finite numbers X,Y, not {text!r}")
    return x, y



def add_force_arg(p: argparse.ArgumentParser, what: str = "--out") -> None:
    """``--force``: replace an existing output file (without it an existing one is refused)."""
    p.add_argument("--force", action="store_true",
                   help=f"replace {what} when it exists (default: refuse, so nothing saved is overwritten)")


def build_parser() -> argparse.ArgumentParser:
    """The whole tree: every command's sub-parser, each with its ``func``."""
    from engine.cli import export, report, sweep, train
    parser = Parser(prog="latent-explorer", description="Train and explore autoencoders. "
                     "With no command, opens the app.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    train_parser = train.add_parsers(sub)
    report.add_parsers(sub)
    export.add_parser(sub)
    train.add_download_parser(sub)
    sweep.add_parser(sub, train_parser)
    report.add_compare_parser(sub)
    return parser


def open_run(a):
    """The run named on the command line (``a.run``), its data root replaced by --data-root when given."""
    from engine.runs import Run
    run = Run.open(a.run)
    if getattr(a, "data_root", None):
        run.data = dataclasses.replace(run.data, root=a.data_root)
    return run
