"""The trainer: updates in order, determinism, pause/resume/stop from another thread, NaN."""

import threading

import numpy as np
import pytest
import torch

from engine.datasets import load_dataset
from engine.errors import ConfigError
from engine.training import TRAIN_THREADS, Trainer, resolve_device
from tests.engine.helpers import DIGITS, quick_train, small_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def test_updates_carry_copies_probe_codes_and_snapshots(digits):
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=2), dataset=digits)
    updates = list(trainer.updates())
    kinds = [u.kind for u in updates]
    assert kinds[-1] == "finished" and kinds.count("epoch") == 2 and kinds.count("finished") == 1
    assert updates[-1].status == "completed"
    steps = np.concatenate([u.steps for u in updates])
    assert list(steps) == list(range(1, updates[-1].step + 1)), "every step is reported exactly once"
    probes = [u.probe for u in updates if u.probe is not None]
    assert probes and probes[-1].codes.shape == (len(digits.val), 2) and probes[-1].codes.dtype == np.float32
    assert len(probes[-1].labels) == len(digits.val) and probes[-1].indices.max() < len(digits.val)
    snaps = [u.model_state for u in updates if u.model_state is not None]
    assert len(snaps) >= 3
    live = trainer.model.state_dict()
    assert set(snaps[-1]) == set(live), "the snapshot is the whole model: encoder, decoder, buffers"
    assert any(k.startswith("encoder.") for k in snaps[-1]) and "code_mean" in snaps[-1]
    for k, v in snaps[-1].items():
        assert v.device.type == "cpu" and v.data_ptr() != live[k].data_ptr()
        assert torch.equal(v, live[k])
    epoch = [u for u in updates if u.kind == "epoch"][-1]
    assert set(epoch.val_terms) == {"total", "reconstruction", "kl", "neg_elbo"}
    assert epoch.epoch_samples_per_sec > 0 and epoch.samples_per_sec >= 0


def test_same_seed_same_history(digits):
    histories = []
    for _ in range(2):
        trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1), dataset=digits)
        trainer.run_to_end()
        histories.append(trainer.history.terms["total"])
    assert histories[0] == histories[1]


def test_pause_resume_and_stop_between_steps(digits):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=50, report_every=1), dataset=digits)
    seen = []
    paused_at = threading.Event()

    def drive():
        for update in trainer.updates():
            seen.append(update)
            if update.step == 5 and not paused_at.is_set():
                trainer.pause()
                paused_at.set()

    thread = threading.Thread(target=drive)
    thread.start()
    assert paused_at.wait(30)
    count = len(seen)
    thread.join(0.3)
    assert thread.is_alive() and len(seen) == count, "no step is taken while paused"
    trainer.resume_training()
    while seen[-1].step < 12:
        thread.join(0.01)
    trainer.stop()
    thread.join(30)
    assert not thread.is_alive()
    last = seen[-1]
    assert last.kind == "finished" and last.status == "stopped"
    assert last.epoch < 50


def test_nan_loss_stops_and_keeps_the_last_finite_weights(digits, monkeypatch):
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=3), dataset=digits)
    gen = trainer.updates()
    first = next(gen)
    assert first.step == 0
    calls = {"n": 0}
    model = trainer.model
    original = model.loss

    before = {}

    def poisoned(x, y=None):
        calls["n"] += 1
        out = original(x, y)
        if calls["n"] == 7:   # the weights now are those after step 6, the last finite ones
            before.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            out.total = out.total * float("nan")
        return out

    monkeypatch.setattr(model, "loss", poisoned)
    updates = list(gen)
    last = updates[-1]
    assert last.status == "failed" and "NaN" in last.reason and last.step == 6
    assert set(before) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed after the non-finite loss"
    assert all(torch.equal(last.model_state[k], before[k]) for k in before)


def test_nan_gradient_stops_before_the_step(digits, monkeypatch):
    """A finite loss whose gradient is not finite: the step is not taken either."""
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=3), dataset=digits)
    gen = trainer.updates()
    next(gen)
    model = trainer.model
    original = model.loss
    calls = {"n": 0}
    before = {}

    def poisoned(x, y=None):
        calls["n"] += 1
        out = original(x, y)
        if calls["n"] == 4:
            before.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            # adds 0 to the loss, but d/dw sqrt(0·|w|) = inf·0 = NaN
            out.total = out.total + torch.sqrt(model.decoder.code_weight().abs().sum() * 0)
        return out

    monkeypatch.setattr(model, "loss", poisoned)
    last = list(gen)[-1]
    assert last.status == "failed" and "gradient" in last.reason and last.step == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_cuda_without_a_gpu_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no usable CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(batch_size=0), dict(device="tpu")])
def test_bad_training_values_are_refused(bad):
    with pytest.raises(ConfigError):
        quick_train(**bad).validate()


def test_training_takes_torch_default_thread_count_in_any_thread(digits):
    """The count torch uses is per thread and inherited from the last one set anywhere; a GUI
    thread sets one for itself, and a trainer started after it must still get the default."""
    seen = []

    def train():
        torch.set_num_threads(1)   # as if the GUI thread had set its count last
        for _ in Trainer(DIGITS, small_model("ae"), quick_train(epochs=1), dataset=digits).updates():
            seen.append(torch.get_num_threads())

    thread = threading.Thread(target=train)
    thread.start()
    thread.join()
    assert seen and set(seen) == {TRAIN_THREADS}


def test_adopt_state_uses_the_snapshot_without_copying_and_falls_back_on_a_mismatch():
    from engine.config import ModelConfig
    from engine.models import build_model
    from engine.training import adopt_state, copy_state

    source = build_model(ModelConfig(variant="vae", latent_dim=2), (1, 8, 8), 10)
    target = build_model(ModelConfig(variant="vae", latent_dim=2), (1, 8, 8), 10)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)   # certainly different from the source
    snapshot = copy_state(source)
    adopt_state(target, snapshot)
    for name, tensor in target.state_dict().items():
        assert tensor.data_ptr() == snapshot[name].data_ptr(), f"{name} was copied"
    z = torch.zeros(3, 2)
    with torch.no_grad():
        assert torch.equal(target.decode(z), source.decode(z))
    assert all(p.requires_grad for p in target.parameters()), "the parameters stay parameters"
    wrong = dict(copy_state(source))
    wrong.pop(next(iter(wrong)))
    with pytest.raises(RuntimeError, match="Missing key"):
        adopt_state(target, wrong)   # load_state_dict's own error
