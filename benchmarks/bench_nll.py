"""Test NLL on binarised MNIST: the engine's VAE and IWAE beside Burda et al. and Pythae.

Run: ``.venv/bin/python benchmarks/bench_nll.py [--models vae,iwae5,iwae50] [--epochs 10]
[--test-images 10000] [--nll-samples 5000] [--device auto]``
(the defaults are the literature's evaluation, hours on a CPU; a quick check:
``--models vae --epochs 2 --test-images 500 --nll-samples 500``).

Every model is the same MLP, Burda et al.'s one-stochastic-layer architecture: 784-200-200-50
(the engine's ``mlp`` body with ``hidden=(200, 200)``, latent 50, Bernoulli likelihood; ReLU where
Burda et al. used tanh), Adam with a constant lr 1e-3, batches of 100, the same epochs and seed.
``vae`` is the one-sample ELBO; ``iwaeK`` the importance-weighted bound with K samples (registry key
``iwae``, parameter ``k``).

Training images are binarised dynamically (each batch drawn x ~ Bernoulli(pixel)) through the
engine's ``binarize`` setting when it has one; an engine without it trains on one static
binarisation of the training images (seed 1), and the output says so.  The test NLL is
``engine.metrics``' importance-sampled estimate −log (1/K) Σ p(x|z_i) p(z_i)/q(z_i|x) with K =
``--nll-samples`` on the first ``--test-images`` of the 10,000 test images, binarised once (seed
``engine.metrics.BINARIZE_SEED``), in nats per image.

Published (one stochastic layer, test NLL with K = 5000 on the whole test set after 3,280 epochs,
Burda et al. 2016, table 1): VAE 86.76, IWAE k=5 85.54, k=50 84.78.  Pythae's reproduction
(Chadebec et al. 2022): VAE 89.78 (200 importance samples), IWAE k=50 86.82.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import common  # noqa: I001  (puts the repository on sys.path)

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import DatasetSplit, ImageSet, load_dataset
from engine.metrics import BINARIZE_SEED, binarized, evaluate_model
from engine.models import VARIANTS, variant
from engine.training import Trainer

BATCH = 100
LR = 1e-3
SEED = 1
LATENT = 50
HIDDEN = (200, 200)
NEVER = 10**9
BURDA = {"vae": 86.76, "iwae5": 85.54, "iwae50": 84.78}
PYTHAE = {"vae": "89.78 (200 IS samples)", "iwae50": "86.82"}


def model_config(name: str) -> ModelConfig | None:
    """``vae`` or ``iwaeK`` as a ModelConfig; None when this engine has no such variant yet."""
    key, k = ("vae", None) if name == "vae" else ("iwae", int(name[4:]))
    if key not in VARIANTS:
        return None
    cfg = ModelConfig(variant=key, latent_dim=LATENT, body="mlp", hidden=HIDDEN, likelihood="bernoulli")
    return cfg.with_params(k=k) if k is not None else cfg


def binarize_field() -> str | None:
    """Where this engine keeps its dynamic binarisation setting ("data", "train"), if anywhere."""
    for where, cls in (("data", DataConfig), ("train", TrainConfig)):
        if "binarize" in {f.name for f in dataclasses.fields(cls)}:
            return where
    return None


def train_and_measure(name, cfg, split, data_cfg, args, device, log) -> dict:
    where = binarize_field()
    train_cfg = TrainConfig(epochs=args.epochs, batch_size=BATCH, lr=LR, seed=SEED, device=device.type,
                            probe_size=0, probe_every=NEVER, snapshot_every=NEVER, report_every=50)
    dataset = split
    if where == "data":
        data_cfg = dataclasses.replace(data_cfg, binarize=True)
    elif where == "train":
        train_cfg = dataclasses.replace(train_cfg, binarize=True)
    else:  # one static binarisation of the training images; the test images are binarised below
        dataset = DatasetSplit(split.name, ImageSet(binarized(split.train.images, 1), split.train.labels,
                                                    split.train.class_names), split.val)
    t0 = time.perf_counter()
    trainer = Trainer(data_cfg, cfg, train_cfg, dataset=dataset)
    last = None
    for last in trainer.updates():
        if last.kind == "epoch":
            log(f"  {name} epoch {last.epoch}: train {last.train_terms['total']:.2f}, "
                f"validation {last.val_terms['total']:.2f}{'' if where else ' (grey-level test images)'} "
                f"({last.samples_per_sec:,.0f} samples/s)")
    wall = time.perf_counter() - t0
    if last is None or last.status != "completed":
        raise RuntimeError(f"{name} did not complete: {last.status if last else 'no updates'} "
                           f"({last.reason if last else ''}).")
    test = split.val.subset(slice(0, args.test_images))
    t1 = time.perf_counter()
    m = evaluate_model(trainer.model, test, has_density=variant(cfg.variant).has_density,
                       nll_samples=args.nll_samples, binarize=True, device=device,
                       images_description=f"the first {len(test)} of MNIST's 10,000 test images")
    return {"name": name, "model": cfg.to_dict(), "epochs": args.epochs, "binarization": where or "static",
            "train_wall_seconds": wall, "training_seconds": float(sum(trainer.history.seconds)),
            "nll_seconds": time.perf_counter() - t1, "nll": m["nll"], "nll_std_error": m["nll_std_error"],
            "neg_elbo": m["neg_elbo"], "active_units": m["active_units"], "test_images": len(test),
            "nll_samples": args.nll_samples, "units": m["units"]["nll"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--models", default="vae,iwae5,iwae50", help="comma-separated: vae, iwae5, iwae50, ...")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--test-images", type=int, default=10_000, help="the first N test images (default all)")
    parser.add_argument("--nll-samples", type=int, default=5000, help="importance samples K per test image")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n != "vae" and not (n.startswith("iwae") and n[4:].isdigit() and int(n[4:]) >= 1):
            parser.error(f"--models: {n!r} is not vae or iwaeK (e.g. iwae5).")
    if not 1 <= args.test_images <= 10_000 or args.nll_samples < 1 or args.epochs < 1:
        parser.error("--test-images must be 1..10000; --nll-samples and --epochs at least 1.")

    device = common.setup_torch(args)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
    env = common.environment(device)
    common.print_environment(env)

    def log(line: str) -> None:
        print(line, flush=True)

    data_cfg = DataConfig(source="mnist", root=str(root))
    split = load_dataset(data_cfg)
    where = binarize_field()
    log(f"MLP 784-{'-'.join(map(str, HIDDEN))}-{LATENT}, Adam lr {LR}, batch {BATCH}, {args.epochs} epochs, seed {SEED}; "
        + ("training images binarised dynamically (the engine's binarize setting)" if where else
           "this engine has no binarize setting yet: training on ONE STATIC binarisation (seed 1) of the "
           "training images, not a dynamic one"))
    log(f"test NLL: K = {args.nll_samples} importance samples on the first {args.test_images} test images, "
        f"binarised once (seed {BINARIZE_SEED})")
    results, skipped = [], []
    for name in names:
        cfg = model_config(name)
        if cfg is None:
            skipped.append(name)
            log(f"  {name}: skipped, this engine has no 'iwae' variant yet")
            continue
        results.append(train_and_measure(name, cfg, split, data_cfg, args, device, log))

    print()
    print(f"test NLL, nats per image (binarised MNIST; ours: K = {args.nll_samples}, {args.test_images} test images, "
          f"{args.epochs} epochs; Burda et al.: K = 5000, 10,000 images, 3,280 epochs)")
    print(f"{'model':<8} {'ours NLL':>14} {'ours −ELBO':>11} {'active':>6} {'train s':>8} {'NLL s':>7} "
          f"{'Burda et al.':>12}  Pythae")
    for r in results:
        nll = f"{r['nll']:.2f} ± {r['nll_std_error']:.2f}" if r["nll"] is not None else "—"
        elbo = f"{r['neg_elbo']:.2f}" if r["neg_elbo"] is not None else "—"
        burda = f"{BURDA[r['name']]:.2f}" if r["name"] in BURDA else "—"
        print(f"{r['name']:<8} {nll:>14} {elbo:>11} {r['active_units']:>3}/{LATENT} {r['train_wall_seconds']:8.1f} "
              f"{r['nll_seconds']:7.1f} {burda:>12}  {PYTHAE.get(r['name'], '—')}")
    for name in skipped:
        print(f"{name:<8} {'not run: no iwae variant in this engine':>14}")
    vae = next((r for r in results if r["name"] == "vae"), None)
    for r in results:
        if r["name"] != "vae" and vae is not None and r["nll"] is not None and vae["nll"] is not None:
            gap = r["nll"] - vae["nll"]
            se = math.hypot(r["nll_std_error"], vae["nll_std_error"])
            print(f"{r['name']} − vae: {gap:+.2f} nats (± {se:.2f}); expected below 0 "
                  f"({'yes' if gap < 0 else 'NO'})")

    env["load_average_at_end"] = common.load_average()
    print(f"load average at the end: {env['load_average_at_end']}")
    common.write_json(args.json, {
        "benchmark": "nll", "environment": env,
        "settings": {"epochs": args.epochs, "batch_size": BATCH, "lr": LR, "seed": SEED, "hidden": HIDDEN,
                     "latent_dim": LATENT, "test_images": args.test_images, "nll_samples": args.nll_samples,
                     "binarization": where or "static", "test_binarize_seed": BINARIZE_SEED},
        "results": results, "skipped": skipped, "published": {"burda_et_al": BURDA, "pythae": PYTHAE},
    })


if __name__ == "__main__":
    main()
