"""Colour the latent map by a value: each value recolours the points, shows the colour bar and a
caption that says what it shows, and is computed off the GUI thread."""

import threading
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine.point_values import nearest_code_distance, reconstruction_error
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


def test_the_values_are_computed_while_the_event_loop_turns(shown_map, qtbot, monkeypatch):
    session, state, view = shown_map
    import explorer.map.values as values_module
    real, threads = values_module.compute_values, []

    def slow_compute(*args):   # long enough for the GUI thread's timer to tick many times meanwhile
        threads.append(threading.get_ident())
        time.sleep(0.4)
        return real(*args)

    monkeypatch.setattr(values_module, "compute_values", slow_compute)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    view.colouring.set_kind("reconstruction_error")
    assert view.colouring.values is None and view.colouring.is_busy(), "nothing is computed on the GUI thread"
    assert view.colour_caption.text() == "Reconstruction error: computing…"
    qtbot.waitUntil(lambda: view.colouring.values is not None, timeout=20_000)
    timer.stop()
    assert threads and threads[0] != threading.get_ident(), "computed on another thread"
    assert len(ticks) >= 10, f"the event loop turned while the values were computed ({len(ticks)} ticks)"
    images = state.dataset.val.images[torch.as_tensor(state.probe.indices).long()]
    np.testing.assert_allclose(view.colouring.values, reconstruction_error(state.model, images), rtol=1e-5)


def test_the_caption_of_a_finished_run_opened_from_disk_names_the_step_of_its_codes(shown_map, qtbot):
    """Fault 13: the caption said "at step 0" on a finished run whose codes are from its last step."""
    session, state, view = shown_map
    assert state.run.status == "completed" and state.run.step > 0
    assert state.probe.step == state.run.step, "the saved codes are the last step's"
    view.colouring.set_kind("kl")
    qtbot.waitUntil(lambda: view.colouring.values is not None, timeout=20_000)
    caption = view.colour_caption.text()
    assert caption.startswith("Colour: KL of each point, KL(q(z|x) ‖ p(z)) per image"), caption
    assert caption.endswith(f"on the map's {len(state.probe.codes):,} validation images at step {state.run.step:,}")
