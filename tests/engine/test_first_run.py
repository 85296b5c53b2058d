"""The run a newcomer starts (engine.defaults.default_run, what the training panel shows at first
launch) gives a structured latent space: the issue's first run collapsed (KL 0.06 nats, 1 active unit)."""

from __future__ import annotations

from engine.data import load_dataset
from engine.defaults import default_run
from engine.metrics import evaluate_model
from engine.training import Trainer


def test_the_default_digits_vae_uses_its_latent_space_and_separates_the_digits():
    data, model_cfg, train = default_run()
    assert (data.source, model_cfg.variant) == ("digits", "vae")
    split = load_dataset(data)
    trainer = Trainer(data, model_cfg, train.__class__(**{**train.__dict__, "device": "cpu"}), dataset=split)
    for _ in trainer.updates():
        pass
    metrics = evaluate_model(trainer.model, split.val, split.train, has_density=True, nll_samples=1)
    assert metrics["active_units"] >= 2, metrics["active_units"]
    assert metrics["knn_accuracy"] >= 0.85, metrics["knn_accuracy"]
    assert metrics["kl"] > 1.0, f"KL {metrics['kl']:.3f} nats per image: collapsed"
