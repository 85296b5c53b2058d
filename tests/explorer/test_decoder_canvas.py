"""The decoder canvas decodes every cursor move, follows and drives its sliders, re-decodes
when the decoder learns, and tells how far the code lies from the data."""

import numpy as np
import pytest
from PySide6.QtGui import QImage
from scipy.spatial import cKDTree

from engine.datasets import load_dataset
from engine.training import Trainer
from explorer.decoder_canvas import MAX_SLIDERS, DecoderCanvas, NearestCodes
from explorer.session import RunState, Session
from explorer.widgets import ImageCanvas, to_qimage
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def run_folders(run_paths, tmp_path_factory):
    """The shared trained 2-D VAE and a trained 2-D conditional VAE on the bundled digits."""
    cvae = Trainer(DIGITS, small_model("cvae", latent_dim=2), quick_train(epochs=2),
                   run_parent=tmp_path_factory.mktemp("cvae"))
    cvae.run_to_end()
    return {"vae": run_paths[0], "cvae": cvae.run.path}


def open_canvas(qtbot, folder):
    session = Session()
    canvas = DecoderCanvas(session)
    qtbot.addWidget(canvas)
    state = session.add(RunState.open(folder))
    canvas.resize(320, 480)
    canvas.show()
    qtbot.waitExposed(canvas)
    return session, state, canvas


def test_every_cursor_move_is_decoded_and_painted(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    assert canvas.objectName() == canvas.accessibleName() == "decoderCanvas"
    with qtbot.waitSignal(canvas.painted):
        session.cursor.set_code(np.array([-2.5, -2.5]), "test")
    near_image, near_pixels = canvas.current_image(), canvas.image_widget.grab().toImage()
    with qtbot.waitSignal(canvas.painted):
        session.cursor.set_code(np.array([2.5, 2.5]), "test")
    assert canvas.current_image().shape == (1, 8, 8)
    assert np.abs(canvas.current_image() - near_image).max() > 0.1
    np.testing.assert_allclose(canvas.current_image(), state.decode(np.array([[2.5, 2.5]]))[0])
    assert canvas.image_widget.grab().toImage() != near_pixels


def test_binding_a_run_starts_the_cursor_at_the_mean_probe_code(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    np.testing.assert_allclose(session.cursor.code, state.probe.codes.mean(axis=0), rtol=1e-5)
    assert canvas.current_image() is not None


def test_a_slider_moves_the_cursor_and_follows_it(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    assert len(canvas.sliders) == 2
    moves = []
    session.cursor.moved.connect(lambda code, origin: moves.append(origin))
    slider = canvas.sliders[0]
    slider.setValue(slider.minimum())
    low = canvas.current_image()
    slider.setValue(slider.maximum())
    assert moves[-2:] == ["slider", "slider"]
    assert session.cursor.code[0] > 1.0
    assert np.abs(canvas.current_image() - low).max() > 0.05
    session.cursor.set_code(np.array([0.0, 0.0]), "map")
    assert slider.value() == pytest.approx((slider.minimum() + slider.maximum()) / 2, abs=2)


def test_the_decoder_learning_live_is_redecoded(qtbot, tmp_path):
    session = Session()
    canvas = DecoderCanvas(session)
    qtbot.addWidget(canvas)
    state = session.add(RunState(DIGITS, small_model("vae", latent_dim=2), quick_train(epochs=200),
                                 dataset=load_dataset(DIGITS)))
    session.cursor.set_code(np.array([1.0, -1.0]), "test")
    before = canvas.current_image()
    snapshots = []   # new weights come once a frame (FRAME_MS) while the run trains
    state.decoder_changed.connect(lambda: snapshots.append((canvas.current_image(), state.is_training)))
    try:
        state.start(tmp_path)
        qtbot.waitUntil(lambda: sum(live for _, live in snapshots) >= 3, timeout=20_000)
    finally:
        state.stop_and_wait()
    assert np.array_equal(session.cursor.code, np.array([1.0, -1.0], np.float32))
    assert np.abs(snapshots[-1][0] - before).max() > 0.01


def test_off_manifold_readout_grows_away_from_the_data(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    session.cursor.set_code(state.probe.codes[0], "test")
    near = canvas.nearest_data_distance(session.cursor.code)
    assert "on the manifold" in canvas.distance_label.text()
    session.cursor.set_code(np.array([40.0, -40.0]), "test")
    far = canvas.nearest_data_distance(session.cursor.code)
    assert near == pytest.approx(0.0, abs=1e-6) and far > 10
    assert "off the manifold" in canvas.distance_label.text()


def test_no_run_clears_the_manifold_readout(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    session.cursor.set_code(state.probe.codes[0], "test")
    assert "on the manifold" in canvas.distance_label.text()
    session.set_active(None)   # New run (Ctrl+N): "No model" in the image, nothing said about a manifold
    assert canvas.distance_label.text() == ""


def test_nearest_codes_agrees_with_a_kd_tree():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(2000, 8)).astype(np.float32) * 3
    nearest, tree = NearestCodes(codes), cKDTree(codes)
    for query in rng.normal(size=(20, 8)) * 4:
        assert nearest.distance(query) == pytest.approx(tree.query(query)[0], rel=1e-5)
    assert nearest.distance(codes[7]) == 0.0
    sample = np.unique(np.linspace(0, 1999, 128).astype(int))
    expected = np.median(tree.query(codes[sample], k=2)[0][:, 1])
    assert nearest.typical_spacing() == pytest.approx(expected, rel=1e-4)


def test_conditional_models_get_a_label_picker(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["cvae"])
    assert canvas.label_combo.isVisible() and canvas.label_combo.count() == 10
    session.cursor.set_code(np.zeros(2), "test")
    as_zero = canvas.current_image()
    canvas.label_combo.setCurrentIndex(7)
    assert session.cursor.label == 7
    assert np.abs(canvas.current_image() - as_zero).max() > 0.05


def test_sliders_follow_the_active_runs_latent_size(qtbot, run_folders):
    session, state, canvas = open_canvas(qtbot, run_folders["vae"])
    assert len(canvas.sliders) == 2 and not canvas.label_combo.isVisible()
    wide = RunState(DIGITS, small_model("vae", latent_dim=100), quick_train(), dataset=load_dataset(DIGITS))
    session.add(wide)
    assert len(canvas.sliders) == MAX_SLIDERS
    assert canvas.cap_note.isVisible() and "64 of 100" in canvas.cap_note.text()
    assert session.cursor.code.shape == (100,)
    assert canvas.current_image().shape == (1, 8, 8)
    session.set_active(state)
    assert len(canvas.sliders) == 2 and not canvas.cap_note.isVisible()


def test_the_image_is_painted_with_nearest_neighbour_scaling(qtbot):
    widget = ImageCanvas()
    qtbot.addWidget(widget)
    widget.resize(200, 160)
    checker = np.array([[[0.0, 1.0], [1.0, 0.0]]], np.float32)
    widget.set_image(to_qimage(checker))
    widget.show()
    qtbot.waitExposed(widget)
    target = widget.image_rect()
    assert target.width() == target.height() and target.height() <= 160
    inner = widget.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    values = {inner.pixelColor(int(target.x() + dx), int(target.y() + dy)).value()
              for dx in range(2, int(target.width()) - 2, 3) for dy in range(2, int(target.height()) - 2, 3)}
    assert values == {0, 255}


def test_colour_images_keep_their_channels():
    image = np.zeros((3, 4, 5), np.float32)
    image[0] = 1.0  # pure red
    qimage = to_qimage(image)
    assert (qimage.width(), qimage.height()) == (5, 4)
    assert qimage.pixelColor(2, 1).getRgb()[:3] == (255, 0, 0)


def test_slider_handles_show_the_values_they_read(qtbot, run_paths):
    """A new run's cursor sat at zero while its first codes lay elsewhere (an AE's codes at 4-7):
    the handles stuck at the ends of their tracks while the readouts said 0.00.  The cursor now
    starts among the first codes, and a value beyond a slider's range widens it."""
    from engine.history import ProbeCodes
    session = Session()
    canvas = DecoderCanvas(session)
    qtbot.addWidget(canvas)
    state = session.add(RunState(DIGITS, small_model("ae"), quick_train(), dataset=load_dataset(DIGITS)))
    canvas.show()
    codes = np.column_stack([np.linspace(4, 7, 50), np.linspace(-2.5, -0.5, 50)]).astype(np.float32)
    state.probe = ProbeCodes(codes=codes, labels=np.zeros(50, np.int64), indices=np.arange(50))
    state.probe_changed.emit(state.probe)   # the first codes of a new run
    np.testing.assert_allclose(session.cursor.code, codes.mean(axis=0), rtol=1e-5)

    def fraction(slider):
        return (slider.value() - slider.minimum()) / (slider.maximum() - slider.minimum())

    for row, slider in zip(canvas._rows, canvas.sliders):
        assert 0.2 < fraction(slider) < 0.8
        assert float(canvas._rows[row.dim].readout.text()) == pytest.approx(session.cursor.code[row.dim], abs=0.01)
    session.cursor.set_code(np.array([20.0, -0.5]), "map")   # dragged far off the codes
    assert 0.5 < fraction(canvas.sliders[0]) < 1.0 and canvas._rows[0].readout.text() == "20.00"


def give_codes(state: RunState, codes: np.ndarray) -> None:
    """A probe update of ``codes`` (labels 0, indices 0..N-1) for ``state``."""
    from engine.history import ProbeCodes
    n = len(codes)
    state.probe = ProbeCodes(codes, np.zeros(n, np.int64), np.arange(n))
    state.probe_changed.emit(state.probe)


def many_codes() -> np.ndarray:
    """More 2-D codes than the decoder canvas measures the spacing of on the GUI thread."""
    from explorer.decoder_canvas import SPACING_AT_ONCE_MAX
    return np.random.default_rng(0).normal(size=(SPACING_AT_ONCE_MAX + 1, 2)).astype(np.float32)


def test_the_spacing_of_a_whole_dataset_of_codes_is_measured_off_the_gui_thread(qtbot, monkeypatch):
    # 70,000 codes (View -> Map points: all): the typical spacing took ~50 ms of the GUI thread at
    # every probe update, and drags stalled up to 66 ms (bench_drag_latency.py --probe-set all)
    import threading

    from explorer import decoder_canvas
    threads = []
    measure = decoder_canvas.NearestCodes.typical_spacing
    monkeypatch.setattr(decoder_canvas.NearestCodes, "typical_spacing",
                        lambda self, *a, **k: (threads.append(threading.current_thread()), measure(self, *a, **k))[1])
    session = Session()
    state = session.add(RunState(DIGITS, small_model("vae"), quick_train()))
    canvas = DecoderCanvas(session)
    qtbot.addWidget(canvas)
    codes = many_codes()
    give_codes(state, codes)
    qtbot.waitUntil(lambda: np.isfinite(canvas._typical_spacing), timeout=10_000)
    assert threads and threads[-1] is not threading.main_thread()
    assert canvas._typical_spacing == pytest.approx(NearestCodes(codes).typical_spacing())
    qtbot.waitUntil(lambda: canvas._spacing_task is None, timeout=5_000)   # the finished task went
    small = codes[:500]
    give_codes(state, small)   # a few thousand codes: measured at once
    assert threads[-1] is threading.main_thread()
    assert canvas._typical_spacing == pytest.approx(NearestCodes(small).typical_spacing())


def test_a_canvas_closed_while_its_spacing_is_measured_goes_quietly(qtbot, monkeypatch):
    import time

    from explorer import decoder_canvas
    from explorer.tasks import wait_for_tasks
    measure = decoder_canvas.NearestCodes.typical_spacing
    monkeypatch.setattr(decoder_canvas.NearestCodes, "typical_spacing",
                        lambda self, *a, **k: (time.sleep(0.3), measure(self, *a, **k))[1])
    session = Session()
    state = session.add(RunState(DIGITS, small_model("vae"), quick_train()))
    canvas = DecoderCanvas(session)
    give_codes(state, many_codes())
    task = canvas._spacing_task
    assert task is not None and task.thread.isRunning()
    canvas.deleteLater()   # as a comparison window closing at a probe update
    qtbot.wait(50)
    assert wait_for_tasks(5_000)
    qtbot.wait(100)        # its last signals arrive after the canvas has gone: no error
