"""The run state's frame clock: the live views hear of training updates at most once a frame."""

import time

import numpy as np

from engine.datasets import load_dataset
from explorer.session import FRAME_MS, RunState
from tests.engine.helpers import DIGITS, quick_train, small_model


def test_views_refresh_once_a_frame_while_a_run_trains(qtbot, tmp_path):
    """Updates come every few steps; the views that show the latest numbers (and the decoder's
    image) hear of them at most once a frame, together, and once more when the run ends."""
    state = RunState(DIGITS, small_model("vae"), quick_train(epochs=40), dataset=load_dataset(DIGITS))
    updates, frames, events = [], [], []
    state.progressed.connect(updates.append)
    state.refreshed.connect(lambda: (frames.append(time.perf_counter()), events.append("frame")))
    state.decoder_changed.connect(lambda: events.append("decoder"))
    try:
        state.start(tmp_path)
        qtbot.waitUntil(lambda: len(frames) >= 4, timeout=30_000)
    finally:
        state.stop_and_wait()
    assert len(updates) > len(frames)
    assert (np.diff(frames[:4]) * 1000 >= FRAME_MS * 0.9).all()
    assert "decoder" in events
    assert all(events[i + 1] == "frame" for i, e in enumerate(events) if e == "decoder")
    assert not any(a == b == "decoder" for a, b in zip(events, events[1:]))
