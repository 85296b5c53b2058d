"""engine.storage's one reader: every JSON and safetensors file is read only when it is a regular file
under its size limit, and any failure to read or parse it is one sentence naming the file."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine import compare, storage
from engine.errors import RunError, UserError
from engine.runs import Run
from tests.engine.helpers import DIGITS, quick_train, small_model

NESTED = "[" * 100_000 + "]" * 100_000
ROOT = Path(__file__).resolve().parents[2]
needs_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero on this system")


def one_sentence(message: str, path: Path) -> None:
    assert str(path) in message and "\n" not in message and "Traceback" not in message


def test_deeply_nested_json_is_one_sentence(tmp_path):
    path = tmp_path / "nested.json"
    path.write_text(NESTED)
    with pytest.raises(UserError, match="nested too deeply") as caught:
        storage.read_json(path, "a preset")
    one_sentence(str(caught.value), path)


@pytest.mark.parametrize("content,why", [(b"\xff\xfe{", "not UTF-8"), (b"{ damaged", "cannot be read as")])
def test_damaged_json_is_one_sentence(tmp_path, content, why):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=why) as caught:
        storage.read_json(path)
    one_sentence(str(caught.value), path)


def test_the_caller_chooses_the_error_class(tmp_path):
    with pytest.raises(RunError, match="is missing"):
        storage.read_json(tmp_path / "none.json", "a run configuration", RunError)


@needs_dev_zero
def test_a_link_to_a_device_is_not_read(tmp_path):
    for name, read in (("history.json", storage.read_json), ("weights.safetensors", storage.read_tensors),
                       ("probe.safetensors", storage.read_tensor_metadata)):
        link = tmp_path / name
        link.symlink_to("/dev/zero")
        start = time.monotonic()
        with pytest.raises(UserError, match="not a regular file") as caught:
            read(link)
        assert time.monotonic() - start < 5
        one_sentence(str(caught.value), link)


def test_a_folder_is_not_read(tmp_path):
    with pytest.raises(UserError, match="is a folder, not a regular file"):
        storage.read_json(tmp_path)


def test_files_over_the_limit_are_refused_and_named(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(list(range(100))))
    tensors = tmp_path / "big.safetensors"
    storage.write_tensors(tensors, {"x": torch.zeros(100)})
    monkeypatch.setattr(storage, "MAX_JSON_BYTES", 64)
    monkeypatch.setattr(storage, "MAX_TENSOR_BYTES", 64)
    with pytest.raises(UserError, match="more than the 64 bytes") as caught:
        storage.read_json(path)
    one_sentence(str(caught.value), path)
    with pytest.raises(RunError, match="more than the 64 bytes"):
        storage.read_tensors(tensors)


def test_the_limits_are_half_a_gigabyte_of_json_and_two_of_tensors():
    assert storage.MAX_JSON_BYTES == 512 * 2**20 and storage.MAX_TENSOR_BYTES == 2 * 2**30


@pytest.fixture
def new_run(tmp_path):
    return Run.create(tmp_path, DIGITS, small_model("ae"), quick_train(), dataset="digits", image_shape=(1, 8, 8),
                      class_names=[str(d) for d in range(10)], name="plain")


def test_a_nested_metrics_json_is_left_out_of_the_comparison(new_run):
    (new_run.path / "metrics.json").write_text(NESTED)
    assert compare.read_metrics(new_run) == {}
    table = compare.metrics_table([new_run])
    assert not [row for row in table.rows if row.key.startswith("metrics.")]


def test_a_nested_metrics_json_is_one_sentence_when_the_run_loads_it(new_run):
    path = new_run.path / "metrics.json"
    path.write_text(NESTED)
    with pytest.raises(RunError, match="nested too deeply") as caught:
        Run.open(new_run.path).load_metrics()
    one_sentence(str(caught.value), path)


@needs_dev_zero
def test_info_on_a_run_whose_history_is_dev_zero_ends_at_once(new_run):
    history = new_run.file("history.json")
    history.symlink_to("/dev/zero")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(new_run.path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and str(history) in done.stderr
    assert "not a regular file" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_copied_run_with_a_nested_history_opens_to_one_sentence(new_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(new_run.path, copy)
    (copy / "history.json").write_text(NESTED)
    with pytest.raises(RunError, match="nested too deeply"):
        Run.open(copy)
