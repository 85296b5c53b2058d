"""Training throughput: the engine's Trainer versus the pytorch/examples VAE loop, on MNIST.

Run: ``.venv/bin/python benchmarks/bench_throughput.py [--rounds 5] [--steps 400] [--device auto]``

Both train the 784-400-20 VAE with Adam (lr 1e-3) on batches of 128 real MNIST images:

* reference — pytorch/examples ``vae/main.py`` as written there: torchvision MNIST with
  ``transforms.ToTensor()``, ``DataLoader(batch_size=128, shuffle=True)`` (``num_workers=1,
  pin_memory=True`` with CUDA, as there), sigmoid + ``F.binary_cross_entropy(reduction='sum')``
  + KLD, ``loss.item()`` every step;
* ours — ``engine.training.Trainer`` (``ModelConfig(variant="vae", latent_dim=20, body="mlp",
  hidden=(400,), likelihood="bernoulli")``) with the settings ``main.py train`` gives it (TrainConfig's
  defaults: probe codes of 5000 validation images every 200 steps, a model snapshot every 25, a
  report every 10), its updates consumed as the GUI worker consumes them; ``--no-probes`` leaves
  the probes and snapshots out;
* bare (diagnostic) — the engine's model and its own optimizer (``configure_optimizers``) in a
  minimal loop over the same in-memory uint8 data (shuffled indexing, ``.float().div_(255)``,
  ``model.loss``, ``loss.item()``): the ceiling the Trainer could reach, so ours/bare is the
  Trainer's own overhead.

``--precision bf16`` trains ours and the bare loop under bfloat16 autocast (``main.py train
--precision bf16``); the reference stays float32, as pytorch/examples has it.

``--threads N`` runs both sides on N torch threads: the reference through ``torch.set_num_threads``
and the Trainer through ``engine.training.TRAIN_THREADS`` (which it applies to its own thread when
it starts); the counts each side actually ran with are printed.

Setup (building the model, loading data, the first probe) is excluded: each contender takes
``--warmup`` untimed steps and is then timed over ``--steps`` steps.  The contenders run
alternately, ``--rounds`` times in one process (the order rotates each round), and the
medians are compared, so machine noise hits all of them alike.
"""

from __future__ import annotations

import argparse
import math
import time

import common  # noqa: I001  (puts the repository on sys.path)
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import load_dataset
from engine.models import build_model
from engine.training import Trainer, training_autocast

BATCH = 128
LR = 1e-3
MODEL = ModelConfig(variant="vae", latent_dim=20, body="mlp", hidden=(400,), likelihood="bernoulli")
NEVER = 10**9
#: torch's thread count each contender actually ran with (checked, so --threads holds on both sides)
THREADS_SEEN: dict[str, int] = {}


def reference_run(train_set, device, warmup: int, steps: int, seed: int) -> float:
    """Samples per second of the pytorch/examples training loop over ``steps`` steps after ``warmup``."""
    torch.manual_seed(seed)
    model = common.ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH, shuffle=True,
                                         **common.reference_loader_kwargs(device))
    model.train()
    THREADS_SEEN["reference"] = torch.get_num_threads()
    train_loss = 0.0
    batches = iter(loader)
    samples, t0 = 0, None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = common.now(device)
        try:
            data, _ = next(batches)
        except StopIteration:  # a new epoch, as the reference's epoch loop would start one
            batches = iter(loader)
            data, _ = next(batches)
        train_loss += common.reference_step(model, optimizer, data, device)
        if i >= warmup:
            samples += data.shape[0]
    elapsed = common.now(device) - t0
    del batches  # shut a worker down before the next contender runs
    return samples / elapsed


def ours_run(split, data_cfg, device, warmup: int, steps: int, seed: int, report_every: int,
             cli_settings: bool = True, precision: str = "fp32") -> float:
    """Samples per second of the engine's Trainer, from its progress update at step ``warmup`` on.

    Time is counted between consecutive progress updates only (training steps; never the
    per-epoch validation), and the generator is driven the way the GUI worker drives it.
    """
    steps_per_epoch = math.ceil(len(split.train) / BATCH)
    # what ``main.py train`` runs (engine/cli/train.py): TrainConfig's defaults for everything the CLI
    # has no flag for (probe size and interval, snapshot interval), unless --no-probes says otherwise
    extra = dict(probe_size=1000, probe_every=NEVER, snapshot_every=NEVER) if not cli_settings else {}
    train_cfg = TrainConfig(epochs=math.ceil((warmup + steps) / steps_per_epoch) + 1, batch_size=BATCH, lr=LR,
                            seed=seed, device=device.type, report_every=report_every, precision=precision, **extra)
    trainer = Trainer(data_cfg, MODEL, train_cfg, dataset=split)
    updates = trainer.updates()
    elapsed, timed_steps, last = 0.0, 0, None
    for update in updates:
        t = common.now(device)
        THREADS_SEEN["ours"] = torch.get_num_threads()  # what the Trainer runs on (this thread, its count)
        if update.kind == "progress" and update.step >= warmup:
            if last is not None:
                elapsed += t - last[0]
                timed_steps += update.step - last[1]
            last = (t, update.step)
            if timed_steps >= steps:
                break
        elif update.kind == "epoch":  # restart the clock after the validation pass
            last = (time.perf_counter(), update.step)
        elif update.kind == "finished":
            raise RuntimeError(f"The trainer finished early ({update.status}: {update.reason}).")
    updates.close()
    return timed_steps * BATCH / elapsed


def bare_run(split, device, warmup: int, steps: int, seed: int, precision: str = "fp32") -> float:
    """Samples per second of the engine's model in a minimal loop over the in-memory uint8 images."""
    torch.manual_seed(seed)
    train_set = split.train
    model = build_model(MODEL, train_set.shape, train_set.n_classes).to(device)
    optimizer = model.configure_optimizers(LR)["model"]   # the model's own Adam, as the Trainer uses it
    images = train_set.images.to(device)
    autocast = training_autocast(device, precision)
    THREADS_SEEN["bare"] = torch.get_num_threads()
    n = images.shape[0]
    order = torch.randperm(n, device=device)
    model.train()
    samples, t0, start = 0, None, 0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = common.now(device)
        if start >= n:
            order, start = torch.randperm(n, device=device), 0
        x = images[order[start:start + BATCH]].float().div_(255.0)
        start += BATCH
        with autocast:
            out = model.loss(x)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        out.total.item()
        optimizer.step()
        if i >= warmup:
            samples += x.shape[0]
    return samples / (common.now(device) - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400,
                        help="timed optimizer steps per contender and round (400: two of the probes made every 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (a multiple of --report-every)")
    parser.add_argument("--report-every", type=int, default=10,
                        help="the Trainer's report interval in steps (default: the app's, 10)")
    parser.add_argument("--no-probes", action="store_true",
                        help="the Trainer without its probe codes and snapshots (main.py train makes both)")
    parser.add_argument("--no-bare", action="store_true", help="leave the diagnostic bare loop out")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="ours and the bare loop in float32 or under bfloat16 autocast (the reference: float32)")
    args = parser.parse_args()
    if args.warmup % args.report_every or args.steps % args.report_every:
        parser.error("--warmup and --steps must be multiples of --report-every.")

    device = common.setup_torch(args)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
    env = common.environment(device)
    common.print_environment(env)
    target = 10.0 if device.type == "cuda" else 3.0

    ref_train, _ = common.mnist_sets(root)
    data_cfg = DataConfig(source="mnist", root=str(root))
    split = load_dataset(data_cfg)
    contenders = {
        "reference": lambda seed: reference_run(ref_train, device, args.warmup, args.steps, seed),
        "ours": lambda seed: ours_run(split, data_cfg, device, args.warmup, args.steps, seed, args.report_every,
                                        cli_settings=not args.no_probes, precision=args.precision),
    }
    if not args.no_bare:
        contenders["bare"] = lambda seed: bare_run(split, device, args.warmup, args.steps, seed, args.precision)
    names = list(contenders)
    print(f"{args.rounds} rounds x {args.steps} timed steps (after {args.warmup} warm-up steps) of batch {BATCH}; "
          f"samples/s; ours and bare in {args.precision}")
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            rates[name].append(contenders[name](seed=r + 1))
        print(f"  round {r + 1}: " + ", ".join(f"{name} {rates[name][-1]:8.0f}" for name in names)
              + f"   ours/reference {rates['ours'][-1] / rates['reference'][-1]:.2f}x")

    print("torch threads each side ran with: " + ", ".join(f"{k} {v}" for k, v in THREADS_SEEN.items()))
    med = {name: common.median(v) for name, v in rates.items()}
    round_ratios = [o / f for o, f in zip(rates["ours"], rates["reference"])]
    ratio = med["ours"] / med["reference"]
    print("median samples/s: " + ", ".join(f"{name} {med[name]:.0f}" for name in names))
    print(f"ours / reference: {ratio:.2f}x (median of per-round ratios {common.median(round_ratios):.2f}x); "
          f"target >= {target:.1f}x on {device.type}: {'met' if ratio >= target else 'MISSED'}")
    if "bare" in med:
        print(f"ours / bare: {med['ours'] / med['bare']:.2f} (the Trainer's overhead over a minimal loop on the "
              f"same model and data); bare / reference: {med['bare'] / med['reference']:.2f}x")

    env["load_average_at_end"] = common.load_average()
    print(f"load average at the end: {env['load_average_at_end']}")
    common.write_json(args.json, {
        "benchmark": "throughput", "environment": env,
        "settings": {"ours_as_cli": not args.no_probes, "precision": args.precision, "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "batch_size": BATCH,
                     "report_every": args.report_every, "model": MODEL.to_dict()},
        "samples_per_sec": rates, "median_samples_per_sec": med,
        "ratio_ours_over_reference": ratio, "per_round_ratios": round_ratios,
        "target_ratio": target, "target_met": ratio >= target, "threads_seen": THREADS_SEEN,
    })


if __name__ == "__main__":
    main()
