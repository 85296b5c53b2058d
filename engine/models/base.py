"""The shared model API and the small pieces every variant uses.

Every variant is an ``AutoencoderModel``: ``encode(x[, y]) -> z``,
``decode(z[, y]) -> images in [0, 1]``, ``loss(x[, y]) -> LossOutput``,
``sample(n[, y])``, ``latent_dim`` and ``is_conditional``.  A model also owns its training:
``configure_optimizers(lr)`` names its optimizers and ``training_step(x, y, optimizers)`` takes
one step with them and returns its terms (minGPT / Lightning), so the trainer is one short loop
for every variant, an adversarial AE's three phases included.  What another thread needs to
encode and decode is a copy of ``model.state_dict()`` (each tensor once: tied weights too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.nets import Decoder, Encoder, resolve_body


def param(default, label: str, *, help: str = "", minimum=None, maximum=None, choices=None, step=None,
          labels: dict | None = None, when: dict | None = None):
    """A variant parameter: a dataclass field whose metadata lets a UI build its editor.

    ``labels`` maps each choice to the words a person reads (the key is what is stored);
    ``when`` names the other fields' values under which this one applies, e.g.
    ``{"penalty": ("kl",)}`` (a UI hides it otherwise; the value is still stored).
    The editor's kind follows the default's type: ``int`` gets an integer editor and flag.
    """
    meta = {"label": label, "help": help, "min": minimum, "max": maximum, "choices": choices, "step": step,
            "labels": labels or {}, "when": when or {}}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class NoParams:
    """Variants with no parameters of their own."""


def check_params(params) -> None:
    """Raise ValueError with one sentence when a parameter is outside its range or choices."""
    for f in fields(params):
        value = getattr(params, f.name)
        meta = f.metadata
        label = meta.get("label", f.name)
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{label} must be one of {', '.join(map(str, meta['choices']))}, not {value!r}.")
        if meta.get("min") is not None and value < meta["min"]:
            raise ValueError(f"{label} must be at least {meta['min']}, not {value}.")
        if meta.get("max") is not None and value > meta["max"]:
            raise ValueError(f"{label} must be at most {meta['max']}, not {value}.")


@dataclass
class Densities:
    """Per-sample log-densities of ``k`` posterior samples for each of N images (all k×N, in nats):
    ``z`` (k×N×D) drawn from q(z|x), ``log_q`` = log q(z|x), ``log_px_z`` = log p(x|z),
    ``log_pz`` = log p(z).  The IWAE bound and the importance-sampled NLL both read these."""

    z: torch.Tensor
    log_q: torch.Tensor
    log_px_z: torch.Tensor
    log_pz: torch.Tensor

    @property
    def log_w(self) -> torch.Tensor:
        """log importance weights log p(x, z) − log q(z|x), k×N."""
        return self.log_px_z + self.log_pz - self.log_q


LOG_2PI = 1.8378770664093453


def standard_normal_log_pdf(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)


def diagonal_normal_log_pdf(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(dim=-1)


@dataclass
class LossOutput:
    """One batch's objective: the total to minimise and the named terms (per image; in nats for
    normalised log-densities, see ``LIKELIHOODS``), plus the codes and reconstructions."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    z: torch.Tensor
    recon: torch.Tensor


#: The reconstruction terms.  ``bernoulli``: −log p(x|z) of independent Bernoulli pixels (BCE
#: with logits), in nats per image; on grey-level pixels it is pytorch/examples' convention and
#: not a normalised likelihood (use dynamic binarisation, ``TrainConfig.binarize``, for NLLs that
#: compare with the literature).  ``gaussian_fixed``: −log N(x; sigmoid(logits), σ²I) with
#: σ = ``GAUSSIAN_SIGMA``, in nats per image (a density of continuous pixels).
#: ``gaussian_learned``: the same with one σ learned with the model (σ-VAE, Rybkin et al. 2021).
#: ``squared_error``: ‖x − sigmoid(logits)‖² summed over pixels: not a log-density, not nats.
LIKELIHOODS = ("bernoulli", "gaussian_fixed", "gaussian_learned", "squared_error")
NORMALISED_LIKELIHOODS = ("bernoulli", "gaussian_fixed", "gaussian_learned")
#: names written by earlier versions -> today's name (run folders keep opening)
LEGACY_LIKELIHOODS = {"gaussian": "squared_error"}
GAUSSIAN_SIGMA = 0.1
MIN_LOG_SIGMA = math.log(1e-3)


def log_likelihood(logits: torch.Tensor, x: torch.Tensor, likelihood: str,
                   log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image log p(x|z) in nats, summed over pixels (shape N).  Only normalised densities
    belong here; ``squared_error`` (or the linear AE's ``identity``) raises ValueError."""
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)
    if likelihood in ("gaussian_fixed", "gaussian_learned"):
        if log_sigma is None:
            log_sigma = torch.tensor(math.log(GAUSSIAN_SIGMA), device=x.device, dtype=x.dtype)
        log_sigma = log_sigma.clamp(min=MIN_LOG_SIGMA)
        sq = (x - torch.sigmoid(logits)).pow(2).flatten(1)
        return -0.5 * (sq * torch.exp(-2 * log_sigma) + 2 * log_sigma + LOG_2PI).sum(dim=1)
    raise ValueError(f"The {likelihood!r} reconstruction term is not a normalised log-density.")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, likelihood: str,
                        log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image reconstruction term, summed over pixels, averaged over the batch: −log p(x|z)
    in nats for the normalised likelihoods; the squared error of the sigmoid mean
    (``squared_error``) or of the raw output (``identity``, the linear AE: PCA's subspace)."""
    n = x.shape[0]
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    if likelihood in NORMALISED_LIKELIHOODS:
        return -log_likelihood(logits, x, likelihood, log_sigma).mean()
    if likelihood == "squared_error":
        return F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / n
    return F.mse_loss(logits, x, reduction="sum") / n


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, diag(exp(logvar))) ‖ N(0, I)) per sample (summed over dims)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class NonFiniteStep(Exception):
    """A loss or gradient became NaN or infinite; the optimizer step was not taken."""

    def __init__(self, what: str, step: int | None = None):
        super().__init__(what)
        self.what = what   # "loss" or "gradient"
        self.step = step   # the step it happened at, where known (a replayed CUDA graph's step)


def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer step on ``loss`` over the optimizer's parameters, taken only when the loss
    and every gradient element are finite (otherwise NonFiniteStep, the weights untouched).

    The check is one number read once: the loss plus the 2-norm of each gradient (one fused
    ``_foreach_norm`` pass; a NaN or ±inf anywhere makes its norm, and so the sum, non-finite).
    It can only err on the safe side: a sum of finite norms that overflows float32 stops the run
    too, as the global gradient norm computed before would have."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for p in params:   # zero_grad(set_to_none=True) without its profiler record and per-call set-up
        p.grad = None
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    check = loss.detach()
    if grads:
        check = check + gradient_norm_sum(grads).to(check.dtype)
    if not math.isfinite(check.item()):
        raise NonFiniteStep("loss" if not bool(torch.isfinite(loss.detach()).all()) else "gradient")
    optimizer.step()


def gradient_norm_sum(grads: list[torch.Tensor]) -> torch.Tensor:
    """Σ_i ‖g_i‖₂ over the gradients: finite exactly when every element is (short of overflow)."""
    first = grads[0]
    if all(g.device == first.device and g.dtype == first.dtype and not g.is_sparse for g in grads):
        return torch.stack(torch._foreach_norm(grads)).sum()
    return torch.stack([torch.linalg.vector_norm(g.coalesce().values() if g.is_sparse else g).double().cpu()
                        for g in grads]).sum()


#: devices with torch's fused Adam kernel (one kernel for all parameters: about 3x faster than the
#: per-tensor loop on the CPU for the 784-400-20 VAE, and the fastest on CUDA)
FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(params, lr: float, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam`` (the same update), fused where torch has the kernel for the parameters'
    device and dtype; a resumed run keeps the implementation its saved optimizer state names."""
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_ADAM_DEVICES and p.dtype in (torch.float32, torch.float64)
                                 and p.device == params[0].device for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None, **kwargs)


class AutoencoderModel(nn.Module):
    """Base of every variant: an encoder body, a decoder body, and an objective."""

    probabilistic: bool = False
    is_conditional: bool = False
    #: the objective differentiates through the encoder (contractive): keep autograd on in validation
    loss_needs_grad: bool = False
    #: the registry key it was built for (set by ``engine.models.build_model``)
    variant_key: str = ""
    #: ``identity`` output (linear AE) or sigmoid output for everything else
    output: str = "sigmoid"
    #: the body ``auto`` means for this variant (None: conv where it fits, else mlp)
    default_body: str | None = None
    #: the decoder is the encoder's transpose (tied weights)
    tied: bool = False
    #: greedy layer-wise pretraining of the MLP body applies (deterministic, unconditional)
    pretrainable: bool = False

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, latent_dim: int,
                 body: str, hidden: tuple[int, ...], likelihood: str, params):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.n_classes = n_classes
        self.latent_dim = latent_dim
        self.likelihood = likelihood if self.output == "sigmoid" else "identity"
        self.params = params
        self.progress = 0.0  # training progress in epochs; set by the trainer (for warm-ups)
        self.pretrain_epochs = 0  # epochs of layer-wise pretraining per layer pair (set by the trainer)
        body = self.default_body if body == "auto" and self.default_body else resolve_body(body, image_shape)
        cond = n_classes if self.is_conditional else 0
        enc_out = 2 * latent_dim if self.probabilistic else latent_dim
        linear = self.output == "identity"
        self.encoder = Encoder(image_shape, body, hidden, enc_out, cond_dim=cond, linear=linear)
        if self.tied:
            from engine.models.nets import TiedDecoder
            self.decoder = TiedDecoder(self.encoder, image_shape, linear=linear)
        else:
            self.decoder = Decoder(image_shape, body, hidden, latent_dim + cond, linear=linear)
        if self.likelihood == "gaussian_learned":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(GAUSSIAN_SIGMA)))
        # A Gaussian fitted to the training codes, for sampling from deterministic models.
        self.register_buffer("code_mean", torch.zeros(latent_dim))
        self.register_buffer("code_chol", torch.eye(latent_dim))

    # -- conditioning -------------------------------------------------------------------
    def one_hot(self, y: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
        if not self.is_conditional:
            return None
        if y is None:
            raise ValueError("This model is conditional: give a label to decode or encode.")
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        return F.one_hot(y, self.n_classes).float()

    # -- the API ------------------------------------------------------------------------
    def encoder_output(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(x, self.one_hot(y, x.shape[0], x.device))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code of each image (the posterior mean for probabilistic encoders)."""
        h = self.encoder_output(x, y)
        return h[:, : self.latent_dim] if self.probabilistic else self.code(h)

    def code(self, h: torch.Tensor) -> torch.Tensor:
        """Deterministic encoders: the encoder output as the code (sparse-KL applies a sigmoid)."""
        return h

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.one_hot(y, z.shape[0], z.device)
        return self.decoder(z if c is None else torch.cat([z, c], dim=1))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1], N×C×H×W."""
        out = self.decode_logits(z, y)
        return out.clamp(0, 1) if self.output == "identity" else torch.sigmoid(out)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, y), y)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> LossOutput:
        raise NotImplementedError

    def prior_sample(self, n: int, device, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Codes to sample from: N(0, I) for probabilistic models, a Gaussian fitted to the
        training codes for deterministic ones; variants with a chosen prior override it."""
        if self.probabilistic:
            return torch.randn(n, self.latent_dim, device=device)
        eps = torch.randn(n, self.latent_dim, device=device)
        return self.code_mean + eps @ self.code_chol.T

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images decoded from the model's prior (``VariantSpec.prior`` says which)."""
        device = self.code_mean.device
        return self.decode(self.prior_sample(n, device), y)

    @torch.no_grad()
    def fit_code_distribution(self, codes: torch.Tensor) -> None:
        """Fit the sampling Gaussian of a deterministic model to training codes."""
        codes = codes.double()
        mean = codes.mean(0)
        cov = torch.atleast_2d(torch.cov(codes.T)) if codes.shape[0] > 1 else torch.eye(codes.shape[1])
        cov = cov + 1e-6 * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        chol = torch.linalg.cholesky(cov)
        self.code_mean.copy_(mean.float())
        self.code_chol.copy_(chol.float())

    def reconstruction(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The batch's mean reconstruction term under this model's likelihood."""
        return reconstruction_loss(logits, x, self.likelihood, getattr(self, "log_sigma", None))

    def log_px(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image log p(x|z) in nats (normalised likelihoods only)."""
        return log_likelihood(logits, x, self.likelihood, getattr(self, "log_sigma", None))

    def ae_output(self, x: torch.Tensor, y, z: torch.Tensor, target: torch.Tensor | None = None):
        """Decode ``z`` and score it against ``target`` (default ``x``): (reconstruction term, recon)."""
        logits = self.decode_logits(z, y)
        rec = self.reconstruction(logits, x if target is None else target)
        recon = logits.clamp(0, 1) if self.output == "identity" else torch.sigmoid(logits)
        return rec, recon

    # -- training (minGPT's configure_optimizers, Lightning's training_step) ------------------
    @property
    def phase(self) -> str:
        """What the next training step does: ``train`` (end to end) or ``pretrain_<i>`` (layer
        pair i of the greedy layer-wise pretraining, for ``pretrain_epochs`` epochs each)."""
        if self.pretrain_epochs > 0:
            pair = int(self.progress // self.pretrain_epochs)
            if pair < len(self.encoder.layers()):
                return f"pretrain_{pair + 1}"
        return "train"

    def pretraining_epochs_total(self) -> int:
        """Epochs of layer-wise pretraining before the end-to-end training (one block per layer pair)."""
        return self.pretrain_epochs * len(self.encoder.layers()) if self.pretrain_epochs > 0 else 0

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        """The model's named optimizers: one Adam over every parameter (``model``), and one per
        layer pair when layer-wise pretraining is on (``pretrain_<i>``)."""
        optimizers = {"model": adam(self.parameters(), lr=lr)}
        if self.pretrain_epochs > 0:
            from engine.models.pretraining import layer_pairs
            for i, pair in enumerate(layer_pairs(self), 1):
                optimizers[f"pretrain_{i}"] = adam(pair.parameters, lr=lr)
        return optimizers

    def training_step(self, x: torch.Tensor, y: torch.Tensor | None,
                      optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, torch.Tensor]:
        """One step: the terms it minimised (detached, "total" first).  The default takes one
        Adam step on ``loss``; NonFiniteStep (weights untouched) when the loss or gradient is not finite."""
        phase = self.phase
        if phase != "train":
            from engine.models.pretraining import pretraining_step
            return pretraining_step(self, int(phase.split("_")[1]), x, optimizers[phase])
        out = self.loss(x, y)   # unconditional models ignore y
        optimize(optimizers["model"], out.total)
        return {"total": out.total.detach(), **{k: v.detach() for k, v in out.terms.items()}}

    def graph_key(self) -> tuple:
        """Every value from Python that ``loss`` reads and that can change while a run trains:
        a CUDA graph of the training step (engine/cuda_graphs.py) bakes them in, so it is replayed
        only while this is unchanged.  A variant whose loss reads more (the VAE's KL weight) adds it."""
        return (self.phase, self.params, self.training, self.likelihood)

    def selection_value(self, val: dict[str, float]) -> float:
        """The number that picks the best checkpoint: an objective that does not change during
        training (the validation total, unless a variant says otherwise)."""
        return val["total"]
