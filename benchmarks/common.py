"""Shared pieces of the engine benchmarks: an MNIST root prepared from gzipped IDX files,
the reference VAE of pytorch/examples ``vae/main.py``, the environment report, JSON output.

The reference model and loss are copied from pytorch/examples (vae/main.py) on purpose,
so that the engine is compared with the loop people know, written the way it is written there.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_MNIST_GZ = Path("/work/shared/data/mnist")
DEFAULT_DATA_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latent-explorer-bench" / "data"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: bytes of each uncompressed IDX file (header + payload)
IDX_SIZES = {"train-images-idx3-ubyte": 16 + 60_000 * 784, "train-labels-idx1-ubyte": 8 + 60_000,
             "t10k-images-idx3-ubyte": 16 + 10_000 * 784, "t10k-labels-idx1-ubyte": 8 + 10_000}


# --- data -------------------------------------------------------------------------------------------

def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder that holds (or will hold) MNIST/raw/ (default: %(default)s)")
    parser.add_argument("--mnist-gz", type=Path, default=DEFAULT_MNIST_GZ,
                        help="folder with the four gzipped MNIST IDX files, unpacked into the data root when "
                             "missing (default: %(default)s)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads on both sides: torch.set_num_threads(N) for the reference and "
                             "engine.training.TRAIN_THREADS = N for the engine's Trainer (default 0: leave "
                             "PyTorch's choice on both)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results here as JSON")


def prepare_mnist_root(root: Path, gz_dir: Path) -> Path:
    """Make ``root/MNIST/raw/`` hold the four uncompressed IDX files, so that both
    ``torchvision.datasets.MNIST(root, download=False)`` and the engine's ``mnist`` source load it."""
    root = Path(root).expanduser()
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        target = raw / name
        if target.is_file() and target.stat().st_size == IDX_SIZES[name]:
            continue
        gz = Path(gz_dir).expanduser() / f"{name}.gz"
        if not gz.is_file():
            sys.exit(f"{target} is missing and {gz} does not exist: give --mnist-gz a folder with the gzipped "
                     "MNIST files, or --data-root a folder that has MNIST/raw/.")
        partial = target.with_name(name + ".partial")
        with gzip.open(gz) as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if partial.stat().st_size != IDX_SIZES[name]:
            partial.unlink()
            sys.exit(f"{gz} does not unpack to a {IDX_SIZES[name]}-byte {name}.")
        os.replace(partial, target)
    return root


# --- the reference: pytorch/examples vae/main.py ----------------------------------------------------

class ReferenceVAE(nn.Module):
    """The VAE of pytorch/examples vae/main.py, unchanged."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def reference_loss(recon_x, x, mu, logvar):
    """Reconstruction + KL divergence losses summed over all elements and batch (as in pytorch/examples)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def reference_step(model, optimizer, data, device) -> float:
    """One optimizer step of pytorch/examples' ``train()``; returns ``loss.item()`` as it does."""
    data = data.to(device)
    optimizer.zero_grad()
    recon_batch, mu, logvar = model(data)
    loss = reference_loss(recon_batch, data, mu, logvar)
    loss.backward()
    item = loss.item()
    optimizer.step()
    return item


def reference_loader_kwargs(device: torch.device) -> dict:
    """pytorch/examples: ``{'num_workers': 1, 'pin_memory': True}`` with CUDA, nothing on the CPU."""
    return {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}


def mnist_sets(root: Path):
    """torchvision's MNIST train and test sets with ``transforms.ToTensor()``, as pytorch/examples builds them."""
    from torchvision import datasets, transforms

    train = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    test = datasets.MNIST(str(root), train=False, download=False, transform=transforms.ToTensor())
    return train, test


# --- environment, timing, output ---------------------------------------------------------------------

def setup_torch(args) -> torch.device:
    """Apply ``--threads`` to both sides and resolve ``--device`` the way the engine does.

    The Trainer gives its own thread ``engine.training.TRAIN_THREADS`` threads when it starts
    (``use_threads``), whatever was set before, so ``--threads N`` sets that module attribute as
    well as this thread's count: the reference loop and the Trainer then both run on N threads."""
    from engine import training

    if args.threads < 0:
        sys.exit(f"--threads must be 0 (PyTorch's choice) or a positive count, not {args.threads}.")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        training.TRAIN_THREADS = args.threads
    return training.resolve_device(args.device)


def environment(device: torch.device) -> dict:
    import torchvision

    info = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "trainer_threads": _trainer_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
    }
    info["load_average_at_start"] = load_average()
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def _trainer_threads() -> int:
    from engine import training
    return training.TRAIN_THREADS


def print_environment(info: dict) -> None:
    device = info["device"] + (f" ({info['device_name']})" if "device_name" in info else "")
    print(f"torch {info['torch']}, torchvision {info['torchvision']}, python {info['python']}")
    print(f"device {device}; torch threads {info['torch_threads']} here, {info['trainer_threads']} in the engine's "
          f"Trainer (interop {info['torch_interop_threads']}); {info['cpu_count']} CPUs; "
          f"load average {info.get('load_average_at_start', 'n/a')}")


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (other programs on the machine show up here)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device) -> float:
    """``time.perf_counter()`` after the device has finished its queued work."""
    synchronize(device)
    return time.perf_counter()


def median(values) -> float:
    return statistics.median(values)


def write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
