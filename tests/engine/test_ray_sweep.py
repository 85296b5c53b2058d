"""Sweeps on a real local Ray cluster of 2 CPUs (one started for this module, stopped after it):
the runs land as ordinary run folders that `info` and the app's reader (RunState.read) open; a worker killed in the
middle of a run is the test's "node died": Ray runs the task again, which resumes the run folder
from its last checkpoint; with no retries left the row says failed, `info` says interrupted and
`resume` finishes the run."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray  # the test extra installs it: these tests run in `make test`, never skipped

from engine import sweep
from engine.cli import main
from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.run_lock import LOCK
from engine.runs import CONFIG, Run
from explorer.session import RunState
from tests.engine.helpers import child_pids

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's processes through /proc")]

FAST = ["--dataset", "digits", "--epochs", "1", "--hidden", "16", "--batch-size", "128", "--quiet", "--device", "cpu"]
#: a run long enough (about 60 epochs of 1,617 digits, a few seconds) to be killed after its second checkpoint
LONG_EPOCHS = 60



@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for the module; no Ray process outlives it."""
    before = child_pids()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
    deadline = time.monotonic() + 10
    while child_pids() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child_pids() - before, "Ray left processes running"


def folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_a_sweep_on_the_cluster_lands_as_ordinary_run_folders(cluster, tmp_path, capsys):
    out = tmp_path / "shared"
    t0 = time.perf_counter()
    code = main(["sweep", "--model", "beta_vae", "--beta", "1,4", *FAST, "--out", str(out), "--ray", "local"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "2 runs, 0 failed" in printed
    print(f"2-run sweep on the running cluster: {time.perf_counter() - t0:.1f} s")
    runs = folders(out)
    assert len(runs) == 2
    for path in runs:
        assert main(["info", str(path)]) == 0
        described = capsys.readouterr().out
        assert "status     completed" in described and "1/1 epochs" in described
        saved = RunState.read(path)   # what the app's File > Open reads (its Qt part aside)
        assert saved.run.status == "completed" and saved.run.model.variant == "beta_vae"
        assert saved.model.latent_dim == 2 and saved.probe is not None
    assert sorted(Run.open(p).model.params.beta for p in runs) == [1.0, 4.0]


def _long_item() -> sweep.SweepItem:
    return sweep.expand(DataConfig(source="digits"), ModelConfig(variant="vae", latent_dim=2, hidden=(16,)),
                        TrainConfig(epochs=LONG_EPOCHS, batch_size=64, device="cpu"), {})[0]


def _kill_after_two_checkpoints(out: Path, killed: list) -> threading.Thread:
    """A thread that SIGKILLs the Ray worker training the run under ``out`` (the pid in its
    lock file) once two epochs are saved: what a node dying does to the task."""
    def watch():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for cfg in out.glob(f"*/{CONFIG}"):
                try:
                    saved = json.loads(cfg.read_text())
                    pid = int((cfg.parent / LOCK).read_text())
                except (OSError, ValueError):
                    continue
                if saved.get("status") == "running" and saved.get("epochs_done", 0) >= 2:
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, saved["epochs_done"]))
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, name="kill-the-worker")
    thread.start()
    return thread


def test_a_worker_killed_mid_run_is_retried_and_the_retry_resumes_its_folder(cluster, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    killed: list = []
    watcher = _kill_after_two_checkpoints(out, killed)
    try:
        [result] = sweep.run_on_ray([_long_item()], out, "local")
    finally:
        killed.append("stop")
        watcher.join()
    assert isinstance(killed[0], tuple), "the run finished before the worker could be killed"
    pid, epochs_at_kill = killed[0]
    assert epochs_at_kill < LONG_EPOCHS
    assert result.status == "completed", result.reason
    [path] = folders(out)    # the retry continued the folder; a fresh start would have made <name>-2
    run = Run.open(path)
    assert run.status == "completed" and run.epochs_done == LONG_EPOCHS
    assert len(run.history.val["total"]) == LONG_EPOCHS   # one validation per epoch: none twice, none lost
    assert pid != os.getpid()


def test_a_killed_worker_without_retries_reads_interrupted_and_resume_finishes_it(cluster, tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.setattr(sweep, "RAY_RETRIES", 0)
    out = tmp_path / "shared"
    out.mkdir()
    killed: list = []
    watcher = _kill_after_two_checkpoints(out, killed)
    try:
        [result] = sweep.run_on_ray([_long_item()], out, "local")
    finally:
        killed.append("stop")
        watcher.join()
    assert isinstance(killed[0], tuple), "the run finished before the worker could be killed"
    assert result.status == "failed" and "main.py resume" in result.reason
    [path] = folders(out)
    assert result.path == str(path)
    assert main(["info", str(path)]) == 0
    described = capsys.readouterr().out
    assert "interrupted at step" in described and "resume continues from the last checkpoint" in described
    assert main(["resume", str(path), "--epochs", str(LONG_EPOCHS), "--quiet"]) == 0
    run = Run.open(path)
    assert run.status == "completed" and run.epochs_done == LONG_EPOCHS
    assert len(run.history.val["total"]) == LONG_EPOCHS
