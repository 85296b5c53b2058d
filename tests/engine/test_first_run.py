"""The run a newcomer starts (engine.defaults.default_run, what the training panel shows at first
launch) gives a structured latent space: the issue's first run collapsed (KL 0.06 nats, 1 active
unit).  Collapse is named on a run forced to collapse (β = 50) and not on the healthy default, and an
attribute direction between two digits moves a k-NN classifier's prediction from one to the other."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from engine import diagnostics
from engine.config import ModelConfig
from engine.datasets import load_dataset
from engine.defaults import default_run
from engine.latent_geometry import along, attribute_direction, rate_distortion
from engine.metrics import evaluate_model
from engine.models import variant
from engine.training import Trainer, encode_all


def _train(data, model_cfg, train):
    split = load_dataset(data)
    trainer = Trainer(data, model_cfg, dataclasses.replace(train, device="cpu"), dataset=split)
    for _ in trainer.updates():
        pass
    return trainer, split


@pytest.fixture(scope="module")
def default_trained():
    return _train(*default_run())


def test_the_default_digits_vae_uses_its_latent_space_and_separates_the_digits(default_trained):
    trainer, split = default_trained
    data, model_cfg, _ = default_run()
    assert (data.source, model_cfg.variant) == ("digits", "vae")
    metrics = evaluate_model(trainer.model, split.val, split.train, has_density=True, nll_samples=1)
    assert metrics["active_units"] >= 2, metrics["active_units"]
    assert metrics["knn_accuracy"] >= 0.85, metrics["knn_accuracy"]
    assert diagnostics.collapse(metrics["kl"], metrics["active_units"], model_cfg.latent_dim) is None, metrics["kl"]
    assert diagnostics.from_history(trainer.history.val, model_cfg.latent_dim) is None


def test_a_run_forced_to_collapse_is_named(default_trained):
    data, model_cfg, train = default_run()
    spec = variant("beta_vae")
    forced = ModelConfig(variant="beta_vae", latent_dim=2, body="mlp", hidden=model_cfg.hidden,
                         likelihood="bernoulli", params=spec.params_class(beta=50.0))
    trainer, split = _train(data, forced, dataclasses.replace(train, epochs=15))
    metrics = evaluate_model(trainer.model, split.val, split.train, has_density=True, nll_samples=1)
    found = diagnostics.collapse(metrics["kl"], metrics["active_units"], 2)
    assert found is not None and found.kind == "collapse", (metrics["kl"], metrics["active_units"])
    assert "posterior collapse: the decoder ignores z" in found.message
    assert "warm-up" in found.help and "free bits" in found.help
    during = diagnostics.from_history(trainer.history.val, 2)
    assert during is not None and during.kind == "collapse"


def test_the_rate_distortion_point_is_the_final_validation_terms(default_trained):
    trainer, _ = default_trained
    val = trainer.history.val
    assert rate_distortion(val) == (val["kl"][-1], val["reconstruction"][-1])
    assert rate_distortion({"reconstruction": [1.0]}) is None


def test_an_attribute_direction_moves_a_classifier_from_a_to_b(default_trained):
    trainer, split = default_trained
    model = trainer.model.eval()
    with torch.no_grad():
        train_codes = encode_all(model, split.train.images, None)
    labels = split.train.labels.numpy()
    knn = KNeighborsClassifier(5).fit(train_codes, labels)
    a, b = 0, 1
    direction = attribute_direction(train_codes, np.flatnonzero(labels == a), np.flatnonzero(labels == b))
    start = train_codes[labels == a].mean(0)
    path = along(start, direction, steps=11, span=1.0)[5:]     # from A's centre (t = 0) to A + direction (t = 1)
    proba = knn.predict_proba(path)
    cls = list(knn.classes_)
    assert proba[0, cls.index(a)] > proba[0, cls.index(b)]
    assert proba[-1, cls.index(b)] > proba[-1, cls.index(a)]
    assert proba[-1, cls.index(b)] > proba[0, cls.index(b)]
