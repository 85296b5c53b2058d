"""The train, resume and download commands: a run trained headless with a progress bar."""

from __future__ import annotations

import argparse
import dataclasses

from engine.cli.parser import (
    add_data_args,
    add_evaluate_args,
    add_train_args,
    hidden_widths,
    number_type,
    open_run,
    param_fields,
    param_help,
)
from engine.config import DEVICES, PROBE_SETS, DataConfig, ModelConfig, TrainConfig
from engine.datasets import SOURCES, download_dataset
from engine.errors import UserError
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.models.nets import resolve_body
from engine.runs import Run


def add_parsers(sub) -> argparse.ArgumentParser:
    """The train and resume parsers; returns the train parser (the sweep copies its options)."""
    t = sub.add_parser("train", help="train a model headless and save a run folder")
    add_data_args(t)
    g = t.add_argument_group("model")
    g.add_argument("--model", default="vae", choices=list(VARIANTS), help="variant (default: vae)")
    g.add_argument("--latent-dim", type=int, default=2)
    g.add_argument("--body", default="auto", choices=BODIES,
                   help="body network: auto (conv for 28/32-pixel images, else mlp; lstm for seq_ae), mlp, conv, "
                        "or lstm (rows as time steps) (default: auto)")
    g.add_argument("--hidden", type=hidden_widths, default=(512, 256), help="hidden widths, e.g. 512,256")
    g.add_argument("--likelihood", default="bernoulli", choices=LIKELIHOODS,
                   help="reconstruction term: bernoulli (BCE, nats), gaussian_fixed (σ = 0.1, nats), "
                        "gaussian_learned (one σ learned, nats), squared_error (not nats) (default: bernoulli)")
    for name, owners in param_fields().items():
        f = owners[0][1]
        flag = f"--{name.replace('_', '-')}"
        if isinstance(f.default, bool):
            g.add_argument(flag, dest=f"param_{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=param_help(owners))
            continue
        g.add_argument(flag, dest=f"param_{name}", type=number_type(f.default), choices=f.metadata.get("choices"),
                       default=None, metavar=None if f.metadata.get("choices") else name.upper(),
                       help=param_help(owners))
    g.add_argument("--pretrain-epochs", type=int, default=0,
                   help="greedy layer-wise pretraining: epochs per layer pair of the MLP body before the "
                        "end-to-end epochs (deterministic autoencoders; default: 0, none)")
    g.add_argument("--binarize", action="store_true",
                   help="dynamic binarisation: every training batch is drawn x ~ Bernoulli(pixel), validation "
                        "uses one fixed draw (for NLLs comparable with the literature)")
    add_train_args(t)
    t.add_argument("--probe-set", choices=PROBE_SETS, default="validation",
                   help="the images whose codes the map shows: validation (default), test (the same images), "
                        "train, or all (training and validation)")
    t.add_argument("--probe-size", type=int, default=TrainConfig.probe_size,
                   help=f"at most this many of them, a seeded choice (default {TrainConfig.probe_size})")
    t.add_argument("--out", default="runs", help="folder in which the run folder is made (default: runs)")
    t.add_argument("--name", help="run folder name (default: date-variant-dataset)")
    add_evaluate_args(t, after_training=True)

    r = sub.add_parser("resume", help="continue training a saved run")
    r.add_argument("run")
    r.add_argument("--epochs", type=int, required=True, help="total epochs to reach")
    r.add_argument("--device", choices=DEVICES)
    r.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    r.add_argument("--quiet", action="store_true")
    t.set_defaults(func=train_command)
    r.set_defaults(func=resume_command)
    return t


def add_download_parser(sub) -> None:
    d = sub.add_parser("download", help="download a torchvision dataset for offline use")
    d.add_argument("dataset", choices=[s for s in SOURCES if s not in ("digits", "folder", "npz")])
    d.add_argument("--data-root")
    d.set_defaults(func=download_command)


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
                        binarize=a.binarize, pretrain_epochs=a.pretrain_epochs, precision=a.precision,
                        probe_set=getattr(a, "probe_set", "validation"),
                        probe_size=getattr(a, "probe_size", TrainConfig.probe_size))
    for cfg in (data, model, train):
        cfg.validate()
    return data, model, train


def train_with_progress(trainer, quiet: bool) -> int:
    from tqdm import tqdm
    bar = None
    last = None
    for update in trainer.updates():
        last = update
        if bar is None and not quiet:
            print(f"run {trainer.run.path} on {trainer.device}{body_note(trainer.run)}", flush=True)
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


def body_words(run: Run) -> str:
    """The body asked for and, when it differs, the one built ("conv, built as mlp: ...")."""
    built = resolve_body(run.model.body, run.image_shape)
    if built == run.model.body:
        return built
    if run.model.body == "auto":
        return f"auto ({built})"
    _, h, w = run.image_shape
    return f"{run.model.body}, built as {built} (conv needs square 28×28 or 32×32 images, these are {h}×{w})"


def body_note(run: Run | None) -> str:
    if run is None or resolve_body(run.model.body, run.image_shape) == run.model.body or run.model.body == "auto":
        return ""
    return f" (body {body_words(run)})"


def train_command(a) -> int:
    from engine.cli.report import evaluate_trained
    from engine.training import Trainer
    data, model, train = configs_from_args(a)
    trainer = Trainer(data, model, train, run_parent=a.out, run_name=a.name)
    code = train_with_progress(trainer, a.quiet)
    return evaluate_trained(trainer, a) if a.evaluate and code == 0 else code


def resume_command(a) -> int:
    from engine.training import Trainer
    run = open_run(a)
    if run.is_training_elsewhere():
        raise UserError(f"{run.path} is being trained by another process; wait until it has finished "
                        "(or stop it) before resuming it.")
    trained = run.trained_epochs
    if a.epochs <= trained:
        pretraining = run.epochs_done - trained
        raise UserError(f"The run has already trained {trained} epochs"
                        + (f" (after {pretraining} of layer-wise pretraining)" if pretraining else "")
                        + "; ask for more with --epochs.")
    return train_with_progress(Trainer.resume(run, a.epochs, device=a.device), a.quiet)


def download_command(a) -> int:
    cfg = DataConfig(source=a.dataset, root=a.data_root, download=True)
    download_dataset(cfg)
    print(f"{a.dataset} is ready in {cfg.root or 'the user data folder'}")
    return 0
