"""The insight views (traversals, interpolation, samples, reconstructions) follow the cursor, the
endpoints and the weights, sort by error, and export what they show."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PySide6.QtGui import QImage
from PySide6.QtSvg import QSvgRenderer

from engine.datasets import load_dataset
from engine.errors import UserError
from engine.history import ProbeCodes
from engine.training import Trainer
from explorer.insights import common as insight_common
from explorer.insights import reconstruction as reconstruction_view
from explorer.insights.figure import GridFigure, export_figure
from explorer.insights.interpolation import InterpolationEndpoints, InterpolationView, interpolate
from explorer.insights.reconstruction import ReconstructionView, image_errors
from explorer.insights.samples import SamplesView
from explorer.insights.tabs import InsightTabs
from explorer.insights.traversal import TraversalView, parse_dimensions
from explorer.session import LatentCursor, RunState, Session
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.fixture(scope="module")
def cvae_path(tmp_path_factory, digits):
    trainer = Trainer(DIGITS, small_model("cvae", latent_dim=2), quick_train(epochs=1), dataset=digits,
                      run_parent=tmp_path_factory.mktemp("cvae"))
    trainer.run_to_end()
    return trainer.run.path


def show(qtbot, widget, size=(640, 420)):
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def pixels(view) -> QImage:
    view.figure()   # any waiting redraw happens first
    return view.pane.canvas.grab().toImage()


def other_weights(state: RunState, seed: int = 1) -> None:
    """New weights in the GUI's model copy, as a training snapshot brings them."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in state.model.decoder.parameters():
            p.add_(0.5 * torch.randn_like(p))
    state.decoder_changed.emit()


def with_probe(state: RunState, digits, n: int = 150) -> RunState:
    """Give an in-memory run the probe codes training would give it."""
    idx = torch.arange(n)
    x = digits.val.images[idx].float() / 255
    y = digits.val.labels[idx]
    with torch.no_grad():
        codes = state.model.encode(x, y if state.model.is_conditional else None).numpy()
    state.probe = ProbeCodes(codes, y.numpy(), idx.numpy())
    state.probe_changed.emit(state.probe)
    return state


# -- traversals ----------------------------------------------------------------------------------
def test_traversals_follow_the_cursor_and_sweep_three_prior_sd(qtbot, run_paths):
    state, cursor = RunState.open(run_paths[0]), LatentCursor()
    cursor.set_code(np.array([-2.0, -2.0]), "test")
    view = show(qtbot, TraversalView(state, cursor))
    before, first = pixels(view), view.figure()
    assert view.objectName() == "traversalView"
    assert first.n_rows == 2 and first.n_cols == 9 and sorted(first.row_labels) == ["z0", "z1"]
    assert first.captions[0][0] == "-3.00" and first.captions[0][-1] == "3.00"    # N(0, I): ±3 around 0
    with qtbot.waitSignal(view.rendered, timeout=2000):
        cursor.set_code(np.array([2.0, 2.0]), "test")
    after = view.figure()
    assert pixels(view) != before
    assert max(np.abs(a - b).max() for ra, rb in zip(first.cells, after.cells) for a, b in zip(ra, rb)) > 0.05
    # each cell is the cursor's code with one dimension at the caption's value
    k = int(after.row_labels[0][1:])
    code = np.array([2.0, 2.0], np.float32)
    code[k] = 3.0
    np.testing.assert_allclose(after.cells[0][-1], state.decode(code[None])[0], atol=1e-6)


def test_traversals_without_a_standard_normal_prior_use_the_probe_codes_spread(qtbot, run_paths):
    state, cursor = RunState.open(run_paths[1]), LatentCursor()   # an AE: prior "fitted"
    view = show(qtbot, TraversalView(state, cursor))
    centre, sd, words = view.ranges()
    np.testing.assert_allclose(centre, state.probe.codes.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(sd, state.probe.codes.std(axis=0), rtol=1e-5)
    assert "marginal sd" in words and "marginal sd" in view.figure().title
    k = int(view.figure().row_labels[0][1:])
    assert float(view.figure().captions[0][-1]) == pytest.approx(centre[k] + 3 * sd[k], abs=0.01)


def test_large_latents_show_the_most_active_dimensions_first(qtbot, digits):
    state = RunState(DIGITS, small_model("ae", latent_dim=12), quick_train(), dataset=digits)
    cursor = LatentCursor()
    view = show(qtbot, TraversalView(state, cursor))
    rng = np.random.default_rng(0)
    spread = np.array([0.1, 5, 0.2, 3, 0.3, 4, 0.5, 1, 2, 0.05, 0.01, 6])
    codes = (rng.normal(size=(400, 12)) * spread).astype(np.float32)
    state.probe = ProbeCodes(codes, np.zeros(400, np.int64), np.arange(400) % len(digits.val))
    state.probe_changed.emit(state.probe)
    view.rows_spin.setValue(4)
    assert view.dimensions() == [11, 1, 5, 3]
    assert view.figure().row_labels == ["z11", "z1", "z5", "z3"]
    assert "4 of 12 dimensions" in view.note.text() and "variance" in view.note.text()
    view.order_combo.setCurrentIndex(view.order_combo.findData("index"))
    assert view.dimensions() == [0, 1, 2, 3]
    view.only_edit.setText("7, 2-3")
    assert view.figure().row_labels == ["z7", "z2", "z3"]
    view.only_edit.setText("0, 12")
    view.refresh()
    assert "from 0 to 11" in view.note.text() and view.figure().n_rows == 4   # refused: the order again


def test_models_with_a_posterior_rank_dimensions_by_kl(qtbot, digits):
    state = with_probe(RunState(DIGITS, small_model("vae", latent_dim=6), quick_train(), dataset=digits), digits)
    view = show(qtbot, TraversalView(state, LatentCursor()))
    x = digits.val.images[:150].float() / 255
    with torch.no_grad():
        mu, logvar = state.model.posterior(x)
    kl = (0.5 * (mu ** 2 + logvar.exp() - 1 - logvar)).mean(0).numpy()
    assert view.dimensions() == [int(i) for i in np.argsort(-kl, kind="stable")]
    view.figure()
    assert "KL per dimension" in view.note.text()


def test_parse_dimensions():
    assert parse_dimensions("0, 3 5-7", 10) == [0, 3, 5, 6, 7]
    for bad in ("x", "3-1", "10"):
        with pytest.raises(ValueError):
            parse_dimensions(bad, 10)


def test_traversals_redecode_when_the_weights_change(qtbot, run_paths):
    state, cursor = RunState.open(run_paths[0]), LatentCursor()
    view = show(qtbot, TraversalView(state, cursor))
    before = pixels(view)
    with qtbot.waitSignal(view.rendered, timeout=2000):
        other_weights(state)
    assert pixels(view) != before


def test_a_slow_decode_is_split_over_event_loop_turns_and_ends_on_the_latest_code(qtbot, run_paths, monkeypatch):
    state, cursor = RunState.open(run_paths[0]), LatentCursor()
    view = show(qtbot, TraversalView(state, cursor))
    view.figure()
    monkeypatch.setattr(insight_common, "DECODE_BUDGET_S", 0.0)   # every image "too slow": one a turn
    turns = []
    view.decoder.timer.timeout.connect(lambda: turns.append(1))
    cursor.set_code(np.array([1.0, 1.0]), "test")
    view.throttle.flush()   # the frame's redraw
    assert view.decoder.busy
    cursor.set_code(np.array([-1.5, 0.5]), "test")   # while the first grid is being decoded
    view.throttle.flush()
    qtbot.waitUntil(lambda: not view.decoder.busy and not view.throttle.pending, timeout=5000)
    assert len(turns) >= 18
    figure = view.figure()
    k = int(figure.row_labels[0][1:])
    code = np.array([-1.5, 0.5], np.float32)
    code[k] = -3.0
    np.testing.assert_allclose(figure.cells[0][0], state.decode(code[None])[0], atol=1e-6)


# -- interpolation -------------------------------------------------------------------------------
def test_the_interpolation_row_changes_when_an_endpoint_moves(qtbot, run_paths):
    state, cursor = RunState.open(run_paths[0]), LatentCursor()
    view = show(qtbot, InterpolationView(state, cursor))
    assert view.spherical_box.isChecked()   # a standard-normal prior
    view.set_endpoints(np.array([-2.0, 0.0]), np.array([0.0, 2.0]))
    first = pixels(view)
    figure = view.figure()
    np.testing.assert_allclose(figure.cells[0][0], state.decode(np.array([[-2.0, 0.0]]))[0], atol=1e-6)
    np.testing.assert_allclose(figure.cells[0][-1], state.decode(np.array([[0.0, 2.0]]))[0], atol=1e-6)
    assert "A = (-2.00, 0.00)" in figure.title and "B = (0.00, 2.00)" in figure.title
    with qtbot.waitSignal(view.rendered, timeout=2000):
        view.endpoints.set_end("b", np.array([2.5, -2.5]))   # the map's end dragged
    assert pixels(view) != first
    np.testing.assert_allclose(view.path_codes[-1], [2.5, -2.5])


def test_endpoints_from_clicks_the_cursor_and_images(qtbot, run_paths):
    state, cursor = RunState.open(run_paths[0]), LatentCursor()
    endpoints = InterpolationEndpoints()
    view = show(qtbot, InterpolationView(state, cursor, endpoints))
    assert endpoints.a.image == 0 and endpoints.b.image == 1   # two of the map's images to start with
    changes = []
    endpoints.changed.connect(changes.append)
    assert view.pick_from_map(np.array([1.0, 1.0])) == "a"
    assert view.pick_from_map(np.array([-1.0, 0.5])) == "b"
    assert view.pick_from_map(np.array([0.0, 0.0])) == "a"
    assert changes == [endpoints] * 3 and endpoints.b.image is None
    cursor.set_code(np.array([0.25, -0.75]), "test")
    view.pick_b.click()
    np.testing.assert_allclose(endpoints.b.code, [0.25, -0.75])
    view.set_images(3, 7)
    np.testing.assert_allclose(endpoints.a.code, state.probe.codes[3], rtol=1e-5)
    assert "image 3 (class" in view.figure().title and "image 7 (class" in view.figure().title
    view.spherical_box.setChecked(False)
    np.testing.assert_allclose(view.figure().cells[0][0], state.decode(state.probe.codes[3:4])[0], atol=1e-5)


def test_spherical_and_linear_paths():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    slerp, line = interpolate(a, b, 5, True), interpolate(a, b, 5, False)
    np.testing.assert_allclose(np.linalg.norm(slerp, axis=1), 3.0)
    np.testing.assert_allclose(line[2], [1.5, 1.5])
    np.testing.assert_allclose(slerp[[0, -1]], [a, b], atol=1e-12)
    np.testing.assert_allclose(interpolate(a, 2 * a, 3, True), interpolate(a, 2 * a, 3, False))   # parallel


# -- samples --------------------------------------------------------------------------------------
def test_samples_keep_their_noise_across_a_snapshot_but_follow_the_weights(qtbot, run_paths):
    state = RunState.open(run_paths[0])
    view = show(qtbot, SamplesView(state))
    before, noise = pixels(view), view.noise_codes.copy()
    assert view.figure().n_rows == 8 and "N(0, I)" in view.figure().title
    other_weights(state, seed=5)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with qtbot.waitSignal(view.rendered, timeout=2000):
        view.figure()
    assert torch.equal(torch.rand(3), expected_next)   # sampling moved nobody else's random state
    np.testing.assert_array_equal(view.noise_codes, noise)
    assert pixels(view) != before
    view.temperature_spin.setValue(0.5)
    view.figure()
    np.testing.assert_allclose(view.noise_codes, 0.5 * noise, rtol=1e-6)
    view.new_noise.click()
    view.figure()
    assert np.abs(view.noise_codes - 0.5 * noise).max() > 0.1


def test_conditional_models_sample_a_row_per_class_from_the_same_noise(qtbot, cvae_path):
    state = RunState.open(cvae_path)
    view = show(qtbot, SamplesView(state))
    figure = view.figure()
    assert figure.n_rows == 10 and figure.row_labels[:2] == ["0", "1"] and view.count_label.text() == "Per class"
    per_class = view.count_spin.value()
    np.testing.assert_array_equal(view.noise_codes[:per_class], view.noise_codes[per_class:2 * per_class])
    assert np.abs(figure.cells[0][0] - figure.cells[7][0]).max() > 0.05   # same code, another class


def test_a_prior_that_depends_on_the_label_gets_a_row_per_class(qtbot, digits):
    state = RunState(DIGITS, small_model("ae", latent_dim=2), quick_train(), dataset=digits)
    plain = state.model.prior_sample

    def label_informed(n, device, labels=None):   # like a label-informed mixture: one component per class
        z = plain(n, device)
        return z if labels is None else z + 3.0 * labels.float()[:, None]

    state.model.prior_sample = label_informed
    view = show(qtbot, SamplesView(state))
    figure = view.figure()
    assert view.per_class and figure.n_rows == 10 and "a row per class" in figure.title
    per_class = view.count_spin.value()
    np.testing.assert_allclose(view.noise_codes[per_class:2 * per_class].mean(0) - view.noise_codes[:per_class].mean(0),
                               [3.0, 3.0], atol=1.5)


# -- reconstructions ------------------------------------------------------------------------------
def wait_for_errors(qtbot, view):
    qtbot.waitUntil(lambda: not view.loading and not view.computing and view.pane.shown is not None, timeout=20_000)


def test_reconstructions_are_sorted_by_error_worst_first(qtbot, run_paths):
    state = RunState.open(run_paths[0])   # a saved run: its images load in the background
    view = show(qtbot, ReconstructionView(state), size=(700, 600))
    wait_for_errors(qtbot, view)
    split = state.dataset
    assert split is not None and len(view.rows) == min(reconstruction_view.EVALUATED, len(split.val))
    x = split.val.images[torch.as_tensor(view.rows)].float() / 255
    expected, _ = image_errors(state.model, x, None, "squared_error")
    np.testing.assert_allclose(view.errors, expected, rtol=1e-4)
    figure = view.figure()
    shown = [float(c) for row in figure.captions[1::2] for c in row]
    assert len(shown) == 32 and shown == sorted(shown, reverse=True)
    assert shown[0] == pytest.approx(expected.max(), abs=0.006)
    assert figure.row_labels[:2] == ["input", "output"] and "worst first" in figure.title
    worst = int(view.rows[np.argmax(expected)])
    np.testing.assert_allclose(figure.cells[0][0], split.val.images[worst].float().numpy() / 255, atol=1e-6)
    view.order_combo.setCurrentIndex(view.order_combo.findData("best"))
    best = [float(c) for row in view.figure().captions[1::2] for c in row]
    assert best == sorted(best) and best[0] == pytest.approx(expected.min(), abs=0.006)
    view.error_combo.setCurrentIndex(view.error_combo.findData("bce"))
    wait_for_errors(qtbot, view)
    assert "cross-entropy" in view.figure().title


def test_reconstructions_are_measured_over_several_event_loop_turns(qtbot, digits, monkeypatch):
    monkeypatch.setattr(reconstruction_view, "CHUNK_BUDGET_S", 0.0)   # every chunk "too slow": they shrink
    state = RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(), dataset=digits)
    view = show(qtbot, ReconstructionView(state))
    turns = []
    view.chunk_timer.timeout.connect(lambda: turns.append(view._position))
    wait_for_errors(qtbot, view)
    assert len(turns) >= 5 and turns == sorted(turns)
    before = pixels(view)
    other_weights(state)
    qtbot.waitUntil(lambda: view.computing, timeout=2000)
    wait_for_errors(qtbot, view)
    assert pixels(view) != before


# -- exports --------------------------------------------------------------------------------------
def test_every_view_exports_a_non_blank_png_and_a_valid_svg(qtbot, run_paths, tmp_path):
    session = Session()
    tabs = show(qtbot, InsightTabs(session), size=(760, 560))
    session.add(RunState.open(run_paths[0]))
    session.cursor.set_code(np.array([0.5, -0.5]), "test")
    tabs.setCurrentWidget(tabs.reconstructions)
    wait_for_errors(qtbot, tabs.reconstructions)
    for view, words in ((tabs.traversals, "z0"), (tabs.interpolation, "A ="), (tabs.samples, "noise seed"),
                        (tabs.reconstructions, "output")):
        view.pane.export_bar.size_combo.setCurrentIndex(view.pane.export_bar.size_combo.findData(64))
        png = view.pane.export_bar.export(tmp_path / f"{view.objectName()}.png")
        image = QImage(str(png))
        assert not image.isNull() and image.width() > 64 * view.figure().n_cols
        grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
        values = np.frombuffer(grey.constBits(), np.uint8, grey.sizeInBytes())
        assert values.min() < 50 and values.max() > 200 and len(np.unique(values)) > 10
        svg = view.pane.export_bar.export(tmp_path / f"{view.objectName()}.svg")
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg") and QSvgRenderer(str(svg)).isValid()
        text = svg.read_text()
        assert "<image" in text and words in text


def test_a_failed_export_is_one_sentence_and_keeps_the_old_file(tmp_path):
    figure = GridFigure([[np.zeros((1, 8, 8), np.float32)]], title="t")
    old = tmp_path / "figure.png"
    old.write_bytes(b"old")
    for path, cell in ((tmp_path / "figure.jpg", 64), (tmp_path / "missing" / "f.png", 64), (old, 4)):
        with pytest.raises(UserError):
            export_figure(figure, path, cell)
    with pytest.raises(UserError, match="nothing to export"):
        export_figure(None, old)
    assert old.read_bytes() == b"old"


def test_export_dialogs_open_in_the_last_folder_used(qtbot, run_paths, tmp_path, monkeypatch):
    session = Session()
    tabs = show(qtbot, InsightTabs(session))
    session.add(RunState.open(run_paths[0]))
    (tmp_path / "figures").mkdir()
    asked = []

    def fake_dialog(parent, title, start, kind):
        asked.append(start)
        return str(tmp_path / "figures" / f"chosen{len(asked)}"), kind

    monkeypatch.setattr(insight_common.QFileDialog, "getSaveFileName", fake_dialog)
    written = tabs.traversals.pane.export_bar.export_dialog(".svg")
    assert written == tmp_path / "figures" / "chosen1.svg" and written.exists()
    tabs.samples.pane.export_bar.export_dialog(".png")
    assert asked[1].startswith(str(tmp_path / "figures")) and asked[1].endswith("-samples.png")


# -- the tabs ---------------------------------------------------------------------------------------
def test_tabs_follow_the_active_run_and_hidden_tabs_wait(qtbot, run_paths):
    session = Session()
    tabs = show(qtbot, InsightTabs(session))
    assert tabs.objectName() == "insightTabs" and tabs.count() == 6
    vae = session.add(RunState.open(run_paths[0]))
    assert all(view.state is vae for view in tabs.views)
    ae = session.add(RunState.open(run_paths[1]))
    assert all(view.state is ae for view in tabs.views)
    qtbot.wait(50)
    assert tabs.samples.throttle.pending and tabs.samples.pane.shown is None   # hidden: nothing decoded yet
    tabs.setCurrentWidget(tabs.samples)
    qtbot.waitUntil(lambda: tabs.samples.pane.shown is not None, timeout=2000)
    assert "Gaussian fitted" in tabs.samples.pane.shown.title
    assert not tabs.interpolation.spherical_box.isChecked()   # not a standard-normal prior
    assert tabs.pick_from_map(np.zeros(2, np.float32)) == "a"


def test_views_update_live_while_a_run_trains(qtbot, digits, tmp_path):
    session = Session()
    tabs = show(qtbot, InsightTabs(session))
    state = session.add(RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(epochs=200), dataset=digits))
    tabs.setCurrentWidget(tabs.samples)
    tabs.samples.figure()
    noise = tabs.samples.noise_codes.copy()
    grids = []
    tabs.samples.rendered.connect(lambda figure: grids.append((figure.cells[0][0].copy(), state.is_training)))
    try:
        state.start(tmp_path)
        qtbot.waitUntil(lambda: sum(live for _, live in grids) >= 3, timeout=20_000)
    finally:
        state.stop_and_wait()
    np.testing.assert_array_equal(tabs.samples.noise_codes, noise)
    assert np.abs(grids[-1][0] - grids[0][0]).max() > 0.01


def test_a_view_opens_large_in_a_window_of_its_own_that_follows_it(qtbot, run_paths):
    """At 1280×800 the Insights dock showed one traversal row; "Open large" shows every row."""
    state = RunState.open(run_paths[0])
    cursor = LatentCursor()
    view = show(qtbot, TraversalView(state, cursor), size=(420, 260))
    large = view.pane.open_large()
    qtbot.waitExposed(large)
    assert large.isVisible() and large.width() > view.width()
    first = view.figure()
    assert large.canvas.figure is first
    assert large.canvas.scale() > view.pane.canvas.scale()
    cursor.set_code(np.full(state.model.latent_dim, 1.5, np.float32), "test")
    assert view.figure() is not first and large.canvas.figure is view.figure()
    large.close()
