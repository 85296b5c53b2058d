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


def test_labels_of_points_on_one_another_are_stacked():
    from explorer.compare.rate_distortion import label_lines
    # β = 4 and β = 8 both collapsed to (0, 27.17): their labels covered each other
    points = [(3.61, 20.45), (2.63, 21.60), (1.04, 24.62), (0.0001, 27.1702), (0.0, 27.1715), None]
    assert label_lines(points) == [0, 0, 0, 0, 1, 0]
    assert label_lines([(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)]) == [0, 1, 2]
    assert label_lines([None, None]) == [0, 0]


def shown_plane(qtbot, paths):
    """The comparison of the runs at ``paths`` shown at 1100×700 on its Rate–distortion tab (kept
    by the caller: the plane goes with it)."""
    session = Session()
    view = CompareView(session, [session.add(RunState.open(p)) for p in paths])
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.tabs.setCurrentWidget(view.rate_distortion)
    qtbot.waitExposed(view)
    qtbot.wait(50)
    return view


def test_coincident_runs_labels_do_not_overlap_on_screen(qtbot, beta_runs):
    view = shown_plane(qtbot, [beta_runs[1], beta_runs[1]])   # the same run twice
    first, second = (t.mapRectToScene(t.boundingRect()) for t in view.rate_distortion.texts)
    assert not first.intersects(second), (first, second)


def test_the_rightmost_label_is_inside_the_plane(qtbot, beta_runs):
    view = shown_plane(qtbot, beta_runs)
    plane = view.rate_distortion
    box = plane.plot.getViewBox().sceneBoundingRect()
    for text in plane.texts:
        rect = text.mapRectToScene(text.boundingRect())
        assert box.contains(rect), (text.toPlainText(), rect, box)
