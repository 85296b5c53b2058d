"""Slow projection fits in a child process: the same layouts as in this process, failures as one
sentence, and a close that never waits for a fit."""

import os
import threading
import time

import numpy as np
import pytest

from engine.projection import TSNEProjection
from engine.projection_service import ProjectionClosed, ProjectionFailed, ProjectionProcess, _read, _write


@pytest.fixture
def service():
    process = ProjectionProcess()
    yield process
    process.close()
    assert not process.is_alive()


def blobs(n_per: int = 30, dim: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.3, size=(n_per, dim)) for c in (0, 4)]).astype(np.float32)


def test_a_fit_in_the_child_is_the_fit_in_this_process(service):
    codes = blobs()
    here = TSNEProjection(perplexity=5).fit_transform(codes)
    there = service.fit("tsne", codes, perplexity=5)
    assert there.shape == (60, 2) and there.dtype == np.float64
    np.testing.assert_allclose(there, here, rtol=1e-6, atol=1e-6)
    warm = service.fit("tsne", codes + 0.01, perplexity=5, init=there)  # the init array crosses too
    assert warm.shape == (60, 2) and np.linalg.norm(warm - there, axis=1).mean() < 0.2 * np.ptp(there, axis=0).mean()
    assert service.last_seconds > 0


def test_a_failed_fit_is_one_sentence_and_the_child_goes_on(service):
    with pytest.raises(ProjectionFailed, match="finite codes"):
        service.fit("tsne", np.full((10, 3), np.nan))
    with pytest.raises(ProjectionFailed, match="Unknown projection"):
        service.fit("isomap", blobs())
    assert service.fit("pca", blobs()).shape == (60, 2)


def test_close_abandons_a_fit_at_once(service):
    service.fit("pca", blobs())  # the child is up
    rng = np.random.default_rng(0)
    big = rng.normal(size=(4000, 16)).astype(np.float32)
    outcome = {}

    def fit():
        try:
            service.fit("tsne", big)
        except ProjectionClosed as exc:
            outcome["closed"] = (str(exc), time.perf_counter())

    fitting = threading.Thread(target=fit)
    fitting.start()
    time.sleep(0.5)  # the child is inside openTSNE now
    start = time.perf_counter()
    service.close()
    closed_in = time.perf_counter() - start
    fitting.join(5)
    assert not fitting.is_alive() and "closed" in outcome
    assert closed_in < 1.0 and outcome["closed"][1] - start < 1.0
    assert not service.is_alive()
    with pytest.raises(ProjectionClosed):
        service.fit("pca", blobs())


def test_messages_carry_numbers_only(tmp_path):
    path = tmp_path / "pipe"
    with open(path, "wb") as out:
        _write(out, {"kind": "fit"}, {"codes": np.arange(6, dtype=np.float32).reshape(3, 2)})
    with open(path, "rb") as inp:
        header, arrays = _read(inp)
    assert header == {"kind": "fit"} and arrays["codes"].tolist() == [[0, 1], [2, 3], [4, 5]]
    with open(path, "wb") as out:
        out.write(b'{"arrays": {"x": ["|O", [1]]}}\n')
    with open(path, "rb") as inp, pytest.raises(ValueError, match="Unexpected array"):
        _read(inp)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="reads a process's nice value")
def test_the_child_runs_below_the_training_threads(monkeypatch):
    """A map is a view of the training: the child's nice value is above the training threads'
    (at a fixed 2 it outranked the app's training at nice 10 and cut it to a sixth)."""
    import engine.training
    monkeypatch.setattr(engine.training, "TRAIN_NICENESS", 10)
    process = ProjectionProcess()
    try:
        process.start()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        deadline = time.monotonic() + 30
        while os.getpriority(os.PRIO_PROCESS, process.pid) == own and time.monotonic() < deadline:
            time.sleep(0.05)   # the child lowers itself as it starts
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, own + 12)
    finally:
        process.close()
