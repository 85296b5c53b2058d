"""Deterministic autoencoders: plain, linear, denoising, sparse and contractive.

Each objective is a reconstruction term plus named regularisers, as the lecture notes
write them; ``terms`` holds every one of them so the loss plot can show why the total moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models.base import AutoencoderModel, LossOutput, NoParams, param


class AE(AutoencoderModel):
    """L(x) = rec(x, g(f(x)))."""

    key = "ae"

    def loss(self, x, y=None) -> LossOutput:
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x, y, z)
        return LossOutput(rec, {"reconstruction": rec}, z, recon)


class LinearAE(AE):
    """No nonlinearities and a squared-error loss: the optimum spans PCA's subspace."""

    key = "linear_ae"
    output = "identity"


@dataclass(frozen=True)
class DenoisingParams:
    noise: str = param("gaussian", "Noise", choices=("gaussian", "masking", "salt_pepper"),
                       labels={"gaussian": "Gaussian", "masking": "Masking", "salt_pepper": "Salt and pepper"},
                       help="How the input is corrupted before encoding.")
    level: float = param(0.3, "Noise level", minimum=0.0, maximum=1.0, step=0.05,
                         help="Gaussian σ, or the fraction of pixels masked / flipped to salt or pepper.")


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    """x̃ ~ q(x̃ | x): additive Gaussian noise, masking noise, or salt-and-pepper noise."""
    if noise == "gaussian":
        return (x + level * torch.randn_like(x)).clamp(0, 1)
    hit = torch.rand_like(x) < level
    if noise == "masking":
        return x.masked_fill(hit, 0.0)
    salt = (torch.rand_like(x) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


class DenoisingAE(AutoencoderModel):
    """L(x) = rec(x, g(f(x̃))), x̃ a corrupted copy of x."""

    key = "denoising_ae"

    def loss(self, x, y=None) -> LossOutput:
        noisy = corrupt(x, self.params.noise, self.params.level)
        z = self.code(self.encoder_output(noisy, y))
        rec, recon = self.ae_output(noisy, y, z, target=x)
        return LossOutput(rec, {"reconstruction": rec}, z, recon)


@dataclass(frozen=True)
class SparseParams:
    penalty: str = param("l1", "Penalty", choices=("l1", "kl"), labels={"l1": "L1 on the code", "kl": "KL to target ρ"},
                         help="L1: λ·Σ|h_j|.  KL: weight·Σ_j KL(ρ‖ρ̂_j) on mean sigmoid activations.")
    weight: float = param(1e-3, "Sparsity weight λ", minimum=0.0, maximum=100.0, step=1e-3)
    target: float = param(0.05, "Target activation ρ", minimum=1e-4, maximum=0.9999, step=0.01,
                          when={"penalty": ("kl",)}, help="Only for the KL penalty.")


def bernoulli_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(ρ ‖ ρ̂_j) between Bernoulli distributions, summed over units j."""
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class SparseAE(AutoencoderModel):
    """L(x) = rec(x, g(h)) + λ·Ω(h): Ω = Σ|h_j| (L1) or Σ_j KL(ρ‖ρ̂_j)."""

    key = "sparse_ae"

    def code(self, h):
        return torch.sigmoid(h) if self.params.penalty == "kl" else h

    def loss(self, x, y=None) -> LossOutput:
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x, y, z)
        p = self.params
        if p.penalty == "l1":
            sparsity = p.weight * z.abs().sum(dim=1).mean()
        else:
            sparsity = p.weight * bernoulli_kl(p.target, z.mean(dim=0))
        return LossOutput(rec + sparsity, {"reconstruction": rec, "sparsity": sparsity}, z, recon)


@dataclass(frozen=True)
class ContractiveParams:
    weight: float = param(1e-2, "Contraction weight λ", minimum=0.0, maximum=100.0, step=1e-3,
                          help="λ·‖∂h/∂x‖²_F, the encoder Jacobian's squared Frobenius norm.")


def jacobian_frobenius_sq(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Per-sample ‖∂h/∂x‖²_F, exact: one backward pass per code dimension, kept in the graph
    so the penalty can be minimised.  ``x`` must require grad and produce ``h``."""
    total = torch.zeros(h.shape[0], device=h.device, dtype=h.dtype)
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)
        total = total + g.pow(2).flatten(1).sum(dim=1)
    return total


class ContractiveAE(AutoencoderModel):
    """L(x) = rec(x, g(h)) + λ·‖J_f(x)‖²_F."""

    key = "contractive_ae"
    loss_needs_grad = True

    def loss(self, x, y=None) -> LossOutput:
        x = x.detach().requires_grad_(True)
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x.detach(), y, z)
        contraction = self.params.weight * jacobian_frobenius_sq(x, z).mean()
        return LossOutput(rec + contraction, {"reconstruction": rec, "contraction": contraction}, z, recon)


AE_PARAMS = {"ae": NoParams, "linear_ae": NoParams, "denoising_ae": DenoisingParams,
             "sparse_ae": SparseParams, "contractive_ae": ContractiveParams}
