"""What a run's ``best_val`` is, in words: one label for `info`, the runs library and compare.

``best_val`` is the lowest ``model.selection_value(val)`` over the epochs, per image on the
run's validation split.  For the VAE family (VAE, β-VAE, CVAE) that is the −ELBO at β = 1
(reconstruction + KL, nats per image), not the β-weighted total they train on; with squared
error it is reconstruction + β·KL (not nats).  For the IWAE it is the k-sample bound; every
other variant selects on its validation total.
"""

from __future__ import annotations

from engine.config import ModelConfig
from engine.models import VARIANTS
from engine.models.base import NORMALISED_LIKELIHOODS
from engine.models.vae import IWAE, VAE

#: the short column/row name the label explains
BEST_VALUE_NAME = "best validation loss"


def _reconstruction_words(model: ModelConfig) -> str:
    spec = VARIANTS[model.variant]
    if spec.fixed_likelihood or model.likelihood not in NORMALISED_LIKELIHOODS:
        return "squared error summed over pixels, not nats"
    return f"{model.likelihood} reconstruction in nats"


def best_value_label(model: ModelConfig) -> str:
    """``best validation …`` naming exactly the number ``Run.best_val`` holds for this model."""
    model_class = VARIANTS[model.variant].model_class
    where = "per image, on the validation split"
    if issubclass(model_class, IWAE):
        k = getattr(model.params, "k", None)
        return f"best validation −IWAE bound (k = {k}, nats {where})"
    if model_class.selection_value is VAE.selection_value:
        if model.likelihood in NORMALISED_LIKELIHOODS:
            beta = getattr(model.params, "beta", None)
            note = "" if beta in (None, 1.0) else f"; not the β = {beta:g} training total"
            return f"best validation −ELBO (reconstruction + KL, nats {where}{note})"
        return f"best validation reconstruction + β·KL (squared error summed over pixels + KL, {where}; not nats)"
    return f"{BEST_VALUE_NAME} ({VARIANTS[model.variant].formula}, {_reconstruction_words(model)}, {where})"
