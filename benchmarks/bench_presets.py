"""Does the run a newcomer starts, and each bundled preset, give a structured latent space?

Run: ``.venv/bin/python benchmarks/bench_presets.py [--only KEY,...] [--seeds N] [--max-epochs N]
[--mnist-gz DIR --data-root DIR] [--threads N]``

Trains ``default`` (``engine.defaults.default_run()``: what the training panel shows at first
launch) and every run of every bundled preset (``resources/presets/*.json``) with its own settings,
then measures on its validation images (digits: the held-out 10%, 180 images; MNIST: the 10,000
test images, the first ``--eval-images`` of them):

* KL: nats per image, closed-form KL(q(z|x) ‖ N(0, I)) summed over latent dimensions (density
  variants only);
* active units: Burda et al.'s count, Cov_x(E_q[z_u]) > 0.01 (the encoder's mean code for the
  others);
* 5-NN: accuracy of a 5-nearest-neighbour classifier fitted on the training images' codes;
* MMD²: for the AAE and WAE, the codes of 1,000 validation images (a seeded random choice of all
  of them: MNIST's test set is ordered by writer, see bench_prior_match) against as many prior
  samples (IMQ kernel, C = 2·D), beside the same statistic of the codes standardised per dimension.

``--max-epochs`` caps the epochs (for a quick look at the MNIST presets); the table says when it
did.  Threads: torch's default (or ``--threads`` on every run).  The default run's target:
2 active units or more and 5-NN ≥ 0.85 (issue: a first run that works).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import common  # noqa: I001  (puts the repository on sys.path)
import torch

from engine.datasets import load_dataset
from engine.defaults import default_run
from engine.metrics import evaluate_model
from engine.models import variant
from engine.models.wae import mmd_imq
from engine.training import Trainer, encode_all

PRIOR_MATCHED = ("aae", "wae_mmd")   # variants whose codes are pressed towards a prior without a density
PRESETS = Path(__file__).resolve().parents[1] / "resources" / "presets"


def preset_runs() -> list[tuple[str, tuple]]:
    """(name, (data, model, train)) of the default run and of every run of every bundled preset."""
    from explorer.training.presets import load_presets  # Qt-free module
    runs = [("default", default_run())]
    for preset in load_presets([PRESETS]):
        if preset.runs:
            for title, data, model, train in preset.runs:
                runs.append((f"{preset.key}: {title}", (data, model, train)))
        else:
            runs.append((preset.key, (preset.data, preset.model, preset.train)))
    return runs


def prior_match(model, codes: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """MMD² (IMQ) of the codes against the model's prior (drawn with the codes' labels), and of
    the codes standardised per dimension against N(0, I) (what a plain AE's codes would reach
    after rescaling)."""
    n = len(codes)
    c = codes
    torch.manual_seed(1000)
    with torch.no_grad():
        p = model.prior_sample(n, "cpu", labels).float()
    standardised = (c - c.mean(0)) / c.std(0).clamp_min(1e-6)
    return float(mmd_imq(c, p)), float(mmd_imq(standardised, torch.randn_like(standardised)))


def measure(name, configs, seed: int, max_epochs: int | None, data_root: Path | None, eval_images: int) -> dict:
    data, model_cfg, train = configs
    if data.source != "digits" and data_root is not None:
        data = dataclasses.replace(data, root=str(data_root))
    capped = max_epochs is not None and train.epochs > max_epochs
    train = dataclasses.replace(train, seed=seed, device="cpu", epochs=min(train.epochs, max_epochs or train.epochs))
    split = load_dataset(data)
    trainer = Trainer(data, model_cfg, train, dataset=split)
    started = time.perf_counter()
    for _ in trainer.updates():
        pass
    seconds = time.perf_counter() - started
    model = trainer.model.eval()
    val = split.val if len(split.val) <= eval_images else split.val.subset(range(eval_images))
    spec = variant(model_cfg.variant)
    m = evaluate_model(model, val, split.train, has_density=spec.has_density, nll_samples=1,
                       binarize=train.binarize)
    mmd = mmd_std = None
    if model_cfg.variant in PRIOR_MATCHED:
        chosen = torch.randperm(len(split.val), generator=torch.Generator().manual_seed(0))[:1000]
        images, labels = split.val.images[chosen], split.val.labels[chosen]
        with torch.no_grad():
            codes = encode_all(model, images, labels if model.is_conditional else None)
        mmd, mmd_std = prior_match(model, torch.as_tensor(codes, dtype=torch.float32), labels)
    return {"name": name, "variant": model_cfg.variant, "data": data.source, "latent": model_cfg.latent_dim,
            "epochs": train.epochs, "capped": capped, "seed": seed, "kl": m.get("kl"),
            "active_units": m["active_units"], "knn": m["knn_accuracy"], "mmd": mmd, "mmd_standardised_ae_like": mmd_std,
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser)
    parser.add_argument("--only", default="", help="comma-separated names (default, or preset file stems)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 for each run (default 1)")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every run's epochs (the table says so)")
    parser.add_argument("--eval-images", type=int, default=2000, help="validation images measured (default 2000)")
    args = parser.parse_args()
    common.setup_torch(args)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    runs = [(n, c) for n, c in preset_runs() if not wanted or n.split(":")[0] in wanted]
    needs_mnist = any(c[0].source == "mnist" for _, c in runs)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz) if needs_mnist else None
    rows = []
    print(f"{'run':44} {'seed':>4} {'ep':>4} {'KL':>7} {'AU':>5} {'5-NN':>6} {'MMD²':>7} {'std AE':>7} {'s':>6}")
    for name, configs in runs:
        for seed in range(args.seeds):
            r = measure(name, configs, seed, args.max_epochs, root, args.eval_images)
            rows.append(r)
            kl = "—" if r["kl"] is None else f"{r['kl']:.2f}"
            knn = "—" if r["knn"] is None else f"{r['knn']:.3f}"
            mmd = "—" if r["mmd"] is None else f"{r['mmd']:.4f}"
            std = "—" if r["mmd_standardised_ae_like"] is None else f"{r['mmd_standardised_ae_like']:.4f}"
            ep = f"{r['epochs']}{'*' if r['capped'] else ''}"
            print(f"{name[:44]:44} {seed:>4} {ep:>4} {kl:>7} {r['active_units']:>2}/{r['latent']:<2} {knn:>6} "
                  f"{mmd:>7} {std:>7} {r['train_seconds']:>6}", flush=True)
    if any(r["capped"] for r in rows):
        print("* epochs capped by --max-epochs")
    default = [r for r in rows if r["name"] == "default"]
    if default:
        ok = all(r["active_units"] >= 2 and r["knn"] >= 0.85 for r in default)
        print(f"default run: active units ≥ 2 and 5-NN ≥ 0.85 on every seed: {'met' if ok else 'NOT met'}")
    common.write_json(args.json, {"rows": rows, "environment": common.environment(torch.device("cpu"))})


if __name__ == "__main__":
    main()
