"""The training step as a CUDA graph (engine/cuda_graphs.py).

On a CPU: which models and devices it applies to, that its arithmetic (the step it captures) is
the eager step's, that a non-finite step is skipped on the device and named by ``check()``, and
that the key changes with everything the loss reads from Python.  On a GPU (the device check
runs these there): a run trains with graphs replayed, to the same loss as eagerly, and a run
that goes non-finite stops with finite weights.
"""

import math

import pytest
import torch

from engine import cuda_graphs
from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.cuda_graphs import GraphedStep, graphable
from engine.models import VARIANTS, build_model
from engine.models.base import NonFiniteStep
from engine.training import Trainer

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="captures CUDA graphs: runs on a GPU (benchmarks/device_check.sh)")


def _model(variant="vae", **params):
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=variant, latent_dim=2, hidden=(16,)).with_params(**params), (1, 8, 8), 10)
    return model, model.configure_optimizers(1e-3)


def _batch(n=12):
    torch.manual_seed(1)
    return torch.rand(n, 1, 8, 8), torch.randint(0, 10, (n,))


@pytest.fixture(autouse=True)
def graphs_on(monkeypatch):
    """As the CLI has it (a window made earlier in the same test process turned them off)."""
    monkeypatch.setattr(cuda_graphs, "ENABLED", True)


def test_it_applies_on_cuda_only_and_to_default_steps():
    model, optimizers = _model()
    assert graphable(model, optimizers, torch.device("cpu")) == "not a CUDA device"
    assert graphable(model, optimizers, torch.device("cuda")) is None
    aae, aae_opt = _model("aae")
    assert "own training step" in graphable(aae, aae_opt, torch.device("cuda"))
    contractive, c_opt = _model("contractive_ae")
    assert "differentiates" in graphable(contractive, c_opt, torch.device("cuda"))
    plain = {"model": torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)}
    assert "fused Adam" in graphable(model, plain, torch.device("cuda"))
    cuda_graphs.ENABLED = False
    try:
        assert graphable(model, optimizers, torch.device("cuda")) == "CUDA graphs are turned off"
    finally:
        cuda_graphs.ENABLED = True


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variants_key_can_pick_a_graph(variant):
    """Graphs are kept in a dict by key: a setting that cannot be hashed (a list) would fail the first step on CUDA."""
    model, _ = _model(variant)
    assert hash(model.graph_key()) == hash(model.graph_key())


def test_a_cpu_run_has_no_graphed_step():
    trainer = Trainer(DataConfig(source="digits"), ModelConfig(variant="vae", latent_dim=2, hidden=(16,)),
                      TrainConfig(epochs=1, batch_size=256, device="cpu"))
    assert trainer.run_to_end().status == "completed"
    assert trainer.graphed is None


def test_the_captured_arithmetic_is_the_eager_step():
    x, y = _batch()
    eager, eager_opt = _model()
    torch.manual_seed(5)
    terms = eager.training_step(x, y, eager_opt)
    graphed_model, graphed_opt = _model()
    step = GraphedStep(graphed_model, graphed_opt, torch.autocast("cpu", enabled=False))
    torch.manual_seed(5)
    names, out = step.compute(x, None)
    assert names == list(terms)
    assert torch.allclose(out[:len(names)], torch.stack([terms[n].float() for n in names]))
    assert out[-2:].tolist() == [0.0, 0.0]   # neither the loss nor a gradient is non-finite
    for a, b in zip(eager.parameters(), graphed_model.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
    assert not hasattr(graphed_opt["model"], "found_inf")   # later eager steps read no stale flag


def test_a_non_finite_step_is_skipped_on_the_device_and_named_at_the_check():
    model, optimizers = _model()
    step = GraphedStep(model, optimizers, torch.autocast("cpu", enabled=False))
    x, _ = _batch()
    names, out = step.compute(x, None)   # one finite step: Adam has its moments
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizers["model"].state[next(model.parameters())].items()}
    x[3, 0, 2, 2] = math.nan
    names, out = step.compute(x, None)
    assert out[-2:].tolist() == [1.0, 1.0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    state = optimizers["model"].state[next(model.parameters())]
    assert all(torch.equal(state[k], v) for k, v in moments.items())   # the step count too
    step._pending += [(41, torch.zeros(2)), (42, out[-2:].clone()), (43, out[-2:].clone())]
    with pytest.raises(NonFiniteStep) as info:
        step.check()
    assert (info.value.what, info.value.step) == ("loss", 42)
    step.check()   # read once: nothing pending now


def test_the_key_follows_what_the_loss_reads():
    model, optimizers = _model("beta_vae", beta=4.0, warmup_epochs=2.0)
    step = GraphedStep(model, optimizers, torch.autocast("cpu", enabled=False))
    x, y = _batch()
    key = step.key(x, None)
    assert step.key(x, None) == key
    model.progress = 0.5   # inside the KL warm-up: a new weight
    assert step.key(x, None) != key
    model.progress = 3.0
    after_warmup = step.key(x, None)
    model.progress = 4.0
    assert step.key(x, None) == after_warmup   # the weight stays β once the warm-up is over
    optimizers["model"].param_groups[0]["lr"] = 5e-4
    assert step.key(x, None) != after_warmup
    model.params = type(model.params)(beta=2.0, warmup_epochs=2.0)
    changed = step.key(x, None)
    assert step.key(x[:5], None) != changed   # an epoch's short last batch
    model.eval()
    assert step.key(x, None) != changed


# -- on a GPU ----------------------------------------------------------------------------------
def _digits_run(graphs: bool, **train):
    cuda_graphs.ENABLED = graphs
    try:
        trainer = Trainer(DataConfig(source="digits"), ModelConfig(variant="vae", latent_dim=2, hidden=(64,)),
                          TrainConfig(epochs=3, batch_size=128, device="cuda", **train))
        return trainer, trainer.run_to_end()
    finally:
        cuda_graphs.ENABLED = True


@needs_cuda
def test_a_run_on_cuda_replays_graphs_and_trains_as_eagerly():
    graphed, last = _digits_run(True)
    eager, eager_last = _digits_run(False)
    assert last.status == eager_last.status == "completed"
    assert graphed.graphed.disabled is None and graphed.graphed.replays > 0 and graphed.graphed.captures >= 1
    assert eager.graphed is None
    # not the same random draws, so not the same numbers: the same loss to within a nat
    assert abs(graphed.history.val["total"][-1] - eager.history.val["total"][-1]) < 1.0
    losses = graphed.history.terms["total"]
    assert all(map(math.isfinite, losses)) and sum(losses[-3:]) < sum(losses[:3])


@needs_cuda
def test_a_replayed_step_that_goes_non_finite_is_skipped_and_named():
    model, _ = _model()
    model = model.cuda()
    optimizers = model.configure_optimizers(1e-3)
    step = GraphedStep(model, optimizers, torch.autocast("cuda", enabled=False))
    x = _batch()[0].cuda()
    n = cuda_graphs.WARMUP + 3
    for i in range(1, n + 1):   # eager warm-up steps, the capture, replays
        step.step(x, None, i)
    step.check()
    assert step.captures == 1 and step.replays == 3
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bad = x.clone()
    bad[0, 0, 0, 0] = math.nan
    step.step(bad, None, n + 1)   # the same key: replayed
    assert step.replays == 4
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(NonFiniteStep) as info:
        step.check()
    assert (info.value.what, info.value.step) == ("loss", n + 1)
