"""The headless command line over the engine: train, resume, inspect, export, download.

    python main.py train --dataset digits --model vae --latent-dim 2 --epochs 20 --out runs/
    python main.py info RUN
    python main.py export samples RUN --out grid.png

Bad input ends in one sentence on stderr and exit status 2; nothing already saved is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from engine.config import DEVICES, DataConfig, ModelConfig, TrainConfig
from engine.data import SOURCES, download_dataset, load_dataset
from engine.errors import UserError
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.runs import Run

COMMANDS = ("train", "resume", "info", "export", "download")
EXPORTS = ("samples", "recon", "traversal", "interpolation", "embeddings")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence, no usage dump
        raise UserError(f"{message[0].upper()}{message[1:]} (see --help).")


def _param_fields() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """Each variant parameter's name -> the (variant key, field) pairs that have it."""
    fields: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    for key, spec in VARIANTS.items():
        for f in dataclasses.fields(spec.params_class):
            fields.setdefault(f.name, []).append((key, f))
    return fields


def _param_help(owners: list[tuple[str, dataclasses.Field]]) -> str:
    """The flag's help: what it is, and each variant's own default."""
    labels = dict.fromkeys(f.metadata.get("label", f.name) for _, f in owners)
    defaults = "; ".join(f"{key} {f.default}" for key, f in owners)
    return f"{' / '.join(labels)} (default: {defaults})"


def _hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths must be numbers separated by commas, not {text!r}") from None


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits", choices=SOURCES, help="data source (default: digits, bundled)")
    g.add_argument("--data-root", help="folder for torchvision datasets (default: the user data folder)")
    g.add_argument("--path", help="image folder or .npz file for --dataset folder/npz")
    g.add_argument("--image-size", type=int, default=28, help="folder: square size to resize to")
    g.add_argument("--rgb", action="store_true", help="folder: keep colour (default: grayscale)")
    g.add_argument("--download", action="store_true", help="download a torchvision dataset when it is missing")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="latent-explorer", description="Train and explore autoencoders. "
                     "With no command, opens the app.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model headless and save a run folder")
    _add_data_args(t)
    g = t.add_argument_group("model")
    g.add_argument("--model", default="vae", choices=list(VARIANTS), help="variant (default: vae)")
    g.add_argument("--latent-dim", type=int, default=2)
    g.add_argument("--body", default="auto", choices=BODIES,
                   help="body network: auto (conv for 28/32-pixel images, else mlp; lstm for seq_ae), mlp, conv, "
                        "or lstm (rows as time steps) (default: auto)")
    g.add_argument("--hidden", type=_hidden, default=(512, 256), help="hidden widths, e.g. 512,256")
    g.add_argument("--likelihood", default="bernoulli", choices=LIKELIHOODS,
                   help="reconstruction term: bernoulli (BCE, nats), gaussian_fixed (σ = 0.1, nats), "
                        "gaussian_learned (one σ learned, nats), squared_error (not nats) (default: bernoulli)")
    for name, owners in _param_fields().items():
        f = owners[0][1]
        flag = f"--{name.replace('_', '-')}"
        if isinstance(f.default, bool):
            g.add_argument(flag, dest=f"param_{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=_param_help(owners))
            continue
        g.add_argument(flag, dest=f"param_{name}", type=type(f.default), choices=f.metadata.get("choices"),
                       default=None, metavar=None if f.metadata.get("choices") else name.upper(),
                       help=_param_help(owners))
    g.add_argument("--pretrain-epochs", type=int, default=0,
                   help="greedy layer-wise pretraining: epochs per layer pair of the MLP body before the "
                        "end-to-end epochs (deterministic autoencoders; default: 0, none)")
    g.add_argument("--binarize", action="store_true",
                   help="dynamic binarisation: every training batch is drawn x ~ Bernoulli(pixel), validation "
                        "uses one fixed draw (for NLLs comparable with the literature)")
    _add_train_args(t)
    t.add_argument("--out", default="runs", help="folder in which the run folder is made (default: runs)")
    t.add_argument("--name", help="run folder name (default: date-variant-dataset)")

    r = sub.add_parser("resume", help="continue training a saved run")
    r.add_argument("run")
    r.add_argument("--epochs", type=int, required=True, help="total epochs to reach")
    r.add_argument("--device", choices=DEVICES)
    r.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    r.add_argument("--quiet", action="store_true")

    i = sub.add_parser("info", help="describe a saved run")
    i.add_argument("run")

    e = sub.add_parser("export", help="write figures or embeddings of a saved run")
    e.add_argument("what", choices=EXPORTS)
    e.add_argument("run")
    e.add_argument("--out", required=True, help="output file (.png for figures; .csv or .npz for embeddings)")
    e.add_argument("--n", type=int, default=64, help="images in a sample or reconstruction grid")
    e.add_argument("--label", type=int, help="class to condition on (conditional models)")
    e.add_argument("--best", action="store_true", help="use the best weights instead of the latest")
    e.add_argument("--data-root", help="where the run's dataset lives now, if it moved")

    d = sub.add_parser("download", help="download a torchvision dataset for offline use")
    d.add_argument("dataset", choices=[s for s in SOURCES if s not in ("digits", "folder", "npz")])
    d.add_argument("--data-root")
    return parser


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", choices=DEVICES)
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def configs_from_args(a) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    data = DataConfig(source=a.dataset, root=a.data_root, path=a.path, image_size=a.image_size,
                      grayscale=not a.rgb, download=a.download)
    params_class = VARIANTS[a.model].params_class
    own = {f.name for f in dataclasses.fields(params_class)}
    given = {k[6:]: v for k, v in vars(a).items() if k.startswith("param_") and v is not None}
    foreign = sorted(set(given) - own)
    if foreign:
        raise UserError(f"--{foreign[0].replace('_', '-')} does not apply to the {VARIANTS[a.model].title}.")
    model = ModelConfig(variant=a.model, latent_dim=a.latent_dim, body=a.body, hidden=a.hidden,
                        likelihood=a.likelihood, params=params_class(**given))
    train = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=a.device,
                        binarize=a.binarize, pretrain_epochs=a.pretrain_epochs)
    for cfg in (data, model, train):
        cfg.validate()
    return data, model, train


def _train(trainer, quiet: bool) -> int:
    from tqdm import tqdm
    bar = None
    last = None
    for update in trainer.updates():
        last = update
        if bar is None and not quiet:
            print(f"run {trainer.run.path} on {trainer.device}", flush=True)
            bar = tqdm(total=update.total_steps, initial=update.step, unit="step", dynamic_ncols=True, leave=False)
        if bar is not None:
            bar.n = update.step
            if len(update.steps):
                bar.set_postfix(loss=f"{update.terms['total'][-1]:.2f}", refresh=False)
            bar.refresh()
        if update.kind == "epoch":
            line = (f"epoch {update.epoch:>3}/{trainer.train_cfg.epochs}  " +
                    "  ".join(f"{k} {v:.3f}" for k, v in update.train_terms.items()) + "  |  val " +
                    "  ".join(f"{k} {v:.3f}" for k, v in update.val_terms.items()) +
                    f"  |  {update.samples_per_sec:,.0f} samples/s")
            (bar.write if bar is not None else print)(line)
    if bar is not None:
        bar.close()
    print(f"{last.reason}  Run saved in {trainer.run.path}")
    return 0 if last.status in ("completed", "stopped") else 1


def _open_with_data(a) -> tuple[Run, object]:
    run = Run.open(a.run)
    if getattr(a, "data_root", None):
        run.data = dataclasses.replace(run.data, root=a.data_root)
    return run, None


def _info(a) -> int:
    run = Run.open(a.run)
    m = run.model
    params = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(m.params).items()) or "none"
    print(f"run        {run.path}")
    print(f"model      {VARIANTS[m.variant].title} ({m.variant}), latent {m.latent_dim}, body {m.body}, "
          f"hidden {list(m.hidden)}, likelihood {m.likelihood}, parameters {params}")
    print(f"data       {run.dataset}, images {'×'.join(map(str, run.image_shape))}, {run.n_classes} classes")
    print(f"training   {run.epochs_done}/{run.train.epochs} epochs, {run.step} steps, batch {run.train.batch_size}, "
          f"lr {run.train.lr}, seed {run.train.seed}")
    print(f"status     {run.status}{' — ' + run.reason if run.reason else ''}")
    if run.history.val:
        last = {k: v[-1] for k, v in run.history.val.items()}
        print("validation " + "  ".join(f"{k} {v:.4f}" for k, v in last.items()))
    if run.best_val is not None:
        print(f"best       {run.best_val:.4f} (validation total)")
    return 0


def _export(a) -> int:
    from engine import export
    run, _ = _open_with_data(a)
    model = run.load_model("best" if a.best else "latest")
    if a.n < 1 or a.n > 4096:
        raise UserError(f"--n must be between 1 and 4096, not {a.n}.")
    nrow = max(1, int(math.sqrt(a.n)))
    if a.what == "samples":
        grid = export.sample_grid(model, a.n, nrow, a.label)
        path = export.save_grid(grid, a.out)
    elif a.what == "embeddings":
        val = load_dataset(run.data).val
        codes, labels = export.embeddings(model, val)
        path = export.save_embeddings(codes, labels, a.out, run.class_names)
    else:
        val = load_dataset(run.data).val
        if a.what == "recon":
            grid = export.reconstruction_grid(model, val, a.n, nrow)
        elif a.what == "traversal":
            grid = export.traversal_grid(model, label=a.label)
        else:
            grid = export.interpolation_grid(model, val)
        path = export.save_grid(grid, a.out)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            build_parser().print_help()
            return 0
        a = build_parser().parse_args(argv)
        if a.command == "train":
            from engine.training import Trainer
            data, model, train = configs_from_args(a)
            return _train(Trainer(data, model, train, run_parent=a.out, run_name=a.name), a.quiet)
        if a.command == "resume":
            from engine.training import Trainer
            run, _ = _open_with_data(a)
            if a.epochs <= run.epochs_done:
                raise UserError(f"The run has already trained {run.epochs_done} epochs; ask for more with --epochs.")
            return _train(Trainer.resume(run, a.epochs, device=a.device), a.quiet)
        if a.command == "info":
            return _info(a)
        if a.command == "export":
            return _export(a)
        if a.command == "download":
            cfg = DataConfig(source=a.dataset, root=a.data_root, download=True)
            download_dataset(cfg)
            print(f"{a.dataset} is ready in {cfg.root or 'the user data folder'}")
            return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; the run folder keeps its last saved epoch.", file=sys.stderr)
        return 130
    return 2
