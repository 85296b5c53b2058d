"""The engine's shape: models own their optimizers and training step, every optimizer's state is
saved and resumed, the whole model crosses to the GUI, the registry refuses pairs that cannot
work, and run folders written before all this still open."""

import copy
import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.datasets import load_dataset
from engine.errors import ConfigError
from engine.history import History
from engine.models import VARIANTS, adversarial, build_model, check_compatible
from engine.runs import Run
from engine.storage import read_tensor_metadata
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model

OLD_RUNS = Path(__file__).parent.parent / "data" / "old_runs"


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


def _params(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_aae_phases_each_update_only_their_own_parameters():
    torch.manual_seed(0)
    model = build_model(small_model("aae", latent_dim=2), (1, 8, 8), 10)
    optimizers = model.configure_optimizers(1e-2)
    assert set(optimizers) == {"autoencoder", "discriminator", "generator"}
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    groups = {"encoder": model.encoder, "decoder": model.decoder, "discriminator": model.discriminator}
    phases = [("reconstruction", lambda: model.reconstruction_phase(x, optimizers["autoencoder"]), {"encoder", "decoder"}),
              ("discriminator", lambda: model.discriminator_phase(x, y, optimizers["discriminator"]), {"discriminator"}),
              ("generator", lambda: model.generator_phase(x, y, optimizers["generator"]), {"encoder"})]
    for name, run_phase, owners in phases:
        before = {g: _params(m) for g, m in groups.items()}
        run_phase()
        for g, m in groups.items():
            changed = any(not torch.equal(v, before[g][k]) for k, v in _params(m).items())
            assert changed == (g in owners), f"the {name} phase {'did not update' if g in owners else 'updated'} the {g}"


def _changed(module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in _params(module).items())


def test_aae_joint_step_moves_encoder_and_decoder_in_one_step_and_at_zero_weight_is_a_reconstruction_step():
    torch.manual_seed(0)
    model = build_model(small_model("aae", latent_dim=2), (1, 8, 8), 10)
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    twins = {name: copy.deepcopy(model) for name in ("joint", "joint at 0", "reconstruction")}
    before = {g: _params(getattr(model, g)) for g in ("encoder", "decoder", "discriminator")}
    joint = twins["joint"]
    rec, gen = joint.joint_phase(x, y, joint.configure_optimizers(1e-2)["autoencoder"], 1.0)
    assert rec.ndim == gen.ndim == 0 and gen > 0
    assert _changed(joint.encoder, before["encoder"]) and _changed(joint.decoder, before["decoder"])
    assert not _changed(joint.discriminator, before["discriminator"])
    at_zero, plain = twins["joint at 0"], twins["reconstruction"]
    at_zero.joint_phase(x, y, at_zero.configure_optimizers(1e-2)["autoencoder"], 0.0)
    plain.reconstruction_phase(x, plain.configure_optimizers(1e-2)["autoencoder"])
    for g in ("encoder", "decoder"):   # λ = 0: the discriminator's gradient never reaches the codes
        assert not _changed(getattr(at_zero, g), _params(getattr(plain, g))), f"λ = 0 moved the {g} off rec's step"
    assert _changed(joint.encoder, _params(plain.encoder)), "λ = 1 left the encoder on rec's step"
    assert not _changed(joint.decoder, _params(plain.decoder)), "the adversarial term reached the decoder"


def test_the_aae_trains_in_the_joint_form_by_default_and_never_steps_the_generator_optimizer():
    torch.manual_seed(0)
    assert adversarial.JOINT_ADVERSARIAL_WEIGHT is not None
    model = build_model(small_model("aae", latent_dim=2), (1, 8, 8), 10)
    optimizers = model.configure_optimizers(1e-2)
    x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for _ in range(2):
        terms = model.training_step(x, y, optimizers)
    assert set(terms) == {"total", "reconstruction", "discriminator", "generator"}
    assert terms["total"] is terms["reconstruction"]
    steps = {name: [int(s["step"]) for s in opt.state_dict()["state"].values()] for name, opt in optimizers.items()}
    assert steps["generator"] == []   # kept for saved runs, never stepped
    assert set(steps["autoencoder"]) == {2} and set(steps["discriminator"]) == {2 * adversarial.DISCRIMINATOR_STEPS}


@pytest.mark.parametrize("form", ["three phases", "joint"])
def test_a_multi_optimizer_run_resumed_continues_exactly_as_an_uninterrupted_one(tmp_path, digits, form, monkeypatch):
    joint_weight = None if form == "three phases" else 300.0
    monkeypatch.setattr(adversarial, "JOINT_ADVERSARIAL_WEIGHT", joint_weight)
    cfg = small_model("aae", latent_dim=2, prior="mixture")
    whole = Trainer(DIGITS, cfg, quick_train(epochs=2), dataset=digits, run_parent=tmp_path / "whole")
    whole.run_to_end()
    first = Trainer(DIGITS, cfg, quick_train(epochs=1), dataset=digits, run_parent=tmp_path / "split")
    first.run_to_end()
    optimizer_file = load_file(str(first.run.file("optimizer.safetensors")))
    stepped = {"autoencoder", "discriminator"} | ({"generator"} if joint_weight is None else set())
    assert {k.split("/")[0] for k in optimizer_file} == stepped   # the joint form never steps the generator's
    meta = read_tensor_metadata(first.run.file("optimizer.safetensors"))
    assert {k for k in meta if k.startswith("param_groups/")} == {
        f"param_groups/{name}" for name in ("autoencoder", "discriminator", "generator")}
    resumed = Trainer.resume(Run.open(first.run.path), epochs=2, dataset=digits)
    resumed.run_to_end()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after the resume"
    for name in whole.optimizers:
        sa, sb = whole.optimizers[name].state_dict()["state"], resumed.optimizers[name].state_dict()["state"]
        assert all(torch.equal(sa[p]["exp_avg"], sb[p]["exp_avg"]) for p in sa)
    assert resumed.history.terms["total"] == whole.history.terms["total"]


def test_tied_weights_are_shared_stored_once_and_round_trip(tmp_path, digits):
    trainer = Trainer(DIGITS, small_model("tied_ae", latent_dim=3), quick_train(epochs=1), dataset=digits,
                      run_parent=tmp_path)
    last = trainer.run_to_end()
    model = trainer.model
    state = model.state_dict()
    assert not any(k.startswith("decoder.") and k.endswith("weight") for k in state), "the shared weight is stored once"
    assert set(last.model_state) == set(state)
    head = model.encoder.head
    z = torch.randn(4, 3)
    with torch.no_grad():
        before = model.decode(z)
        head.weight.mul_(2.0)           # a change to the encoder's weight ...
        after = model.decode(z)
    assert not torch.allclose(before, after), "... shows in the decoder"
    assert model.decoder.code_weight().data_ptr() == head.weight.data_ptr()
    trainer.run.save_checkpoint(model)
    loaded = Run.open(trainer.run.path).load_model()
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), after)
        loaded.encoder.head.weight.mul_(0.5)
        assert torch.allclose(loaded.decode(z), before, atol=1e-6)
    gui_copy = build_model(trainer.model_cfg, digits.train.shape, 10)
    gui_copy.load_state_dict(last.model_state)   # what the GUI does with the last snapshot (before the change)
    with torch.no_grad():
        assert torch.equal(gui_copy.decode(z), before)


def test_the_gui_copy_encodes_with_the_latest_weights(digits):
    trainer = Trainer(DIGITS, small_model("vae"), quick_train(epochs=1), dataset=digits)
    updates = list(trainer.updates())
    gui_copy = build_model(trainer.model_cfg, digits.train.shape, 10).eval()
    gui_copy.load_state_dict(updates[-1].model_state)
    x = digits.val.images[:8].float() / 255
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(gui_copy.encode(x), trainer.model.encode(x))


@pytest.mark.parametrize("variant,changes,shape,device,words", [
    ("ae", {"body": "conv"}, (1, 8, 8), None, "28×28 or 32×32"),
    ("contractive_ae", {"body": "lstm"}, (1, 8, 8), "cuda", "double backward"),
    ("tied_ae", {"body": "conv"}, (1, 28, 28), None, "cannot be built on the conv body"),
    ("seq_ae", {"body": "mlp"}, (1, 8, 8), None, "cannot be built on the mlp body"),
    ("ae", {"body": "lstm", "hidden": ()}, (1, 8, 8), None, "at least one hidden width"),
    ("iwae", {"likelihood": "squared_error"}, (1, 8, 8), None, "normalised likelihood"),
])
def test_pairs_that_cannot_work_are_refused_in_one_sentence(variant, changes, shape, device, words):
    cfg = dataclasses.replace(small_model(variant), **changes)
    with pytest.raises(ConfigError, match=words) as info:
        check_compatible(cfg, shape, device)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")


def test_contractive_lstm_is_fine_on_the_cpu():
    check_compatible(dataclasses.replace(small_model("contractive_ae"), body="lstm"), (1, 8, 8), "cpu")


def test_the_trainer_refuses_before_making_a_run_folder(tmp_path, digits):
    cfg = dataclasses.replace(small_model("ae"), body="conv")
    with pytest.raises(ConfigError):
        list(Trainer(DIGITS, cfg, quick_train(epochs=1), dataset=digits, run_parent=tmp_path).updates())
    assert not any(tmp_path.iterdir())


def test_every_variant_records_its_capabilities():
    for key, spec in VARIANTS.items():
        assert spec.key == key and spec.summary and spec.formula and spec.bodies
        assert spec.prior in ("standard_normal", "chosen", "fitted")
        assert spec.has_density == hasattr(spec.model_class, "log_densities")
    assert VARIANTS["aae"].prior == "chosen" and VARIANTS["wae_mmd"].prior == "standard_normal"
    assert VARIANTS["seq_ae"].bodies == ("auto", "lstm") and "lstm" in VARIANTS["ae"].bodies
    assert "lstm" in VARIANTS["vae"].bodies


def test_history_with_phases_and_missing_terms_round_trips_as_json():
    h = History()
    h.mark_phase(1, "pretrain_1")
    h.add_steps([1, 2], {"total": [3.0, 2.0], "pretrain_1": [3.0, 2.0]})
    h.mark_phase(3, "train")
    h.add_steps([3], {"total": [1.0], "reconstruction": [1.0]})
    assert h.phase_at(2) == "pretrain_1" and h.phase_at(3) == "train"
    assert all(len(v) == 3 for v in h.terms.values())
    assert math.isnan(h.terms["reconstruction"][0]) and math.isnan(h.terms["pretrain_1"][2])
    text = json.dumps(h.to_dict(), allow_nan=False)
    back = History.from_dict(json.loads(text))
    assert back.phases == [[1, "pretrain_1"], [3, "train"]]
    assert back.terms["total"] == [3.0, 2.0, 1.0] and math.isnan(back.terms["reconstruction"][1])


def test_a_history_written_before_phases_reads_as_training_throughout():
    old = json.loads((OLD_RUNS / "vae" / "history.json").read_text())
    assert "phases" not in old
    h = History.from_dict(old)
    assert h.phases == [] and h.phase_at(1) == "train"


@pytest.mark.parametrize("name", ["vae", "ae_gaussian"])
def test_old_run_folders_open_load_and_resume(tmp_path, digits, name):
    folder = tmp_path / name
    shutil.copytree(OLD_RUNS / name, folder)
    run = Run.open(folder)
    assert run.status == "completed" and run.epochs_done == 1
    if name == "ae_gaussian":
        assert run.model.likelihood == "squared_error", "the old 'gaussian' was the squared error"
    model = run.load_model()
    reference = load_file(str(OLD_RUNS / "reference.safetensors"))
    z = torch.tensor([[0.0, 0.0], [1.0, -1.0], [-0.5, 2.0]])
    x = digits.val.images[:3].float() / 255
    with torch.no_grad():
        assert torch.allclose(model.decode(z), reference[f"{name}/decoded"], atol=1e-6)
        assert torch.allclose(model.encode(x), reference[f"{name}/codes"], atol=1e-5)
    steps = run.step
    last = Trainer.resume(run, epochs=2, dataset=digits).run_to_end()
    assert last.status == "completed"
    again = Run.open(folder)
    assert again.epochs_done == 2 and again.step == 2 * steps and again.history.steps == list(range(1, 2 * steps + 1))


def test_an_old_cvae_folder_is_refused_with_one_sentence(tmp_path):
    """The CVAE's label moved from the encoder's last layer to its input: old weights do not fit."""
    from engine.errors import RunError
    folder = tmp_path / "cvae"
    shutil.copytree(OLD_RUNS / "cvae", folder)
    run = Run.open(folder)
    with pytest.raises(RunError, match="does not fit a Conditional VAE"):
        run.load_model()
