"""The sweep command: one run per combination of comma-listed train options, here or on Ray."""

from __future__ import annotations

import argparse

from engine.cli.train import configs_from_args
from engine.errors import UserError
from engine.sweep import CONFIRM_ABOVE

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


def _comma_list(axis: str, convert, choices):
    """An argparse type: a comma list of ``convert``'s values, parsed by engine.sweep.parse_values
    (the window's sweep parses the same way); its UserError names the setting, not the flag."""
    from engine.sweep import parse_values
    kind = getattr(convert, "__name__", "value")

    def parse(text: str) -> tuple:
        return tuple(parse_values(axis, text, convert or str, choices))

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


def add_parser(sub, train_parser: argparse.ArgumentParser) -> None:
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
                copied.type = _comma_list(_sweep_dest(action), action.type, action.choices)
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
    s.add_argument("--yes", action="store_true",
                   help=f"start a sweep of more than {CONFIRM_ABOVE} runs (refused without it)")
    s.set_defaults(func=sweep_command)


def sweep_items(a) -> list:
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


def sweep_command(a) -> int:
    from engine import sweep
    if a.ray:
        sweep.import_ray()
    items = sweep_items(a)
    n = len(items)
    print(f"sweep: {n} run{'s' * (n != 1)} into {a.out}" + (f" on the Ray cluster {a.ray}" if a.ray else ""), flush=True)
    refusal = None if a.yes else sweep.planned_runs_refusal(n, "add --yes to start them all")
    if refusal:
        raise UserError(refusal)

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

