"""Variational autoencoders: the VAE, the β-VAE and the conditional VAE.

Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)), reparameterisation z = μ + σ·ε,
closed-form KL to the prior N(0, I), Bernoulli (BCE) or Gaussian (squared error) decoder.
The negative ELBO  −E_q[log p(x|z)] + KL(q(z|x) ‖ p(z))  is reported in nats per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models.base import (
    AutoencoderModel,
    Densities,
    LossOutput,
    diagonal_normal_log_pdf,
    gaussian_kl,
    log_likelihood,
    param,
    standard_normal_log_pdf,
)


@dataclass(frozen=True)
class VAEParams:
    """The plain VAE has β = 1 and no warm-up."""


@dataclass(frozen=True)
class BetaVAEParams:
    beta: float = param(4.0, "β", minimum=0.0, maximum=1000.0, step=0.5,
                        help="Weight of the KL term: β > 1 presses for disentangled, smoother codes.")
    warmup_epochs: float = param(0.0, "KL warm-up (epochs)", minimum=0.0, maximum=1000.0, step=1.0,
                                 help="Raise the KL weight linearly from 0 to β over this many epochs.")


@dataclass(frozen=True)
class CVAEParams:
    beta: float = param(1.0, "β", minimum=0.0, maximum=1000.0, step=0.5, help="Weight of the KL term.")


class VAE(AutoencoderModel):
    """−ELBO(x) = −E_q(z|x)[log p(x|z)] + KL(q(z|x) ‖ N(0, I))."""

    key = "vae"
    probabilistic = True

    def kl_weight(self) -> float:
        p = self.params
        beta = getattr(p, "beta", 1.0)
        warmup = getattr(p, "warmup_epochs", 0.0)
        return beta * (min(1.0, self.progress / warmup) if warmup > 0 else 1.0)

    def posterior(self, x, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]) = N(mu, diag exp(logvar)): (mu, logvar), each N×D."""
        h = self.encoder_output(x, y)
        return h[:, : self.latent_dim], h[:, self.latent_dim:]

    def log_densities(self, x, y=None, k: int = 1) -> Densities:
        """``k`` reparameterised samples z ~ q(z|x) per image and their log-densities (k×N each)."""
        mu, logvar = self.posterior(x, y)
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps                      # k×N×D
        flat = z.reshape(-1, self.latent_dim)
        yk = None if y is None else torch.as_tensor(y, device=x.device).reshape(-1).repeat(k)
        logits = self.decode_logits(flat, yk)
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_px_z = log_likelihood(logits, xk, self.likelihood).reshape(k, -1)
        return Densities(z, diagonal_normal_log_pdf(z, mu, logvar), log_px_z, standard_normal_log_pdf(z))

    def loss(self, x, y=None) -> LossOutput:
        mu, logvar = self.posterior(x, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # a one-sample estimate, in training and validation
        rec, recon = self.ae_output(x, y, z)
        kl = gaussian_kl(mu, logvar).mean()
        neg_elbo = rec + kl
        weight = self.kl_weight()
        terms = {"reconstruction": rec, "kl": kl, "neg_elbo": neg_elbo}
        total = neg_elbo if weight == 1.0 else rec + weight * kl
        return LossOutput(total, terms, mu, recon)


class BetaVAE(VAE):
    """L(x) = −E_q[log p(x|z)] + β·w(t)·KL, w rising linearly over the warm-up."""

    key = "beta_vae"


class CVAE(VAE):
    """−ELBO(x | y): encoder q(z|x, y) and decoder p(x|z, y) see the one-hot label."""

    key = "cvae"
    is_conditional = True


VAE_PARAMS = {"vae": VAEParams, "beta_vae": BetaVAEParams, "cvae": CVAEParams}
