"""Priors an adversarial autoencoder can match (Makhzani et al. 2016, its figures' shapes).

* ``gaussian``   — N(0, I).
* ``mixture``    — K Gaussians on a circle in the first two dimensions: component i is centred at
  radius 2 and angle 2πi/K, with standard deviation 0.5 along the radius and 0.1 across it;
  the other dimensions N(0, 1).
* ``swiss_roll`` — a 2-D swiss roll in the first two dimensions (u ~ U(0, 1), radius 3√u,
  angle 4π√u); the other dimensions N(0, 1).
* ``uniform``    — the box [−2, 2]^D.

With labels (label-informed, the paper's semi-supervised prior), class y is drawn from mixture
component y mod K, or from the y-th of K equal stretches of the swiss roll's u.
"""

from __future__ import annotations

import math

import torch

PRIOR_SHAPES = ("gaussian", "mixture", "swiss_roll", "uniform")
LABELLED_PRIORS = ("mixture", "swiss_roll")
#: shapes that live in the first two dimensions
TWO_D_PRIORS = ("mixture", "swiss_roll")


def sample_prior(kind: str, n: int, dim: int, device, components: int = 10,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """n codes of size ``dim`` from the prior; ``labels`` (n ints) pick components where the prior has them."""
    if kind == "gaussian":
        return torch.randn(n, dim, device=device)
    if kind == "uniform":
        return torch.rand(n, dim, device=device) * 4 - 2
    z = torch.randn(n, dim, device=device)
    if labels is not None:
        which = torch.as_tensor(labels, device=device).long().reshape(-1) % components
    else:
        which = torch.randint(0, components, (n,), device=device)
    if kind == "mixture":
        angle = 2 * math.pi * which.float() / components
        radial = 2 + 0.5 * torch.randn(n, device=device)
        across = 0.1 * torch.randn(n, device=device)
        z[:, 0] = radial * torch.cos(angle) - across * torch.sin(angle)
        z[:, 1] = radial * torch.sin(angle) + across * torch.cos(angle)
        return z
    if kind == "swiss_roll":
        u = torch.rand(n, device=device)
        if labels is not None:
            u = (which.float() + u) / components
        r = torch.sqrt(u)
        z[:, 0] = 3 * r * torch.cos(4 * math.pi * r)
        z[:, 1] = 3 * r * torch.sin(4 * math.pi * r)
        return z
    raise ValueError(f"Unknown prior {kind!r}; choose one of {', '.join(PRIOR_SHAPES)}.")
