"""The registry of variants: a stable key -> the model class, its parameter dataclass,
and the words a person reads about it.  A saved run records the key, so loading is a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.models.ae import (
    AE,
    ContractiveAE,
    ContractiveParams,
    DenoisingAE,
    DenoisingParams,
    LinearAE,
    SparseAE,
    SparseParams,
)
from engine.models.base import AutoencoderModel, LossOutput, NoParams
from engine.models.nets import BODIES, resolve_body
from engine.models.vae import CVAE, VAE, BetaVAE, BetaVAEParams, CVAEParams, VAEParams

PRIORS = ("standard_normal", "chosen", "fitted")


@dataclass(frozen=True)
class VariantSpec:
    """What a view or the CLI needs to know about a variant; no view tests a variant key.

    ``prior``: ``standard_normal`` (samples and traversal ranges from N(0, I)), ``chosen``
    (the model's own ``prior_sample``, e.g. an AAE's mixture) or ``fitted`` (a Gaussian fitted to
    the training codes).  ``has_density``: the model has an encoder distribution and a prior
    density, so ``log_densities`` and the importance-sampled NLL apply.  ``fixed_likelihood``:
    the variant chooses its own reconstruction term (the linear AE's squared error).
    ``bodies``: the bodies it can be built on.
    """

    key: str
    model_class: type[AutoencoderModel]
    params_class: type
    title: str
    summary: str
    formula: str
    prior: str = "fitted"
    conditional: bool = False
    has_density: bool = False
    fixed_likelihood: bool = False
    bodies: tuple[str, ...] = ("auto", "mlp", "conv")


VARIANTS: dict[str, VariantSpec] = {s.key: s for s in (
    VariantSpec("ae", AE, NoParams, "Autoencoder",
                "Compress and reconstruct: the code is whatever helps the decoder most.",
                "L = rec(x, g(f(x)))"),
    VariantSpec("linear_ae", LinearAE, NoParams, "Linear autoencoder",
                "No nonlinearities and squared error: it learns the same subspace as PCA.",
                "L = ‖x − W_d W_e x‖²", fixed_likelihood=True),
    VariantSpec("denoising_ae", DenoisingAE, DenoisingParams, "Denoising autoencoder",
                "Reconstruct the clean image from a corrupted copy.",
                "L = rec(x, g(f(x̃))),  x̃ ~ q(x̃ | x)"),
    VariantSpec("sparse_ae", SparseAE, SparseParams, "Sparse autoencoder",
                "Penalise active code units so that few carry each image.",
                "L = rec(x, g(h)) + λ Σ|h_j|   or   + w Σ_j KL(ρ ‖ ρ̂_j)"),
    VariantSpec("contractive_ae", ContractiveAE, ContractiveParams, "Contractive autoencoder",
                "Penalise the encoder's sensitivity to its input.",
                "L = rec(x, g(h)) + λ ‖∂h/∂x‖²_F"),
    VariantSpec("vae", VAE, VAEParams, "Variational autoencoder",
                "A Gaussian encoder and the ELBO: a smooth latent space you can sample from.",
                "−ELBO = −E_q(z|x)[log p(x|z)] + KL(q(z|x) ‖ N(0, I))", prior="standard_normal", has_density=True),
    VariantSpec("beta_vae", BetaVAE, BetaVAEParams, "β-VAE",
                "A VAE with a weighted KL term (and an optional warm-up).",
                "L = −E_q(z|x)[log p(x|z)] + β·KL(q(z|x) ‖ N(0, I))", prior="standard_normal", has_density=True),
    VariantSpec("cvae", CVAE, CVAEParams, "Conditional VAE",
                "Encoder and decoder see the label: decode any code as any class.",
                "−ELBO = −E_q(z|x,y)[log p(x|z,y)] + KL(q(z|x,y) ‖ N(0, I))", prior="standard_normal",
                conditional=True, has_density=True),
)}

LIKELIHOODS = ("bernoulli", "gaussian")

__all__ = ["VARIANTS", "VariantSpec", "PRIORS", "AutoencoderModel", "LossOutput", "BODIES", "LIKELIHOODS",
           "resolve_body", "variant", "build_model"]


def variant(key: str) -> VariantSpec:
    """Look a variant up by key; ValueError with one sentence when it is unknown."""
    try:
        return VARIANTS[key]
    except KeyError:
        raise ValueError(f"Unknown model {key!r}; choose one of {', '.join(VARIANTS)}.") from None


def build_model(cfg, image_shape: tuple[int, int, int], n_classes: int) -> AutoencoderModel:
    """A fresh model for a ``ModelConfig`` and the data it will see."""
    spec = variant(cfg.variant)
    return spec.model_class(tuple(image_shape), max(1, n_classes), cfg.latent_dim, cfg.body,
                            tuple(cfg.hidden), cfg.likelihood, cfg.params)
