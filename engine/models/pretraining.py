"""Greedy layer-wise pretraining of the MLP body (the lecture notes' stacked autoencoder).

Layer pair i is the encoder's i-th linear layer (the head last) and the decoder's layer that
mirrors it.  Pair i is trained as a shallow autoencoder on the activations of the pairs below it,
which are held fixed: a_i = act(E_i(a_{i−1})), â_{i−1} = act'(D_i(a_i)).  Pair 1 reconstructs the
image under the model's own likelihood (its reconstruction term); deeper pairs reconstruct the
activations below them with the squared error summed over units (per image, not nats).  Then the
whole model trains end to end.  Tied decoders share the encoder's weight, so pair i's parameters
are E_i's weight and bias and the decoder's bias b'_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import optimize


@dataclass
class LayerPair:
    encoder_layer: nn.Linear
    decode: object            # callable: a_i -> pre-activation of a_{i-1}
    parameters: list[nn.Parameter]


def layer_pairs(model) -> list[LayerPair]:
    """The (encoder layer, mirrored decoder layer) pairs, bottom (pixels) first."""
    encoder_layers = model.encoder.layers()
    pairs = []
    if model.tied:
        biases = list(reversed(list(model.decoder.biases)))   # bias of the decoder layer mirroring E_i
        for layer, bias in zip(encoder_layers, biases):
            pairs.append(LayerPair(layer, lambda a, layer=layer, bias=bias: F.linear(a, layer.weight.t(), bias),
                                   [layer.weight, layer.bias, bias]))
        return pairs
    decoder_layers = list(reversed(model.decoder.layers()))
    for layer, mirror in zip(encoder_layers, decoder_layers):
        pairs.append(LayerPair(layer, mirror, [*layer.parameters(), *mirror.parameters()]))
    return pairs


def pretraining_step(model, pair_number: int, x: torch.Tensor, optimizer) -> dict[str, torch.Tensor]:
    """One step on layer pair ``pair_number`` (1-based); returns its terms."""
    pairs = layer_pairs(model)
    act = (lambda t: t) if model.output == "identity" else F.relu
    last = len(pairs)
    with torch.no_grad():
        below = x.flatten(1)
        for i, pair in enumerate(pairs[: pair_number - 1], 1):
            below = pair.encoder_layer(below)
            below = below if i == last else act(below)
    pair = pairs[pair_number - 1]
    a = pair.encoder_layer(below)
    a = a if pair_number == last else act(a)
    if pair_number == 1:
        logits = pair.decode(a).reshape(x.shape)
        loss = model.reconstruction(logits, x)
    else:
        loss = (act(pair.decode(a)) - below).pow(2).sum(dim=1).mean()
    optimize(optimizer, loss)
    loss = loss.detach()
    return {"total": loss, f"pretrain_{pair_number}": loss}
