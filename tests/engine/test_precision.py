"""Mixed precision (``--precision bf16``): the training steps run under bfloat16 autocast (the
CPU has it too), give finite, falling losses on digits, validate in float32; a bad precision or
a GPU without bfloat16 is one sentence.  Also the step log's one stack of mixed-dtype terms."""

import json
import math

import numpy as np
import pytest
import torch

from engine.batches import StepLog
from engine.cli import main
from engine.config import TrainConfig
from engine.datasets import load_dataset
from engine.errors import ConfigError
from engine.training import Trainer, training_autocast
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def _watch_autocast(model, seen: dict) -> None:
    """Record whether CPU autocast was on in each training step and each validation loss."""
    step, loss = model.training_step, model.loss

    def training_step(*args, **kwargs):
        seen["step"].append(torch.is_autocast_enabled("cpu"))
        return step(*args, **kwargs)

    def validation_loss(*args, **kwargs):
        if not torch.is_grad_enabled():   # validation (evaluate runs under no_grad)
            seen["validation"].append(torch.is_autocast_enabled("cpu"))
        return loss(*args, **kwargs)

    model.training_step, model.loss = training_step, validation_loss


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bf16_trains_under_autocast_with_finite_falling_losses_and_validates_in_float32(digits, precision):
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=3, precision=precision), dataset=digits)
    seen = {"step": [], "validation": []}
    updates = trainer.updates()
    first = next(updates)   # the model exists once the first update is out
    assert first.kind == "progress"
    _watch_autocast(trainer.model, seen)
    last = list(updates)[-1]
    assert last.status == "completed", last.reason
    assert seen["step"] and all(on == (precision == "bf16") for on in seen["step"])
    assert seen["validation"] and not any(seen["validation"]), "validation is float32 in both precisions"
    history = trainer.history
    val = history.val["total"]
    assert len(val) == 3 and all(math.isfinite(v) for v in val)
    assert val[-1] < val[0], f"validation total per image should fall: {val}"
    train = history.train["total"]
    assert all(math.isfinite(v) for v in train) and train[-1] < train[0]
    steps = np.asarray(history.terms["total"])
    assert np.isfinite(steps).all()
    assert all(v.dtype == torch.float32 for v in trainer.model.state_dict().values()
               if v.is_floating_point()), "the weights stay float32"


def test_a_bad_precision_is_one_sentence_in_the_config_and_the_cli(capsys):
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, not 'fp16'"):
        TrainConfig(precision="fp16").validate()
    assert main(["train", "--dataset", "digits", "--precision", "fp16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--precision" in err and "'fp16'" in err and "Traceback" not in err


def test_the_cli_trains_in_bf16_and_the_run_records_it(tmp_path):
    assert main(["train", "--dataset", "digits", "--model", "vae", "--latent-dim", "2", "--hidden", "32",
                 "--epochs", "1", "--precision", "bf16", "--out", str(tmp_path), "--name", "r", "--quiet"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["train"]["precision"] == "bf16"


def test_bf16_on_a_gpu_without_bfloat16_is_refused_in_one_sentence(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError, match="cannot compute in bfloat16; train with --precision fp32"):
        training_autocast(torch.device("cuda"), "bf16")
    assert isinstance(training_autocast(torch.device("cpu"), "bf16"), torch.autocast)


def test_the_step_log_stacks_float32_and_bfloat16_terms_once_at_take():
    log = StepLog()
    log.add(1, {"total": torch.tensor(1.5), "kl": torch.tensor(0.25, dtype=torch.bfloat16)})
    log.add(2, {"total": torch.tensor([2.5]), "other": torch.tensor(3.0)})
    steps, terms = log.take()
    assert list(steps) == [1, 2]
    assert terms["total"].tolist() == [1.5, 2.5]
    assert terms["kl"][0] == 0.25 and math.isnan(terms["kl"][1])
    assert math.isnan(terms["other"][0]) and terms["other"][1] == 3.0
    assert log.epoch_means() == {"total": 2.0, "kl": 0.25, "other": 3.0}


def test_the_device_check_trains_the_vae_in_bf16_and_reports_its_row(digits, tmp_path):
    from benchmarks.device_check import Table, check_bf16
    table = Table()
    check_bf16("cpu", 2, digits, tmp_path, table)
    (row,) = table.rows
    assert row["check"] == "variant vae bf16" and row["status"] == "ok", row
    assert math.isfinite(row["value"]) and "bf16 autocast" in row["unit"]
