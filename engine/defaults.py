"""The run a newcomer starts: what the training panel shows at first launch and what
``benchmarks/bench_presets.py`` measures as "default".

Chosen from measurements, not guesses (``benchmarks/bench_presets.py --only default --seeds 4``):
a VAE with a 2-D latent on the bundled digits, 512-256 MLP, Bernoulli likelihood.  At 30 epochs of
batch 128 and lr 1e-3 (the panel's settings before) it had 390 optimizer steps, not enough to leave
the collapsed start: after 8 epochs its validation KL was 0.06 nats and one unit was active, after 30
the 5-NN accuracy of its codes was 0.73.  With batch 64, lr 2e-3 and 60 epochs (1,560 steps, about
7 s on one core) four seeds gave KL 2.9–3.2 nats per image, 2 of 2 active units and 5-NN accuracy
0.86–0.87.
"""

from __future__ import annotations

from engine.config import DataConfig, ModelConfig, TrainConfig

DEFAULT_VARIANT = "vae"
DEFAULT_LATENT = 2
DEFAULT_HIDDEN = (512, 256)
DEFAULT_EPOCHS = 60
DEFAULT_BATCH = 64
DEFAULT_LR = 2e-3


def default_run() -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The newcomer's first run: (data, model, train) settings."""
    return (DataConfig(source="digits"),
            ModelConfig(variant=DEFAULT_VARIANT, latent_dim=DEFAULT_LATENT, body="mlp", hidden=DEFAULT_HIDDEN,
                        likelihood="bernoulli"),
            TrainConfig(epochs=DEFAULT_EPOCHS, batch_size=DEFAULT_BATCH, lr=DEFAULT_LR))
