"""Body networks, separate from the objectives: any variant pairs with any body that
fits the data shape (the registry says which bodies each variant takes).

* ``mlp``  — fully connected, configurable hidden widths.
* ``conv`` — two stride-2 convolutions (28×28 and 32×32 images), then the hidden widths.
* ``lstm`` — an LSTM reads the image row by row (time = rows, features = columns × channels)
  into its last hidden state (size: the first hidden width); the decoder repeats its input
  vector once per row into an LSTM whose outputs become the rows.  Further hidden widths are
  fully connected layers after the encoder's LSTM and, mirrored, before the decoder's.
* ``auto`` — ``conv`` where it fits, ``mlp`` elsewhere.

A condition (a one-hot label) enters the encoder at its input: concatenated to the flattened
image (mlp), as constant extra channels (conv), or to every row (lstm).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BODIES = ("auto", "mlp", "conv", "lstm")
CONV_SIZES = (28, 32)
CONV_CHANNELS = (32, 64)


def conv_fits(image_shape: tuple[int, int, int]) -> bool:
    _, h, w = image_shape
    return h == w and h in CONV_SIZES


def resolve_body(body: str, image_shape: tuple[int, int, int]) -> str:
    """The body ``auto`` stands for (``conv`` for square 28/32-pixel images, else ``mlp``);
    any other body is itself.  Whether it fits is the registry's check (engine.models)."""
    if body == "auto":
        return "conv" if conv_fits(image_shape) else "mlp"
    if body not in BODIES:
        raise ValueError(f"Unknown body {body!r}; choose one of {', '.join(BODIES)}.")
    return body


def mlp(widths: list[int], linear: bool, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if not linear and (last_activation or i < len(widths) - 2):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def rows(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W -> N×H×(W·C): one time step per row, columns × channels as features."""
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h, w * c)


class Encoder(nn.Module):
    """Image (and optional one-hot condition, at the input) -> ``out_dim`` numbers."""

    def __init__(self, image_shape, body: str, hidden: tuple[int, ...], out_dim: int,
                 cond_dim: int = 0, linear: bool = False):
        super().__init__()
        c, h, w = image_shape
        self.body = resolve_body(body, image_shape)
        self.cond_dim = cond_dim
        if self.body == "conv":
            c1, c2 = CONV_CHANNELS
            act = nn.Identity if linear else nn.ReLU
            self.features = nn.Sequential(
                nn.Conv2d(c + cond_dim, c1, 4, 2, 1), act(),
                nn.Conv2d(c1, c2, 4, 2, 1), act(),
                nn.Flatten(),
                mlp([c2 * (h // 4) * (w // 4), *hidden], linear, last_activation=True),
            )
            feat = hidden[-1] if hidden else c2 * (h // 4) * (w // 4)
        elif self.body == "lstm":
            self.lstm = nn.LSTM(w * c + cond_dim, hidden[0], batch_first=True)
            self.features = mlp(list(hidden), linear, last_activation=True)
            feat = hidden[-1]
        else:
            self.features = nn.Sequential(nn.Flatten(), mlp([c * h * w + cond_dim, *hidden], linear,
                                                            last_activation=True))
            feat = hidden[-1] if hidden else c * h * w + cond_dim
        self.head = nn.Linear(feat, out_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.body == "lstm":
            seq = rows(x)
            if cond is not None:
                seq = torch.cat([seq, cond.unsqueeze(1).expand(-1, seq.shape[1], -1)], dim=2)
            _, (state, _) = self.lstm(seq)
            return self.head(self.features(state[-1]))
        if cond is not None:
            if self.body == "conv":
                x = torch.cat([x, cond[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
            else:
                x = torch.cat([x.flatten(1), cond], dim=1)
        return self.head(self.features(x))

    def layers(self) -> list[nn.Linear]:
        """The MLP body's linear layers in order, the head last (for tied weights and pretraining)."""
        return [*linears(self.features), self.head]


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
        elif self.body == "lstm":
            self.net = mlp(widths[:-1], linear, last_activation=True)   # in_dim -> reversed(hidden[1:])
            self.lstm = nn.LSTM(widths[-2], hidden[0], batch_first=True)
            self.rows_out = nn.Linear(hidden[0], w * c)
        else:
            self.net = nn.Sequential(mlp([*widths, math.prod(image_shape)], linear, last_activation=False),
                                     nn.Unflatten(1, tuple(image_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.body == "lstm":
            c, h, w = self.image_shape
            v = self.net(z)
            out, _ = self.lstm(v.unsqueeze(1).expand(-1, h, -1).contiguous())
            return self.rows_out(out).reshape(-1, h, w, c).permute(0, 3, 1, 2)
        return self.net(z)

    def code_weight(self) -> torch.Tensor:
        """The weight of the first layer that reads the code: one column per input unit."""
        first = linears(self.net)
        if first:
            return first[0].weight
        return self.lstm.weight_ih_l0

    def layers(self) -> list[nn.Linear]:
        """The MLP body's linear layers in order (the first reads the code)."""
        return linears(self.net)


class TiedDecoder(nn.Module):
    """The MLP encoder run backwards with transposed weights, W' = Wᵀ, and biases of its own.

    The encoder's layers are held by reference, not registered, so the state dict holds each
    shared weight once (under ``encoder.``) and only the biases here: safetensors refuses
    tensors that share memory, and the GUI's snapshot carries the shared weight once.
    """

    def __init__(self, encoder: Encoder, image_shape, linear: bool = False):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.linear = linear
        self._encoder = (encoder,)   # a tuple: not a registered submodule
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(layer.in_features))
                                        for layer in reversed(encoder.layers())])

    def tied_weights(self) -> list[torch.Tensor]:
        """The decoder's weights in order (each the transpose of an encoder weight)."""
        return [layer.weight.t() for layer in reversed(self._encoder[0].layers())]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        weights = self.tied_weights()
        for i, (weight, bias) in enumerate(zip(weights, self.biases)):
            h = F.linear(h, weight, bias)
            if not self.linear and i < len(weights) - 1:
                h = F.relu(h)
        return h.reshape(-1, *self.image_shape)

    def code_weight(self) -> torch.Tensor:
        return self.tied_weights()[0]
