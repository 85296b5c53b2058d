"""Sweeps: expansion of comma lists, local runs one after another, failures that do not stop the
sweep, one-sentence refusals, and the same sweep as tasks on a local Ray instance."""

import subprocess
import sys
from pathlib import Path

import pytest

from engine import sweep
from engine.cli import build_parser, main
from engine.config import DataConfig, ModelConfig, TrainConfig
from engine.errors import ConfigError, UserError
from engine.runs import Run
from tests.engine.helpers import child_pids

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--dataset", "digits", "--epochs", "1", "--hidden", "16", "--batch-size", "128", "--quiet", "--device", "cpu"]



def folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_importing_the_sweep_does_not_import_ray():
    code = "import sys, engine.sweep, engine.cli; assert 'ray' not in sys.modules, 'ray was imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_several_lists_give_their_product():
    combos = sweep.combinations({"beta": [1.0, 4.0], "latent_dim": [2, 8], "seed": [0]}, "beta_vae")
    assert [(c["beta"], c["latent_dim"]) for c in combos] == [(1.0, 2), (1.0, 8), (4.0, 2), (4.0, 8)]
    assert sweep.swept_axes(combos) == ["beta", "latent_dim"]


def test_a_variant_sweep_applies_each_parameter_only_where_it_belongs():
    combos = sweep.combinations({"variant": ["vae", "beta_vae"], "beta": [1.0, 4.0]})
    assert combos == [{"variant": "vae"}, {"variant": "beta_vae", "beta": 1.0}, {"variant": "beta_vae", "beta": 4.0}]
    with pytest.raises(ConfigError, match="^noise is not a parameter of the Variational autoencoder or the β-VAE"):
        sweep.combinations({"variant": ["vae", "beta_vae"], "noise": ["masking"]})


def test_expand_builds_validated_configs_named_after_the_swept_values():
    items = sweep.expand(DataConfig(), ModelConfig("beta_vae", latent_dim=2), TrainConfig(epochs=1),
                         {"beta": [1.0, 4.0], "lr": [1e-3, 3e-3]})
    assert [(i.model.params.beta, i.train.lr) for i in items] == [(1.0, 1e-3), (1.0, 3e-3), (4.0, 1e-3), (4.0, 3e-3)]
    assert items[0].name.endswith("-beta_vae-digits-z2-beta1-lr0.001")
    assert len({i.name for i in items}) == 4
    assert sweep.SweepItem.from_dict(items[3].to_dict()) == items[3]
    with pytest.raises(ConfigError, match="β must be at least"):
        sweep.expand(DataConfig(), ModelConfig("beta_vae"), TrainConfig(), {"beta": [1.0, -1.0]})


def test_the_cli_expands_a_variant_sweep_through_the_train_options():
    from engine.cli.sweep import sweep_items
    a = build_parser().parse_args(["sweep", "--model", "vae,beta_vae", "--beta", "1,4", "--latent-dim", "2,3",
                                   "--warmup-epochs", "2", "--hidden", "32"])
    items = sweep_items(a)
    assert [(i.model.variant, i.model.latent_dim, getattr(i.model.params, "beta", None)) for i in items] == [
        ("vae", 2, None), ("vae", 3, None), ("beta_vae", 2, 1.0), ("beta_vae", 2, 4.0), ("beta_vae", 3, 1.0),
        ("beta_vae", 3, 4.0)]
    assert all(i.model.hidden == (32,) for i in items)
    assert all(i.model.params.warmup_epochs == 2.0 for i in items if i.model.variant == "beta_vae")
    assert items[3].name.endswith("-beta_vae-digits-z2-beta4") and items[0].name.endswith("-vae-digits-z2")


def test_a_local_sweep_trains_one_run_per_value_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["sweep", "--model", "beta_vae", "--beta", "1,4", "--latent-dim", "2", *FAST, "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    runs = [Run.open(p) for p in folders(out)]
    assert sorted(r.model.params.beta for r in runs) == [1.0, 4.0]
    assert sorted(r.name.rsplit("-", 1)[1] for r in runs) == ["beta1", "beta4"]
    assert all(r.status == "completed" and r.epochs_done == 1 for r in runs)
    table = printed[printed.index("run "):]
    assert "best val" in table and "val kl" in table and "2 runs, 0 failed" in table
    for r in runs:
        row = next(line for line in table.splitlines() if line.startswith(r.name))
        assert "completed" in row and f"{r.best_val:.4f}" in row and f"beta={r.model.params.beta:g}" in row


def test_a_failed_run_does_not_stop_the_sweep(tmp_path, capsys, monkeypatch):
    import engine.training

    class FailsForBeta4(engine.training.Trainer):
        def updates(self):
            if self.model_cfg.params.beta == 4.0:
                raise RuntimeError("simulated crash")
            yield from super().updates()

    monkeypatch.setattr(engine.training, "Trainer", FailsForBeta4)
    out = tmp_path / "runs"
    code = main(["sweep", "--model", "beta_vae", "--beta", "4,1", *FAST, "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "2 runs, 1 failed" in printed and "RuntimeError: simulated crash" in printed
    completed = [Run.open(p) for p in folders(out) if Run.open(p).status == "completed"]
    assert [r.model.params.beta for r in completed] == [1.0]


@pytest.mark.parametrize("args,sentence", [
    (["--model", "vae", "--beta", "1,4"], "error: beta is not a parameter of the Variational autoencoder."),
    (["--model", "beta_vae", "--beta", "1,x"], "error: The value 'x' of beta must be a number"),
    (["--model", "beta_vae", "--beta", "1,-4"], "β must be at least 0.0, not -4.0."),
    (["--model", "vae,nope"], "'nope' is not a variant; use one of"),
    (["--model", "denoising_ae", "--noise", "gaussian,blur"], "'blur' is not a choice of noise; use one of gaussian, masking"),
    # a repeated value is a typo: refused (it used to be dropped in silence), naming the setting, not --beta
    (["--model", "beta_vae", "--beta", "1,4,1"], "error: The values of beta repeat 1: each run of a sweep must differ"),
    (["--model", "beta_vae", "--seed", "3,3"], "The values of seed repeat 3"),
])
def test_bad_sweeps_are_refused_in_one_sentence_before_training(tmp_path, capsys, args, sentence):
    out = tmp_path / "runs"
    assert main(["sweep", *args, *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert sentence in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_large_sweep_says_its_count_and_is_refused_without_yes(tmp_path, capsys, monkeypatch):
    """Fault 7: four lists of ten planned 10,000 runs and started at once."""
    out = tmp_path / "runs"
    big = ["--model", "beta_vae", "--beta", "1,2,3,4", "--seed", ",".join(map(str, range(sweep.CONFIRM_ABOVE)))]
    assert main(["sweep", *big, *FAST, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    n = 4 * sweep.CONFIRM_ABOVE
    assert f"sweep: {n} runs" in captured.out
    assert f"The sweep plans {n} runs, more than {sweep.CONFIRM_ABOVE}; add --yes" in captured.err
    assert not out.exists()
    started = []
    monkeypatch.setattr(sweep, "run_local", lambda items, *a, **k: started.append(len(items)) or [])
    assert main(["sweep", *big, *FAST, "--out", str(out), "--yes"]) == 0
    assert started == [n]


def test_ray_missing_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["sweep", "--model", "beta_vae", "--beta", "1,4", *FAST, "--out", str(tmp_path), "--ray", "auto"]) == 2
    err = capsys.readouterr().err
    assert "pip install latent-explorer[cluster]" in err and len(err.strip().splitlines()) == 1
    assert not folders(tmp_path)


def test_an_unreachable_ray_address_is_one_sentence_at_once(tmp_path, capsys):
    import socket
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, sentence in ((f"127.0.0.1:{port}", "Nothing answers at the Ray address"),
                              ("head:port", "is not host:port, ray://host:port, auto or local")):
        with pytest.raises(UserError, match=sentence):
            sweep.check_reachable(address)
    sweep.check_reachable("auto")
    pytest.importorskip("ray")
    assert main(["sweep", "--beta", "1,4", "--model", "beta_vae", *FAST, "--out", str(tmp_path / "o"),
                 "--ray", f"ray://127.0.0.1:{port}"]) == 2
    assert "Nothing answers" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts child processes through /proc")
def test_a_sweep_on_a_local_ray_instance(tmp_path, capsys):
    pytest.importorskip("ray")
    before = child_pids()
    out = tmp_path / "shared"
    code = main(["sweep", "--model", "beta_vae", "--beta", "1,4", *FAST, "--out", str(out), "--ray", "local"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    runs = [Run.open(p) for p in folders(out)]
    assert sorted(r.model.params.beta for r in runs) == [1.0, 4.0]
    assert all(r.status == "completed" and r.file("weights.safetensors").is_file() for r in runs)
    assert "on the Ray cluster local" in printed and "2 runs, 0 failed" in printed
    assert all(r.name in printed for r in runs)
    import ray
    assert not ray.is_initialized()
    assert child_pids() <= before, "Ray left processes running"
