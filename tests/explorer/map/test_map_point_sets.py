"""View → Map points (explorer/map/point_sets.py): a saved run's map switches to the training or
every image, encoded in the background in chunks; the hover card and colour-by take each point's
image from its own split; a training run keeps its probe set."""

import numpy as np
import pytest
import torch

import engine.probe_sets as probe_sets
from engine.probe_sets import SPLIT_TRAIN, SPLIT_VALIDATION, encode_points, probe_points
from explorer.map.latent_view import LatentView
from explorer.map.pictures import probe_tooltip
from explorer.map.point_sets import MapPointSets, set_of
from explorer.session import RunState, Session


@pytest.fixture
def switching(qtbot, run_paths, monkeypatch):
    monkeypatch.setattr(probe_sets, "CHUNK", 300)   # several chunks on the digits' 1,797 images
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    state = RunState.open(run_paths[0])
    state.ensure_dataset()
    session.add(state)
    sets = MapPointSets(session)
    yield session, state, view, sets
    sets.cancel()
    view.colouring.wait()
    assert view.shutdown()


def test_a_saved_run_switches_to_every_image_in_the_background_with_progress(switching, qtbot):
    session, state, view, sets = switching
    dataset = state.dataset
    assert sets.shown_set(state) == "validation" and sets.actions["validation"].isChecked()
    saved = state.probe
    progress = []
    sets.progressed.connect(progress.append)
    with qtbot.waitSignal(sets.switched, timeout=30_000):
        sets.actions["all"].trigger()
    n = len(dataset.val) + len(dataset.train)
    probe = state.probe
    assert len(probe.codes) == n and len(view._xy) == n, "the map draws every image"
    assert sets.shown_set(state) == "all" and sets.actions["all"].isChecked()
    assert len(progress) >= n // 300 and progress[-1] == (n, n), "chunk by chunk"
    points = probe_points(dataset, "all", None, 0)
    np.testing.assert_allclose(probe.codes, encode_points(state.model, points), atol=1e-5)
    assert len(state.run.load_probe().codes) == len(saved.codes), "the run folder keeps its own probe"
    with qtbot.waitSignal(sets.switched, timeout=30_000):
        sets.choose("validation")
    assert (state.probe.splits == SPLIT_VALIDATION).all() and len(state.probe.codes) == len(dataset.val)


def test_the_hover_card_shows_a_training_points_own_image(switching, qtbot):
    session, state, view, sets = switching
    with qtbot.waitSignal(sets.switched, timeout=30_000):
        sets.choose("train")
    probe = state.probe
    assert (probe.splits == SPLIT_TRAIN).all() and set_of(probe) == "train"
    i = 7
    shown = probe_tooltip(state, i)
    state.probe.splits = np.zeros_like(probe.splits)   # as though the point were validation image 7
    assert probe_tooltip(state, i) != shown, "the input picture comes from the point's own split"
    images, labels = probe_sets.point_images(state.dataset, np.array([1, 0]), np.array([i, i]))
    assert torch.equal(images[0], state.dataset.train.images[i]) and torch.equal(images[1], state.dataset.val.images[i])
    assert labels.tolist() == [int(state.dataset.train.labels[i]), int(state.dataset.val.labels[i])]


def test_a_training_run_keeps_its_probe_set(switching, qtbot, monkeypatch):
    session, state, view, sets = switching
    monkeypatch.setattr(type(state), "is_training", property(lambda self: True))
    errors = []
    sets.failed.connect(errors.append)
    assert not sets.choose("all")
    assert len(errors) == 1 and "is training" in errors[0] and "\n" not in errors[0]
    sets.sync()
    assert not sets.actions["all"].isEnabled() and sets.actions["validation"].isChecked()


def test_the_per_dimension_kl_encodes_each_probe_points_own_image(switching, qtbot):
    from explorer.insights.dimensions import dimension_stats
    session, state, view, sets = switching
    with qtbot.waitSignal(sets.switched, timeout=30_000):
        sets.choose("train")
    stats = dimension_stats(state, max_images=200)
    probe = state.probe
    x = state.dataset.train.images[torch.as_tensor(probe.indices[:200])].float().div_(255.0)
    with torch.no_grad():
        mu, logvar = state.model.posterior(x, None)
    kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(dim=0).double().numpy()
    np.testing.assert_allclose(stats.kl, kl, rtol=1e-5)


def test_the_windows_embeddings_export_writes_the_set_the_map_shows(window, qtbot, run_paths, tmp_path):
    state = window.open_run(run_paths[0])
    state.ensure_dataset()
    sets = window.map_point_sets
    with qtbot.waitSignal(sets.switched, timeout=30_000):
        sets.choose("train")
    from PySide6.QtWidgets import QMenu
    menu = window.findChild(QMenu, "mapPointsMenu")
    assert menu is not None and sets.actions["train"] in menu.actions() and sets.actions["train"].isChecked()
    written = window.exports.export_embeddings(str(tmp_path / "codes.csv"))
    lines = written.read_text().splitlines()
    assert lines[0].startswith("index,label,class,split,split_index,z0") and len(lines) == 1 + len(state.dataset.train)
    assert {line.split(",")[3] for line in lines[1:]} == {"train"}


def test_the_training_form_chooses_the_probe_set_a_new_run_trains_with(qtbot):
    from PySide6.QtWidgets import QComboBox

    from engine.probe_sets import MAP_POINTS_MAX
    from explorer.training.panel import TrainingPanel
    from explorer.training.presets import load_presets
    panel = TrainingPanel(Session(), load_presets())
    qtbot.addWidget(panel)
    combo = panel.findChild(QComboBox, "probeSetCombo")
    assert combo.currentData() == "validation" and panel.configs()[2].probe_set == "validation"
    combo.setCurrentIndex(combo.findData("all"))
    train = panel.configs()[2]
    assert train.probe_set == "all" and train.probe_size == MAP_POINTS_MAX
    combo.setCurrentIndex(combo.findData("test"))
    assert panel.configs()[2].probe_size == 5000
