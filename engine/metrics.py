"""What a trained model is worth, measured on held-out images and written to ``metrics.json``.

```python
metrics = evaluate_run(Run.open("runs/my-vae"), nll_samples=1000)   # computes, writes metrics.json
metrics["nll"], metrics["units"]["nll"]
```

* ``nll`` — the importance-sampled negative log-likelihood (Burda et al. 2016, eq. 8)
  −log (1/K) Σ_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x), computed with logsumexp from the
  model's per-sample densities (``model.log_densities``, the code path the IWAE bound uses), for
  every variant whose registry spec ``has_density``; ``None`` otherwise.  K samples are drawn in
  chunks, a few images at a time, so memory stays bounded whatever K is.
* ``elbo`` / ``neg_elbo`` — the ELBO E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) on the same images (the
  expectation over the same K samples, the KL in closed form); ``nll ≤ neg_elbo`` up to noise.
* ``kl`` and ``kl_per_dim`` — the closed-form KL per latent dimension, averaged over images.
* ``reconstruction`` — BCE and squared error of the reconstruction decoded from the code (the
  posterior mean for probabilistic encoders), each summed over pixels, averaged over images.
* ``active_units`` — Burda et al.'s count: unit u is active when Cov_x(E_q[z_u]) > 0.01 (the
  variance over images of the posterior mean; of the code for deterministic encoders).
* ``prior_mmd`` — for variants that press their codes towards a chosen prior without a density
  (AAE, WAE): the unbiased MMD² (IMQ kernel, C = 2·D, ``engine.models.wae.mmd_imq``) between up
  to ``PRIOR_MMD_CODES`` evaluated codes and as many samples of the model's prior (seeded; a
  label-informed prior gets the images' labels); ``None`` for other variants.
* ``knn_accuracy`` — 5-nearest-neighbour accuracy (scikit-learn's ``KNeighborsClassifier``)
  fitted on the training codes and scored on the held-out codes, where the data has labels.
* ``parameters``, ``training_seconds``, ``training_samples_per_sec`` — from the model and history.
* ``step``, ``epochs``, ``checkpoint`` — where the run was when they were measured; ``staleness(run,
  metrics)`` says in one sentence when the run has moved on since (None while they are current).

Every value's unit and the images it was measured on are in ``metrics["units"]`` and
``metrics["images"]``.  A binarised run is evaluated on the binarisation its validation passes
use (``engine.batches.binarized_validation`` with the run's training seed: the same images the
trainer's validation terms were measured on); its training images, for the k-NN, on one fixed
binarisation (seed ``BINARIZE_SEED + 1``).  ``progress(stage, done, total)`` reports as it goes and ``stop`` (a
``threading.Event`` or a callable) is checked between chunks: a stopped evaluation raises
``EvaluationStopped`` and writes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.batches import binarized_validation, float_batch
from engine.datasets import TORCHVISION_SOURCES, ImageSet, load_dataset
from engine.errors import UserError
from engine.history import METRICS_FORMAT, METRICS_VERSION
from engine.models import VARIANTS, AutoencoderModel, variant

DEFAULT_NLL_SAMPLES = 1000
ACTIVE_UNIT_THRESHOLD = 0.01
KNN_NEIGHBOURS = 5
#: the seed of ``binarized``'s fixed binarisation (the k-NN's training images use BINARIZE_SEED + 1;
#: a run's validation images are binarised as its trainer validates, ``binarized_validation``)
BINARIZE_SEED = 0
#: the seed of the posterior samples of the NLL (the caller's random state is left as it was)
NLL_SEED = 0
#: decoded pixels per forward pass of the NLL: images per batch × samples per chunk × pixels per image
#: stay below it, so a pass's pixel-sized float32 tensors are ~64 MB whatever K and the image size
#: are: well over glibc's largest mmap threshold (32 MB), so each is mapped and handed back to the
#: system when freed.  Blocks of ~31 MB (2**23 pixels), just under that threshold, came from the
#: heap and fragmented it (12 GB RSS at K = 1000 on MNIST); blocks well under 1 MB (2**17) also
#: stay small but made 14× more passes, each a few ms of thread wake-ups on a busy machine.
PIXEL_BUDGET = 2**24
#: scikit-learn's working memory for the k-NN's distance chunks, MB (its default, 1,024, made
#: evaluate's peak on 10,000 MNIST test images against 60,000 training codes 2.1 GB)
KNN_WORKING_MB = 64
ENCODE_BATCH = 1024
#: codes (and prior samples) behind prior_mmd, and the seed that picks them and draws the prior
PRIOR_MMD_CODES = 1000
PRIOR_MMD_SEED = 0

Progress = Callable[[str, int, int], None]


class EvaluationStopped(UserError):
    """The evaluation was stopped by its stop flag; nothing was written."""


def _stopped(stop) -> bool:
    if stop is None:
        return False
    return stop.is_set() if hasattr(stop, "is_set") else bool(stop())


def _check_stop(stop) -> None:
    if _stopped(stop):
        raise EvaluationStopped("The evaluation was stopped; no metrics were written.")


# -- images ------------------------------------------------------------------------------------
def run_binarizes(run) -> bool:
    """Whether a run trains on binarised images (a ``binarize`` setting in any of its configs)."""
    return any(bool(getattr(cfg, "binarize", False)) for cfg in (run.data, run.train, run.model))


def binarized(images_u8: torch.Tensor, seed: int = BINARIZE_SEED) -> torch.Tensor:
    """One fixed binarisation of uint8 images: each pixel 255 with probability pixel/255, else 0,
    drawn from a generator seeded with ``seed`` (in fixed blocks, so the result never depends on
    how the images are batched later)."""
    generator = torch.Generator().manual_seed(seed)
    out = torch.empty_like(images_u8)
    for s in range(0, images_u8.shape[0], 4096):
        out[s:s + 4096] = float_batch(images_u8[s:s + 4096], True, generator).mul_(255).to(torch.uint8)
    return out


def _batches(images_u8: torch.Tensor, labels: torch.Tensor | None, batch: int, device):
    """Float batches in [0, 1] (and their labels) on ``device``."""
    for s in range(0, images_u8.shape[0], batch):
        x = float_batch(images_u8[s:s + batch].to(device))
        y = labels[s:s + batch].to(device) if labels is not None else None
        yield x, y


def _is_binary(images_u8: torch.Tensor) -> bool:
    return bool(((images_u8 == 0) | (images_u8 == 255)).all())


# -- the importance-sampled likelihood ------------------------------------------------------------
@torch.no_grad()
def _importance_pass(model, x, y, k: int, chunk: int, stop, on_chunk) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x) estimate, mean over the samples of log p(x|z)) per image, float64, from ``k``
    posterior samples drawn ``chunk`` at a time and combined with a running logsumexp."""
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)   # log Σ w, so far
    log_px_z_sum = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    drawn = 0
    while drawn < k:
        _check_stop(stop)
        c = min(chunk, k - drawn)
        d = model.log_densities(x, y, c)
        torch.logaddexp(total, torch.logsumexp(d.log_w.double(), dim=0), out=total)
        log_px_z_sum += d.log_px_z.double().sum(dim=0)
        del d   # this chunk's blocks go back before the next chunk asks for the same sizes
        drawn += c
        if on_chunk is not None:
            on_chunk(c * x.shape[0])
    return total - math.log(k), log_px_z_sum / k


def importance_sampled_log_likelihood(model, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 1000, *,
                                      chunk: int | None = None, stop=None) -> torch.Tensor:
    """log p(x) ≈ log (1/K) Σ_i p(x|z_i) p(z_i) / q(z_i|x) for each image of a batch (float64, N).

    Any model with ``log_densities(x, y, k)`` (see ``engine.models.base.Densities``); the K
    samples are drawn ``chunk`` at a time (default: all at once)."""
    if k < 1:
        raise ValueError("The number of importance samples must be at least 1.")
    return _importance_pass(model, x, y, k, min(k, chunk or k), stop, None)[0]


def prior_mmd(model: AutoencoderModel, codes: torch.Tensor, labels: torch.Tensor | None,
              count: int = PRIOR_MMD_CODES, seed: int = PRIOR_MMD_SEED) -> float:
    """MMD² (IMQ kernel, C = 2·D) between up to ``count`` of ``codes`` (a seeded choice) and as
    many samples of the model's own prior (``prior_sample``, with the chosen codes' labels)."""
    from engine.models.wae import mmd_imq
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(codes), generator=generator)[:count]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = model.prior_sample(len(chosen), torch.device("cpu"), labels[chosen] if labels is not None else None)
    return float(mmd_imq(codes[chosen].double(), prior.cpu().double()))


def presses_to_prior(model: AutoencoderModel) -> bool:
    """Whether the model pushes its codes towards a prior it has no density for (AAE, WAE)."""
    spec = VARIANTS.get(getattr(model, "variant_key", ""))
    return spec is not None and not spec.has_density and spec.prior != "fitted"


# -- one model on one image set ---------------------------------------------------------------
def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _likelihood_note(likelihood: str, binary: bool) -> str:
    if likelihood == "bernoulli" and not binary:
        return ("Bernoulli likelihood on grey-level pixels: not a normalised density of these images "
                "(a perfect reconstruction does not score 0), so not comparable with NLLs on binarised data")
    if likelihood == "bernoulli":
        return "Bernoulli likelihood on binary pixels: a normalised probability, in nats"
    return f"the {likelihood} likelihood's density of pixel values in [0, 1], in nats"


@torch.no_grad()
def evaluate_model(model: AutoencoderModel, test: ImageSet, train: ImageSet | None = None, *, has_density: bool,
                   nll_samples: int = DEFAULT_NLL_SAMPLES, binarize: bool = False, seed: int = 0, device="cpu",
                   images_description: str = "the given images", progress: Progress | None = None,
                   stop=None) -> dict:
    """Every metric of ``model`` on ``test`` (k-NN fitted on ``train``'s codes when given and labelled).

    With ``binarize``, ``test`` is binarised as a run with training seed ``seed`` binarises its
    validation split (``binarized_validation``)."""
    if nll_samples < 1:
        raise UserError(f"The number of importance samples must be at least 1, not {nll_samples}.")
    if len(test) == 0:
        raise UserError("There are no images to evaluate on.")
    device = torch.device(device)
    model = model.to(device).eval()
    report = progress or (lambda stage, done, total: None)
    conditional = model.is_conditional
    test_labels = test.labels if conditional else None
    test_images = binarized_validation(test.images, seed) if binarize else test.images
    binary = _is_binary(test_images)
    n = len(test)
    d = model.latent_dim
    started = time.perf_counter()
    notes: list[str] = []

    # codes (posterior means), reconstructions, closed-form KL per dimension
    codes, bce, sq = [], 0.0, 0.0
    kl_sum = torch.zeros(d, dtype=torch.float64)
    done = 0
    report("codes", 0, n)
    for x, y in _batches(test_images, test_labels, ENCODE_BATCH, device):
        _check_stop(stop)
        if has_density:
            mu, logvar = model.posterior(x, y)
            kl_sum += (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).double().sum(0).cpu()
            z = mu
        else:
            z = model.encode(x, y)
        codes.append(z.float().cpu())
        if model.output == "sigmoid":
            logits = model.decode_logits(z, y)
            bce += float(F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))
            recon = torch.sigmoid(logits)
        else:
            recon = model.decode(z, y)
            bce += float(F.binary_cross_entropy(recon, x, reduction="sum"))
        sq += float((recon - x).pow(2).sum())
        done += x.shape[0]
        report("codes", done, n)
    codes_np = torch.cat(codes).numpy()
    mmd = None
    if presses_to_prior(model):
        mmd = prior_mmd(model, torch.from_numpy(codes_np), test.labels)

    # the importance-sampled NLL and the ELBO from the same posterior samples
    nll = nll_se = elbo = None
    if has_density:
        budget = max(1, PIXEL_BUDGET // math.prod(test.shape))  # decoded samples per forward pass
        chunk = min(nll_samples, budget)
        per_batch = max(1, budget // chunk)
        log_px, mean_log_px_z = [], []
        done = 0
        total = n * nll_samples
        report("nll", 0, total)

        def counted(k):
            nonlocal done
            done += k
            report("nll", done, total)

        devices = [device] if device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(NLL_SEED)
                for x, y in _batches(test_images, test_labels, per_batch, device):
                    a, b = _importance_pass(model, x, y, nll_samples, chunk, stop, counted)
                    log_px.append(a.cpu())
                    mean_log_px_z.append(b.cpu())
        except ValueError as exc:  # a reconstruction term that is not a normalised density
            notes.append(f"No NLL or ELBO: {exc}")
        else:
            per_image = -torch.cat(log_px)
            nll = float(per_image.mean())
            nll_se = float(per_image.std() / math.sqrt(n)) if n > 1 else 0.0
            elbo = float(torch.cat(mean_log_px_z).mean()) - float(kl_sum.sum() / n)
            notes.append(_likelihood_note(model.likelihood, binary))
    else:
        notes.append("No NLL: this variant has no encoder distribution and prior density.")

    # active units
    variances = codes_np.astype(np.float64).var(axis=0, ddof=1) if n > 1 else np.zeros(d)
    active = int((variances > ACTIVE_UNIT_THRESHOLD).sum())
    if not model.probabilistic:
        notes.append("Active units of a deterministic code: the variance of the code itself, whose scale the "
                     "objective may not fix, against the same 0.01 threshold.")

    # k-NN accuracy of the codes
    knn = None
    knn_info: dict = {"k": KNN_NEIGHBOURS, "fit_on": "codes of the run's training images",
                      "scored_on": "codes of the evaluated images"}
    labelled = (train is not None and train.n_classes > 1 and len(train) >= KNN_NEIGHBOURS
                and len(torch.unique(train.labels)) > 1)
    if labelled:
        report("training codes", 0, len(train))
        train_codes, done = [], 0
        train_labels = train.labels if conditional else None
        train_images = binarized(train.images, BINARIZE_SEED + 1) if binarize else train.images
        for x, y in _batches(train_images, train_labels, ENCODE_BATCH, device):
            _check_stop(stop)
            train_codes.append(model.encode(x, y).float().cpu())
            done += x.shape[0]
            report("training codes", done, len(train))
        from sklearn.neighbors import KNeighborsClassifier
        _check_stop(stop)
        report("k-NN", 0, 1)
        classifier = KNeighborsClassifier(n_neighbors=KNN_NEIGHBOURS)
        classifier.fit(torch.cat(train_codes).numpy(), train.labels.numpy())
        import sklearn
        with sklearn.config_context(working_memory=KNN_WORKING_MB):   # its default, 1 GB of distance chunks
            knn = float(classifier.score(codes_np, test.labels.numpy()))
        report("k-NN", 1, 1)
        knn_info.update(n_train=len(train), n_test=n)
        if conditional:
            knn_info["note"] = "the conditional encoder saw each image's label"
    else:
        knn_info["note"] = "no k-NN accuracy: no labelled training images"

    parameters = sum(p.numel() for p in model.parameters())
    binarization = (f"binarised once, as the trainer binarises its validation split (training seed {seed})"
                    if binarize else None)
    on = f"on {n} images: {images_description}" + (f", {binarization}" if binarize else "")
    density_unit = "nats per image" if binary or model.likelihood != "bernoulli" else \
        "per image, −log of a Bernoulli likelihood of grey-level pixels (not a normalised density)"
    units = {
        "nll": f"{density_unit}: −log p(x), importance-sampled with K = {nll_samples} posterior samples, {on}",
        "nll_std_error": "standard error of the mean NLL over the images (same unit as nll)",
        "elbo": f"{density_unit}: E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)), a lower bound of log p(x), "
                f"the expectation over the NLL's samples, KL in closed form, {on}",
        "neg_elbo": "−elbo (an upper bound of nll, same unit)",
        "kl": f"nats per image: closed-form KL(q(z|x) ‖ N(0, I)) summed over dimensions, {on}",
        "kl_per_dim": "nats per image: closed-form KL of each latent dimension, averaged over the images",
        "reconstruction.bce": f"binary cross-entropy summed over pixels, per image, of the reconstruction "
                              f"decoded from the {'posterior mean' if model.probabilistic else 'code'}, {on}",
        "reconstruction.squared_error": "squared error summed over pixels (pixel values in [0, 1]), per image, "
                                        "of the same reconstruction",
        "active_units": f"latent units whose code variance over the images exceeds {ACTIVE_UNIT_THRESHOLD} "
                        "(Burda et al.'s Cov_x(E_q[z_u]))",
        "code_variance": "variance over the images of each unit's posterior mean (or code)",
        "prior_mmd": f"MMD² (IMQ kernel, C = 2·D, unbiased) between {min(n, PRIOR_MMD_CODES)} codes of the "
                     f"evaluated images and as many samples of the model's prior (seed {PRIOR_MMD_SEED}), {on}",
        "knn_accuracy": f"fraction of the evaluated images whose {KNN_NEIGHBOURS} nearest training codes "
                        "vote their label (scikit-learn KNeighborsClassifier)",
        "parameters": "trainable and fixed parameters of the model (a shared tensor counted once)",
    }
    return {
        "nll": _finite(nll),
        "nll_std_error": _finite(nll_se),
        "nll_samples": nll_samples if has_density else None,
        "elbo": _finite(elbo),
        "neg_elbo": _finite(-elbo) if elbo is not None else None,
        "kl": _finite(kl_sum.sum() / n) if has_density else None,
        "kl_per_dim": [_finite(v) for v in (kl_sum / n).tolist()] if has_density else None,
        "reconstruction": {"bce": _finite(bce / n), "squared_error": _finite(sq / n)},
        "active_units": active,
        "latent_dim": d,
        "code_variance": [_finite(v) for v in variances.tolist()],
        "prior_mmd": _finite(mmd),
        "knn_accuracy": knn,
        "knn": knn_info,
        "parameters": int(parameters),
        "images": {"n": n, "description": images_description, "binarized": bool(binarize),
                   "binarize_seed": seed if binarize else None, "binarization": binarization},
        "evaluation_seconds": time.perf_counter() - started,
        "notes": notes,
        "units": units,
    }


# -- a run --------------------------------------------------------------------------------------
def split_description(data_cfg) -> str:
    """Which images a run's validation split holds, in words."""
    if data_cfg.source in TORCHVISION_SOURCES:
        return f"the run's validation split ({data_cfg.source}'s official test set)"
    return f"the run's validation split (a seeded {data_cfg.val_fraction:.0%} holdout, seed {data_cfg.seed})"


def evaluate_run(run, *, which: str = "latest", nll_samples: int = DEFAULT_NLL_SAMPLES, device="cpu",
                 dataset=None, progress: Progress | None = None, stop=None, save: bool = True) -> dict:
    """Evaluate a run's latest (or best) weights on its validation split and write metrics.json.

    ``dataset``: the run's ``DatasetSplit`` when it is already loaded (else it is loaded from the
    run's data settings)."""
    spec = variant(run.model.variant)
    model = run.load_model(which, device)
    split = dataset if dataset is not None else load_dataset(run.data)
    binarize = run_binarizes(run)
    metrics = evaluate_model(model, split.val, split.train, has_density=spec.has_density, nll_samples=nll_samples,
                             binarize=binarize, seed=run.train.seed, device=device,
                             images_description=split_description(run.data),
                             progress=progress, stop=stop)
    seconds = float(sum(run.history.seconds))
    epochs = len(run.history.seconds)
    samples_per_sec = len(split.train) * epochs / seconds if seconds > 0 else None
    metrics.update({
        "format": METRICS_FORMAT, "version": METRICS_VERSION,
        "run": run.name, "variant": run.model.variant, "weights": "best" if which == "best" else "latest",
        "epochs": run.epochs_done, "step": run.step, "checkpoint": run.checkpoint,
        "computed": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "training_seconds": seconds, "training_samples_per_sec": _finite(samples_per_sec),
    })
    metrics["units"].update({
        "training_seconds": "seconds of training steps summed over the epochs (validation passes not counted)",
        "training_samples_per_sec": f"training images per second: {len(split.train)} images × {epochs} epochs "
                                    "/ training_seconds",
    })
    if save:
        run.save_metrics(metrics)
    return metrics


# -- metrics.json, checked ------------------------------------------------------------------------
def staleness(run, metrics: dict) -> str | None:
    """None when ``metrics`` were measured on the run's latest checkpoint; otherwise one sentence
    saying at which step they were measured and where the run is now (``run.step``, the latest
    checkpoint's step), e.g. "measured at step 39; the run is at step 156"."""
    step = metrics.get("step")
    now = run.step
    if not isinstance(step, int) or isinstance(step, bool):
        return f"the step they were measured at is not recorded; the run is at step {now}"
    if step == now:   # a later checkpoint at the same step (a stop or resume without a step) has the same weights
        return None
    return f"measured at step {step}; the run is at step {now}"
