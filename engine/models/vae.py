"""Variational autoencoders: the VAE, the β-VAE, the conditional VAE and the IWAE.

Gaussian encoder q(z|x) = N(μ(x), diag σ²(x)), reparameterisation z = μ + σ·ε,
closed-form KL to the prior N(0, I), and the model's likelihood p(x|z) (engine.models.base.LIKELIHOODS).
The negative ELBO  −E_q[log p(x|z)] + KL(q(z|x) ‖ p(z))  is reported in nats per image when the
likelihood is a normalised log-density; with ``squared_error`` there is no ELBO, and the terms
are the squared error and the KL (the ``neg_elbo`` term is left out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from engine.models.base import (
    NORMALISED_LIKELIHOODS,
    AutoencoderModel,
    Densities,
    LossOutput,
    diagonal_normal_log_pdf,
    gaussian_kl,
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


@dataclass(frozen=True)
class IWAEParams:
    k: int = param(5, "Samples k", minimum=1, maximum=5000, step=1,
                   help="Importance samples per image in the bound −log (1/k) Σ_i p(x, z_i)/q(z_i|x); "
                        "k = 1 is the VAE's −ELBO.")


class VAE(AutoencoderModel):
    """−ELBO(x) = −E_q(z|x)[log p(x|z)] + KL(q(z|x) ‖ N(0, I))."""

    probabilistic = True

    def kl_weight(self) -> float:
        p = self.params
        beta = getattr(p, "beta", 1.0)
        warmup = getattr(p, "warmup_epochs", 0.0)
        return beta * (min(1.0, self.progress / warmup) if warmup > 0 else 1.0)

    def graph_key(self) -> tuple:
        return (*super().graph_key(), self.kl_weight())

    def posterior(self, x, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x[, y]) = N(mu, diag exp(logvar)): (mu, logvar), each N×D."""
        h = self.encoder_output(x, y)
        return h[:, : self.latent_dim], h[:, self.latent_dim:]

    def log_densities(self, x, y=None, k: int = 1) -> Densities:
        """``k`` reparameterised samples z ~ q(z|x) per image and their log-densities (k×N each)."""
        mu, logvar = self.posterior(x, y)
        return self._densities(x, y, mu, logvar, k)[0]

    def _densities(self, x, y, mu, logvar, k: int) -> tuple[Densities, torch.Tensor]:
        """The densities of ``k`` samples from N(mu, exp(logvar)) and the decoder logits ((k·N)×C×H×W)."""
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps                      # k×N×D
        flat = z.reshape(-1, self.latent_dim)
        yk = None if y is None else torch.as_tensor(y, device=x.device).reshape(-1).repeat(k)
        logits = self.decode_logits(flat, yk)
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:])
        log_px_z = self.log_px(logits, xk).reshape(k, -1)
        return Densities(z, diagonal_normal_log_pdf(z, mu, logvar), log_px_z, standard_normal_log_pdf(z)), logits

    def loss(self, x, y=None) -> LossOutput:
        mu, logvar = self.posterior(x, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)  # a one-sample estimate, in training and validation
        rec, recon = self.ae_output(x, y, z)
        kl = gaussian_kl(mu, logvar).mean()
        weight = self.kl_weight()
        terms = {"reconstruction": rec, "kl": kl}
        if self.likelihood in NORMALISED_LIKELIHOODS:
            terms["neg_elbo"] = rec + kl
        total = rec + kl if weight == 1.0 else rec + weight * kl
        return LossOutput(total, terms, mu, recon)

    def selection_value(self, val: dict[str, float]) -> float:
        """The −ELBO (with squared error: rec + β·KL at full weight), an objective that a KL
        warm-up does not change, so the best checkpoint compares like with like."""
        if "neg_elbo" in val:
            return val["neg_elbo"]
        return val["reconstruction"] + getattr(self.params, "beta", 1.0) * val["kl"]


class BetaVAE(VAE):
    """L(x) = −E_q[log p(x|z)] + β·w(t)·KL, w rising linearly over the warm-up."""


class CVAE(VAE):
    """−ELBO(x | y): encoder q(z|x, y) and decoder p(x|z, y) see the one-hot label (the
    encoder at its input, with the image)."""

    is_conditional = True


class IWAE(VAE):
    """The importance-weighted bound (Burda et al. 2016), in nats per image:
    −log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x), by logsumexp.
    Beside it, the first sample's reconstruction term and the closed-form KL (not part of the total)."""

    def loss(self, x, y=None) -> LossOutput:
        k = self.params.k
        mu, logvar = self.posterior(x, y)
        d, logits = self._densities(x, y, mu, logvar, k)
        bound = -(torch.logsumexp(d.log_w, dim=0) - math.log(k)).mean()
        terms = {"neg_iwae_bound": bound, "reconstruction": -d.log_px_z[0].mean(), "kl": gaussian_kl(mu, logvar).mean()}
        return LossOutput(bound, terms, mu, torch.sigmoid(logits[: x.shape[0]]))

    def selection_value(self, val: dict[str, float]) -> float:
        return val["total"]
