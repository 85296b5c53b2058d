"""The training step on a GPU as one CUDA graph: one launch a step instead of ~75.

On a GPU the engine's step is the CPU's work, not the GPU's: the 784-400-20 VAE at batch 128 on
an H200 spent ~3.8 ms of CPU a step (75 kernel launches, Python, autograd) against 0.35 ms of
GPU, and the bare eager loop ran 44,000 images/s whether the finite check was read each step or
every 10.  The same step captured once and replayed ran 380,000 (benchmarks/bench_cuda_step.py).

``GraphedStep.step`` takes the place of ``model.training_step`` in the Trainer's loop on CUDA, for
the variants whose step is the default one (``AutoencoderModel.training_step``: the loss, one
backward, the finite check, Adam) with torch's fused Adam, outside layer-wise pretraining.  What
it keeps of the eager step:

* the same arithmetic on the same parameters and Adam state (captured, not copied);
* the finite check, on the device: fused Adam's ``found_inf`` skips a step whose loss or gradient
  is not finite there, so the weights stay the last finite ones, and ``check()`` (called by the
  Trainer before each report and each validation) raises ``NonFiniteStep`` naming that step;
  a run therefore stops at the report after the bad step instead of at it;
* everything the loss reads from Python is in the step's *key* (the batch's shape, the model's
  ``graph_key()``: its phase, settings and KL weight; each optimizer group's learning rate and
  Adam settings).  A graph is replayed only for the key it was captured with: a live change of β
  or the learning rate, a KL warm-up (a new weight every step), an epoch's short last batch run
  eagerly, and a key seen ``WARMUP`` steps running is captured (at most ``MAX_GRAPHS`` kept).

Eager steps run on a side stream, as CUDA's capture rules ask of the steps before a capture.  A
capture that fails turns graphs off for the run (``disabled``, saying why) and training goes on
eagerly.  ``ENABLED = False`` turns the whole path off (the benchmarks compare both).
"""

from __future__ import annotations

import torch

from engine.models.base import AutoencoderModel, NonFiniteStep, gradient_norm_sum

#: capture graphs on CUDA where they apply (benchmarks set it False to measure the eager step)
ENABLED = True
#: eager steps with the same key before that key's step is captured (CUDA's warm-up before a capture)
WARMUP = 3
#: graphs kept at once (one per key; the oldest goes first)
MAX_GRAPHS = 4


def graphable(model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer],
              device: torch.device) -> str | None:
    """None when the model's training step can be captured on ``device``, else why not."""
    if not ENABLED:
        return "CUDA graphs are turned off"
    if device.type != "cuda":
        return "not a CUDA device"
    if type(model).training_step is not AutoencoderModel.training_step:
        return "the variant takes its own training step"
    if model.loss_needs_grad:
        return "the loss differentiates through the encoder"
    optimizer = optimizers.get("model")
    if optimizer is None or not isinstance(optimizer, torch.optim.Adam) or not optimizer.defaults.get("fused"):
        return "the optimizer is not torch's fused Adam"
    return None


class GraphedStep:
    """``model.training_step`` for a model whose default step can be captured (see the module)."""

    def __init__(self, model: AutoencoderModel, optimizers: dict[str, torch.optim.Optimizer], autocast):
        self.model, self.optimizers = model, optimizers
        self.optimizer = optimizers["model"]
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self._autocast = autocast
        self._graphs: dict[tuple, _Captured] = {}
        self._last_key: tuple | None = None
        self._same_key_steps = 0
        self._pending: list[tuple[int, torch.Tensor]] = []   # (step, its [bad loss, bad any] flags)
        self._side: torch.cuda.Stream | None = None   # made at the first eager step
        #: why graphs were turned off for this run (None while they are on)
        self.disabled: str | None = None
        self.captures = 0
        self.replays = 0

    def key(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple:
        groups = tuple((g["lr"], tuple(g["betas"]), g["eps"], g["weight_decay"], g["amsgrad"], g["maximize"])
                       for g in self.optimizer.param_groups)
        return (tuple(x.shape), x.dtype, None if y is None else (tuple(y.shape), y.dtype),
                self.model.graph_key(), groups)

    def step(self, x: torch.Tensor, y: torch.Tensor | None, step: int) -> dict[str, torch.Tensor]:
        """One training step (step number ``step``): replayed, captured, or eager."""
        if self.disabled is not None or self.model.phase != "train":
            return self._plain(x, y)
        y = y if self.model.is_conditional else None
        key = self.key(x, y)
        captured = self._graphs.get(key)
        if captured is not None:
            return self._replay(captured, x, y, step)
        self._same_key_steps = self._same_key_steps + 1 if key == self._last_key else 1
        self._last_key = key
        if self._same_key_steps <= WARMUP:
            return self._eager(x, y)
        try:
            captured = _Captured(self, x, y)
        except Exception as exc:  # noqa: BLE001 - a step that cannot be captured trains eagerly
            self.disabled = f"capture failed: {type(exc).__name__}: {str(exc)[:200]}"
            self._graphs.clear()
            torch.cuda.synchronize()
            return self._plain(x, y)
        self.captures += 1
        if len(self._graphs) >= MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        self._graphs[key] = captured
        return self._replay(captured, x, y, step)

    def check(self) -> None:
        """NonFiniteStep for the first replayed step since the last call whose loss or gradient
        was not finite (its optimizer step was skipped on the device).  One read of the device."""
        if not self._pending:
            return
        steps, flags = zip(*self._pending)
        self._pending.clear()
        flags = torch.stack(flags).cpu()
        bad = flags[:, 1].nonzero()
        if len(bad):
            i = int(bad[0, 0])
            raise NonFiniteStep("loss" if flags[i, 0] else "gradient", step=steps[i])

    # -- inside ---------------------------------------------------------------------------
    def _plain(self, x, y) -> dict[str, torch.Tensor]:
        with self._autocast:
            return self.model.training_step(x, y, self.optimizers)

    def _eager(self, x, y) -> dict[str, torch.Tensor]:
        if self._side is None:
            self._side = torch.cuda.Stream(device=x.device)
        side, main = self._side, torch.cuda.current_stream()
        side.wait_stream(main)
        with torch.cuda.stream(side):
            x.record_stream(side)
            if y is not None:
                y.record_stream(side)
            with self._autocast:
                terms = self.model.training_step(x, y, self.optimizers)
        main.wait_stream(side)
        return terms

    def _replay(self, captured: "_Captured", x, y, step: int) -> dict[str, torch.Tensor]:
        captured.x.copy_(x)
        if y is not None:
            captured.y.copy_(y)
        captured.graph.replay()
        self.replays += 1
        values = captured.out.clone()
        self._pending.append((step, values[-2:]))
        return {name: values[i] for i, name in enumerate(captured.names)}

    def compute(self, x, y) -> tuple[list[str], torch.Tensor]:
        """The captured arithmetic: the default training step, its finite check on the device."""
        with self._autocast:
            out = self.model.loss(x, y)
        out.total.backward()
        total = out.total.detach()
        check = total.float() + gradient_norm_sum([p.grad for p in self.params if p.grad is not None]).float()
        bad_loss = (~torch.isfinite(total)).float()
        bad_any = (~torch.isfinite(check)).float()
        self.optimizer.found_inf, self.optimizer.grad_scale = bad_any, None
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf, self.optimizer.grad_scale
        names = ["total", *out.terms]
        return names, torch.stack([total.float(), *(t.detach().float() for t in out.terms.values()),
                                   bad_loss, bad_any])


class _Captured:
    """One captured step: its static inputs, its graph, its output row."""

    def __init__(self, owner: GraphedStep, x: torch.Tensor, y: torch.Tensor | None):
        self.x = x.clone()
        self.y = None if y is None else y.clone()
        self.graph = torch.cuda.CUDAGraph()
        groups = owner.optimizer.param_groups
        capturable = [g["capturable"] for g in groups]
        for p in owner.params:   # the captured backward writes the gradients (assigns, not adds)
            p.grad = None
        torch.cuda.synchronize()
        try:
            for g in groups:
                g["capturable"] = True   # only while capturing: a saved optimizer stays loadable anywhere
            # thread_local: another thread's CUDA work (the app's) does not break this capture
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.names, self.out = owner.compute(self.x, self.y)
        finally:
            for g, was in zip(groups, capturable):
                g["capturable"] = was
