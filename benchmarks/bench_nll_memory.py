"""Peak memory (RSS) of ``evaluate``'s importance-sampled NLL on MNIST, beside the old chunk sizes
and an independent estimator, each in a fresh process.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_nll_memory.py --mnist-gz DIR --data-root DIR
[--images 10000] [--nll-samples 1000] [--epochs 1] [--threads 2] [--modes engine,old,independent]
[--keep-run DIR | --run RUN]``
(a quick check: ``--images 1000 --nll-samples 1000 --epochs 1``).

A 784-400-20 VAE (the engine's ``mlp`` body, Bernoulli likelihood, grey-level MNIST as ``main.py
train --dataset mnist`` trains it) is trained for ``--epochs`` epochs into a temporary run folder.
Then each mode runs in its own child process, which loads the run and MNIST, measures its RSS,
evaluates the first ``--images`` test images with K = ``--nll-samples`` and reports its peak RSS
(VmHWM, reset when evaluating starts; the process's ``ru_maxrss``, loading MNIST included, beside it):

* ``engine`` — ``engine.metrics.evaluate_model`` as ``main.py evaluate`` calls it (k-NN on the
  training codes included).
* ``old`` — the same with the chunk sizes before fault 8 (``PIXEL_BUDGET = 2**23`` decoded pixels
  per pass: ~31 MB blocks, just under glibc's largest mmap threshold; 12 GB RSS was reported on all
  10,000 images at K = 1000).  The engine now decodes 2**24 pixels a pass (~64 MB blocks).
* ``independent`` — a plain estimator beside the engine: per image, all K samples z = μ + σ ε at
  once, log p(x|z) + log p(z) − log q(z|x) from the model's ``posterior`` and ``decode_logits``, a
  logsumexp (one image's K × 784 block: 3 MB).

Peak RSS is in MB (2**20 bytes) of the whole child process (torch, MNIST and the model included:
the "before" column is that part); NLL in nats per image on those images, ± its standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: I001  (puts the repository on sys.path)
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import load_dataset
from engine.training import Trainer

MODES = ("engine", "old", "independent")
OLD_PIXEL_BUDGET = 2**23
TARGET_MB = 2048


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB


def reset_peak_rss() -> bool:
    """Start /proc/self/status's VmHWM afresh (Linux), so it measures from now; False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mb() -> float | None:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@torch.no_grad()
def independent_nll(model, images_u8: torch.Tensor, k: int) -> torch.Tensor:
    """−log (1/K) Σ p(x|z_i) p(z_i) / q(z_i|x) per image, all K samples of one image at once."""
    torch.manual_seed(0)
    out = torch.empty(images_u8.shape[0], dtype=torch.float64)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    for i in range(images_u8.shape[0]):
        x = images_u8[i:i + 1].float() / 255.0
        mu, logvar = model.posterior(x)
        eps = torch.randn(k, mu.shape[1])
        z = mu + torch.exp(0.5 * logvar) * eps
        logits = model.decode_logits(z)
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x.expand_as(logits), reduction="none").flatten(1).sum(1)
        log_pz = (-0.5 * z.pow(2) - half_log_2pi).sum(1)
        log_qz = (-0.5 * eps.pow(2) - 0.5 * logvar - half_log_2pi).sum(1)
        log_w = (log_px_z + log_pz - log_qz).double()
        out[i] = -(torch.logsumexp(log_w, 0) - math.log(k))
    return out


def child(args) -> None:
    """One mode in this fresh process; prints one JSON line."""
    import engine.metrics
    from engine.models import variant
    from engine.runs import Run

    run = Run.open(args.run)
    split = load_dataset(run.data)
    test = split.val.subset(slice(0, args.images))
    model = run.load_model("latest", "cpu").eval()
    before = current_rss_mb()
    process_peak_before = peak_rss_mb()   # loading MNIST peaks above what stays
    reset = reset_peak_rss()
    t0 = time.perf_counter()
    if args.child == "independent":
        per_image = independent_nll(model, test.images, args.nll_samples)
        nll, se = float(per_image.mean()), float(per_image.std() / math.sqrt(len(per_image)))
    else:
        if args.child == "old":
            engine.metrics.PIXEL_BUDGET = OLD_PIXEL_BUDGET
        m = engine.metrics.evaluate_model(model, test, split.train, has_density=variant(run.model.variant).has_density,
                                          nll_samples=args.nll_samples)
        nll, se = m["nll"], m["nll_std_error"]
    print(json.dumps({"mode": args.child, "rss_before_mb": before, "process_peak_before_mb": process_peak_before,
                      "peak_rss_mb": peak_rss_since_reset_mb() if reset else peak_rss_mb(),
                      "process_peak_rss_mb": peak_rss_mb(),
                      "seconds": time.perf_counter() - t0, "nll": nll, "nll_std_error": se}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--images", type=int, default=10_000, help="the first N test images (default all)")
    parser.add_argument("--nll-samples", type=int, default=1000, help="importance samples K per image")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--run", type=Path, default=None,
                        help="evaluate this trained run folder instead of training one (its model must have a density)")
    parser.add_argument("--keep-run", type=Path, default=None, metavar="DIR",
                        help="train into DIR and keep the run there (default: a temporary folder, removed)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        common.setup_torch(args)
        child(args)
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: choose from {', '.join(MODES)}.")
    if not 1 <= args.images <= 10_000 or args.nll_samples < 1 or args.epochs < 1:
        parser.error("--images must be 1..10000; --nll-samples and --epochs at least 1.")
    device = common.setup_torch(args)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
    env = common.environment(device)
    common.print_environment(env)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is not None:
            run_path = args.run
            print(f"evaluating {run_path}: the first {args.images} test images with K = {args.nll_samples}", flush=True)
        else:
            data_cfg = DataConfig(source="mnist", root=str(root))
            model_cfg = ModelConfig(variant="vae", latent_dim=20, body="mlp", hidden=(400,), likelihood="bernoulli")
            t0 = time.perf_counter()
            trainer = Trainer(data_cfg, model_cfg, TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3, seed=1,
                                                               device="cpu"), run_parent=args.keep_run or tmp)
            last = trainer.run_to_end()
            run_path = trainer.run.path
            print(f"VAE 784-400-20 trained {args.epochs} epoch(s) on MNIST in {time.perf_counter() - t0:.0f} s "
                  f"({last.status}, {run_path}); evaluating the first {args.images} test images with "
                  f"K = {args.nll_samples}", flush=True)
        results = []
        for mode in modes:
            cmd = [sys.executable, __file__, "--child", mode, "--run", str(run_path),
                   "--images", str(args.images), "--nll-samples", str(args.nll_samples),
                   "--threads", str(args.threads), "--data-root", str(args.data_root), "--mnist-gz", str(args.mnist_gz)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  {mode}: failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"  {mode:<12} peak RSS while evaluating {r['peak_rss_mb']:6.0f} MB (RSS before "
                  f"{r['rss_before_mb']:4.0f} MB; the process's peak {r['process_peak_rss_mb']:5.0f} MB)"
                  f"  {r['seconds']:7.1f} s  NLL {r['nll']:.2f} ± {r['nll_std_error']:.2f} nats per image", flush=True)
    engine_result = next((r for r in results if r["mode"] == "engine"), None)
    if engine_result is not None:
        at_target = args.images == 10_000 and args.nll_samples == 1000
        met = "met" if engine_result["peak_rss_mb"] < TARGET_MB else "NOT met"
        print(f"engine peak RSS {engine_result['peak_rss_mb']:.0f} MB; target < {TARGET_MB} MB on all 10,000 images "
              f"at K = 1000: " + (met if at_target else
                                  f"not measured (here {args.images} images, K = {args.nll_samples}: {met})"))
    env["load_average_at_end"] = common.load_average()
    print(f"load average at the end: {env['load_average_at_end']}")
    common.write_json(args.json, {"benchmark": "nll_memory", "environment": env,
                                  "settings": {"images": args.images, "nll_samples": args.nll_samples,
                                               "epochs": args.epochs}, "results": results})


if __name__ == "__main__":
    main()
