"""The Dimensions insight: KL per latent dimension (sorted), active units, collapse named, a
traversal strip of the hovered dimension."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.datasets import load_dataset
from engine.history import ProbeCodes
from engine.models import variant
from explorer.insights.dimensions import DimensionsView, dimension_stats
from explorer.session import LatentCursor, RunState
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def with_probe(state: RunState, digits, n: int = 150) -> RunState:
    idx = torch.arange(n)
    x = digits.val.images[idx].float() / 255
    with torch.no_grad():
        codes = state.model.encode(x).numpy()
    state.probe = ProbeCodes(codes, digits.val.labels[idx].numpy(), idx.numpy())
    state.probe_changed.emit(state.probe)
    return state


def last_encoder_layer(state: RunState) -> torch.nn.Linear:
    return [m for m in state.model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]


def collapse_encoder(state: RunState) -> None:
    """The encoder's last layer zeroed: q(z|x) = N(0, I) whatever x."""
    with torch.no_grad():
        last = last_encoder_layer(state)
        last.weight.zero_()
        last.bias.zero_()


def show(qtbot, widget):
    qtbot.addWidget(widget)
    widget.resize(520, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_bars_are_the_kl_of_each_dimension_most_first_and_active_units_counted(qtbot, digits):
    state = RunState(DIGITS, small_model("vae", latent_dim=6), quick_train(), dataset=digits)
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    with_probe(state, digits)
    x = digits.val.images[:150].float() / 255
    with torch.no_grad():
        mu, logvar = state.model.posterior(x)
    kl = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).mean(0).double().numpy()
    active = int((mu.double().var(0, unbiased=False) > 0.01).sum())
    assert view.order == [int(i) for i in np.argsort(-kl, kind="stable")]
    heights = view.bars.opts["height"]
    np.testing.assert_allclose(heights, kl[view.order], rtol=1e-6)
    assert f"{active} of 6 dimensions active" in view.summary.text()


def test_a_collapsed_model_is_named_and_a_healthy_one_is_not(qtbot, digits):
    state = RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(), dataset=digits)
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    findings = []
    view.diagnosed.connect(findings.append)
    collapse_encoder(state)   # the encoder says q(z|x) = N(0, I) whatever x: the posterior has collapsed
    with_probe(state, digits)
    assert view.summary.text().startswith("Posterior collapse: the decoder ignores z")
    assert "warm-up" in view.summary.toolTip()
    assert findings and findings[-1].kind == "collapse"
    healthy = RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(), dataset=digits)
    with torch.no_grad():
        last_encoder_layer(healthy).weight.mul_(20.0)
    view.bind(with_probe(healthy, digits))
    assert "collapse" not in view.summary.text().lower(), view.summary.text()
    assert findings[-1] is None


def test_hovering_a_dimension_shows_its_traversal_strip(qtbot, digits):
    state = with_probe(RunState(DIGITS, small_model("vae", latent_dim=3), quick_train(), dataset=digits), digits)
    cursor = LatentCursor()
    view = show(qtbot, DimensionsView(state, cursor))
    view.hover(2)
    figure = view.figure()
    assert figure is not None and figure.row_labels == ["z2"] and len(figure.cells[0]) == 9
    assert "prior sd" in figure.title
    first, last = figure.cells[0][0], figure.cells[0][-1]
    assert not np.allclose(first, last)


def test_variants_without_a_posterior_show_the_code_variance(qtbot, digits):
    state = with_probe(RunState(DIGITS, small_model("ae", latent_dim=4), quick_train(), dataset=digits), digits)
    assert not variant("ae").has_density
    stats = dimension_stats(state)
    assert stats.kl is None
    np.testing.assert_allclose(stats.variance, state.probe.codes.astype(np.float64).var(0), rtol=1e-6)
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    assert "variance" in view.summary.toolTip() and "collapse" not in view.summary.text().lower()


def test_a_run_opened_from_disk_shows_the_kl_not_the_code_variance(qtbot, tmp_path):
    # the real window showed "code variance" bars for a saved VAE: the run's images were not in
    # memory when the tab was shown, and nothing measured again once they were
    from engine.training import Trainer
    trainer = Trainer(DIGITS, small_model("vae", latent_dim=2), quick_train(epochs=1), run_parent=tmp_path)
    trainer.run_to_end()
    state = RunState.open(trainer.run.path)
    assert state.dataset is None and state.probe is not None
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    qtbot.waitUntil(lambda: view.stats is not None and view.stats.kl is not None, timeout=10_000)
    assert view.plot.getAxis("left").labelText == "KL (nats)"
    assert "nats per image in all" in view.summary.text()


def test_the_axis_names_its_unit_without_an_si_prefix(qtbot, digits):
    # a collapsed run's KL of ~1e-5 nats made pyqtgraph scale the axis to "KL (nats) (x0.001)",
    # which the short chart cut to "KL (nats) (:"
    state = RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(), dataset=digits)
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    collapse_encoder(state)
    with_probe(state, digits)
    qtbot.wait(20)
    axis = view.plot.getAxis("left")
    assert axis.autoSIPrefixScale == 1.0 and axis.labelString() == axis.labelString().split("(x")[0]


def test_a_collapse_in_the_first_epochs_of_a_training_run_is_not_named_yet(qtbot, digits):
    state = RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(), dataset=digits)
    view = show(qtbot, DimensionsView(state, LatentCursor()))
    findings = []
    view.diagnosed.connect(findings.append)
    collapse_encoder(state)   # q(z|x) = N(0, I) whatever x, as a VAE often starts
    state.status = "running"
    state.history.add_epoch(1, 10, {}, {"total": 50.0, "kl": 0.02}, 0.0)
    with_probe(state, digits)
    assert "Too early to call it collapse" in view.summary.text() and view.finding is None
    assert not findings or findings[-1] is None
    for epoch in (2, 3):
        state.history.add_epoch(epoch, 10 * epoch, {}, {"total": 50.0, "kl": 0.02}, 0.0)
    with_probe(state, digits)
    assert view.summary.text().startswith("Posterior collapse") and findings[-1].kind == "collapse"
