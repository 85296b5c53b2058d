"""Every variant: shapes, finite named terms, the math the lecture notes write, and learning."""

import dataclasses

import numpy as np
import pytest
import torch

from engine.config import ModelConfig
from engine.datasets import load_dataset
from engine.models import VARIANTS, build_model, built_body
from engine.models.ae import jacobian_frobenius_sq
from engine.models.base import gaussian_kl
from engine.training import Trainer, evaluate
from tests.engine.helpers import DIGITS, quick_train, small_model

EXPECTED_TERMS = {
    "ae": {"reconstruction"}, "linear_ae": {"reconstruction"}, "denoising_ae": {"reconstruction"},
    "sparse_ae": {"reconstruction", "sparsity"}, "contractive_ae": {"reconstruction", "contraction"},
    "tied_ae": {"reconstruction"}, "seq_ae": {"reconstruction"},
    "vae": {"reconstruction", "kl", "neg_elbo"}, "beta_vae": {"reconstruction", "kl", "neg_elbo"},
    "cvae": {"reconstruction", "kl", "neg_elbo"}, "iwae": {"neg_iwae_bound", "reconstruction", "kl"},
    "aae": {"reconstruction", "discriminator", "generator"}, "wae_mmd": {"reconstruction", "mmd"},
}


def test_every_variant_is_tested():
    assert set(VARIANTS) == set(EXPECTED_TERMS)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("shape,body", [((1, 8, 8), "auto"), ((1, 28, 28), "auto"), ((3, 32, 32), "auto"),
                                        ((1, 8, 8), "lstm"), ((1, 28, 28), "lstm")])
def test_api_shapes_and_finite_terms(variant, shape, body):
    torch.manual_seed(0)
    cfg = dataclasses.replace(small_model(variant, latent_dim=3), body=body)
    if body not in VARIANTS[variant].bodies:
        pytest.skip(f"{variant} does not take the {body} body")
    model = build_model(cfg, shape, n_classes=10)
    assert model.encoder.body == built_body(cfg, shape) and model.latent_dim == 3
    x, y = torch.rand(6, *shape), torch.randint(0, 10, (6,))
    y_or_none = y if model.is_conditional else None
    out = model.loss(x, y_or_none)
    assert set(out.terms) == EXPECTED_TERMS[variant]
    assert torch.isfinite(out.total) and all(torch.isfinite(v) for v in out.terms.values())
    assert out.z.shape == (6, 3) and out.recon.shape == x.shape
    z = model.encode(x, y_or_none)
    assert z.shape == (6, 3)
    images = model.decode(z, y_or_none)
    assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    assert model.sample(5, y[:1] if model.is_conditional else None).shape == (5, *shape)
    out.total.backward()
    assert all(p.grad is not None for p in [*model.encoder.parameters(), *model.decoder.parameters()])
    model.zero_grad()
    terms = model.training_step(x, y, model.configure_optimizers(1e-3))
    assert "total" in terms and EXPECTED_TERMS[variant] <= set(terms)
    assert all(torch.isfinite(v) for v in terms.values())


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_validation_loss_falls_on_digits(variant, digits):
    """The validation loss after training is below the untrained model's and falls over the epochs."""
    params = {"weight": 1e-2} if variant == "contractive_ae" else {}
    cfg, train = small_model(variant, latent_dim=4, **params), quick_train(epochs=4)
    torch.manual_seed(train.seed)   # the trainer's initial weights
    untrained = build_model(cfg, digits.train.shape, digits.train.n_classes).eval()
    torch.manual_seed(1)
    before = evaluate(untrained, digits.val, "cpu", train.batch_size)["total"]
    trainer = Trainer(DIGITS, cfg, train, dataset=digits)
    last = trainer.run_to_end()
    assert last.status == "completed"
    val = trainer.history.val["total"]
    assert np.isfinite(val).all()
    assert val[-1] < val[0] and val[-1] < 0.9 * before, (before, val)


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 4, 3)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc = (log_q - log_p).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar), mc, atol=0.02)


def test_contractive_penalty_is_the_jacobian_frobenius_norm():
    torch.manual_seed(0)
    model = build_model(small_model("contractive_ae", latent_dim=3), (1, 8, 8), 10)
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    fast = jacobian_frobenius_sq(x, model.encode(x))
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda xi: model.encode(xi.unsqueeze(0))[0], x[i].detach())
        assert torch.allclose(fast[i], jac.pow(2).sum(), rtol=1e-4)


def test_linear_ae_learns_the_pca_subspace():
    from scipy.linalg import subspace_angles
    from sklearn.decomposition import PCA
    split = load_dataset(DIGITS)
    cfg = ModelConfig(variant="linear_ae", latent_dim=4, hidden=(), body="mlp")
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=100, lr=3e-2, batch_size=256, probe_every=10_000), dataset=split)
    trainer.run_to_end()
    x = split.train.images.reshape(len(split.train), -1).float().numpy() / 255
    pca = PCA(4).fit(x)
    decoder_weight = trainer.model.decoder.code_weight().detach().numpy()  # 64×4 spans the learned subspace
    angles = np.degrees(subspace_angles(decoder_weight, pca.components_.T))
    assert angles.max() < 10, angles


def test_beta_vae_warmup_raises_the_kl_weight_linearly():
    model = build_model(small_model("beta_vae", beta=4.0, warmup_epochs=2.0), (1, 8, 8), 10)
    weights = []
    for progress in (0.0, 1.0, 2.0, 5.0):
        model.progress = progress
        weights.append(model.kl_weight())
    assert weights == [0.0, 2.0, 4.0, 4.0]


def test_cvae_decodes_each_label_differently():
    torch.manual_seed(0)
    model = build_model(small_model("cvae"), (1, 8, 8), 10)
    z = torch.zeros(1, 2)
    assert not torch.allclose(model.decode(z, torch.tensor([1])), model.decode(z, torch.tensor([7])))
    with pytest.raises(ValueError):
        model.decode(z)


def test_deterministic_sampling_uses_a_gaussian_fitted_to_the_codes():
    model = build_model(small_model("ae", latent_dim=2), (1, 8, 8), 10)
    codes = torch.randn(5000, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([10.0, -2.0])
    model.fit_code_distribution(codes)
    torch.manual_seed(0)
    drawn = model.prior_sample(20_000, "cpu")
    assert torch.allclose(drawn.mean(0), torch.tensor([10.0, -2.0]), atol=0.1)
    assert torch.allclose(drawn.std(0), torch.tensor([3.0, 0.5]), atol=0.1)


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_pepper"])
def test_denoising_corrupts_the_input_and_scores_the_clean_one(noise):
    from engine.models.ae import corrupt
    torch.manual_seed(0)
    x = torch.full((2000, 1, 8, 8), 0.5)
    noisy = corrupt(x, noise, 0.3)
    assert noisy.min() >= 0 and noisy.max() <= 1
    changed = (noisy != x).float().mean().item()
    assert changed > 0.25 if noise != "gaussian" else changed > 0.9


def test_sparse_kl_penalty_is_zero_at_the_target():
    from engine.models.ae import bernoulli_kl
    assert bernoulli_kl(0.05, torch.full((8,), 0.05)).abs() < 1e-6
    assert bernoulli_kl(0.05, torch.full((8,), 0.5)) > 1
