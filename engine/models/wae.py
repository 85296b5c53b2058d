"""The Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018, WAE-MMD).

A deterministic encoder; L = rec(x, g(f(x))) + λ·MMD(q(z), p(z)) over each batch, p(z) = N(0, I),
with the inverse multiquadratic kernel k(a, b) = C / (C + ‖a − b‖²) at the scale C = 2·D·σ²
(D the latent size, σ² = 1 the prior's variance), the paper's choice, and the unbiased
estimate of MMD².  The ``mmd`` term is λ·MMD² (per batch; not nats).

λ defaults to 100, not the paper's 10: the paper's reconstruction cost is a squared error, ours a
log-likelihood summed over pixels (~100 nats per MNIST image), beside which 10·MMD² (~2) barely
pulled.  MNIST, hidden 256, latent 8, 3 epochs: MMD² of 1,000 test codes to N(0, I) 0.223 at
λ = 10, 0.011–0.012 at 100 (three seeds), 0.009 at 300, 0.0077 at 3,000 (reconstruction 103, 104,
110 nats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.models.base import AutoencoderModel, LossOutput, param


@dataclass(frozen=True)
class WAEParams:
    weight: float = param(100.0, "MMD weight λ", minimum=0.0, maximum=10_000.0, step=1.0,
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
