"""The new variants and the honest terms: IWAE, AAE priors, WAE-MMD, the LSTM body, layer-wise
pretraining, Gaussian log-densities, binarisation, the penalties' scale, the β-VAE's best
checkpoint, the CVAE's label at the input, and the CLI flags."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from engine.cli import build_parser, configs_from_args
from engine.config import ModelConfig, TrainConfig
from engine.datasets import load_dataset
from engine.models import build_model
from engine.models.base import GAUSSIAN_SIGMA, log_likelihood
from engine.models.priors import sample_prior
from engine.models.wae import mmd_imq
from engine.runs import Run
from engine.training import Trainer, evaluate, float_batch
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.fixture(scope="module")
def trained_vae(digits):
    trainer = Trainer(DIGITS, small_model("vae", latent_dim=4), quick_train(epochs=3), dataset=digits)
    trainer.run_to_end()
    return trainer.model.eval()


def _iwae_with(vae, k: int):
    iwae = build_model(dataclasses.replace(small_model("iwae", latent_dim=4, k=k)), (1, 8, 8), 10).eval()
    iwae.load_state_dict(vae.state_dict())
    return iwae


# -- IWAE ---------------------------------------------------------------------------------------
def test_iwae_with_one_sample_is_the_vae_elbo(trained_vae, digits):
    x = digits.val.images[:100].float() / 255
    iwae = _iwae_with(trained_vae, 1)
    with torch.no_grad():
        torch.manual_seed(3)
        out = iwae.loss(x)
        torch.manual_seed(3)
        one_sample = -trained_vae.log_densities(x, k=1).log_w.mean()   # the VAE's −ELBO, same noise
        torch.manual_seed(3)
        vae_out = trained_vae.loss(x)
    assert torch.allclose(out.total, one_sample, rtol=1e-6)
    assert torch.allclose(out.terms["reconstruction"], vae_out.terms["reconstruction"], rtol=1e-6)
    assert torch.allclose(out.terms["kl"], vae_out.terms["kl"])
    # averaged over noise, the one-sample bound is the closed-form −ELBO
    with torch.no_grad():
        draws = torch.stack([iwae.loss(x).total for _ in range(200)])
        elbo = torch.stack([trained_vae.loss(x).terms["neg_elbo"] for _ in range(200)])
    assert abs(float(draws.mean() - elbo.mean())) < 0.1


def test_iwae_bound_tightens_as_k_grows(trained_vae, digits):
    x = digits.val.images[:200].float() / 255
    torch.manual_seed(0)
    bounds = []
    with torch.no_grad():
        for k in (1, 5, 50):
            iwae = _iwae_with(trained_vae, k)
            bounds.append(float(torch.stack([iwae.loss(x).total for _ in range(10)]).mean()))
    assert bounds[0] > bounds[1] > bounds[2], bounds


def test_iwae_k_is_an_integer_flag_defaulting_to_five():
    a = build_parser().parse_args(["train", "--model", "iwae", "--k", "7"])
    _, model, _ = configs_from_args(a)
    assert model.params.k == 7 and isinstance(model.params.k, int)
    assert small_model("iwae").params.k == 5
    from engine.errors import UserError
    with pytest.raises(UserError, match="invalid int"):
        build_parser().parse_args(["train", "--model", "iwae", "--k", "2.5"])


# -- AAE and WAE -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gaussian", "mixture", "swiss_roll", "uniform"])
def test_prior_shapes(kind):
    torch.manual_seed(0)
    z = sample_prior(kind, 20_000, 3, "cpu")
    assert z.shape == (20_000, 3) and torch.isfinite(z).all()
    r = z[:, :2].norm(dim=1)
    if kind == "mixture":
        assert abs(float(r.mean()) - 2.0) < 0.05
        angles = (torch.atan2(z[:, 1], z[:, 0]) + math.pi / 10) % (2 * math.pi)   # each component mid-bin
        counts = torch.histc(angles, bins=10, min=0, max=2 * math.pi)
        assert counts.min() > 1500, "ten components on the circle"
    if kind == "uniform":
        assert z.min() >= -2 and z.max() <= 2
    if kind == "swiss_roll":
        assert r.max() <= 3.0001
    if kind == "gaussian":
        assert abs(float(z.std()) - 1) < 0.02


def test_label_informed_mixture_puts_each_class_on_its_own_component():
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(500)
    z = sample_prior("mixture", 5000, 2, "cpu", labels=labels)
    angles = torch.atan2(z[:, 1], z[:, 0])
    for c in range(10):
        expected = 2 * math.pi * c / 10
        diff = torch.remainder(angles[labels == c] - expected + math.pi, 2 * math.pi) - math.pi
        assert diff.abs().mean() < 0.2


def test_aae_samples_from_its_chosen_prior_and_trains_label_informed(digits):
    cfg = small_model("aae", latent_dim=2, prior="mixture", label_informed=True)
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=2), dataset=digits)
    last = trainer.run_to_end()
    assert last.status == "completed"
    model = trainer.model
    assert model.discriminator[0].in_features == 2 + 10
    torch.manual_seed(0)
    assert abs(float(model.prior_sample(5000, "cpu").norm(dim=1).mean()) - 2.0) < 0.1
    assert set(trainer.history.terms) == {"total", "reconstruction", "discriminator", "generator"}


def test_aae_discriminator_r1_penalty_is_half_gamma_times_the_squared_gradient_at_prior_samples():
    """The discriminator's training loss adds γ/2·‖∇_z' logit D(z')‖² averaged over the prior
    samples z' it scores (R1, Mescheder et al. 2018), each gradient taken one sample at a time."""
    model = build_model(small_model("aae", latent_dim=3), (1, 8, 8), 10)
    z = torch.randn(5, 3)
    torch.manual_seed(0)
    plain = model.discriminator_loss(z, None)
    torch.manual_seed(0)
    penalised = model.discriminator_loss(z, None, r1_weight=4.0)
    torch.manual_seed(0)
    prior = model.prior_sample(5, "cpu")
    squared = []
    for row in prior:
        point = row.clone().requires_grad_(True)
        grad, = torch.autograd.grad(model.discriminator(point[None]).sum(), point)
        squared.append(float(grad.pow(2).sum()))
    assert float(penalised - plain) == pytest.approx(4.0 / 2 * sum(squared) / 5, rel=1e-5)


def test_mmd_is_near_zero_for_the_same_distribution_and_larger_for_another():
    torch.manual_seed(0)
    same = mmd_imq(torch.randn(500, 4), torch.randn(500, 4))
    shifted = mmd_imq(torch.randn(500, 4) + 1.0, torch.randn(500, 4))
    assert abs(float(same)) < 0.01 and float(shifted) > 10 * abs(float(same)) and float(shifted) > 0.05


def _brute_force_mmd(z, p, scales) -> float:
    """The unbiased MMD² written out pair by pair: Σ_{i≠j} k(z_i, z_j)/(n(n−1)) + the same over
    the prior's rows − 2·Σ k(z_i, p_j)/(nm), with k the sum of C/(C + ‖a − b‖²) over the scales."""
    def k(a, b):
        return sum(c / (c + float(((a - b) ** 2).sum())) for c in scales)
    n, m = len(z), len(p)
    zz = sum(k(z[i], z[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    pp = sum(k(p[i], p[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    zp = sum(k(z[i], p[j]) for i in range(n) for j in range(m)) / (n * m)
    return zz + pp - 2 * zp


@pytest.mark.parametrize("scale", [None, (0.5, 6.0, 40.0)])
def test_mmd_with_more_prior_samples_than_codes_is_the_pairwise_sum(scale):
    torch.manual_seed(0)
    z, p = torch.randn(7, 3, dtype=torch.float64) * 1.5, torch.randn(19, 3, dtype=torch.float64)
    expected = _brute_force_mmd(z, p, (6.0,) if scale is None else scale)   # default C = 2·D = 6
    assert float(mmd_imq(z, p, scale)) == pytest.approx(expected, rel=1e-9)


def test_wae_penalty_is_lambda_times_the_multi_scale_mmd_against_four_prior_samples_per_code():
    """λ·MMD² with the sum of IMQ kernels at C = 2·D·{0.1, 0.2, 0.5, 1, 2, 5, 10} between the n
    codes of the batch and 4n samples of N(0, I) (the issue's bar needs both; see wae.py)."""
    model = build_model(small_model("wae_mmd", latent_dim=3, weight=50.0), (1, 8, 8), 10)
    x = torch.rand(6, 1, 8, 8)
    torch.manual_seed(0)
    out = model.loss(x)
    torch.manual_seed(0)
    with torch.no_grad():
        z = model.encode(x)
    prior = torch.randn(24, 3)
    expected = 50.0 * _brute_force_mmd(z, prior, [6.0 * c for c in (0.1, 0.2, 0.5, 1, 2, 5, 10)])
    assert float(out.terms["mmd"]) == pytest.approx(expected, rel=1e-4)


# -- the LSTM body -----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["ae", "vae", "seq_ae"])
def test_lstm_body_reads_rows_on_digits_and_on_28x28(variant, digits):
    cfg = dataclasses.replace(small_model(variant, latent_dim=3), body="lstm")
    for shape in ((1, 8, 8), (1, 28, 28)):
        model = build_model(cfg, shape, 10)
        assert model.encoder.lstm.input_size == shape[2] * shape[0], "features = columns × channels"
        x = torch.rand(5, *shape)
        out = model.loss(x)
        assert out.recon.shape == x.shape and torch.isfinite(out.total)
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=3), dataset=digits)
    trainer.run_to_end()
    val = trainer.history.val["total"]
    assert val[-1] < val[0]


def test_lstm_rows_are_time_steps():
    """An image whose rows are permuted is a different sequence: the code changes."""
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(small_model("seq_ae", latent_dim=3)), (1, 8, 8), 10)
    x = torch.rand(2, 1, 8, 8)
    assert not torch.allclose(model.encode(x), model.encode(x.flip(2)))
    assert model.encoder.body == "lstm"


# -- penalties in scale -------------------------------------------------------------------------
@pytest.mark.parametrize("variant,params", [("sparse_ae", {"weight": 0.5}), ("contractive_ae", {"weight": 0.5})])
@pytest.mark.parametrize("body", ["mlp", "lstm"])
def test_rescaling_the_code_cannot_lower_the_total(variant, params, body, digits):
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(small_model(variant, latent_dim=4, **params), body=body), (1, 8, 8), 10)
    x = digits.val.images[:64].float() / 255
    base = model.loss(x)
    for c in (10.0, 0.1):
        scaled = build_model(dataclasses.replace(small_model(variant, latent_dim=4, **params), body=body), (1, 8, 8), 10)
        scaled.load_state_dict(model.state_dict())
        with torch.no_grad():
            scaled.encoder.head.weight.div_(c)      # the code divided by c ...
            scaled.encoder.head.bias.div_(c)
            scaled.decoder.code_weight().mul_(c)    # ... and the decoder's first layer multiplied by c
        out = scaled.loss(x)
        assert torch.allclose(out.terms["reconstruction"], base.terms["reconstruction"], rtol=1e-4)
        after, before = float(out.total.detach()), float(base.total.detach())
        assert after >= before * (1 - 1e-4), (c, after, before)
        if c > 1:   # an unweighted L1 / Jacobian penalty would have fallen c (c²) times
            assert scaled.encode(x).abs().sum() < model.encode(x).abs().sum() / 5


# -- likelihoods and binarisation ---------------------------------------------------------------
def test_gaussian_likelihoods_are_log_densities_in_nats():
    torch.manual_seed(0)
    logits, x = torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    mean = torch.sigmoid(logits)
    fixed = torch.distributions.Normal(mean, GAUSSIAN_SIGMA).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(log_likelihood(logits, x, "gaussian_fixed"), fixed, rtol=1e-5)
    learned = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(log_likelihood(logits, x, "gaussian_learned", torch.tensor(math.log(0.3))), learned, rtol=1e-5)
    with pytest.raises(ValueError, match="not a normalised"):
        log_likelihood(logits, x, "squared_error")


def test_learned_sigma_is_a_parameter_that_trains(digits):
    cfg = dataclasses.replace(small_model("vae", latent_dim=4), likelihood="gaussian_learned")
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=2), dataset=digits)
    trainer.run_to_end()
    sigma = float(trainer.model.log_sigma.exp())
    assert sigma != pytest.approx(GAUSSIAN_SIGMA) and 1e-3 < sigma < 1
    assert "neg_elbo" in trainer.history.val


def test_squared_error_vae_claims_no_elbo():
    model = build_model(dataclasses.replace(small_model("vae"), likelihood="squared_error"), (1, 8, 8), 10)
    assert "neg_elbo" not in model.loss(torch.rand(3, 1, 8, 8)).terms


def test_binarize_draws_zeros_and_ones_and_is_recorded(tmp_path, digits):
    u8 = digits.train.images[:500]
    x = float_batch(u8, binarize=True)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(x.mean() - float_batch(u8).mean())) < 0.01, "x ~ Bernoulli(pixel)"
    assert not torch.equal(x, float_batch(u8, binarize=True)), "a new draw each batch"
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(float_batch(u8, True, g1), float_batch(u8, True, g2))
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1, binarize=True), dataset=digits,
                      run_parent=tmp_path)
    trainer.run_to_end()
    run = Run.open(trainer.run.path)
    assert run.train.binarize is True
    model = run.load_model()
    a = evaluate(model, digits.val, "cpu", binarize=True, seed=0)
    assert a["total"] == pytest.approx(run.history.val["total"][-1], rel=0.05)
    a_cli = build_parser().parse_args(["train", "--binarize"])
    assert configs_from_args(a_cli)[2].binarize is True


# -- best checkpoint, CVAE ------------------------------------------------------------------------
def test_beta_vae_with_warmup_keeps_the_best_neg_elbo(tmp_path, digits):
    cfg = small_model("beta_vae", latent_dim=3, beta=4.0, warmup_epochs=3.0)
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=4), dataset=digits, run_parent=tmp_path)
    trainer.run_to_end()
    val = trainer.history.val
    assert trainer.run.best_val == pytest.approx(min(val["neg_elbo"]))
    best = int(np.argmin(val["neg_elbo"]))
    model = Run.open(trainer.run.path).load_model("best")
    torch.manual_seed(0)
    # the best weights are those of the epoch with the lowest −ELBO, whatever its total was
    assert evaluate(model, digits.val, "cpu")["neg_elbo"] == pytest.approx(val["neg_elbo"][best], rel=0.03)


def test_cvae_label_enters_the_encoder_at_its_input():
    torch.manual_seed(0)
    model = build_model(small_model("cvae", latent_dim=2), (1, 8, 8), 10)
    first = model.encoder.features[1][0]
    assert first.in_features == 64 + 10 and model.encoder.head.in_features == 32
    x = torch.rand(2, 1, 8, 8)
    mu = lambda label: model.posterior(x, torch.full((2,), label))[0]  # noqa: E731
    shift = mu(1) - mu(7)
    assert not torch.allclose(shift[0], shift[1]), "the label's effect depends on the image (not a per-class constant)"


# -- layer-wise pretraining --------------------------------------------------------------------
def test_pretraining_trains_each_layer_pair_then_end_to_end(tmp_path, digits):
    cfg = small_model("ae", latent_dim=4)
    trainer = Trainer(DIGITS, cfg, quick_train(epochs=2, pretrain_epochs=1), dataset=digits, run_parent=tmp_path)
    last = trainer.run_to_end()
    assert last.status == "completed"
    h = Run.open(trainer.run.path).history
    per_epoch = math.ceil(len(digits.train) / 64)
    assert [name for _, name in h.phases] == ["pretrain_1", "pretrain_2", "pretrain_3", "train"]
    assert [first for first, _ in h.phases] == [1, 1 + per_epoch, 1 + 2 * per_epoch, 1 + 3 * per_epoch]
    assert h.epochs == [1, 2, 3, 4, 5] and len(h.steps) == 5 * per_epoch
    pre = np.array(h.terms["pretrain_1"], dtype=float)
    assert np.isfinite(pre[:per_epoch]).all() and np.isnan(pre[per_epoch:]).all()
    rec = np.array(h.terms["reconstruction"], dtype=float)
    assert np.isnan(rec[: 3 * per_epoch]).all() and np.isfinite(rec[3 * per_epoch:]).all()
    assert pre[per_epoch - 1] < pre[0], "the first pair's reconstruction falls"
    assert set(trainer.optimizers) == {"model", "pretrain_1", "pretrain_2", "pretrain_3"}


def test_a_pretraining_step_updates_only_its_layer_pair():
    from engine.models.pretraining import layer_pairs
    torch.manual_seed(0)
    model = build_model(small_model("ae", latent_dim=4), (1, 8, 8), 10)
    model.pretrain_epochs = 1
    optimizers = model.configure_optimizers(1e-2)
    pairs = layer_pairs(model)
    model.progress = 1.5   # the second pair's epoch
    assert model.phase == "pretrain_2"
    before = {k: v.clone() for k, v in model.named_parameters()}
    model.training_step(torch.rand(16, 1, 8, 8), None, optimizers)
    own = {id(p) for p in pairs[1].parameters}
    for name, p in model.named_parameters():
        assert (not torch.equal(p, before[name])) == (id(p) in own), name


def test_pretraining_is_refused_where_it_does_not_apply(digits):
    from engine.errors import ConfigError
    for cfg in (small_model("vae"), dataclasses.replace(small_model("ae"), body="lstm")):
        with pytest.raises(ConfigError, match="pretraining"):
            list(Trainer(DIGITS, cfg, quick_train(epochs=1, pretrain_epochs=1), dataset=digits).updates())
    a = build_parser().parse_args(["train", "--model", "tied_ae", "--pretrain-epochs", "2"])
    assert configs_from_args(a)[2].pretrain_epochs == 2


def test_tied_ae_pretrains_with_its_shared_weights(digits):
    trainer = Trainer(DIGITS, small_model("tied_ae", latent_dim=4), quick_train(epochs=1, pretrain_epochs=1),
                      dataset=digits)
    assert trainer.run_to_end().status == "completed"


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_help_shows_each_variants_own_default(capsys):
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "sparse_ae 0.001; contractive_ae 0.01; wae_mmd 100.0" in help_text
    assert "beta_vae 4.0; cvae 1.0" in help_text


def test_cli_builds_aae_and_lstm_configs():
    a = build_parser().parse_args(["train", "--model", "aae", "--prior", "swiss_roll", "--label-informed",
                                   "--components", "5", "--body", "lstm"])
    _, model, _ = configs_from_args(a)
    assert model.params.prior == "swiss_roll" and model.params.label_informed is True
    assert model.params.components == 5 and model.body == "lstm"
    assert isinstance(TrainConfig().pretrain_epochs, int) and ModelConfig().likelihood == "bernoulli"
