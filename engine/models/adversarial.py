"""The adversarial autoencoder (Makhzani et al. 2016): the VAE's KL term replaced by a
discriminator that tells codes from samples of a chosen prior p(z).

Each batch takes two steps (the WAE-GAN form, Tolstikhin et al. 2018), ``JOINT_ADVERSARIAL_WEIGHT``
λ = 300:

1. discriminator (``discriminator``)  −log D(z') − log(1 − D(f(x))) + γ/2·‖∇_z' logit D(z')‖²,
   z' ~ p(z): the last term is the R1 penalty (Mescheder et al. 2018, ``R1_WEIGHT`` γ = 10),
   which keeps D smooth where the prior's samples lie and damps the two players' oscillation
2. encoder + decoder (``autoencoder``: one Adam)  rec(x, g(f(x))) + λ·(−log D(f(x))): the encoder
   learns to fool D, the push weighed against the reconstruction by λ

With ``JOINT_ADVERSARIAL_WEIGHT = None``, the earlier three phases, each with its own Adam:
reconstruction (``autoencoder``), the discriminator as above, then the generator (``generator``:
the encoder alone on −log D(f(x))).  The ``generator`` optimizer exists in both forms (saved runs'
optimizer state loads and resumes); the joint form never steps it.

The terms (per image, averaged over the batch): ``reconstruction`` (nats for the normalised
likelihoods), ``discriminator`` and ``generator`` (binary cross-entropies, nats; the R1 penalty is
trained on, not reported; in the joint form both rec and gen are read before the step).  The
adversarial terms are a two-player game, not a sum to minimise, so ``total`` is the
reconstruction term.  With the label-informed option, the discriminator also sees the one-hot
label and prior samples come from that label's component.  The discriminator's optimizer (and the
three phases' generator's) run at the run's learning rate (``DISCRIMINATOR_LR_RATIO``,
``ADVERSARIAL_LR_RATIO``) with β₁ = 0.5, one discriminator step per batch.

Measured with benchmarks/bench_prior_match.py (MNIST, hidden 256, latent 8, 3 epochs, batch 128;
MMD², IMQ kernel C = 2·D, of 1,000 random test codes to N(0, I), in brackets the Gaussian kernel's;
seeds 0 / 1 / 2; ``OMP_NUM_THREADS=1 python benchmarks/bench_prior_match.py --mnist --mnist-gz DIR
--epochs 3 --hidden 256 --latent-dim 8 --threads 1 --seed S --draws 3 [--only aae
--aae-joint-weight none|λ]``).  The bar, the plain AE's codes standardised per dimension: 0.0045 /
0.0049 / 0.0039 (0.0024 / 0.0025 / 0.0018), 101.6 / 101.5 / 101.0 nats.

* The joint form, λ = 300 (the default): **0.0024 / 0.0016 / 0.0014** (0.0023 / 0.0011 / 0.0009),
  reconstruction 103.8 / 105.6 / 104.2 nats: below the bar on every seed under both kernels
  (1.9× / 3.1× / 2.8× under IMQ; under the Gaussian kernel seed 0 only just, 0.0023 against 0.0024).
  λ on seed 0 (IMQ, Gaussian, nats): 1: 0.32, 0.18, 101.4; 3: 0.21, 0.12, 102.1; 10: 0.098,
  0.060, 102.5; 30: 0.029, 0.018, 102.0; 100: 0.0049, 0.0029, 102.6; 200: 0.0026, 0.0020, 103.7;
  300: 0.0024, 0.0023, 103.8; 500: 0.0014, 0.0013, 106.0; 1000: 0.0010, 0.0008, 108.1; 3000:
  0.0038, 0.0044, 114.3.  Seeds 1 / 2: λ = 200 0.0030 / 0.0036 (0.0020 / 0.0029), 103.7 / 103.4
  nats; λ = 500 0.0040 / 0.0013 (0.0042 / 0.0010), 106.3 / 105.5; λ = 1000 0.0025 / 0.0035
  (0.0023 / 0.0040: above the bar's 0.0018), 107.8 / 109.3.  A separate Adam on the generator's loss
  normalised its step to the reconstruction step's size however small D's gradient; one Adam on
  rec + λ·gen lets λ weigh the push.  λ is in nats against rec's nats per image, so its weight
  differs with the image size; on the bundled 8×8 digits (rec ~17 nats; the benchmark's defaults,
  hidden 128, 64, 60 epochs) λ = 300 still beats the three phases on every seed: 0.0096 / 0.0007 /
  0.0022 (0.0117 / 0.0003 / 0.0024) against 0.0150 / 0.0169 / 0.0044, 17.0–17.3 nats either way
  (standardised AE 0.0079 / 0.0067 / 0.0098).  MNIST at the benchmark's 5 epochs, hidden 512, 256,
  seed 0: 0.0005 (0.0003) at 90.4 nats against the three phases' 0.0084 (0.0104) at 107.7
  (standardised AE 0.0060, 89.7 nats).
* The MNIST mixture preset (04, latent 2, label-informed, 3 of its 30 epochs, ``bench_presets.py
  --only 04-aae-mixture-prior --max-epochs 3 --threads 1 --seeds 3``; MMD² to its prior, seeds
  0 / 1 / 2): joint λ = 300 0.0082 / 0.0158 / 0.0138 (5-NN 0.838 / 0.829 / 0.832); three phases
  0.0067 / 0.0386 / 0.0661 (5-NN 0.729 / 0.785 / 0.750).  A plain AE at the preset's settings:
  codes moment-matched per dimension to the mixture, against it, 0.0742 / 0.0585 / 0.0663 (the
  joint form 9× / 3.7× / 4.8× below); codes standardised against N(0, I) 0.0211 / 0.0137 / 0.0181
  and 0.0218 / 0.0156 / 0.0187 on two draws (0.0255 on seed 0 in the README's earlier measure):
  the joint form clearly below on seed 0, level with it on seed 1, below on seed 2.  At 10 of
  the 30 epochs (seeds 0 / 1 / 2): joint 0.0042 / 0.0108 / 0.0086 (5-NN 0.888 / 0.863 / 0.872),
  three phases 0.0006 / 0.0147 / 0.0094 (5-NN 0.854 / 0.834 / 0.795): level on the mean (0.0079
  against 0.0082), the three phases lower on seed 0, the joint form on seeds 1 and 2, and its 5-NN
  higher on every seed.
* The three phases (``None``): 0.0061 / 0.0230 / 0.0140 (0.0072 / 0.0256 / 0.0169), 113 / 130 /
  123 nats, the codes' mean 0.2–0.5 from the prior's in some dimension (the WAE's by ≤ 0.14),
  alone worth ~0.005.  Tried there: without R1 at half the rate (the default before R1) 0.023 /
  0.023 (127 / 114 nats); the full rate without R1 0.058; R1 γ = 1, 3, 30, 100: 0.0146 (half
  rate), 0.0088, 0.033, 0.0066 (seed 0); 2 or 3 discriminator steps, a discriminator at twice the
  rate, β₁ = 0 or 0.9, 4 prior samples per code, feature matching, the batch's mean and spread as
  discriminator inputs: none better on every seed tried.  The generator's Adam with ε = 1e-3 gave
  0.0070 / 0.0041 / 0.0055 at 109–111 nats, ε = 1e-4 0.0025 / 0.0052 / 0.0032, but broke preset
  04 (MMD² to its prior 0.157 and 0.090 instead of 0.0067; 0.0216 with the earlier default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import AutoencoderModel, LossOutput, optimize, param
from engine.models.priors import LABELLED_PRIORS, PRIOR_SHAPES, sample_prior

#: the generator's learning rate as a fraction of the run's
ADVERSARIAL_LR_RATIO = 1.0
#: the discriminator's learning rate as a fraction of the run's
DISCRIMINATOR_LR_RATIO = 1.0
#: discriminator steps per batch (each against fresh prior samples), before the encoder's step
DISCRIMINATOR_STEPS = 1
#: Adam's β₁ for both adversarial optimizers
ADVERSARIAL_BETA1 = 0.5
#: γ of the discriminator's R1 penalty γ/2·‖∇_z' logit D(z')‖² on prior samples z'
R1_WEIGHT = 10.0
#: λ of the joint form: a discriminator step, then one step of the ``autoencoder`` Adam on
#: rec + λ·gen (both nats per image) over encoder and decoder; None: the three phases, the
#: generator with its own Adam (see the module's docstring)
JOINT_ADVERSARIAL_WEIGHT: float | None = 300.0


@dataclass(frozen=True)
class AAEParams:
    prior: str = param("gaussian", "Prior p(z)", choices=PRIOR_SHAPES,
                       labels={"gaussian": "Gaussian N(0, I)", "mixture": "Mixture of Gaussians on a circle",
                               "swiss_roll": "Swiss roll (2-D)", "uniform": "Uniform box [−2, 2]"},
                       help="The distribution the codes are pushed towards; sampling draws from it.")
    components: int = param(10, "Mixture components", minimum=2, maximum=100, step=1,
                            when={"prior": ("mixture", "swiss_roll")},
                            help="Mixture: Gaussians on the circle.  Swiss roll: stretches for the labels.")
    label_informed: bool = param(False, "Label-informed prior", when={"prior": LABELLED_PRIORS},
                                 help="Place each class on its own component (the discriminator sees the label).")
    disc_width: int = param(256, "Discriminator width", minimum=8, maximum=4096, step=8,
                            help="Width of the discriminator's two hidden layers.")


class AAE(AutoencoderModel):
    """rec(x, g(f(x))) with q(z) matched to p(z) by a discriminator on codes."""

    def __init__(self, image_shape, n_classes, latent_dim, body, hidden, likelihood, params):
        super().__init__(image_shape, n_classes, latent_dim, body, hidden, likelihood, params)
        p = self.params
        self.label_dim = p.components if p.label_informed else 0
        w = p.disc_width
        self.discriminator = nn.Sequential(nn.Linear(latent_dim + self.label_dim, w), nn.LeakyReLU(0.2),
                                           nn.Linear(w, w), nn.LeakyReLU(0.2), nn.Linear(w, 1))

    def prior_sample(self, n: int, device, labels: torch.Tensor | None = None) -> torch.Tensor:
        p = self.params
        return sample_prior(p.prior, n, self.latent_dim, device, p.components,
                            labels if p.label_informed else None)

    def _discriminate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.label_dim:
            labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device) if y is None else y.long()
            z = torch.cat([z, F.one_hot(labels % self.label_dim, self.label_dim).to(z.dtype)], dim=1)
        return self.discriminator(z).squeeze(1)

    def discriminator_terms(self, z: torch.Tensor, y, r1_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """−log D(z') − log(1 − D(z)) averaged over the batch, z' ~ p(z) (nats), and the R1
        penalty γ/2·‖∇_z' logit D(z')‖² averaged over the prior samples (0 when γ = 0)."""
        prior = self.prior_sample(z.shape[0], z.device, y)
        if r1_weight:
            prior.requires_grad_(True)
        real, fake = self._discriminate(prior, y), self._discriminate(z, y)
        loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        penalty = loss.new_zeros(())
        if r1_weight:
            grad, = torch.autograd.grad(real.sum(), prior, create_graph=True)
            penalty = r1_weight / 2 * grad.pow(2).sum(1).mean()
        return loss, penalty

    def discriminator_loss(self, z: torch.Tensor, y, r1_weight: float = 0.0) -> torch.Tensor:
        """The discriminator's training loss: the cross-entropy plus the R1 penalty at ``r1_weight``."""
        loss, penalty = self.discriminator_terms(z, y, r1_weight)
        return loss + penalty

    def generator_loss(self, z: torch.Tensor, y) -> torch.Tensor:
        fake = self._discriminate(z, y)
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))

    def loss(self, x, y=None) -> LossOutput:
        z = self.encode(x)
        rec, recon = self.ae_output(x, None, z)
        terms = {"reconstruction": rec, "discriminator": self.discriminator_loss(z.detach(), y),
                 "generator": self.generator_loss(z, y)}
        return LossOutput(rec, terms, z, recon)

    # -- the phases ---------------------------------------------------------------------------
    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {
            "autoencoder": torch.optim.Adam([*self.encoder.parameters(), *self.decoder.parameters()], lr=lr),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr * DISCRIMINATOR_LR_RATIO,
                                              betas=(ADVERSARIAL_BETA1, 0.999)),
            "generator": torch.optim.Adam(self.encoder.parameters(), lr=lr * ADVERSARIAL_LR_RATIO,
                                          betas=(ADVERSARIAL_BETA1, 0.999)),
        }

    def reconstruction_phase(self, x, optimizer) -> torch.Tensor:
        rec, _ = self.ae_output(x, None, self.encode(x))
        optimize(optimizer, rec)
        return rec.detach()

    def discriminator_phase(self, x, y, optimizer) -> torch.Tensor:
        """``DISCRIMINATOR_STEPS`` steps on the batch's codes, each against fresh prior samples,
        on the cross-entropy plus the R1 penalty; returns the last step's cross-entropy (nats)."""
        with torch.no_grad():
            z = self.encode(x)
        for _ in range(DISCRIMINATOR_STEPS):
            loss, penalty = self.discriminator_terms(z, y, R1_WEIGHT)
            optimize(optimizer, loss + penalty)
        return loss.detach()

    def generator_phase(self, x, y, optimizer) -> torch.Tensor:
        loss = self.generator_loss(self.encode(x), y)
        optimize(optimizer, loss)
        return loss.detach()

    def joint_phase(self, x, y, optimizer, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of ``optimizer`` (encoder + decoder) on rec + ``weight``·gen; returns (rec, gen),
        nats per image averaged over the batch, as they were before the step."""
        z = self.encode(x)
        rec, _ = self.ae_output(x, None, z)
        gen = self.generator_loss(z, y)
        optimize(optimizer, rec + weight * gen)
        return rec.detach(), gen.detach()

    def training_step(self, x, y, optimizers) -> dict[str, torch.Tensor]:
        weight = JOINT_ADVERSARIAL_WEIGHT
        if weight is not None:
            disc = self.discriminator_phase(x, y, optimizers["discriminator"])
            rec, gen = self.joint_phase(x, y, optimizers["autoencoder"], weight)
            return {"total": rec, "reconstruction": rec, "discriminator": disc, "generator": gen}
        rec = self.reconstruction_phase(x, optimizers["autoencoder"])
        disc = self.discriminator_phase(x, y, optimizers["discriminator"])
        gen = self.generator_phase(x, y, optimizers["generator"])
        return {"total": rec, "reconstruction": rec, "discriminator": disc, "generator": gen}
