"""The NaN guard of ``engine.models.base.optimize``: one non-finite gradient element anywhere
stops the step before the weights change; finite steps go through."""

import math

import pytest
import torch

from engine.models.base import NonFiniteStep, optimize


def _model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("which", [0, 1, 2, 3])   # each parameter tensor: weights and biases
def test_one_non_finite_gradient_element_stops_the_step(bad, which):
    model, optimizer = _model_and_optimizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    param = list(model.parameters())[which]
    mask = torch.zeros_like(param)
    mask.view(-1)[param.numel() // 2] = 1.0
    param.register_hook(lambda g: torch.where(mask.bool(), torch.full_like(g, bad), g))
    loss = model(torch.randn(4, 6)).pow(2).sum()
    with pytest.raises(NonFiniteStep) as info:
        optimize(optimizer, loss)
    assert info.value.what == "gradient"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert not optimizer.state   # no step was taken: Adam has no moments yet


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_stops_the_step(bad):
    model, optimizer = _model_and_optimizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = model(torch.randn(4, 6)).sum() * 0.0 + bad
    with pytest.raises(NonFiniteStep) as info:
        optimize(optimizer, loss)
    assert info.value.what == "loss"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_huge_but_finite_gradients_step():
    model, optimizer = _model_and_optimizer()
    before = [p.detach().clone() for p in model.parameters()]
    optimize(optimizer, model(torch.randn(4, 6)).sum() * 1e12)   # norms near 1e13: finite (squares below float32's 3.4e38)
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_parameters_without_gradients_are_skipped():
    model, optimizer = _model_and_optimizer()
    frozen = model[0].weight.detach().clone()
    out = model[2](torch.randn(4, 5))   # only the last layer gets gradients
    optimize(optimizer, out.pow(2).sum())
    assert torch.equal(model[0].weight, frozen)
