"""What a person should be told about a model's latent space, in words: posterior collapse (the
decoder ignores z), dimensions that carry nothing, and codes far from the prior they were pressed
towards (AAE, WAE).

Thresholds:
* a dimension is *active* when the variance of its posterior mean over the images exceeds 0.01
  (Burda et al. 2016, the criterion ``engine.metrics`` reports);
* a run has *collapsed* when its KL(q(z|x) ‖ p(z)), summed over dimensions, is under
  ``COLLAPSE_KL_NATS`` nats per image, or no dimension is active.  Healthy 2-D VAEs on digits
  sit at 2.9–3.2 nats (``benchmarks/bench_presets.py``); the collapsed ones the issue saw at 0.06
  and 0.001;
* codes are *far from the prior* when their MMD² to prior samples (IMQ kernel) is over
  ``PRIOR_MISMATCH_MMD``: a plain AE's raw codes on MNIST measure 0.38, matched AAEs 0.01–0.02;
* while a run trains, collapse is named only after ``COLLAPSE_PATIENCE_EPOCHS`` validation epochs
  of low KL (a finished run's last epoch speaks for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import RunError

ACTIVE_UNIT_THRESHOLD = 0.01
COLLAPSE_KL_NATS = 0.1
PRIOR_MISMATCH_MMD = 0.1
#: while a run trains, its validation KL must have stayed under COLLAPSE_KL_NATS for this many
#: epochs before collapse is named: a VAE's KL often starts near 0 and rises (the default digits
#: run measured 0.022 and 0.019 nats after its first two epochs, 0.51 after its third, 3.0 at the
#: end), and the window called that first run collapsed
COLLAPSE_PATIENCE_EPOCHS = 3

COLLAPSE_HELP = ("What commonly helps: a KL warm-up (raise the KL weight from 0 over the first epochs), "
                 "β < 1, free bits (no KL penalty under a floor per dimension), a weaker decoder "
                 "(fewer or narrower hidden layers), more training steps.")
PRIOR_HELP = ("What commonly helps: a larger weight on the prior-matching term (λ), more discriminator "
              "steps, or a smaller learning rate for the encoder.")


@dataclass(frozen=True)
class Diagnosis:
    """One finding: a short sentence for the status area, and what helps (a tooltip)."""

    kind: str        # "collapse", "inactive_dims", "prior_mismatch"
    message: str
    help: str


def active_units(codes: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """How many dimensions of the posterior means ``codes`` (N×D) vary by more than ``threshold``."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        return 0
    return int((codes.var(axis=0) > threshold).sum())


def collapse(kl_nats: float | None, active: int | None, latent_dim: int) -> Diagnosis | None:
    """Posterior collapse, or part of it, from the KL per image (nats, summed over dimensions) and
    the active units; None when the model uses its latent space (or nothing is known)."""
    if kl_nats is not None and math.isfinite(kl_nats) and kl_nats < COLLAPSE_KL_NATS:
        return Diagnosis("collapse", f"posterior collapse: the decoder ignores z (KL {kl_nats:.2g} nats per image)",
                         COLLAPSE_HELP)
    if active is not None and active == 0:
        return Diagnosis("collapse", "posterior collapse: the decoder ignores z (no active unit)", COLLAPSE_HELP)
    if active is not None and 0 < active < latent_dim:
        unused = latent_dim - active
        return Diagnosis("inactive_dims", f"{unused} of {latent_dim} latent dimensions carry nothing "
                         f"({active} active)", COLLAPSE_HELP)
    return None


def prior_mismatch(mmd: float | None) -> Diagnosis | None:
    """Codes far from the prior they were pressed towards (AAE, WAE), by their MMD² to prior samples."""
    if mmd is None or not math.isfinite(mmd) or mmd <= PRIOR_MISMATCH_MMD:
        return None
    return Diagnosis("prior_mismatch", f"the codes are far from the prior (MMD² {mmd:.3f}, above "
                     f"{PRIOR_MISMATCH_MMD})", PRIOR_HELP)


def from_metrics(metrics: dict) -> list[Diagnosis]:
    """The findings a metrics.json (``engine.metrics.evaluate_model``) supports."""
    found = []
    latent = metrics.get("latent_dim") or 0
    c = collapse(metrics.get("kl"), metrics.get("active_units"), int(latent)) if latent else None
    if c is not None:
        found.append(c)
    m = prior_mismatch(metrics.get("prior_mmd"))
    if m is not None:
        found.append(m)
    return found


def _finite_kls(val: dict[str, list[float]]) -> list[float]:
    return [v for v in val.get("kl") or [] if v is not None and math.isfinite(v)]


def too_early(val: dict[str, list[float]]) -> bool:
    """Whether a training run has had too few validation epochs to call a low KL collapse."""
    return len(_finite_kls(val)) < COLLAPSE_PATIENCE_EPOCHS


def from_history(val: dict[str, list[float]], latent_dim: int, training: bool = False) -> Diagnosis | None:
    """Collapse from the latest validation KL of a history (``History.val``).  While the run trains
    (``training``), only once the KL has stayed low for ``COLLAPSE_PATIENCE_EPOCHS`` epochs."""
    finite = _finite_kls(val)
    if not finite:
        return None
    if training and (too_early(val) or any(v >= COLLAPSE_KL_NATS for v in finite[-COLLAPSE_PATIENCE_EPOCHS:])):
        return None
    return collapse(finite[-1], None, latent_dim)


def from_run(run) -> list[Diagnosis]:
    """A saved run's findings: from its metrics.json when it has a readable one (KL, active
    units, the prior's MMD²), else from the latest validation KL of its history."""
    try:
        metrics = run.load_metrics()
    except RunError:
        metrics = None
    if metrics is not None:
        return from_metrics(metrics)
    found = from_history(run.history.val, run.model.latent_dim)
    return [found] if found is not None else []
