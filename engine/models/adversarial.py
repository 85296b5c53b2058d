"""The adversarial autoencoder (Makhzani et al. 2016): the VAE's KL term replaced by a
discriminator that tells codes from samples of a chosen prior p(z).

Each batch takes three steps, each with its own optimizer (and saved optimizer state):

1. reconstruction (``autoencoder``: encoder + decoder)  rec(x, g(f(x)))
2. discriminator (``discriminator``)  −log D(z') − log(1 − D(f(x))) + γ/2·‖∇_z' logit D(z')‖²,
   z' ~ p(z): the last term is the R1 penalty (Mescheder et al. 2018, ``R1_WEIGHT`` γ = 10),
   which keeps D smooth where the prior's samples lie and damps the two players' oscillation
3. generator (``generator``: the encoder)  −log D(f(x)): the encoder learns to fool D

The terms (per image, averaged over the batch): ``reconstruction`` (nats for the normalised
likelihoods), ``discriminator`` and ``generator`` (binary cross-entropies, nats; the R1 penalty is
trained on, not reported).  The adversarial terms are a two-player game, not a sum to minimise,
so ``total`` is the reconstruction term.  With the label-informed option, the discriminator also
sees the one-hot label and prior samples come from that label's component.  Both adversarial
optimizers run at the run's learning rate (``ADVERSARIAL_LR_RATIO``, ``DISCRIMINATOR_LR_RATIO``)
with β₁ = 0.5, one discriminator step per batch.

Measured with benchmarks/bench_prior_match.py (MNIST, hidden 256, latent 8, 3 epochs, batch 128;
MMD², IMQ kernel C = 2·D, of 1,000 random test codes to N(0, I); seeds 0 / 1 / 2):
0.0061 / 0.0230 / 0.0140, reconstruction 113 / 130 / 123 nats.  The plain AE's codes
standardised per dimension reach 0.0045 / 0.0049 / 0.0039 (101–102 nats): the AAE does not beat
them.  Its codes' mean wanders 0.2–0.5 from the prior's in some dimension (the WAE's by ≤ 0.14),
which alone is worth ~0.005.  Without R1 at half the rate (the earlier default), 0.023 / 0.023
(127 / 114 nats); at the full rate without R1 0.058; R1 γ = 1, 3, 30, 100: 0.0146 (half rate),
0.0088, 0.033, 0.0066 (seed 0); 2 or 3 discriminator steps, a discriminator at twice the rate,
β₁ = 0 or 0.9, 4 prior samples per code, feature matching, the batch's mean and spread as
discriminator inputs: none better on every seed tried.  The generator's Adam with ε = 1e-3 (steps that shrink with the
discriminator's gradient) gave 0.0070 / 0.0041 / 0.0055 at 109–111 nats, ε = 1e-4 0.0025 /
0.0052 / 0.0032, but broke the MNIST mixture preset (04, latent 2, 3 of its 30 epochs: MMD² to
its prior 0.157 and 0.090 instead of 0.0067; 0.0216 with the earlier default), so it is not the
default.
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
#: discriminator steps per batch (each against fresh prior samples), before the generator step
DISCRIMINATOR_STEPS = 1
#: Adam's β₁ for both adversarial optimizers
ADVERSARIAL_BETA1 = 0.5
#: γ of the discriminator's R1 penalty γ/2·‖∇_z' logit D(z')‖² on prior samples z'
R1_WEIGHT = 10.0


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

    # -- the three phases -------------------------------------------------------------------
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

    def training_step(self, x, y, optimizers) -> dict[str, torch.Tensor]:
        rec = self.reconstruction_phase(x, optimizers["autoencoder"])
        disc = self.discriminator_phase(x, y, optimizers["discriminator"])
        gen = self.generator_phase(x, y, optimizers["generator"])
        return {"total": rec, "reconstruction": rec, "discriminator": disc, "generator": gen}
