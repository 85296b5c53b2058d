"""The registry of variants: a stable key -> the model class, its parameter dataclass,
and the words a person reads about it.  A saved run records the key, so loading is a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError
from engine.models.adversarial import AAE, AAEParams
from engine.models.ae import (
    AE,
    ContractiveAE,
    ContractiveParams,
    DenoisingAE,
    DenoisingParams,
    LinearAE,
    SeqAE,
    SparseAE,
    SparseParams,
    TiedAE,
)
from engine.models.base import (
    LEGACY_LIKELIHOODS,
    LIKELIHOODS,
    NORMALISED_LIKELIHOODS,
    AutoencoderModel,
    LossOutput,
    NoParams,
)
from engine.models.nets import BODIES, conv_fits, resolve_body
from engine.models.priors import TWO_D_PRIORS
from engine.models.vae import CVAE, IWAE, VAE, BetaVAE, BetaVAEParams, CVAEParams, IWAEParams, VAEParams
from engine.models.wae import WAE, WAEParams

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


ALL_BODIES = ("auto", "mlp", "conv", "lstm")

VARIANTS: dict[str, VariantSpec] = {s.key: s for s in (
    VariantSpec("ae", AE, NoParams, "Autoencoder",
                "Compress and reconstruct: the code is whatever helps the decoder most.",
                "L = rec(x, g(f(x)))", bodies=ALL_BODIES),
    VariantSpec("linear_ae", LinearAE, NoParams, "Linear autoencoder",
                "No nonlinearities and squared error: it learns the same subspace as PCA.",
                "L = ‖x − W_d W_e x‖²", fixed_likelihood=True, bodies=("auto", "mlp", "conv")),
    VariantSpec("denoising_ae", DenoisingAE, DenoisingParams, "Denoising autoencoder",
                "Reconstruct the clean image from a corrupted copy.",
                "L = rec(x, g(f(x̃))),  x̃ ~ q(x̃ | x)", bodies=ALL_BODIES),
    VariantSpec("sparse_ae", SparseAE, SparseParams, "Sparse autoencoder",
                "Penalise active code units so that few carry each image.",
                "L = rec(x, g(h)) + λ Σ_j ‖d_j‖·|h_j|   or   + w Σ_j KL(ρ ‖ ρ̂_j)   (d_j: unit j's decoder column)",
                bodies=ALL_BODIES),
    VariantSpec("contractive_ae", ContractiveAE, ContractiveParams, "Contractive autoencoder",
                "Penalise the encoder's sensitivity to its input.",
                "L = rec(x, g(h)) + λ Σ_j ‖d_j‖²·‖∂h_j/∂x‖²   (‖∂h/∂x‖²_F, each unit weighted by its decoder column d_j)",
                bodies=ALL_BODIES),
    VariantSpec("tied_ae", TiedAE, NoParams, "Tied-weights autoencoder",
                "The decoder is the encoder run backwards: its weights are the encoder's, transposed.",
                "L = rec(x, g(f(x))),  g's weights W' = Wᵀ (own biases)", bodies=("auto", "mlp")),
    VariantSpec("seq_ae", SeqAE, NoParams, "Sequence-to-sequence autoencoder",
                "An LSTM reads the image row by row into one vector; an LSTM writes the rows back from it.",
                "L = rec(x, g(f(x))),  f, g LSTMs over rows (time = rows, features = columns × channels)",
                bodies=("auto", "lstm")),
    VariantSpec("vae", VAE, VAEParams, "Variational autoencoder",
                "A Gaussian encoder and the ELBO: a smooth latent space you can sample from.",
                "−ELBO = −E_q(z|x)[log p(x|z)] + KL(q(z|x) ‖ N(0, I))", prior="standard_normal", has_density=True,
                bodies=ALL_BODIES),
    VariantSpec("beta_vae", BetaVAE, BetaVAEParams, "β-VAE",
                "A VAE with a weighted KL term (and an optional warm-up); the best checkpoint is chosen by −ELBO.",
                "L = −E_q(z|x)[log p(x|z)] + β·w(t)·KL(q(z|x) ‖ N(0, I))", prior="standard_normal", has_density=True,
                bodies=ALL_BODIES),
    VariantSpec("cvae", CVAE, CVAEParams, "Conditional VAE",
                "Encoder and decoder see the label: decode any code as any class.",
                "−ELBO = −E_q(z|x,y)[log p(x|z,y)] + KL(q(z|x,y) ‖ N(0, I))", prior="standard_normal",
                conditional=True, has_density=True, bodies=ALL_BODIES),
    VariantSpec("iwae", IWAE, IWAEParams, "Importance-weighted autoencoder",
                "A VAE trained on a tighter bound: k posterior samples per image, importance-weighted.",
                "L_k = −log (1/k) Σ_i p(x, z_i) / q(z_i | x),  z_i ~ q(z|x)   (k = 1: the −ELBO)",
                prior="standard_normal", has_density=True, bodies=ALL_BODIES),
    VariantSpec("aae", AAE, AAEParams, "Adversarial autoencoder",
                "A discriminator on codes, instead of a KL term, pushes the codes towards a prior you choose.",
                "rec(x, g(f(x)));  D: −log D(z′) − log(1 − D(f(x))), z′ ~ p(z);  f: −log D(f(x))",
                prior="chosen", bodies=ALL_BODIES),
    VariantSpec("wae_mmd", WAE, WAEParams, "Wasserstein autoencoder (MMD)",
                "A deterministic encoder whose batch of codes is pulled towards N(0, I) by a kernel two-sample distance.",
                "L = rec(x, g(f(x))) + λ·MMD²(q(z), N(0, I)),  k(a, b) = C / (C + ‖a − b‖²), C = 2·D",
                prior="standard_normal", bodies=ALL_BODIES),
)}

def has_standard_normal_prior(model: AutoencoderModel) -> bool:
    """Whether the model's codes are meant to follow N(0, I) (its variant's ``prior``): the VAE
    family and the WAE.  Traversals and the decoder's sliders then span prior standard deviations
    around 0; other codes are spanned in the marginal standard deviations of the codes."""
    spec = VARIANTS.get(getattr(model, "variant_key", ""))
    return spec.prior == "standard_normal" if spec is not None else bool(model.probabilistic)


__all__ = ["VARIANTS", "has_standard_normal_prior", "VariantSpec", "PRIORS", "AutoencoderModel", "LossOutput", "BODIES", "LIKELIHOODS",
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
    if issubclass(spec.model_class, IWAE) and cfg.likelihood not in NORMALISED_LIKELIHOODS:
        raise ConfigError(f"The {spec.title}'s bound needs a normalised likelihood (Bernoulli or Gaussian), "
                          f"not {cfg.likelihood}.")
    prior = getattr(cfg.params, "prior", None)
    if prior in TWO_D_PRIORS and cfg.latent_dim < 2:
        raise ConfigError(f"The {prior.replace('_', ' ')} prior lives in two dimensions; choose a latent size of 2 or more.")
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
    model = spec.model_class(tuple(image_shape), max(1, n_classes), cfg.latent_dim, cfg.body,
                             tuple(cfg.hidden), cfg.likelihood, cfg.params)
    model.variant_key = cfg.variant   # what views ask the registry about (variant(model.variant_key))
    return model
