"""The rate–distortion plane in the comparison: a run's point is its final validation terms,
labelled by what differs, linked to its map, exported as PNG, SVG and CSV."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from engine.errors import UserError
from engine.training import Trainer
from explorer.compare.view import CompareView
from explorer.session import RunState, Session
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def beta_runs(tmp_path_factory):
    parent = tmp_path_factory.mktemp("betas")
    paths = []
    for beta in (0.5, 4.0):
        model = small_model("beta_vae", latent_dim=2).with_params(beta=beta)
        trainer = Trainer(DIGITS, model, quick_train(epochs=2), run_parent=parent)
        trainer.run_to_end()
        paths.append(trainer.run.path)
    return paths


def test_each_run_is_a_point_at_its_final_validation_terms(qtbot, beta_runs, run_paths, tmp_path):
    session = Session()
    states = [session.add(RunState.open(p)) for p in [*beta_runs, run_paths[1]]]   # two β-VAEs and an AE
    view = CompareView(session, states)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    qtbot.waitExposed(view)
    plane = view.rate_distortion
    for state, point in zip(states[:2], plane.points):
        assert point == (state.history.val["kl"][-1], state.history.val["reconstruction"][-1])
    assert plane.points[2] is None and "No KL term" in plane.note.text()
    assert plane.labels[:2] == ["beta=0.5", "beta=4"]
    assert [p.pos().x() for p in plane.scatter.points()] == [plane.points[0][0], plane.points[1][0]]

    view.tabs.setCurrentWidget(plane)
    view.emphasise(1)
    assert "border" in view.columns[1].styleSheet() and view.columns[0].styleSheet() == ""
    assert "beta=4" in view.status.text()
    plane.chosen.emit(0)
    assert view.tabs.currentWidget() is view.maps_page and "border" in view.columns[0].styleSheet()

    rows = list(csv.DictReader(open(plane.export(tmp_path / "rd.csv"))))
    assert [r["label"] for r in rows] == ["beta=0.5", "beta=4"]
    assert float(rows[1]["rate_kl"]) == pytest.approx(plane.points[1][0])
    assert rows[0]["rate_unit"] == "nats per image" and "validation" in rows[0]["measured_on"]
    svg = plane.export(tmp_path / "rd.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert plane.export(tmp_path / "rd.png").stat().st_size > 1000
    with pytest.raises(UserError, match="png, .svg or .csv"):
        plane.export(tmp_path / "rd.gif")
    assert not list(tmp_path.glob(".*tmp"))
    view.close()


def test_the_strip_invites_a_hover_and_pictures_are_legible(qtbot, run_paths):
    """Before the first hover the strip said "No model" under every run; the reconstructions of
    8×8 digits were 16 px a cell."""
    from explorer.compare.pictures import draw_rows
    session = Session()
    states = [session.add(RunState.open(p)) for p in run_paths]
    view = CompareView(session, states)
    qtbot.addWidget(view)
    assert [c.placeholder for c in view.strip.canvases] == ["hover"] * 3
    image = draw_rows([("a", np.zeros((4, 1, 8, 8), np.float32), None)])
    assert image.width() >= 150 + 4 * 48
    assert image.height() >= 48
    view.close()
