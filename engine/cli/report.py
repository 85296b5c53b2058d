"""The info, evaluate and compare commands: what saved runs are and how well they do."""

from __future__ import annotations

import dataclasses
import json
import sys

from engine.best_value import best_value_label
from engine.cli.parser import add_evaluate_args, add_force_arg, open_run
from engine.cli.train import body_words
from engine.errors import RunError, UserError
from engine.history import METRICS_FILE
from engine.live_changes import label_of
from engine.models import VARIANTS
from engine.runs import Run


def add_parsers(sub) -> None:
    """The info and evaluate parsers."""
    i = sub.add_parser("info", help="describe a saved run")
    i.add_argument("run")
    i.set_defaults(func=info_command)
    v = sub.add_parser("evaluate", help="measure a saved run on its validation images and write metrics.json")
    v.add_argument("run")
    add_evaluate_args(v, after_training=False)
    v.set_defaults(func=evaluate_command)


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
    if m.get("prior_mmd") is not None:
        print(f"prior      MMD² {m['prior_mmd']:.3f} between the codes and samples of the model's prior "
              "(IMQ kernel, C = 2·D; over 0.1: far from it)")
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


def evaluate_command(a) -> int:
    from engine.training import resolve_device
    run = open_run(a)
    metrics = _measure(run, a.nll_samples, "best" if a.best else "latest", resolve_device(a.device),
                       quiet=a.quiet or a.json)
    if a.json:
        print(json.dumps(metrics))
    else:
        _print_metrics(metrics)
        print(f"wrote {run.path / METRICS_FILE}")
    return 0


def evaluate_trained(trainer, a) -> int:
    """``train --evaluate``: the finished run's latest weights, on the trainer's device."""
    metrics = _measure(trainer.run, a.nll_samples, "latest", trainer.device, quiet=a.quiet)
    _print_metrics(metrics)
    print(f"wrote {trainer.run.path / METRICS_FILE}")
    return 0


def info_command(a) -> int:
    run = Run.open(a.run)
    m = run.model
    params = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(m.params).items()) or "none"
    print(f"run        {run.path}")
    print(f"model      {VARIANTS[m.variant].title} ({m.variant}), latent {m.latent_dim}, body {body_words(run)}, "
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
    if run.history.changes:   # settings changed while it trained (engine/live_changes.py)
        print("changed    " + "; ".join(f"{label_of(m, name)} {previous:g} → {value:g} from step {step}"
                                        for step, name, value, previous in run.history.changes))
    if run.history.val:
        last = {k: v[-1] for k, v in run.history.val.items()}
        print("validation " + "  ".join(f"{k} {v:.4f}" for k, v in last.items()))
    if run.best_val is not None:
        print(f"best       {run.best_val:.4f} ({best_value_label(run.model)})")
    _info_metrics(run)
    for line in finding_lines(run):
        print(line)
    return 0


def finding_lines(run: Run) -> list[str]:
    """One line per finding, its sentence then what helps."""
    from engine.diagnostics import from_run
    return [f"finding    {d.message}. {d.help}" for d in from_run(run)]


def _info_metrics(run: Run) -> None:
    try:
        metrics = run.load_metrics()
    except RunError as exc:
        print(f"metrics    unreadable: {exc}")
        return
    if metrics is not None:
        _print_metrics(metrics)
        from engine.metrics import staleness
        stale = staleness(run, metrics)
        step = metrics.get("step")
        print(f"metrics    {'STALE: ' + stale if stale else f'measured at step {step}, the latest checkpoint'}"
              if stale or step is not None else "metrics    the step they were measured at is not recorded")



def add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="write a comparison figure and metrics table of saved runs",
                       description="Compare saved runs headless.  The figure has one column per run (its name on "
                       "top): samples decoded from the same noise (where latent sizes match and the prior is "
                       "standard normal), reconstructions of the same validation images, and every run's loss "
                       "curves overlaid below.  .png, or .svg (an SVG that embeds the PNG).  The table (CSV) "
                       "is tidy: one row per run, one column per number (best validation loss, final training "
                       "and validation terms, parameter count, training time and every number in each run's "
                       "metrics.json, nested ones too), and a second row, aligned with the header, that says "
                       "what each column is (unit; the images are in the measured_on column).  An existing "
                       "--out or --table is refused unless --force.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    c.add_argument("--out", help="figure file (.png or .svg)")
    c.add_argument("--table", help="metrics table file (.csv)")
    c.add_argument("--n", type=int, default=16, help="samples and reconstructed images per run (default 16)")
    c.add_argument("--best", action="store_true", help="use the best weights instead of the latest")
    c.add_argument("--no-curves", action="store_true", help="leave the loss curves out of the figure")
    c.add_argument("--data-root", help="where the runs' datasets live now, if they moved")
    add_force_arg(c, "--out and --table")
    c.set_defaults(func=compare_command)


def compare_command(a) -> int:
    from engine import compare
    compare.check_outputs(a.out, a.table, replace=a.force)
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
    from engine.metrics import staleness
    for name, run in zip(compare.column_names(runs), runs):
        metrics = compare.metrics_json(run)
        stale = staleness(run, metrics) if metrics else None
        if stale:
            print(f"{name}: its metrics.json is stale ({stale}); run evaluate again")
        lines = finding_lines(run)
        print(f"{name}: " + (f"{len(lines)} finding{'s' if len(lines) > 1 else ''}" if lines else "no finding"))
        for line in lines:
            print("  " + line)
    return 0
