"""The headless command line over the engine: train, resume, inspect, evaluate, export, download.

    python main.py train --dataset digits --model vae --latent-dim 2 --epochs 20 --out runs/
    python main.py info RUN
    python main.py evaluate RUN [--nll-samples K] [--json]
    python main.py export samples RUN --out grid.png

Bad input ends in one sentence on stderr and exit status 2; nothing already saved is touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

from engine.config import DEVICES, MAX_SEED, DataConfig, ModelConfig, TrainConfig
from engine.datasets import SOURCES, download_dataset, load_dataset
from engine.errors import RunError, UserError
from engine.history import METRICS_FILE
from engine.metrics import DEFAULT_NLL_SAMPLES
from engine.models import BODIES, LIKELIHOODS, VARIANTS
from engine.models.nets import resolve_body
from engine.runs import Run

COMMANDS = ("train", "resume", "info", "evaluate", "export", "download", "sweep", "compare")
EXPORTS = ("samples", "recon", "traversal", "interpolation", "embeddings", "movie", "tensorboard")


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


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


_finite_float.__name__ = "float"   # what argparse and the sweep's comma lists call it


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED} (what torch and NumPy accept), "
                                         f"not {text}")
    return value


_seed.__name__ = "int"


def _number_type(default):
    """The argparse type of a variant parameter: floats must be finite."""
    return _finite_float if type(default) is float else type(default)


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
        g.add_argument(flag, dest=f"param_{name}", type=_number_type(f.default), choices=f.metadata.get("choices"),
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
    _add_evaluate_args(t, after_training=True)

    r = sub.add_parser("resume", help="continue training a saved run")
    r.add_argument("run")
    r.add_argument("--epochs", type=int, required=True, help="total epochs to reach")
    r.add_argument("--device", choices=DEVICES)
    r.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    r.add_argument("--quiet", action="store_true")

    i = sub.add_parser("info", help="describe a saved run")
    i.add_argument("run")

    v = sub.add_parser("evaluate", help="measure a saved run on its validation images and write metrics.json")
    v.add_argument("run")
    _add_evaluate_args(v, after_training=False)

    e = sub.add_parser("export", help="write figures, animations, embeddings or TensorBoard logs of a saved run",
                       description=_EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("what", choices=EXPORTS)
    e.add_argument("run")
    e.add_argument("--out", required=True, help="output file (.png for figures, .gif or .mp4 for animations, "
                   ".csv or .npz for embeddings) or, for tensorboard, a log folder")
    e.add_argument("--n", type=int, default=64, help="images in a sample or reconstruction grid")
    e.add_argument("--label", type=int, help="class to condition on (conditional models)")
    e.add_argument("--best", action="store_true", help="use the best weights instead of the latest")
    e.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    e.add_argument("--point", type=_point, metavar="X,Y",
                   help="movie: the map point whose decoded image is shown (default: the centre of the codes)")
    e.add_argument("--fps", type=float, default=10.0, help="animations: frames per second (default 10, at most 50)")

    d = sub.add_parser("download", help="download a torchvision dataset for offline use")
    d.add_argument("dataset", choices=[s for s in SOURCES if s not in ("digits", "folder", "npz")])
    d.add_argument("--data-root")
    _add_sweep_parser(sub, t)
    _add_compare_parser(sub)
    return parser


def _add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=_finite_float, default=1e-3)
    g.add_argument("--seed", type=_seed, default=0)
    g.add_argument("--device", default="auto", choices=DEVICES)
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _nll_samples(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000000, not {text!r}")
    return k


def _add_evaluate_args(p: argparse.ArgumentParser, after_training: bool) -> None:
    """The evaluate command's options; on train, --evaluate runs it when training ends."""
    g = p.add_argument_group("evaluation")
    if after_training:
        g.add_argument("--evaluate", action="store_true",
                       help=f"when training ends, evaluate the latest weights (as `evaluate RUN`) and write {METRICS_FILE}")
    g.add_argument("--nll-samples", type=_nll_samples, default=DEFAULT_NLL_SAMPLES, metavar="K",
                   help=f"importance samples per image for the test NLL (default {DEFAULT_NLL_SAMPLES})")
    if after_training:
        return
    g.add_argument("--best", action="store_true", help="evaluate the best weights instead of the latest")
    g.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    g.add_argument("--device", default="auto", choices=DEVICES, help="where to compute (default: auto)")
    g.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
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
            print(f"run {trainer.run.path} on {trainer.device}{_body_note(trainer.run)}", flush=True)
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


def _body_words(run: Run) -> str:
    """The body asked for and, when it differs, the one built ("conv, built as mlp: ...")."""
    built = resolve_body(run.model.body, run.image_shape)
    if built == run.model.body:
        return built
    if run.model.body == "auto":
        return f"auto ({built})"
    _, h, w = run.image_shape
    return f"{run.model.body}, built as {built} (conv needs square 28×28 or 32×32 images, these are {h}×{w})"


def _body_note(run: Run | None) -> str:
    if run is None or resolve_body(run.model.body, run.image_shape) == run.model.body or run.model.body == "auto":
        return ""
    return f" (body {_body_words(run)})"


def _open_run(a) -> Run:
    """The run named on the command line, its data root replaced by --data-root when given."""
    run = Run.open(a.run)
    if getattr(a, "data_root", None):
        run.data = dataclasses.replace(run.data, root=a.data_root)
    return run


def _progress_bar(quiet: bool):
    """A progress callback for ``engine.metrics`` drawing one tqdm bar per stage on stderr."""
    if quiet:
        return None
    from tqdm import tqdm
    state = {"stage": None, "bar": None}

    def progress(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            if state["bar"] is not None:
                state["bar"].close()
            state["stage"] = stage
            state["bar"] = tqdm(total=total, desc=stage, file=sys.stderr, dynamic_ncols=True, leave=False,
                                unit="sample" if stage == "nll" else "image", unit_scale=True)
        state["bar"].n = done
        state["bar"].refresh()
        if done >= total:
            state["bar"].close()
            state["stage"] = state["bar"] = None

    return progress


def _measure(run: Run, nll_samples: int, which: str, device, quiet: bool) -> dict:
    from engine.metrics import evaluate_run
    return evaluate_run(run, which=which, nll_samples=nll_samples, device=device, progress=_progress_bar(quiet))


def _print_metrics(m: dict) -> None:
    units = m.get("units", {})

    def unit(key: str) -> str:
        return units.get(key, "").split(":")[0]

    images = m["images"]
    print(f"metrics    {m.get('weights', 'latest')} weights, on {images['n']} images: {images['description']}"
          + (f", binarised once (seed {images['binarize_seed']})" if images.get("binarized") else "")
          + (f"; computed {m['computed']}" if m.get("computed") else ""))
    def num(v, fmt: str = ".3f") -> str:
        return "—" if v is None else format(v, fmt)

    if m["nll"] is not None:
        print(f"nll        {num(m['nll'])} ± {num(m['nll_std_error'])}  ({unit('nll')}; K = {m['nll_samples']})")
        print(f"−elbo      {num(m['neg_elbo'])}  (kl {num(m['kl'])}, per dimension "
              + ", ".join(num(v, ".2f") for v in m["kl_per_dim"] or []) + ")")
    else:
        print("nll        none (" + "; ".join(n for n in m.get("notes", []) if n.startswith("No NLL")) + ")")
    rec = m["reconstruction"]
    print(f"recon      bce {num(rec['bce'])}, squared error {num(rec['squared_error'])} (summed over pixels, per image)")
    print(f"active     {m['active_units']} of {m['latent_dim']} latent units (code variance > 0.01)")
    knn = m.get("knn") or {}
    if m["knn_accuracy"] is not None:
        print(f"k-nn       {m['knn_accuracy']:.3f} accuracy (k = {knn.get('k')}, fitted on {knn.get('n_train')} "
              "training codes)")
    else:
        print(f"k-nn       none ({knn.get('note', 'no labels')})")
    print(f"parameters {m['parameters']:,}")
    if m.get("training_seconds"):
        rate = m.get("training_samples_per_sec")
        print(f"train time {m['training_seconds']:.1f} s" + (f", {rate:,.0f} samples/s" if rate else ""))


def _evaluate(a) -> int:
    from engine.training import resolve_device
    run = _open_run(a)
    metrics = _measure(run, a.nll_samples, "best" if a.best else "latest", resolve_device(a.device),
                       quiet=a.quiet or a.json)
    if a.json:
        print(json.dumps(metrics))
    else:
        _print_metrics(metrics)
        print(f"wrote {run.path / METRICS_FILE}")
    return 0


def _evaluate_trained(trainer, a) -> int:
    """``train --evaluate``: the finished run's latest weights, on the trainer's device."""
    metrics = _measure(trainer.run, a.nll_samples, "latest", trainer.device, quiet=a.quiet)
    _print_metrics(metrics)
    print(f"wrote {trainer.run.path / METRICS_FILE}")
    return 0


def _info(a) -> int:
    run = Run.open(a.run)
    m = run.model
    params = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(m.params).items()) or "none"
    print(f"run        {run.path}")
    print(f"model      {VARIANTS[m.variant].title} ({m.variant}), latent {m.latent_dim}, body {_body_words(run)}, "
          f"hidden {list(m.hidden)}, likelihood {m.likelihood}, parameters {params}")
    print(f"data       {run.dataset}, images {'×'.join(map(str, run.image_shape))}, {run.n_classes} classes")
    trained = run.trained_epochs   # builds the model when it was pretrained: once
    pretraining = run.epochs_done - trained
    print(f"training   {trained}/{run.train.epochs} epochs"
          f"{f' after {pretraining} of layer-wise pretraining' if pretraining else ''}, {run.step} steps, batch {run.train.batch_size}, "
          f"lr {run.train.lr}, seed {run.train.seed}")
    if run.interrupted:
        print(f"status     {run.status_text} (the process training it ended before it finished; "
              f"resume continues from the last checkpoint)")
    else:
        print(f"status     {run.status_text}{' — ' + run.reason if run.reason else ''}")
    if run.history.val:
        last = {k: v[-1] for k, v in run.history.val.items()}
        print("validation " + "  ".join(f"{k} {v:.4f}" for k, v in last.items()))
    if run.best_val is not None:
        print(f"best       {run.best_val:.4f} (validation total)")
    _info_metrics(run)
    return 0


def _info_metrics(run: Run) -> None:
    try:
        metrics = run.load_metrics()
    except RunError as exc:
        print(f"metrics    unreadable: {exc}")
        return
    if metrics is not None:
        _print_metrics(metrics)


_EXPORT_HELP = """\
Write what a saved run shows to files.

  samples, recon     sample and reconstruction grids (.png)
  traversal          each latent dimension swept over ±3 standard deviations: a grid (.png),
                     or an animation (.gif, .mp4) whose frames step along the sweep
  interpolation      decoded straight lines between the codes of pairs of validation images:
                     a grid (.png) or an animation (.gif, .mp4)
  embeddings         the validation images' codes and labels (.csv or .npz)
  movie              the training movie (.gif or .mp4): the latent map at every recorded probe
                     update (raw codes for 2-D latents, otherwise PCA fitted on the last frame),
                     points coloured by class and the step on each frame, beside the image
                     decoded at --point.  The run keeps only its latest weights, so that image
                     is decoded with the latest model (the same in every frame).
  tensorboard        a TensorBoard log in --out/<run name>: the history as scalars
                     (train/<term> per step, train_epoch/<term> and val/<term> per epoch) and the
                     validation codes with labels and a sprite for the projector.
                     Then: tensorboard --logdir OUT

MP4 needs imageio-ffmpeg: pip install 'latent-explorer[video]'."""


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers X,Y, not {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected two finite numbers X,Y, not {text!r}")
    return x, y


def _export(a) -> int:
    from engine import export
    run = _open_run(a)
    which = "best" if a.best else "latest"
    if a.what == "tensorboard":
        print(f"wrote {export.export_tensorboard(run, a.out, which=which)}")
        return 0
    if a.what == "movie":
        print(f"wrote {export.export_movie(run, a.out, point=a.point, fps=a.fps, label=a.label, which=which)}")
        return 0
    animate = export.is_animation(a.out)
    if animate:
        if a.what not in ("traversal", "interpolation"):
            raise UserError(f"Only traversal, interpolation and movie export as animations; write {a.what} to a .png.")
        export.check_animation_target(a.out, a.fps)  # before any work
    model = run.load_model(which)
    if a.n < 1 or a.n > 4096:
        raise UserError(f"--n must be between 1 and 4096, not {a.n}.")
    nrow = max(1, int(math.sqrt(a.n)))
    if a.what == "samples":
        path = export.save_grid(export.sample_grid(model, a.n, nrow, a.label), a.out)
    elif a.what == "traversal":
        path = (export.save_animation(export.traversal_frames(model, label=a.label), a.out, a.fps) if animate
                else export.save_grid(export.traversal_grid(model, label=a.label), a.out))
    else:
        val = load_dataset(run.data).val
        if a.what == "embeddings":
            codes, labels = export.embeddings(model, val)
            path = export.save_embeddings(codes, labels, a.out, run.class_names)
        elif a.what == "recon":
            path = export.save_grid(export.reconstruction_grid(model, val, a.n, nrow), a.out)
        elif animate:
            path = export.save_animation(export.interpolation_frames(model, val), a.out, a.fps)
        else:
            path = export.save_grid(export.interpolation_grid(model, val), a.out)
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
            trainer = Trainer(data, model, train, run_parent=a.out, run_name=a.name)
            code = _train(trainer, a.quiet)
            return _evaluate_trained(trainer, a) if a.evaluate and code == 0 else code
        if a.command == "resume":
            from engine.training import Trainer
            run = _open_run(a)
            if run.is_training_elsewhere():
                raise UserError(f"{run.path} is being trained by another process; wait until it has finished "
                                "(or stop it) before resuming it.")
            trained = run.trained_epochs
            if a.epochs <= trained:
                pretraining = run.epochs_done - trained
                raise UserError(f"The run has already trained {trained} epochs"
                                + (f" (after {pretraining} of layer-wise pretraining)" if pretraining else "")
                                + "; ask for more with --epochs.")
            return _train(Trainer.resume(run, a.epochs, device=a.device), a.quiet)
        if a.command == "info":
            return _info(a)
        if a.command == "evaluate":
            return _evaluate(a)
        if a.command == "export":
            return _export(a)
        if a.command == "sweep":
            return _sweep(a)
        if a.command == "compare":
            return _compare(a)
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
    except MemoryError:
        print("error: this machine ran out of memory; try a smaller batch, model or data set.", file=sys.stderr)
        return 1
    except OSError as exc:   # a disk error that no engine module turned into a sentence
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 2
    return 2


# -- sweep and compare ---------------------------------------------------------------------------
#: train-parser destinations a sweep accepts as comma lists -> the sweep axis they feed
_SWEEP_AXES = {"model": "variant", "latent_dim": "latent_dim", "lr": "lr", "seed": "seed"}

_SWEEP_HELP = """\
Train one run per configuration, one after another, and print a summary table at the end.
Every train option is accepted; --model, --latent-dim, --lr, --seed and every variant
parameter (--beta, --level, --weight, ...) also take a comma list, e.g. --beta 1,4 or
--seed 0,1,2.  Several lists give their product: --beta 1,4 --latent-dim 2,8 trains 4 runs.
With several variants (--model vae,beta_vae) each parameter applies only to the variants
that have it (the vae is trained once, the beta_vae once per beta); a parameter that none of
them has is refused.  Run folders are named after the swept values, e.g.
<stamp>-beta_vae-digits-z2-beta4.  A failed run does not stop the sweep; the exit status is 1
when any run failed.

--ray ADDRESS sends each configuration to a Ray cluster as one task (ADDRESS: host:port,
ray://host:10001, auto for the cluster this machine belongs to, or local for a Ray instance
started here and stopped at the end).  Each task writes its run folder to --out, which must
be a path every node sees (a shared file system), and loads its data itself (--data-root too
must exist on every node); latent-explorer must be installed on every node.  A task takes
one CPU, and one GPU with --device cuda.  Ray is optional: pip install latent-explorer[cluster]."""


def _comma_list(convert, choices):
    """An argparse type: a comma list of ``convert``'s values (each checked against ``choices``)."""
    kind = getattr(convert, "__name__", "value")

    def parse(text: str) -> tuple:
        values = []
        for piece in (p.strip() for p in str(text).split(",")):
            if not piece:
                continue
            try:
                value = convert(piece) if convert is not None else piece
            except (TypeError, ValueError, argparse.ArgumentTypeError):
                raise argparse.ArgumentTypeError(f"expected a {kind} or a comma list of them, not {text!r}") from None
            if choices and value not in choices:
                raise argparse.ArgumentTypeError(f"{piece!r} is not one of {', '.join(map(str, choices))}")
            values.append(value)
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return tuple(dict.fromkeys(values))

    parse.__name__ = f"comma list of {kind}"
    return parse


def _sweep_dest(action: argparse.Action) -> str | None:
    """The sweep axis an option of the train parser feeds, or None when it takes one value."""
    if not action.option_strings or action.nargs is not None or type(action) is not argparse._StoreAction:
        return None
    if action.dest in _SWEEP_AXES:
        return _SWEEP_AXES[action.dest]
    if action.dest.startswith("param_"):
        return action.dest[len("param_"):]
    return None


def _add_sweep_parser(sub, train_parser: argparse.ArgumentParser) -> None:
    """The sweep parser: a copy of every train option (so the train helpers' flags, groups and
    configs_from_args keep working), the sweepable ones turned into comma lists, and --ray."""
    import copy
    s = sub.add_parser("sweep", help="train one run per value of comma-listed options (locally or on Ray)",
                       description=_SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for group in train_parser._action_groups:
        for action in group._group_actions:
            if isinstance(action, argparse._HelpAction):
                continue
            target = s if group in (train_parser._optionals, train_parser._positionals) else groups.get(group.title)
            if target is None:
                target = groups[group.title] = s.add_argument_group(group.title, group.description)
            copied = copy.copy(action)
            if _sweep_dest(action) is not None:
                copied.type = _comma_list(action.type, action.choices)
                copied.choices = None
                word = action.option_strings[-1].lstrip("-").replace("-", "_").upper()
                copied.metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}[,...]"
                                                    if action.choices else f"{word}[,...]")
                copied.help = f"{action.help or ''}; a comma list sweeps it".lstrip("; ")
            elif action.dest == "out":
                copied.help = (f"{action.help}; with --ray, a path every node of the cluster sees")
            elif action.dest == "name":
                copied.help = "run folder name prefix, followed by the swept values (default: date-variant-dataset-z)"
            target._add_action(copied)
    s.add_argument("--ray", metavar="ADDRESS", help="run each configuration as a task on this Ray cluster "
                   "(host:port, ray://host:10001, auto, or local); default: train here, one after another")


def _sweep_items(a) -> list:
    """One validated SweepItem per combination of the comma lists; UserError before any training."""
    from engine import sweep
    axes = {}
    for dest, value in vars(a).items():
        axis = _SWEEP_AXES.get(dest) or (dest[len("param_"):] if dest.startswith("param_") else None)
        if axis is None or value is None:
            continue
        axes[axis] = list(value) if isinstance(value, tuple) else [value]
    configs = []
    for combo in sweep.combinations(axes, base_variant=axes.get("variant", ["vae"])[0]):
        ns = argparse.Namespace(**vars(a))
        for dest, axis in _SWEEP_AXES.items():
            if axis in combo:
                setattr(ns, dest, combo[axis])
        for dest in vars(a):
            if dest.startswith("param_"):
                setattr(ns, dest, combo.get(dest[len("param_"):]))
        configs.append((*configs_from_args(ns), combo))
    return sweep.items_from(configs, prefix=a.name)


def _sweep(a) -> int:
    from engine import sweep
    if a.ray:
        sweep.import_ray()
    items = _sweep_items(a)
    n = len(items)
    print(f"sweep: {n} run{'s' * (n != 1)} into {a.out}" + (f" on the Ray cluster {a.ray}" if a.ray else ""), flush=True)

    def on_start(i, item):
        print(f"[{i + 1}/{n}] {item.name}  ({sweep.describe(item.swept)})", flush=True)

    def on_update(trainer, update):
        if not a.quiet and update.kind == "epoch":
            print(f"    epoch {update.epoch:>3}/{trainer.train_cfg.epochs}  val " +
                  "  ".join(f"{k} {v:.3f}" for k, v in update.val_terms.items()), flush=True)

    def on_result(i, result):
        where = f"[{i + 1}/{n}] " if a.ray else "    "
        print(f"{where}{result.name}: {result.status}" + (f" — {result.reason}" if not result.ok else ""), flush=True)

    if a.ray:
        results = sweep.run_on_ray(items, a.out, a.ray, on_result=on_result)
    else:
        results = sweep.run_local(items, a.out, on_start=on_start, on_update=on_update, on_result=on_result)
    print()
    print(sweep.summary_table(results))
    return 0 if all(r.ok for r in results) else 1


def _add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="write a comparison figure and metrics table of saved runs",
                       description="Compare saved runs headless.  The figure has one column per run (its name on "
                       "top): samples decoded from the same noise (where latent sizes match and the prior is "
                       "standard normal), reconstructions of the same validation images, and every run's loss "
                       "curves overlaid below.  .png, or .svg (an SVG that embeds the PNG).  The table (CSV) "
                       "has one row per metric and one column per run: final training and validation terms, "
                       "best validation loss, parameter count, training time and every number in each run's "
                       "metrics.json.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    c.add_argument("--out", help="figure file (.png or .svg)")
    c.add_argument("--table", help="metrics table file (.csv)")
    c.add_argument("--n", type=int, default=16, help="samples and reconstructed images per run (default 16)")
    c.add_argument("--best", action="store_true", help="use the best weights instead of the latest")
    c.add_argument("--no-curves", action="store_true", help="leave the loss curves out of the figure")
    c.add_argument("--data-root", help="where the runs' datasets live now, if they moved")


def _compare(a) -> int:
    from engine import compare
    compare.check_outputs(a.out, a.table)
    if not 1 <= a.n <= 256:
        raise UserError(f"--n must be between 1 and 256, not {a.n}.")
    runs = []
    for path in a.runs:
        run = Run.open(path)
        if a.data_root:
            run.data = dataclasses.replace(run.data, root=a.data_root)
        runs.append(run)
    if a.table:
        print(f"wrote {compare.write_table(compare.metrics_table(runs), a.table)}")
    if a.out:
        figure = compare.comparison_figure(runs, n=a.n, which="best" if a.best else "latest",
                                           curves=not a.no_curves)
        print(f"wrote {compare.save_figure(figure, a.out)}")
    return 0
