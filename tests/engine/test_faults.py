"""The fault matrix (issue 12), engine side: tampered run folders, hostile arguments and data,
failing disks, kills during a save, and state that tells the truth after a crash.

Every case ends in a working result or in one sentence (a UserError; exit status 2 and one line on
stderr for the CLI), never a traceback, and nothing already saved is lost.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.cli import main as cli
from engine.config import MAX_SEED, DataConfig, ModelConfig, TrainConfig
from engine.datasets import load_dataset
from engine.errors import ConfigError, DataError, RunError
from engine.runs import Run
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model

ROOT = Path(__file__).resolve().parents[2]
LITTER = (".*.tmp", ".tmp*", "checkpoint-*.tmp")


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS)


@pytest.fixture(scope="module")
def template(tmp_path_factory, digits):
    """A trained VAE run (2 epochs) and, beside it, one with another latent size (for foreign files)."""
    parent = tmp_path_factory.mktemp("template")
    paths = []
    for latent in (2, 5):
        trainer = Trainer(DIGITS, small_model("vae", latent_dim=latent), quick_train(epochs=2), dataset=digits,
                          run_parent=parent, run_name=f"z{latent}")
        trainer.run_to_end()
        paths.append(trainer.run.path)
    return paths


@pytest.fixture()
def run_path(template, tmp_path):
    """A fresh copy of the trained run, to tamper with."""
    return Path(shutil.copytree(template[0], tmp_path / "run"))


def litter(path: Path) -> list[str]:
    found = [p for pattern in LITTER for p in path.rglob(pattern)]
    return sorted(str(p.relative_to(path)) for p in found)


def one_sentence(err: str) -> str:
    err = err.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


def cli_result(capsys, *args: str) -> tuple[int, str, str]:
    code = cli(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_main(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=env, **kw)


def edit_json(path: Path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d.get("__replace__", d)))


# -- 1, 2: tampered run folders --------------------------------------------------------------------
def _set(keys, value):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


HISTORY_TAMPERINGS = {
    "val total null": _set(["val", "total", 0], None),
    "val total string": _set(["val", "total", 0], "0.5"),
    "val as a list": _set(["val"], [1.0, 2.0]),
    "val values strings": _set(["val"], {"total": "abc"}),
    "val empty lists": lambda d: d["val"].update({k: [] for k in d["val"]}),
    "terms as a list": _set(["terms"], [1.0, 2.0]),
    "terms too short": lambda d: d["terms"]["total"].pop(),
    "steps hold a string": _set(["steps", 0], "1"),
    "epochs a number": _set(["epochs"], 3),
    "seconds hold NaN": _set(["seconds", 0], float("nan")),
    "not an object": _set(["__replace__"], [1, 2]),
}
CONFIG_TAMPERINGS = {
    "image_shape negative": _set(["image_shape"], [1, -8, 8]),
    "image_shape strings": _set(["image_shape"], ["1", "8", "8"]),
    "image_shape two numbers": _set(["image_shape"], [8, 8]),
    "best_val string": _set(["best_val"], "0.5"),
    "best_val infinite": _set(["best_val"], float("inf")),
    "train.lr string": _set(["train", "lr"], "0.001"),
    "train.lr NaN": _set(["train", "lr"], float("nan")),
    "train.seed huge": _set(["train", "seed"], 2**64),
    "train.epochs bool": _set(["train", "epochs"], True),
    "model beta NaN": _set(["model", "params"], {"beta": float("nan")}),
    "model latent string": _set(["model", "latent_dim"], "2"),
    "model hidden a number": _set(["model", "hidden"], 64),
    "data val_fraction NaN": _set(["data", "val_fraction"], float("nan")),
    "status unknown": _set(["status"], "flying"),
    "step negative": _set(["step"], -3),
    "epochs_done string": _set(["epochs_done"], "2"),
    "class_names a string": _set(["class_names"], "0123456789"),
    "class_names empty": _set(["class_names"], []),
    "checkpoint outside": _set(["checkpoint"], "../../etc"),
    "checkpoint missing": _set(["checkpoint"], "checkpoint-999999"),
    "version string": _set(["version"], "2"),
    "no model": lambda d: d.pop("model"),
    "data a list": _set(["data"], [1, 2]),
}


def tamper_file(run_path: Path, which: str, change) -> None:
    run = Run.open(run_path)
    edit_json(run.file("history.json") if which == "history" else run_path / "config.json", change)


@pytest.mark.parametrize("which,case", [("history", c) for c in HISTORY_TAMPERINGS] +
                         [("config", c) for c in CONFIG_TAMPERINGS])
def test_a_tampered_value_is_one_sentence_naming_file_and_field(run_path, which, case, capsys):
    table = HISTORY_TAMPERINGS if which == "history" else CONFIG_TAMPERINGS
    tamper_file(run_path, which, table[case])
    with pytest.raises(RunError) as err:
        Run.open(run_path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    assert ("history.json" if which == "history" else "config.json") in message, message
    for args in (["info", str(run_path)], ["export", "samples", str(run_path), "--out", str(run_path.parent / "s.png")],
                 ["resume", str(run_path), "--epochs", "3", "--quiet"]):
        code, _, err_text = cli_result(capsys, *args)
        assert code == 2, (args, err_text)
        one_sentence(err_text)
    assert not (run_path.parent / "s.png").exists()


def test_the_tampered_field_is_named(run_path):
    tamper_file(run_path, "history", HISTORY_TAMPERINGS["val total null"])
    with pytest.raises(RunError, match=r"history\.json is malformed: val\['total'\]\[0\] is null, not a finite number"):
        Run.open(run_path)
    edit_json(run_path / "config.json", _set(["image_shape"], [1, -8, 8]))
    with pytest.raises(RunError, match=r"config\.json is malformed: image_shape is \[1, -8, 8\]"):
        Run.open(run_path)


def test_an_optimizer_of_another_model_is_one_sentence(template, run_path, capsys):
    foreign = Run.open(template[1])
    shutil.copyfile(foreign.file("optimizer.safetensors"), Run.open(run_path).file("optimizer.safetensors"))
    before = (run_path / "config.json").read_bytes()
    code, _, err = cli_result(capsys, "resume", str(run_path), "--epochs", "3", "--quiet")
    assert code == 2 and "optimizer.safetensors does not fit" in one_sentence(err)
    assert (run_path / "config.json").read_bytes() == before, "a refused resume changes nothing"


def test_weights_and_probe_of_another_model_are_one_sentence(template, run_path, capsys):
    foreign = Run.open(template[1])
    run = Run.open(run_path)
    shutil.copyfile(foreign.file("probe.safetensors"), run.file("probe.safetensors"))
    with pytest.raises(RunError, match="latent size"):
        run.load_probe()
    shutil.copyfile(foreign.file("weights.safetensors"), run.file("weights.safetensors"))
    for args in (["export", "samples", str(run_path), "--out", str(run_path.parent / "s.png")],
                 ["resume", str(run_path), "--epochs", "3", "--quiet"]):
        code, _, err = cli_result(capsys, *args)
        assert code == 2 and "does not fit" in one_sentence(err)


def test_an_old_format_1_run_still_opens_and_resumes(run_path, digits):
    """Format 1: the files at the top level, no checkpoint folder.  It opens, and its first new
    checkpoint moves it to format 2 without leaving the old files."""
    run = Run.open(run_path)
    for f in (run_path / run.checkpoint).iterdir():
        shutil.move(str(f), run_path / f.name)
    (run_path / run.checkpoint).rmdir()
    edit_json(run_path / "config.json", lambda d: (d.pop("checkpoint"), d.update(version=1)))
    old = Run.open(run_path)
    assert old.checkpoint is None and old.epochs_done == 2 and len(old.history.epochs) == 2
    assert old.load_model() is not None and old.load_probe() is not None
    Trainer.resume(old, 3, dataset=digits).run_to_end()
    again = Run.open(run_path)
    assert again.checkpoint is not None and again.epochs_done == 3
    assert not (run_path / "weights.safetensors").exists() and not (run_path / "history.json").exists()


# -- 2: arguments and data that used to exhaust the machine or end in a traceback ------------------
@pytest.mark.parametrize("args", [
    ["--model", "beta_vae", "--beta", "nan"], ["--model", "denoising_ae", "--level", "nan"],
    ["--model", "sparse_ae", "--weight", "nan"], ["--model", "sparse_ae", "--target", "nan"],
    ["--model", "beta_vae", "--warmup-epochs", "nan"], ["--model", "beta_vae", "--beta", "inf"],
    ["--lr", "nan"], ["--lr=-inf"], ["--seed", str(2**64)], ["--seed", "-1"], ["--seed", "x"],
])
def test_non_finite_numbers_and_bad_seeds_are_refused_and_leave_no_run_folder(tmp_path, args, capsys):
    out = tmp_path / "runs"
    code, _, err = cli_result(capsys, "train", "--epochs", "1", "--out", str(out), *args)
    assert code == 2
    err = one_sentence(err)
    assert ("finite" in err or "between 0 and 4294967295" in err or "whole number" in err), err
    assert not out.exists() or not list(out.iterdir()), "a refused start leaves no run folder"


def test_the_seed_range_is_what_torch_and_numpy_accept(digits):
    TrainConfig(seed=MAX_SEED).validate()
    np.random.default_rng(MAX_SEED)
    torch.manual_seed(MAX_SEED)
    for seed in (MAX_SEED + 1, 2**64, -1):
        with pytest.raises(ConfigError, match="between 0 and 4294967295"):
            TrainConfig(seed=seed).validate()
    trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1, seed=MAX_SEED), dataset=digits)
    assert trainer.run_to_end().status == "completed"


@pytest.mark.parametrize("make", [
    lambda: TrainConfig(lr=float("nan")), lambda: TrainConfig(lr=math.inf), lambda: TrainConfig(lr="0.1"),
    lambda: TrainConfig(batch_size=64.5), lambda: ModelConfig(variant="beta_vae").with_params(beta=math.nan),
    lambda: ModelConfig(variant="denoising_ae").with_params(level=math.inf),
    lambda: ModelConfig(variant="sparse_ae").with_params(target=math.nan),
    lambda: ModelConfig(latent_dim=True), lambda: DataConfig(val_fraction=math.nan),
])
def test_non_finite_settings_are_refused_by_validate(make):
    with pytest.raises(ConfigError):
        make().validate()


def test_npz_labels_with_huge_values_are_mapped_not_indexed(tmp_path):
    y = np.array([4_900_000_000, 7, 4_900_000_000, 123_456_789_012] * 12 + [7, 7], np.int64)
    np.savez(tmp_path / "ids.npz", x=np.zeros((50, 4, 4), np.uint8), y=y)
    split = load_dataset(DataConfig(source="npz", path=str(tmp_path / "ids.npz")))
    assert split.train.class_names == ["7", "4900000000", "123456789012"]
    labels = torch.cat([split.train.labels, split.val.labels])
    assert labels.max() == 2 and sorted(labels.tolist()).count(0) == 14


def test_npz_labels_with_too_many_classes_are_refused(tmp_path):
    np.savez(tmp_path / "many.npz", x=np.zeros((3000, 2, 2), np.uint8), y=np.arange(3000) * 1000)
    with pytest.raises(DataError, match="3,000 different values; at most 1000 classes"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "many.npz")))


def test_one_unreadable_image_is_skipped_and_counted(tmp_path):
    from PIL import Image
    for i in range(4):
        Image.new("L", (6, 6), 40 * i).save(tmp_path / f"good{i}.png")
    (tmp_path / "bad.png").write_text("text, not a PNG")
    (tmp_path / "worse.jpg").write_bytes(b"\xff\xd8 truncated")
    split = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=6))
    assert len(split.train) + len(split.val) == 4 and split.skipped == 2
    assert split.notes == ["2 files skipped: not images PIL can read (bad.png, worse.jpg)."]


def test_a_folder_with_no_readable_image_is_refused(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_text("nope")
    with pytest.raises(DataError, match=r"None of the 3 image files .* a\.png is not an image PIL can read"):
        load_dataset(DataConfig(source="folder", path=str(tmp_path)))


def test_a_decompression_bomb_is_named_as_such(tmp_path, monkeypatch):
    from PIL import Image
    for i in range(3):
        Image.new("L", (8, 8), 50 * i).save(tmp_path / f"ok{i}.png")
    Image.new("L", (400, 400)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)   # 400×400 is above twice the limit
    split = load_dataset(DataConfig(source="folder", path=str(tmp_path), image_size=8))
    assert split.skipped == 1
    assert split.notes[0].startswith("1 file skipped: images too large to decode safely (over 2,000 pixels")
    assert "bomb.png" in split.notes[0] and "not images" not in split.notes[0]


def test_an_empty_gz_leaves_no_empty_idx_file(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz is empty"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    assert not (raw / "train-images-idx3-ubyte").exists() and not list(raw.glob("*.partial"))
    import gzip
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb"):
        pass   # a valid gzip of nothing
    with pytest.raises(DataError, match="decompresses to nothing"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))
    assert not (raw / "train-images-idx3-ubyte").exists()


def test_a_failed_download_removes_what_it_created(tmp_path, monkeypatch):
    from torchvision.datasets import MNIST
    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once, never leaves the machine
    root = tmp_path / "data"
    with pytest.raises(DataError, match="Could not download MNIST"):
        load_dataset(DataConfig(source="mnist", root=str(root), download=True))
    assert not root.exists(), "the data root it made is gone"
    (root / "MNIST").mkdir(parents=True)
    (root / "keep.txt").write_text("mine")
    with pytest.raises(DataError):
        load_dataset(DataConfig(source="mnist", root=str(root), download=True))
    assert sorted(p.name for p in root.rglob("*")) == ["MNIST", "keep.txt"], "what was there stays, nothing else"


def test_conv_on_8x8_is_refused_and_info_says_which_body_auto_built(tmp_path, capsys):
    """`--body conv` on 8×8 images used to build an MLP while info said conv: now it is refused before
    any folder is made, and `auto` says what it built."""
    code, out, err = cli_result(capsys, "train", "--dataset", "digits", "--body", "conv", "--epochs", "1",
                                "--hidden", "16", "--out", str(tmp_path), "--name", "conv8", "--quiet")
    assert code == 2 and "conv" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "conv8").exists()
    code, out, err = cli_result(capsys, "train", "--dataset", "digits", "--body", "auto", "--epochs", "1",
                                "--hidden", "16", "--out", str(tmp_path), "--name", "auto8", "--quiet")
    assert code == 0, err
    code, out, _ = cli_result(capsys, "info", str(tmp_path / "auto8"))
    assert code == 0 and "body auto (mlp)" in out


def test_sigint_during_start_up_imports_is_one_line(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "info", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:   # interrupt once main() runs its imports (NumPy is mapped)
        try:
            if "_multiarray_umath" in Path(f"/proc/{proc.pid}/maps").read_text():
                break
        except FileNotFoundError:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "error: interrupted while starting; nothing was changed."


# -- 3: disks that fail -----------------------------------------------------------------------------
@pytest.fixture()
def small_fs(tmp_path):
    """A 2 MB tmpfs of our own (root only), unmounted afterwards; skipped where mounting is impossible."""
    mount = tmp_path / "fs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip() or 'mount failed'}); "
                    "the full-disk and read-only cases need one")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def read_only(mount: Path) -> None:
    proc = subprocess.run(["mount", "-o", "remount,ro", str(mount)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only ({proc.stderr.strip()})")


def fill(mount: Path, leave: int) -> None:
    """Fill the file system until ``leave`` bytes are free."""
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_train_into_a_read_only_out_folder_is_one_sentence(small_fs, capsys):
    read_only(small_fs)
    code, _, err = cli_result(capsys, "train", "--epochs", "1", "--hidden", "16", "--out", str(small_fs / "runs"))
    assert code == 2 and "read-only file system" in one_sentence(err)


def test_resume_and_export_on_a_read_only_disk_are_one_sentence_and_change_nothing(template, small_fs, capsys):
    path = Path(shutil.copytree(template[0], small_fs / "run"))
    before = snapshot(path)
    read_only(small_fs)
    code, out, err = cli_result(capsys, "info", str(path))
    assert code == 0 and "completed" in out, "a read-only run still opens"
    code, _, err = cli_result(capsys, "resume", str(path), "--epochs", "4", "--quiet")
    assert code == 2 and "read-only file system" in one_sentence(err)
    code, _, err = cli_result(capsys, "export", "samples", str(path), "--out", str(small_fs / "grid.png"))
    assert code == 2 and "read-only file system" in one_sentence(err) and "grid.png" in err
    assert snapshot(path) == before


def test_a_full_disk_is_one_sentence_with_the_space_needed_and_the_run_stays_intact(template, small_fs, capsys):
    path = Path(shutil.copytree(template[0], small_fs / "run"))
    before = snapshot(path)
    run = Run.open(path)
    weights_size = run.file("weights.safetensors").stat().st_size
    fill(small_fs, leave=weights_size // 2)
    code, _, err = cli_result(capsys, "resume", str(path), "--epochs", "4", "--quiet")
    assert code == 2
    err = one_sentence(err)
    assert "is full" in err and "was needed" in err and "is free" in err and "keeps its last checkpoint" in err, err
    after = Run.open(path)
    assert (after.status, after.epochs_done, after.step) == ("completed", 2, run.step)
    assert not litter(path)
    (small_fs / "filler").unlink()
    assert snapshot(path) == before, "the run folder is byte for byte what it was"


def test_a_new_run_on_a_full_disk_is_one_sentence_and_leaves_no_folder(small_fs, capsys):
    fill(small_fs, leave=40_000)   # room for the folder and its config, not for the first checkpoint
    code, _, err = cli_result(capsys, "train", "--epochs", "2", "--out", str(small_fs / "runs"), "--quiet")
    assert code == 2
    err = one_sentence(err)
    assert "is full" in err and "was needed" in err and "the new run folder was removed" in err, err
    assert not list((small_fs / "runs").iterdir())


def test_a_full_disk_midway_keeps_the_last_checkpoint(template, small_fs, digits):
    """Two epochs save, the third does not fit: the run keeps epoch 4's checkpoint, says why, and resumes."""
    path = Path(shutil.copytree(template[0], small_fs / "run"))
    run = Run.open(path)
    trainer = Trainer.resume(run, 8, dataset=digits)
    size = sum(f.stat().st_size for f in (path / run.checkpoint).iterdir())
    with pytest.raises(RunError, match="is full") as err:
        for update in trainer.updates():
            if update.kind == "epoch" and update.epoch == 4:
                fill(small_fs, leave=size // 3)
    assert "\n" not in str(err.value)
    after = Run.open(path)
    assert after.epochs_done == 4 and after.status == "stopped" and "is full" in after.reason
    assert len(after.history.epochs) == 4 and after.load_model() is not None
    assert not litter(path) and len(list(path.glob("checkpoint-*"))) == 1
    (small_fs / "filler").unlink()
    assert Trainer.resume(after, 5, dataset=digits).run_to_end().status == "completed"


def test_files_get_the_umask_mode(tmp_path, digits):
    old = os.umask(0o002)
    try:
        trainer = Trainer(DIGITS, small_model("ae"), quick_train(epochs=1), dataset=digits, run_parent=tmp_path)
        trainer.run_to_end()
        from engine import export
        grid = export.sample_grid(trainer.run.load_model(), 4, 2)
        written = export.save_grid(grid, tmp_path / "grid.png")
    finally:
        os.umask(old)
    files = [p for p in trainer.run.path.rglob("*") if p.is_file()] + [written]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o664)}, files
    folders = [trainer.run.path, *[p for p in trainer.run.path.rglob("*") if p.is_dir()]]
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o775)}


# -- 3: a kill at any instant leaves the previous checkpoint or the new one ----------------------------
SAVER = r"""
import sys, torch
from engine.runs import Run
path = sys.argv[1]
run = Run.open(path)
model = run.load_model()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
run.load_optimizers({"model": optimizer})
probe = run.load_probe()
run.begin_training()
saved = 0
while True:
    loss = sum(p.sum() for p in model.parameters())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    run.step += 1
    run.epochs_done += 1
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float(run.step))
    run.history.add_epoch(run.epochs_done, run.step, {k: 1.0 for k in run.history.train},
                          {k: float(run.step) for k in run.history.val}, 0.1)
    probe.step = run.step
    run.save_checkpoint(model, {"model": optimizer}, probe, best=run.step % 2 == 0)
    saved += 1
    if saved == 1:   # one whole checkpoint first, so every child moves the run on before it is killed
        print("ready", flush=True)
"""

#: what the parent waits for before it kills the child: the moment each kind of temporary entry appears
TRIGGERS = [
    lambda names: any(n.startswith(".checkpoint-") for n in names),   # writing a checkpoint's files
    lambda names: any(n.startswith(".config.json.") for n in names),  # switching config.json
    lambda names: len([n for n in names if n.startswith("checkpoint-")]) > 1,  # renamed, not yet named / dropped
]


def consistent_step(path: Path) -> int:
    """Open the run and check that config, weights, optimizer and history all tell the same step."""
    run = Run.open(path)
    assert run.checkpoint is not None and (path / run.checkpoint).is_dir()
    assert not litter(path), litter(path)
    assert [p.name for p in path.glob("checkpoint-*")] == [run.checkpoint]
    with safe_open(str(run.file("weights.safetensors")), "pt") as f:
        assert int(f.metadata()["step"]) == run.step
    model = run.load_model()
    saved_steps = {float(p.detach().flatten()[0]) for p in model.parameters()}
    optimizer = load_file(str(run.file("optimizer.safetensors")))
    adam_steps = {int(v.item()) for k, v in optimizer.items() if k.endswith(".step")}
    assert run.history.epoch_steps[-1] == run.step and len(run.history.epochs) == run.epochs_done
    assert adam_steps == {run.step}, (adam_steps, run.step)
    if run.step > START_STEP[0]:
        assert saved_steps == {float(run.step)}, (saved_steps, run.step)
    return run.step


START_STEP = [0]


def test_a_kill_during_a_save_leaves_the_previous_or_the_new_checkpoint(template, tmp_path):
    path = Path(shutil.copytree(template[0], tmp_path / "run"))
    START_STEP[0] = Run.open(path).step
    steps = [consistent_step(path)]
    left_behind: list[list[str]] = []   # what each kill left before the next open cleared it
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for i in range(9):
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        trigger = TRIGGERS[i % len(TRIGGERS)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if trigger(os.listdir(path)):
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        left_behind.append(litter(path) + [p.name for p in path.glob("checkpoint-*")][1:])
        steps.append(consistent_step(path))
        assert steps[-1] >= steps[-2]
        run = Run.open(path)
        assert run.interrupted and run.status_text == f"interrupted at step {run.step}"
    assert steps[-1] > steps[0], "the children saved checkpoints between the kills"
    print("left behind by the kills:", left_behind, "steps:", steps)
    assert sum(bool(left) for left in left_behind) >= 5, ("most kills must land inside a save", left_behind)


def test_temp_files_a_crash_left_are_removed_on_the_next_open(run_path):
    run = Run.open(run_path)
    (run_path / ".config.json.abc123.tmp").write_bytes(b"")
    (run_path / ".tmpAb12Cd").write_bytes(b"x" * 1000)
    (run_path / ".checkpoint-zz.tmp").mkdir()
    (run_path / ".checkpoint-zz.tmp" / "weights.safetensors").write_bytes(b"partial")
    shutil.copytree(run_path / run.checkpoint, run_path / "checkpoint-999999")   # renamed, never named
    (run_path / run.checkpoint / ".tmpQwErTy").write_bytes(b"y")
    again = Run.open(run_path)
    assert again.checkpoint == run.checkpoint and not litter(run_path)
    assert sorted(p.name for p in run_path.iterdir()) == sorted(["config.json", run.checkpoint, ".lock", "movie.safetensors"])


# -- 4: state that tells the truth after a crash -------------------------------------------------------
def test_after_sigint_or_kill_info_says_interrupted_at_step_n(tmp_path, capsys):
    for sig in (signal.SIGINT, signal.SIGKILL):
        out = tmp_path / sig.name
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "train", "--epochs", "500", "--hidden", "32",
                                 "--out", str(out), "--name", "r", "--batch-size", "32"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        for line in proc.stdout:
            if line.startswith("epoch"):   # the first epoch is saved
                break
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), (sig.name, proc.returncode)
        run = Run.open(out / "r")
        assert run.interrupted and run.status == "stopped" and run.epochs_done >= 1
        code, text, _ = cli_result(capsys, "info", str(out / "r"))
        assert code == 0 and f"status     interrupted at step {run.step}" in text


def test_a_second_resume_is_refused_while_the_first_holds_the_run(template, tmp_path, capsys):
    path = Path(shutil.copytree(template[0], tmp_path / "run"))
    first = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "resume", str(path), "--epochs", "100000",
                              "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not Run.open(path).is_training_elsewhere():
            assert time.monotonic() < deadline and first.poll() is None, first.stderr.read() if first.poll() else ""
            time.sleep(0.05)
        code, out, _ = cli_result(capsys, "info", str(path))
        assert code == 0 and f"running (in process {first.pid})" in out, out.splitlines()[4:6]
        code, _, err = cli_result(capsys, "resume", str(path), "--epochs", "100001", "--quiet")
        assert code == 2 and "is being trained by another process" in one_sentence(err)
        run = Run.open(path)
        with pytest.raises(RunError, match=f"is being trained by process {first.pid}"):
            run.begin_training()
    finally:
        first.kill()
        first.communicate()


def test_two_trainers_in_one_process_cannot_share_a_run(run_path):
    a, b = Run.open(run_path), Run.open(run_path)
    errors = []

    def take():
        a.begin_training()
        started.set()
        release.wait(10)
        a._release()

    started, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=take)
    thread.start()
    started.wait(10)
    try:
        with pytest.raises(RunError, match="being trained already in this program"):
            b.begin_training()
        assert b.is_training_elsewhere() and Run.open(run_path).status_text.startswith("running (in process")
    except Exception as exc:   # pragma: no cover - reported below
        errors.append(exc)
    finally:
        release.set()
        thread.join(10)
    assert not errors
    b.begin_training()   # free again
    b._release()


def test_a_trainer_that_died_on_an_error_does_not_keep_the_run(run_path, digits, monkeypatch):
    run = Run.open(run_path)
    trainer = Trainer.resume(run, 4, dataset=digits)
    updates = trainer.updates()
    next(updates)   # begun: the lock is taken
    updates.close()  # the generator ends without finishing (as on an unexpected error)
    again = Trainer.resume(Run.open(run_path), 3, dataset=digits)
    assert again.run_to_end().status == "completed", "the same thread may train the run again"


def test_a_ctrl_c_that_an_extension_turns_into_an_import_error_is_one_line():
    # CI once interrupted NumPy's initialisation: the KeyboardInterrupt came out as "ImportError:
    # PyCapsule_Import could not import module "datetime"" and a traceback; an ImportError without a
    # Ctrl+C stays a traceback (a real fault)
    child = textwrap.dedent("""
        import os, signal, sys, time
        import main
        def interrupted_import(argv):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            except KeyboardInterrupt:
                raise ImportError('PyCapsule_Import could not import module "datetime"') from None
        def broken_import(argv):
            raise ImportError("no module named torch")
        main._main = interrupted_import if sys.argv[1] == "interrupted" else broken_import
        sys.exit(main.main([]))
        """)
    interrupted = subprocess.run([sys.executable, "-c", child, "interrupted"], cwd=ROOT, capture_output=True, text=True,
                                 timeout=60)
    assert interrupted.returncode == 130, interrupted.stderr
    assert interrupted.stderr.strip() == "error: interrupted while starting; nothing was changed."
    broken = subprocess.run([sys.executable, "-c", child, "broken"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "ImportError: no module named torch" in broken.stderr
