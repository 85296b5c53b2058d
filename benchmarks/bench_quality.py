"""Training quality: the engine's VAE versus the pytorch/examples VAE, test loss per epoch on MNIST.

Run: ``.venv/bin/python benchmarks/bench_quality.py [--epochs 10] [--device auto]``
(about ten minutes on two CPU cores: start it with ``nohup ... > quality.log 2>&1 &``).

The same recipe twice, one whole run after the other, both seeded with ``torch.manual_seed(1)``:
the 784-400-20 VAE, Adam lr 1e-3, batches of 128, 60,000 training images, the 10,000 test
images after every epoch.

* reference — pytorch/examples ``vae/main.py``: torchvision MNIST with ``ToTensor()``, loaders with
  ``shuffle=True``, sigmoid + BCE(sum) + KLD; its test loss is the summed loss over the test set
  divided by 10,000 (model in eval mode, z still sampled), i.e. a one-sample negative ELBO in nats
  per image.  The per-epoch prior sample it draws is drawn here too (not saved), so its random
  stream is the script's.
* ours — ``engine.training.Trainer`` with the app's default report/probe/snapshot intervals; its
  per-epoch validation ``total`` (the MNIST test set, one-sample negative ELBO in nats per image).

Passes when ours at the last epoch is within ``--tolerance`` (1 nat) of the reference's.
Wall times cover each whole run: loading the data, building the model, training and testing.
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: I001  (puts the repository on sys.path)
import torch

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.training import Trainer

BATCH = 128
LR = 1e-3
SEED = 1
MODEL = ModelConfig(variant="vae", latent_dim=20, body="mlp", hidden=(400,), likelihood="bernoulli")
#: pytorch/examples' README figure for this data (see /work/shared/data/mnist/README.md)
PUBLISHED = {1: 128.41, 10: 105.56}


def reference_run(root, device, epochs: int, log) -> dict:
    """pytorch/examples vae/main.py, minus its printing every 10 batches and its saved images."""
    t_start = time.perf_counter()
    torch.manual_seed(SEED)
    kwargs = common.reference_loader_kwargs(device)
    train_set, test_set = common.mnist_sets(root)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH, shuffle=True, **kwargs)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=BATCH, shuffle=True, **kwargs)
    model = common.ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    train_losses, test_losses, epoch_times = [], [], []
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        model.train()
        train_loss = 0.0
        for data, _ in train_loader:
            train_loss += common.reference_step(model, optimizer, data, device)
        train_losses.append(train_loss / len(train_loader.dataset))

        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test_loader:
                data = data.to(device)
                recon_batch, mu, logvar = model(data)
                test_loss += common.reference_loss(recon_batch, data, mu, logvar).item()
        test_losses.append(test_loss / len(test_loader.dataset))
        with torch.no_grad():
            sample = torch.randn(64, 20).to(device)
            model.decode(sample).cpu()
        epoch_times.append(common.now(device) - t_epoch)
        log(f"  reference epoch {epoch:2d}: train {train_losses[-1]:8.3f}  test {test_losses[-1]:8.3f}  "
            f"({epoch_times[-1]:.1f} s)")
    return {"train_loss": train_losses, "test_loss": test_losses, "epoch_seconds": epoch_times,
            "wall_seconds": common.now(device) - t_start}


def ours_run(root, device, epochs: int, log) -> dict:
    """The engine's Trainer, its updates consumed as the GUI worker consumes them."""
    t_start = time.perf_counter()
    train_cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, seed=SEED, device=device.type)
    trainer = Trainer(DataConfig(source="mnist", root=str(root)), MODEL, train_cfg)
    train_losses, test_losses, val_terms, epoch_times = [], [], [], []
    t_epoch = time.perf_counter()
    last = None
    for last in trainer.updates():
        if last.kind != "epoch":
            continue
        epoch_times.append(time.perf_counter() - t_epoch)
        t_epoch = time.perf_counter()
        train_losses.append(last.train_terms["total"])
        test_losses.append(last.val_terms["total"])
        val_terms.append(last.val_terms)
        log(f"  ours      epoch {last.epoch:2d}: train {train_losses[-1]:8.3f}  test {test_losses[-1]:8.3f}  "
            f"({epoch_times[-1]:.1f} s; reconstruction {last.val_terms['reconstruction']:.3f}, "
            f"kl {last.val_terms['kl']:.3f})")
    wall = common.now(device) - t_start
    if last is None or last.status != "completed":
        raise RuntimeError(f"Our run did not complete: {last.status if last else 'no updates'} "
                           f"({last.reason if last else ''}).")
    return {"train_loss": train_losses, "test_loss": test_losses, "val_terms": val_terms,
            "epoch_seconds": epoch_times, "wall_seconds": wall, "train_config": train_cfg.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=1.0, help="nats per image allowed at the last epoch")
    args = parser.parse_args()

    device = common.setup_torch(args)
    root = common.prepare_mnist_root(args.data_root, args.mnist_gz)
    env = common.environment(device)
    common.print_environment(env)

    def log(line: str) -> None:
        print(line, flush=True)

    log(f"{args.epochs} epochs each, seed {SEED}, batch {BATCH}, Adam lr {LR}; reference first, then ours")
    ref = reference_run(root, device, args.epochs, log)
    ours = ours_run(root, device, args.epochs, log)

    print()
    print("test loss: one-sample negative ELBO, nats per image, on the 10,000 MNIST test images")
    print(f"{'epoch':>5}  {'reference':>10}  {'ours':>10}  {'ours - ref':>10}")
    for epoch, (r, o) in enumerate(zip(ref["test_loss"], ours["test_loss"]), start=1):
        note = f"   (pytorch/examples on this data: {PUBLISHED[epoch]:.2f})" if epoch in PUBLISHED else ""
        print(f"{epoch:5d}  {r:10.3f}  {o:10.3f}  {o - r:+10.3f}{note}")
    print(f"wall time of the whole run: reference {ref['wall_seconds']:.1f} s, ours {ours['wall_seconds']:.1f} s "
          f"({ref['wall_seconds'] / ours['wall_seconds']:.2f}x faster)")
    gap = ours["test_loss"][-1] - ref["test_loss"][-1]
    ok = abs(gap) <= args.tolerance
    print(f"epoch {args.epochs}: ours - reference = {gap:+.3f} nats; within ±{args.tolerance:g}: "
          f"{'yes' if ok else 'NO'}")

    env["load_average_at_end"] = common.load_average()
    print(f"load average at the end: {env['load_average_at_end']}")
    common.write_json(args.json, {
        "benchmark": "quality", "environment": env,
        "settings": {"epochs": args.epochs, "seed": SEED, "batch_size": BATCH, "lr": LR, "model": MODEL.to_dict(),
                     "tolerance": args.tolerance},
        "reference": ref, "ours": ours, "last_epoch_gap": gap, "within_tolerance": ok,
    })


if __name__ == "__main__":
    main()
