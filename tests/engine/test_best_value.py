"""Fault 10: 'best … (validation total)' named a number that, for the VAE family, is the −ELBO
at β = 1 (Run.best_val is model.selection_value), not the β-weighted total they train on."""

import pytest

from engine.best_value import best_value_label
from engine.cli import main
from engine.config import ModelConfig
from engine.models import VARIANTS


def model(variant: str, likelihood: str = "bernoulli", **params) -> ModelConfig:
    return ModelConfig(variant=variant, latent_dim=2, likelihood=likelihood,
                       params=VARIANTS[variant].params_class(**params))


def test_a_beta_vae_best_value_is_named_the_elbo_at_beta_one():
    label = best_value_label(model("beta_vae", beta=4.0))
    assert "−ELBO" in label and "nats per image" in label and "β = 4" in label
    assert "total" not in label.replace("training total", "")


@pytest.mark.parametrize("variant", ["vae", "cvae"])
def test_the_vae_and_cvae_best_value_is_the_elbo(variant):
    assert best_value_label(model(variant)).startswith("best validation −ELBO (reconstruction + KL, nats")


def test_with_squared_error_it_is_rec_plus_beta_kl_and_not_nats():
    label = best_value_label(model("beta_vae", "squared_error", beta=4.0))
    assert "reconstruction + β·KL" in label and "not nats" in label


def test_the_iwae_names_its_bound_and_an_ae_its_objective():
    assert "−IWAE bound (k = 5" in best_value_label(model("iwae", k=5))
    label = best_value_label(model("ae"))
    assert VARIANTS["ae"].formula in label and "per image" in label


def test_info_prints_the_label(tmp_path, capsys):
    from engine.training import Trainer
    from tests.engine.helpers import DIGITS, quick_train, small_model
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1), run_parent=tmp_path)
    trainer.run_to_end()
    assert main(["info", str(trainer.run.path)]) == 0
    out = capsys.readouterr().out
    assert "best validation −ELBO" in out and "(validation total)" not in out
