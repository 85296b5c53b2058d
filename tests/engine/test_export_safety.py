"""Faults 4 and 5: one rule for every export's --out (an existing file or folder is refused unless
--force, and then replaced in one step), and an export stopped by SIGTERM removes its temporary
output instead of leaving `.NAME.tmp` folders in the user's --out."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.cli import main
from engine.outputs import Terminated, refuse_existing, temporary_output
from tests.engine.helpers import DIGITS, quick_train, small_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    from engine.training import Trainer
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1), run_parent=tmp_path_factory.mktemp("runs"))
    trainer.run_to_end()
    return str(trainer.run.path)


@pytest.mark.parametrize("what,name", [("samples", "s.png"), ("interpolation", "i.gif"), ("interpolation", "i.png"),
                                       ("traversal", "t.gif"), ("embeddings", "e.csv"), ("movie", "m.gif")])
def test_an_existing_out_is_refused_without_force(run_path, tmp_path, capsys, what, name):
    out = tmp_path / name
    out.write_bytes(b"kept")
    assert main(["export", what, run_path, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} already exists; choose another name, or add --force to replace it." in err
    assert len(err.strip().splitlines()) == 1 and out.read_bytes() == b"kept"


def test_force_replaces_the_file_in_one_step(run_path, tmp_path, monkeypatch):
    out = tmp_path / "s.png"
    out.write_bytes(b"old")
    inode = out.stat().st_ino
    assert main(["export", "samples", run_path, "--out", str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_ino != inode   # renamed over, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]


def test_tensorboard_follows_the_same_rule(run_path, tmp_path, capsys):
    pytest.importorskip("torch.utils.tensorboard")
    logdir = tmp_path / "tb"
    assert main(["export", "tensorboard", run_path, "--out", str(logdir)]) == 0
    target = next(logdir.iterdir())
    (target / "mine.txt").write_text("old")
    assert main(["export", "tensorboard", run_path, "--out", str(logdir)]) == 2
    assert "add --force to replace it" in capsys.readouterr().err and (target / "mine.txt").exists()
    assert main(["export", "tensorboard", run_path, "--out", str(logdir), "--force"]) == 0
    assert not (target / "mine.txt").exists() and any(target.iterdir())
    assert [p.name for p in logdir.iterdir()] == [target.name]   # no .tmp or .old folder left


def test_compare_outputs_follow_the_same_rule(run_path, tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("kept")
    assert main(["compare", run_path, "--table", str(table)]) == 2
    assert "add --force to replace it" in capsys.readouterr().err and table.read_text() == "kept"
    assert main(["compare", run_path, "--table", str(table), "--force"]) == 0
    assert table.read_text() != "kept"


def test_temporary_output_is_removed_when_the_block_is_stopped(tmp_path):
    refuse_existing(tmp_path / "new.png", replace=False)
    tmp = tmp_path / ".x.tmp"
    with pytest.raises(Terminated):
        with temporary_output(tmp):
            tmp.mkdir()
            (tmp / "events").write_text("half")
            raise Terminated(signal.SIGTERM)
    assert not tmp.exists()


SLOW_EXPORT = textwrap.dedent("""
    import sys, time
    from torch.utils.tensorboard import SummaryWriter
    def slow(self, *args, **kwargs):
        print("writing", flush=True)
        time.sleep(120)
    SummaryWriter.add_embedding = slow
    from engine.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_an_export_killed_with_sigterm_leaves_no_temporary_folder(run_path, tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    logdir = tmp_path / "tb"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXPORT, "export", "tensorboard", run_path, "--out", str(logdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert [p.name.endswith(".tmp") for p in logdir.iterdir()] == [True]   # mid-export
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by signal" in err and "Traceback" not in err
    assert list(logdir.iterdir()) == []


def test_main_puts_the_previous_sigterm_handler_back(tmp_path):
    """The handler is the CLI command's alone: a process calling main() (a test runner) keeps its own."""
    before = signal.getsignal(signal.SIGTERM)
    assert main(["export", "samples", str(tmp_path / "nope"), "--out", str(tmp_path / "s.png")]) == 2
    assert signal.getsignal(signal.SIGTERM) is before
