"""Per-point values to colour the latent map by (issue 10: "colour the latent map by a value").

Each function takes a model and the probe images (uint8 N×C×H×W, as ``ImageSet.images``, or
floats in [0, 1]) or their codes, and returns one float64 value per point, in the points' order:

* ``reconstruction_error`` — per image, summed over pixels, of the image against the decoding of
  its code (the posterior mean for probabilistic encoders, so it is deterministic): the binary
  cross-entropy (nats) for Bernoulli runs, the squared error of the decoded mean otherwise
  (Gaussian runs, and the linear AE's raw output).  ``reconstruction_error_kind`` names it.
* ``point_kl`` — KL(q(z|x) ‖ p(z)) of each image's encoder distribution, in nats, summed over
  latent dimensions: closed form for a standard-normal prior, otherwise a Monte-Carlo estimate
  from ``log_densities`` (64 samples).  Only variants with ``has_density``.
* ``nearest_code_distance`` — the Euclidean distance in latent space from each code to the
  nearest other code of the set (a KD-tree, scipy's cKDTree); 0 for duplicates, NaN for a
  non-finite code or a set of one.

``available_values(variant_key)`` lists the kinds that apply to a variant with their
descriptions (for the map's menu and legend); ``point_values(kind, model, images, labels)``
computes one by key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.models import AutoencoderModel, variant

BATCH = 512
KL_SAMPLES = 64


@dataclass(frozen=True)
class ValueKind:
    key: str
    title: str        # the menu's words
    description: str  # the legend's words: what the number is, in which unit


def reconstruction_error_kind(model: AutoencoderModel) -> ValueKind:
    if model.likelihood == "bernoulli":
        return ValueKind("reconstruction_error", "Reconstruction error",
                         "binary cross-entropy per image, summed over pixels (nats)")
    return ValueKind("reconstruction_error", "Reconstruction error", "squared error per image, summed over pixels")


KL_KIND = ValueKind("kl", "KL of each point", "KL(q(z|x) ‖ p(z)) per image, summed over latent dimensions (nats)")
NEAREST_KIND = ValueKind("nearest_distance", "Distance to the nearest code",
                         "Euclidean distance in latent space to the nearest other code of the map")


def available_values(variant_key: str) -> list[str]:
    """The value kinds that apply to a variant, in menu order."""
    keys = ["reconstruction_error"]
    if variant(variant_key).has_density:
        keys.append("kl")
    return [*keys, "nearest_distance"]


def describe(kind: str, model: AutoencoderModel) -> ValueKind:
    """The title and description of a value kind for this model."""
    kinds = {"reconstruction_error": reconstruction_error_kind(model), "kl": KL_KIND, "nearest_distance": NEAREST_KIND}
    try:
        return kinds[kind]
    except KeyError:
        raise ValueError(f"Unknown point value {kind!r}; choose one of {', '.join(kinds)}.") from None


def _device(model: AutoencoderModel) -> torch.device:
    return next(iter(model.parameters()), torch.zeros(0)).device


def _batches(model: AutoencoderModel, images, labels):
    """Float batches in [0, 1] on the model's device, with their labels for conditional models."""
    images = torch.as_tensor(images)
    if labels is None and model.is_conditional:
        raise ValueError("This model is conditional: give the images' labels.")
    labels = torch.as_tensor(labels).reshape(-1) if labels is not None else None
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    device = _device(model)
    for s in range(0, len(images), BATCH):
        x = images[s:s + BATCH].to(device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        y = labels[s:s + BATCH].to(device) if labels is not None and model.is_conditional else None
        yield x, y


@torch.no_grad()
def reconstruction_error(model: AutoencoderModel, images, labels=None) -> np.ndarray:
    """Per image, summed over pixels: BCE (nats) for Bernoulli runs, squared error otherwise."""
    out = []
    for x, y in _batches(model, images, labels):
        logits = model.decode_logits(model.encode(x, y), y)
        if model.likelihood == "bernoulli":
            err = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        elif model.output == "sigmoid":   # the Gaussian likelihoods and squared error: of the sigmoid mean
            err = (torch.sigmoid(logits) - x).pow(2)
        else:  # the linear AE scores its raw output
            err = (logits - x).pow(2)
        out.append(err.flatten(1).sum(dim=1).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


@torch.no_grad()
def point_kl(model: AutoencoderModel, images, labels=None, samples: int = KL_SAMPLES) -> np.ndarray:
    """KL(q(z|x) ‖ p(z)) per image in nats, summed over latent dimensions (variants with a density)."""
    spec = variant(model.variant_key)
    if not spec.has_density:
        raise ValueError(f"The {spec.title} has no encoder distribution, so its points have no KL.")
    out = []
    for x, y in _batches(model, images, labels):
        if spec.prior == "standard_normal":
            mu, logvar = model.posterior(x, y)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        else:
            d = model.log_densities(x, y, k=samples)
            kl = (d.log_q - d.log_pz).mean(dim=0)
        out.append(kl.double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def nearest_code_distance(codes) -> np.ndarray:
    """The Euclidean distance from each code to the nearest other code (NaN where there is none)."""
    from scipy.spatial import cKDTree
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim == 1:
        codes = codes[:, None]
    out = np.full(len(codes), np.nan)
    finite = np.isfinite(codes).all(axis=1)
    if finite.sum() < 2:
        return out
    distance, _ = cKDTree(codes[finite]).query(codes[finite], k=2)
    out[finite] = distance[:, 1]
    return out


@torch.no_grad()
def point_values(kind: str, model: AutoencoderModel, images, labels=None, codes=None) -> np.ndarray:
    """One value per point by kind ("reconstruction_error", "kl", "nearest_distance"); ``codes``
    (the map's codes of the same images) saves encoding them again for the distance."""
    if kind == "reconstruction_error":
        return reconstruction_error(model, images, labels)
    if kind == "kl":
        return point_kl(model, images, labels)
    if kind == "nearest_distance":
        if codes is None:
            codes = torch.cat([model.encode(x, y).cpu() for x, y in _batches(model, images, labels)]).numpy()
        return nearest_code_distance(codes)
    describe(kind, model)  # raises: unknown kind
    raise AssertionError
