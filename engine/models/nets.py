"""Body networks, separate from the objectives: any variant pairs with any body that
fits the data shape.

* ``mlp``  — fully connected, configurable hidden widths.
* ``conv`` — two stride-2 convolutions (28×28 and 32×32 images), then the hidden widths.
* ``auto`` — ``conv`` where it fits, ``mlp`` elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BODIES = ("auto", "mlp", "conv")
CONV_SIZES = (28, 32)
CONV_CHANNELS = (32, 64)


def resolve_body(body: str, image_shape: tuple[int, int, int]) -> str:
    """The body actually built: ``conv`` only for square images of a supported size."""
    _, h, w = image_shape
    conv_fits = h == w and h in CONV_SIZES
    if body in ("auto", "conv"):
        return "conv" if conv_fits else "mlp"
    if body != "mlp":
        raise ValueError(f"Unknown body {body!r}; choose one of {', '.join(BODIES)}.")
    return "mlp"


def mlp(widths: list[int], linear: bool, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if not linear and (last_activation or i < len(widths) - 2):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Image (and optional one-hot condition) -> ``out_dim`` numbers."""

    def __init__(self, image_shape, body: str, hidden: tuple[int, ...], out_dim: int,
                 cond_dim: int = 0, linear: bool = False):
        super().__init__()
        c, h, w = image_shape
        self.body = resolve_body(body, image_shape)
        if self.body == "conv":
            c1, c2 = CONV_CHANNELS
            act = nn.Identity if linear else nn.ReLU
            self.features = nn.Sequential(
                nn.Conv2d(c, c1, 4, 2, 1), act(),
                nn.Conv2d(c1, c2, 4, 2, 1), act(),
                nn.Flatten(),
                mlp([c2 * (h // 4) * (w // 4), *hidden], linear, last_activation=True),
            )
            feat = hidden[-1] if hidden else c2 * (h // 4) * (w // 4)
        else:
            self.features = nn.Sequential(nn.Flatten(), mlp([c * h * w, *hidden], linear, last_activation=True))
            feat = hidden[-1] if hidden else c * h * w
        self.head = nn.Linear(feat + cond_dim, out_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x)
        return self.head(f if cond is None else torch.cat([f, cond], dim=1))


class Decoder(nn.Module):
    """``in_dim`` numbers -> image logits (pre-sigmoid), N×C×H×W."""

    def __init__(self, image_shape, body: str, hidden: tuple[int, ...], in_dim: int, linear: bool = False):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = image_shape
        self.body = resolve_body(body, image_shape)
        widths = [in_dim, *reversed(hidden)]
        if self.body == "conv":
            c1, c2 = CONV_CHANNELS
            act = nn.Identity if linear else nn.ReLU
            self.net = nn.Sequential(
                mlp([*widths, c2 * (h // 4) * (w // 4)], linear, last_activation=True),
                nn.Unflatten(1, (c2, h // 4, w // 4)),
                nn.ConvTranspose2d(c2, c1, 4, 2, 1), act(),
                nn.ConvTranspose2d(c1, c, 4, 2, 1),
            )
        else:
            self.net = nn.Sequential(mlp([*widths, math.prod(image_shape)], linear, last_activation=False),
                                     nn.Unflatten(1, tuple(image_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
