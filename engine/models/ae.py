"""Deterministic autoencoders: plain, linear, denoising, sparse, contractive, tied and sequence.

Each objective is a reconstruction term plus named regularisers, as the lecture notes
write them; ``terms`` holds every one of them so the loss plot can show why the total moves.

The L1-sparse and contractive penalties act on a linear code, which the decoder can rescale
for free: dividing unit j by c and multiplying its column of the decoder's first layer by c
leaves the reconstruction unchanged.  A plain Σ|h_j| or ‖∂h/∂x‖² then falls by c (c²) and has no
minimiser in scale.  So each unit's penalty is weighted by the norm of its decoder column d_j,
‖d_j‖·|h_j| and ‖d_j‖²·‖∂h_j/∂x‖², which such a rescaling leaves unchanged (the penalty of
sparse coding with a unit-norm dictionary, written without the constraint).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models.base import AutoencoderModel, LossOutput, param


class AE(AutoencoderModel):
    """L(x) = rec(x, g(f(x)))."""

    pretrainable = True

    def loss(self, x, y=None) -> LossOutput:
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x, y, z)
        return LossOutput(rec, {"reconstruction": rec}, z, recon)


class LinearAE(AE):
    """No nonlinearities and a squared-error loss: the optimum spans PCA's subspace."""

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

    pretrainable = True

    def loss(self, x, y=None) -> LossOutput:
        noisy = corrupt(x, self.params.noise, self.params.level)
        z = self.code(self.encoder_output(noisy, y))
        rec, recon = self.ae_output(noisy, y, z, target=x)
        return LossOutput(rec, {"reconstruction": rec}, z, recon)


@dataclass(frozen=True)
class SparseParams:
    penalty: str = param("l1", "Penalty", choices=("l1", "kl"), labels={"l1": "L1 on the code", "kl": "KL to target ρ"},
                         help="L1: λ·Σ_j ‖d_j‖·|h_j| (d_j: unit j's column of the decoder's first layer).  "
                              "KL: weight·Σ_j KL(ρ‖ρ̂_j) on mean sigmoid activations.")
    weight: float = param(1e-3, "Sparsity weight λ", minimum=0.0, maximum=100.0, step=1e-3)
    target: float = param(0.05, "Target activation ρ", minimum=1e-4, maximum=0.9999, step=0.01,
                          when={"penalty": ("kl",)}, help="Only for the KL penalty.")


def bernoulli_kl(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """KL(ρ ‖ ρ̂_j) between Bernoulli distributions, summed over units j."""
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


def code_column_norms(model: AutoencoderModel) -> torch.Tensor:
    """‖d_j‖ for each code unit j: the norm of its column in the decoder's first layer."""
    return model.decoder.code_weight()[:, : model.latent_dim].norm(dim=0)


class SparseAE(AutoencoderModel):
    """L(x) = rec(x, g(h)) + λ·Ω(h): Ω = Σ_j ‖d_j‖·|h_j| (L1) or Σ_j KL(ρ‖ρ̂_j)."""

    pretrainable = True

    def code(self, h):
        return torch.sigmoid(h) if self.params.penalty == "kl" else h

    def loss(self, x, y=None) -> LossOutput:
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x, y, z)
        p = self.params
        if p.penalty == "l1":
            sparsity = p.weight * (z.abs() * code_column_norms(self)).sum(dim=1).mean()
        else:
            sparsity = p.weight * bernoulli_kl(p.target, z.mean(dim=0))
        return LossOutput(rec + sparsity, {"reconstruction": rec, "sparsity": sparsity}, z, recon)


@dataclass(frozen=True)
class ContractiveParams:
    weight: float = param(1e-2, "Contraction weight λ", minimum=0.0, maximum=100.0, step=1e-3,
                          help="λ·Σ_j ‖d_j‖²·‖∂h_j/∂x‖², the encoder Jacobian's squared Frobenius norm "
                               "with each code unit weighted by its decoder column d_j.")


def jacobian_frobenius_sq(x: torch.Tensor, h: torch.Tensor, unit_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ‖∂h/∂x‖²_F, exact: one backward pass per code dimension, kept in the graph
    so the penalty can be minimised; with ``unit_weights`` w, Σ_j w_j·‖∂h_j/∂x‖².
    ``x`` must require grad and produce ``h``."""
    total = torch.zeros(h.shape[0], device=h.device, dtype=h.dtype)
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)
        sq = g.pow(2).flatten(1).sum(dim=1)
        total = total + (sq if unit_weights is None else unit_weights[j] * sq)
    return total


class ContractiveAE(AutoencoderModel):
    """L(x) = rec(x, g(h)) + λ·Σ_j ‖d_j‖²·‖∂h_j/∂x‖²."""

    loss_needs_grad = True
    pretrainable = True

    def loss(self, x, y=None) -> LossOutput:
        x = x.detach().requires_grad_(True)
        z = self.code(self.encoder_output(x, y))
        rec, recon = self.ae_output(x.detach(), y, z)
        contraction = self.params.weight * jacobian_frobenius_sq(x, z, code_column_norms(self).pow(2)).mean()
        return LossOutput(rec + contraction, {"reconstruction": rec, "contraction": contraction}, z, recon)


class TiedAE(AE):
    """L(x) = rec(x, g(f(x))) with the decoder's weights the encoder's transposed, W' = Wᵀ
    (biases of its own); MLP body only."""

    tied = True
    default_body = "mlp"


class SeqAE(AE):
    """The sequence-to-sequence autoencoder: the plain AE on the LSTM body (rows as time)."""

    default_body = "lstm"
    pretrainable = False
