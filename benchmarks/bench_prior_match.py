"""Do the AAE's and the WAE's codes match their prior?  A two-sample statistic between the codes
of validation images and samples of the prior, against the same statistic for a plain AE.

Run: ``.venv/bin/python benchmarks/bench_prior_match.py [--mnist] [--epochs N] [--latent-dim D]
[--only aae] [--aae-joint-weight none|λ]``

Three models of the same size (the same MLP body, latent size D, epochs, batch, lr and seed):
``ae``, ``aae`` (prior ``--aae-prior``, default N(0, I)) and ``wae_mmd`` (prior N(0, I)).
For each: the codes of ``--n`` validation images (digits: its held-out 10%; MNIST: the test set),
a seeded random choice (the same for every model), against as many prior samples, averaged over
``--draws`` prior draws.  Not the first n (``--subset first`` measures those): MNIST's test set is
ordered, its first 5,000 images from other writers than its last 5,000 (thinner strokes: mean ink
0.122 per pixel against 0.143, the training set's 0.131), and a prior-trained model's codes of the
first 1,000 sit off its training codes' mean (up to 0.5 per dimension), while the standardised AE
below removes exactly that offset with the slice's own statistics.  The statistics:

* MMD² with the inverse multiquadratic kernel k(a, b) = C / (C + ‖a − b‖²), C = 2·D (the WAE
  paper's kernel; it is also the WAE's training penalty, so a second kernel is reported),
* MMD² with a Gaussian kernel exp(−‖a − b‖² / (2h²)), h² the median squared distance of the
  pooled samples (the median heuristic),

both unbiased estimates.  A plain AE has no prior, so its codes are compared with N(0, I) twice:
as they are (``ae raw``: the plain AE's codes, the pass criterion) and standardised per dimension
to mean 0 and variance 1 (``ae standardised``: a harder baseline that removes scale and offset and
leaves only the shape).  Two verdicts, each under both kernels: PASS when each of aae and
wae_mmd is below a fifth of ``ae raw``; BEATS THE STANDARDISED AE when each is also below ``ae
standardised`` (the harder bar: the prior-trained codes match N(0, I) better than a plain AE's
codes rescaled after the fact).  Threads: torch's default on every side (or ``--threads``).
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: I001  (puts the repository on sys.path)
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.datasets import load_dataset
from engine.models.wae import mmd_imq
from engine.training import Trainer, encode_all


def mmd_rbf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² with a Gaussian kernel whose bandwidth is the median heuristic."""
    pooled = torch.cat([a, b])
    sq = torch.cdist(pooled, pooled).pow(2)
    h2 = sq[sq > 0].median()
    k = torch.exp(-sq / (2 * h2))
    n = a.shape[0]
    off = 1 - torch.eye(n)
    kaa, kbb, kab = k[:n, :n], k[n:, n:], k[:n, n:]
    return (kaa * off).sum() / (n * (n - 1)) + (kbb * off).sum() / (n * (n - 1)) - 2 * kab.mean()


def statistics_of(codes: torch.Tensor, prior, draws: int) -> dict[str, float]:
    imq, rbf = [], []
    for i in range(draws):
        torch.manual_seed(1000 + i)
        p = prior(codes.shape[0])
        imq.append(float(mmd_imq(codes, p)))
        rbf.append(float(mmd_rbf(codes, p)))
    return {"mmd_imq": sum(imq) / draws, "mmd_rbf": sum(rbf) / draws}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser)
    parser.add_argument("--mnist", action="store_true", help="MNIST instead of the bundled digits")
    parser.add_argument("--epochs", type=int, default=None, help="default: 60 on digits, 5 on MNIST")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on digits, 128 on MNIST")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--hidden", default=None, help="hidden widths, e.g. 256 or 512,256 (default: 512,256 on "
                                                       "MNIST, 128,64 on digits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aae-prior", default="gaussian", choices=("gaussian", "mixture", "swiss_roll", "uniform"))
    parser.add_argument("--n", type=int, default=1000, help="validation images (and prior samples) compared")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--subset", default="random", choices=("random", "first"),
                        help="which validation images: a seeded random choice (default) or the first n")
    parser.add_argument("--only", default="ae,aae,wae_mmd",
                        help="the models trained, comma-separated (default all three; the verdicts need all three)")
    parser.add_argument("--aae-joint-weight", default=None,
                        help="sets engine.models.adversarial.JOINT_ADVERSARIAL_WEIGHT for this run: 'none' (three "
                             "phases) or λ (one Adam on rec + λ·gen); default: the module's value")
    args = parser.parse_args()
    trained = [v for v in ("ae", "aae", "wae_mmd") if v in args.only.split(",")]
    if args.aae_joint_weight is not None:
        from engine.models import adversarial
        adversarial.JOINT_ADVERSARIAL_WEIGHT = (None if args.aae_joint_weight.lower() == "none"
                                                else float(args.aae_joint_weight))
    device = common.setup_torch(args)
    if args.mnist:
        root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
        data, hidden, epochs, batch = DataConfig(source="mnist", root=str(root)), (512, 256), args.epochs or 5, 128
    else:
        data, hidden, epochs, batch = DataConfig(source="digits"), (128, 64), args.epochs or 60, 32
    batch = args.batch_size or batch
    if args.hidden:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    split = load_dataset(data)
    n = min(args.n, len(split.val))
    chosen = (torch.randperm(len(split.val), generator=torch.Generator().manual_seed(0))[:n]
              if args.subset == "random" else torch.arange(n))
    train = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, seed=args.seed, device=str(device), probe_size=0,
                        probe_every=10**9, snapshot_every=10**9, report_every=50)
    params = {"aae": {"prior": args.aae_prior}, "wae_mmd": {}, "ae": {}}
    print(f"{split.name}: {len(split.train)} training images, codes of {n} validation images ({args.subset}), "
          f"latent {args.latent_dim}, "
          f"MLP {list(hidden)}, {epochs} epochs, batch {batch}, lr 1e-3, torch threads {torch.get_num_threads()}, {device}")
    if "aae" in trained:
        from engine.models import adversarial
        print(f"AAE joint adversarial weight λ: {adversarial.JOINT_ADVERSARIAL_WEIGHT} (None: three phases)")
    rows = {}
    for variant in trained:
        cfg = ModelConfig(variant=variant, latent_dim=args.latent_dim, body="mlp", hidden=hidden)
        if params[variant]:
            cfg = cfg.with_params(**params[variant])
        t0 = time.perf_counter()
        trainer = Trainer(data, cfg, train, dataset=split)
        last = trainer.run_to_end()
        seconds = time.perf_counter() - t0
        model = trainer.model.eval()
        codes = torch.from_numpy(encode_all(model, split.val.images[chosen].to(device), None)).double()
        dim = codes.shape[1]
        gaussian = lambda m, dim=dim: torch.randn(m, dim, dtype=torch.float64)  # noqa: E731
        val_rec = trainer.history.val["reconstruction"][-1]
        if variant == "ae":
            rows["ae raw"] = statistics_of(codes, gaussian, args.draws)
            std = (codes - codes.mean(0)) / codes.std(0)
            rows["ae standardised"] = statistics_of(std, gaussian, args.draws)
            for key in ("ae raw", "ae standardised"):
                rows[key].update(rec=val_rec, seconds=seconds)
        else:
            prior = lambda m, model=model: model.prior_sample(m, device).double().cpu()  # noqa: E731
            rows[variant] = statistics_of(codes, prior, args.draws)
            rows[variant].update(rec=val_rec, seconds=seconds)
        print(f"  trained {variant}: {last.reason} ({seconds:.1f} s)", flush=True)
    print(f"\n{'model':<16} {'MMD² IMQ':>10} {'MMD² RBF':>10} {'val rec (nats/img)':>19} {'train s':>8}")
    for name, r in rows.items():
        print(f"{name:<16} {r['mmd_imq']:>10.4f} {r['mmd_rbf']:>10.4f} {r['rec']:>19.2f} {r['seconds']:>8.1f}")
    if len(trained) < 3:
        print("(no verdict: not all three models trained)")
        common.write_json(args.json, {"dataset": split.name, "epochs": epochs, "latent_dim": args.latent_dim, "n": n,
                                      "subset": args.subset, "rows": rows, "environment": common.environment(device)})
        return
    base, standardised = rows["ae raw"], rows["ae standardised"]
    ok = all(rows[v][k] < 0.2 * base[k] for v in ("aae", "wae_mmd") for k in ("mmd_imq", "mmd_rbf"))
    beats = {v: all(rows[v][k] < standardised[k] for k in ("mmd_imq", "mmd_rbf")) for v in ("aae", "wae_mmd")}
    for v in ("aae", "wae_mmd"):
        for ae in ("ae raw", "ae standardised"):
            print(f"{v}: {rows[ae]['mmd_imq'] / max(rows[v]['mmd_imq'], 1e-12):.1f}× (IMQ) and "
                  f"{rows[ae]['mmd_rbf'] / max(rows[v]['mmd_rbf'], 1e-12):.1f}× (RBF) smaller than the {ae[3:]} AE's")
    print("PASS" if ok else "FAIL", "(aae and wae_mmd below a fifth of the plain AE's raw-code statistic, both kernels)")
    print("BEATS THE STANDARDISED AE" if all(beats.values()) else "DOES NOT BEAT THE STANDARDISED AE",
          "(aae and wae_mmd below the plain AE's standardised codes, both kernels: "
          + ", ".join(f"{v} {'yes' if b else 'no'}" for v, b in beats.items()) + ")")
    common.write_json(args.json, {"dataset": split.name, "epochs": epochs, "latent_dim": args.latent_dim, "n": n, "subset": args.subset,
                                  "rows": rows, "pass": ok, "beats_standardised": beats,
                                  "environment": common.environment(device)})


if __name__ == "__main__":
    main()
