"""The Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018, WAE-MMD).

A deterministic encoder; L = rec(x, g(f(x))) + λ·MMD(q(z), p(z)) over each batch, p(z) = N(0, I),
with the inverse multiquadratic kernel k(a, b) = C / (C + ‖a − b‖²) at the scale C = 2·D·σ²
(D the latent size, σ² = 1 the prior's variance), the paper's choice, and the unbiased
estimate of MMD².  The ``mmd`` term is λ·MMD² (per batch; not nats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models.base import AutoencoderModel, LossOutput, param


@dataclass(frozen=True)
class WAEParams:
    weight: float = param(10.0, "MMD weight λ", minimum=0.0, maximum=10_000.0, step=1.0,
                          help="λ·MMD²(q(z), N(0, I)) with the inverse multiquadratic kernel, C = 2·D.")


def imq_kernel(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    sq = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp(min=0)
    return scale / (scale + sq)


def mmd_imq(z: torch.Tensor, prior: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Unbiased MMD² between the rows of ``z`` and ``prior`` (the same count n ≥ 2) with the
    inverse multiquadratic kernel at ``scale`` (default 2·D)."""
    n, dim = z.shape
    if n < 2:
        return z.new_zeros(())
    scale = 2.0 * dim if scale is None else scale
    off = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    within = ((imq_kernel(z, z, scale) + imq_kernel(prior, prior, scale)) * off).sum() / (n * (n - 1))
    return within - 2 * imq_kernel(z, prior, scale).mean()


class WAE(AutoencoderModel):
    """L(x) = rec(x, g(f(x))) + λ·MMD(q(z), N(0, I))."""

    def prior_sample(self, n: int, device, labels=None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=device)

    def loss(self, x, y=None) -> LossOutput:
        z = self.encode(x)
        rec, recon = self.ae_output(x, None, z)
        mmd = self.params.weight * mmd_imq(z, torch.randn_like(z))
        return LossOutput(rec + mmd, {"reconstruction": rec, "mmd": mmd}, z, recon)
