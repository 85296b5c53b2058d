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
from engine.errors import ConfigError
from engine.models.base import (
    LEGACY_LIKELIHOODS,
    LIKELIHOODS,
    NORMALISED_LIKELIHOODS,
    AutoencoderModel,
    LossOutput,
    NoParams,
)
from engine.models.nets import BODIES, conv_fits, resolve_body
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
    bodies: tuple[str, ...] = ("auto", "mlp", "conv", "lstm")


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

__all__ = ["VARIANTS", "VariantSpec", "PRIORS", "AutoencoderModel", "LossOutput", "BODIES", "LIKELIHOODS",
           "NORMALISED_LIKELIHOODS", "LEGACY_LIKELIHOODS", "resolve_body", "variant", "build_model",
           "check_compatible", "built_body"]


def variant(key: str) -> VariantSpec:
    """Look a variant up by key; ValueError with one sentence when it is unknown."""
    try:
        return VARIANTS[key]
    except KeyError:
        raise ValueError(f"Unknown model {key!r}; choose one of {', '.join(VARIANTS)}.") from None


def built_body(cfg, image_shape) -> str:
    """The body a ``ModelConfig`` builds on data of ``image_shape`` (what ``auto`` stands for)."""
    spec = variant(cfg.variant)
    if cfg.body == "auto":
        return spec.model_class.default_body or resolve_body("auto", tuple(image_shape))
    return cfg.body


def check_compatible(cfg, image_shape, device=None, pretrain_epochs: int = 0) -> None:
    """Refuse, with one sentence (ConfigError), a model, body, data and device that cannot work
    together, before anything is trained: nothing is silently replaced."""
    spec = variant(cfg.variant)
    body = built_body(cfg, image_shape)
    c, h, w = tuple(image_shape)
    if cfg.body not in spec.bodies:
        raise ConfigError(f"The {spec.title} cannot be built on the {cfg.body} body; "
                          f"choose one of {', '.join(spec.bodies)}.")
    if body == "conv" and not conv_fits(image_shape):
        raise ConfigError(f"The convolutional body needs square 28×28 or 32×32 images, not {h}×{w}; "
                          "choose the MLP body or auto.")
    if body == "lstm" and not cfg.hidden:
        raise ConfigError("The LSTM body needs at least one hidden width (the size of its state).")
    dev = None if device is None else getattr(device, "type", str(device))
    if body == "lstm" and spec.model_class.loss_needs_grad and dev == "cuda":
        raise ConfigError(f"The {spec.title}'s penalty needs a double backward pass, which cuDNN's LSTM does not "
                          "support on CUDA; train it on the CPU or choose another body.")
    if pretrain_epochs > 0:
        if not spec.model_class.pretrainable:
            raise ConfigError(f"Layer-wise pretraining applies to the deterministic autoencoders' MLP body, "
                              f"not to the {spec.title}.")
        if body != "mlp":
            raise ConfigError(f"Layer-wise pretraining needs the MLP body, not the {body} body.")


def build_model(cfg, image_shape: tuple[int, int, int], n_classes: int) -> AutoencoderModel:
    """A fresh model for a ``ModelConfig`` and the data it will see (ConfigError when they
    cannot work together, see ``check_compatible``)."""
    spec = variant(cfg.variant)
    check_compatible(cfg, image_shape)
    return spec.model_class(tuple(image_shape), max(1, n_classes), cfg.latent_dim, cfg.body,
                            tuple(cfg.hidden), cfg.likelihood, cfg.params)
