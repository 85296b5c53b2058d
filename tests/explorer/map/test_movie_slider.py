"""The training movie in the app: the time slider scrubs the map's points through training, the
loss plot marks the frame's step, and a live run's movie grows with every probe update."""

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from engine.history import ProbeCodes
from engine.movie import ProbeMovie
from explorer.loss.plot import LossPlot
from explorer.map.latent_view import LatentView
from explorer.session import RunState, Session


def movie_of(state: RunState, frames: int = 5) -> ProbeMovie:
    """A movie whose codes shrink towards the final ones (as a map settles through training)."""
    final = state.probe
    movie = ProbeMovie()
    for i in range(frames):
        scale = 3.0 - 2.0 * i / (frames - 1)
        movie.add(ProbeCodes(final.codes * scale + (frames - 1 - i), final.labels, final.indices, step=10 * (i + 1)))
    return movie


@pytest.fixture
def scrub(qtbot, run_paths):
    session = Session()
    view, plot = LatentView(session), LossPlot(session)
    for w in (view, plot):
        qtbot.addWidget(w)
    view.movie_slider.step_chosen.connect(plot.mark_step)
    state = RunState.open(run_paths[0])
    state.movie = movie_of(state)
    session.add(state)
    view.resize(700, 500)
    view.show()
    qtbot.waitExposed(view)
    yield state, view, plot
    assert view.shutdown()


def test_the_slider_moves_the_points_and_marks_the_step(scrub):
    state, view, plot = scrub
    slider = view.movie_slider
    assert slider.isEnabled() and slider.slider.maximum() == 4 and slider.is_live
    live = view._xy.copy()
    np.testing.assert_allclose(live, state.probe.codes, rtol=1e-5)
    slider.show_frame(0)
    QApplication.processEvents()
    first = view._xy.copy()
    assert not np.allclose(first, live), "the points moved to the first frame"
    np.testing.assert_allclose(first, state.movie.frame(0).codes, rtol=1e-3, atol=1e-3)
    assert plot.marked_step() == 10.0
    assert "step 10" in slider.caption.text()
    slider.show_frame(2)
    QApplication.processEvents()
    assert not np.allclose(view._xy, first) and plot.marked_step() == 30.0
    slider.go_live()
    QApplication.processEvents()
    np.testing.assert_allclose(view._xy, live)
    assert plot.marked_step() is None and "live" in slider.caption.text()


def test_a_live_run_keeps_a_movie_of_its_probes(qtbot):
    from tests.engine.helpers import DIGITS, quick_train, small_model
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    from engine.datasets import load_dataset
    state = RunState(DIGITS, small_model("vae"), quick_train(epochs=2), dataset=load_dataset(DIGITS))
    session.add(state)
    seen = []
    state.probe_changed.connect(lambda p: seen.append(p.step))
    try:
        import tempfile
        with tempfile.TemporaryDirectory() as out:
            state.start(out)
            qtbot.waitUntil(lambda: not state.is_training, timeout=60_000)
            state.stop_and_wait()
    finally:
        assert view.shutdown()
    kept = sorted(set(seen))   # the final probe repeats the last step: it replaces that frame
    assert len(kept) >= 2 and state.movie.steps.tolist() == kept
    assert view.movie_slider.slider.maximum() == len(kept) - 1 and view.movie_slider.is_live


def test_a_run_without_a_movie_has_a_disabled_slider(qtbot, run_paths, tmp_path):
    import shutil
    old = shutil.copytree(run_paths[1], tmp_path / "old-run")
    (old / "movie.safetensors").unlink(missing_ok=True)   # as a run folder from before the trainer kept a movie
    session = Session()
    view = LatentView(session)
    qtbot.addWidget(view)
    session.add(RunState.open(old))   # a saved run without movie.safetensors: its probe is one frame
    assert not view.movie_slider.isEnabled()
    assert view.shutdown()
