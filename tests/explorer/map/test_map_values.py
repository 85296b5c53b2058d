"""Colour the latent map by a value: each value recolours the points, shows the colour bar and a
caption that says what it shows, and is computed off the GUI thread."""

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from engine.point_values import nearest_code_distance
from explorer.map.latent_view import LatentView
from explorer.map.point_layer import value_colors
from explorer.map.values import CLASS
from explorer.session import RunState, Session


@pytest.fixture
def shown_map(qtbot, run_paths):
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    state = RunState.open(run_paths[0])   # the 2-D VAE: it has every value
    state.ensure_dataset()
    session.add(state)
    view.resize(800, 520)
    view.show()
    qtbot.waitExposed(view)
    yield session, state, view
    view.colouring.wait()
    assert view.shutdown()


def colours(view):
    return view.points._argb.copy()


def test_value_colours_span_the_colour_map_and_grey_out_missing_values():
    labels, table, (low, high) = value_colors(np.array([0.0, 1.0, 2.0, np.nan]), levels=(0.0, 2.0))
    assert labels.tolist() == [0, 128, 255, 256] and len(table) == 257
    assert low == 0.0 and high == 2.0
    assert table[0].name() != table[255].name()


@pytest.mark.parametrize("kind", ["reconstruction_error", "kl", "nearest_distance"])
def test_colour_by_each_value_changes_the_points_and_shows_the_bar(shown_map, qtbot, kind):
    session, state, view = shown_map
    before = colours(view)
    assert view.colouring.kind == CLASS and not view.colouring.bar.isVisible()
    combo = view.colouring.combo
    assert combo.findData(kind) >= 0, "every value of a VAE is in the menu"
    combo.setCurrentIndex(combo.findData(kind))
    qtbot.waitUntil(lambda: view.colouring.values is not None, timeout=20_000)
    QApplication.processEvents()
    values = view.colouring.values
    assert values.shape == (len(state.probe.codes),) and np.isfinite(values).all()
    assert not np.array_equal(colours(view), before), "the points took the value's colours"
    assert view.colouring.bar.isVisible()
    caption = view.colour_caption.text()
    assert view.colour_caption.isVisible() and "validation images" in caption
    if kind == "kl":
        assert "nats" in caption
    if kind == "nearest_distance":
        np.testing.assert_allclose(values, nearest_code_distance(state.probe.codes))
    assert not view.legend.isVisible(), "the class legend gives way to the colour bar"
    combo.setCurrentIndex(combo.findData(CLASS))
    QApplication.processEvents()
    assert np.array_equal(colours(view), before) and not view.colouring.bar.isVisible()


def test_an_autoencoder_offers_no_kl(qtbot, run_paths):
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    session.add(RunState.open(run_paths[1]))
    assert view.colouring.kinds() == [CLASS, "reconstruction_error", "nearest_distance"]
    with pytest.raises(ValueError):
        view.colouring.set_kind("kl")
    assert view.shutdown()


def test_the_values_are_computed_while_the_event_loop_turns(shown_map, qtbot):
    session, state, view = shown_map
    view.colouring.set_kind("reconstruction_error")
    assert view.colouring.is_busy() or view.colouring.values is not None
    qtbot.waitUntil(lambda: view.colouring.values is not None, timeout=20_000)
