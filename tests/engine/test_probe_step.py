"""The saved probe codes keep the step they were encoded at (fault 13: a finished run opened from
disk read its codes as step 0, and the map's colour caption said "at step 0")."""

import shutil

import torch
from safetensors.torch import load_file, save_file

from engine.datasets import load_dataset
from engine.runs import PROBE, Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model


def test_a_finished_runs_probe_is_read_at_its_last_step_or_the_checkpoints(tmp_path):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1), dataset=load_dataset(DIGITS),
                      run_parent=tmp_path)
    trainer.run_to_end()
    run = Run.open(trainer.run.path)
    assert run.status == "completed" and run.step > 0
    assert run.load_probe().step == run.step
    # a probe file written without its step (by hand, or damaged metadata): the checkpoint's step
    path = run.file(PROBE)
    tensors = {name: t.clone() for name, t in load_file(str(path)).items()}
    path.unlink()
    save_file(tensors, str(path), metadata={"step": "not a number"})
    assert run.load_probe().step == run.step
    save_file(tensors, str(path))
    assert Run.open(shutil.copytree(run.path, tmp_path / "copy")).load_probe().step == run.step
    assert torch.equal(torch.from_numpy(run.load_probe().codes), tensors["codes"])
