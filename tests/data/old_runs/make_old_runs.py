"""How the run folders under tests/data/old_runs/ were written: with the code of main at commit
6d70f4a (before the engine reshape of issue 8).  Kept for the record; the folders are committed
and must keep opening (tests/engine/test_old_runs.py).  Run from the repository root at that commit:

    OMP_NUM_THREADS=1 .venv/bin/python tests/data/old_runs/make_old_runs.py
"""

from pathlib import Path

from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.training import Trainer

HERE = Path(__file__).parent
DIGITS = DataConfig(source="digits")
TRAIN = TrainConfig(epochs=1, batch_size=256, lr=3e-3, seed=0, device="cpu", probe_size=50, probe_every=10_000)

for name, model in [
    ("vae", ModelConfig(variant="vae", latent_dim=2, body="mlp", hidden=(16,))),
    ("ae_gaussian", ModelConfig(variant="ae", latent_dim=2, body="mlp", hidden=(16,), likelihood="gaussian")),
    ("cvae", ModelConfig(variant="cvae", latent_dim=2, body="mlp", hidden=(16,))),
]:
    Trainer(DIGITS, model, TRAIN, run_parent=HERE, run_name=name).run_to_end()

# What each model decoded from three fixed codes at that commit (label 3 for the CVAE), and the
# codes it gave the first three validation images: the same weights must give the same images.
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from engine.datasets import load_dataset  # noqa: E402
from engine.runs import Run  # noqa: E402

z = torch.tensor([[0.0, 0.0], [1.0, -1.0], [-0.5, 2.0]])
x = load_dataset(DIGITS).val.images[:3].float() / 255
reference = {}
for name in ("vae", "ae_gaussian", "cvae"):
    model = Run.open(HERE / name).load_model()
    y = torch.full((3,), 3) if model.is_conditional else None
    with torch.no_grad():
        reference[f"{name}/decoded"] = model.decode(z, y)
        reference[f"{name}/codes"] = model.encode(x, y).contiguous()
save_file(reference, str(HERE / "reference.safetensors"))
