"""benchmarks/device_check.sh, the one script a CUDA machine runs, runs on the CPU too: --device cpu
--quick prints one table with a row per variant of the registry, each a finite loss, and the
throughput, evaluate and drag rows."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models import VARIANTS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


def _table(printed: str) -> dict[str, list[str]]:
    """The rows of the printed table, by check: the cells after the check's name."""
    lines = printed.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"check\s+value\s+unit", ln))
    rows = {}
    for line in lines[start + 2:]:
        if re.match(r"\d+ rows, \d+ failed", line):
            break
        check = re.split(r"\s{2,}", line.strip())
        rows[check[0]] = check[1:]
    return rows


@pytest.mark.slow
def test_the_device_check_runs_on_the_cpu_and_prints_one_table(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    out = tmp_path / "check.json"
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--quick", "--json", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table(proc.stdout)
    for key in VARIANTS:
        value, *_, status = rows[f"variant {key}"]
        assert math.isfinite(float(value)) and status == "ok", rows[f"variant {key}"]
    assert rows["variant vae bf16"][-1] == "ok"
    saved = {r["check"]: r for r in json.loads(out.read_text())["rows"]}
    assert saved["variant vae"]["value"] == pytest.approx(float(rows["variant vae"][0]), rel=1e-3)
    assert rows["evaluate nll |cpu - cpu|"][-1] == "ok"
    assert math.isfinite(float(rows["evaluate nll (cpu)"][0]))
    assert math.isfinite(float(rows["drag p95 while training"][0]))
    assert any(check.startswith("throughput") for check in rows)
    assert re.search(r"\d+ rows, 0 failed, in \d+ s", proc.stdout)


@pytest.mark.slow   # two Python starts that import torch: 10-17 s on the shared 2-core machine
def test_the_device_check_refuses_cuda_without_a_cuda_device_in_one_sentence(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cuda", "--quick"], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: --device cuda, but torch sees no CUDA device."


def test_without_the_gui_the_drag_row_says_skipped_and_nothing_fails(capsys):
    from benchmarks.device_check import main
    assert main(["--device", "cpu", "--quick", "--skip", "variants,throughput,evaluate", "--skip-gui"]) == 0
    rows = _table(capsys.readouterr().out)
    assert list(rows) == ["drag"]
    assert rows["drag"][-1] == "skipped: this Python cannot import PySide6 and pyqtgraph"


def test_on_cuda_the_throughput_runs_again_in_bf16(tmp_path, monkeypatch):
    from benchmarks import device_check
    from benchmarks.common import IDX_FILES
    gz = tmp_path / "gz"
    gz.mkdir()
    for name in IDX_FILES:
        (gz / f"{name}.gz").write_bytes(b"")
    calls = []

    def fake_child(args, timeout_s, **env):
        calls.append(args)
        result = Path(args[args.index("--json") + 1])
        bf16 = args[args.index("--precision") + 1] == "bf16"
        result.write_text(json.dumps({"median_samples_per_sec": {"ours": 300.0 if bf16 else 200.0, "reference": 40.0},
                                      "ratio_ours_over_reference": 7.5 if bf16 else 5.0, "target_ratio": 5.0,
                                      "target_met": True}))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(device_check, "_child", fake_child)
    table = device_check.Table()
    device_check.check_throughput("cuda", False, gz, tmp_path / "root", tmp_path, table)
    assert [a[a.index("--precision") + 1] for a in calls] == ["fp32", "bf16"]
    values = {r["check"]: r["value"] for r in table.rows}
    assert values == {"throughput ours": 200.0, "throughput reference": 40.0, "throughput ours/reference": 5.0,
                      "throughput ours bf16": 300.0, "throughput ours/reference bf16": 7.5}
    table = device_check.Table()
    calls.clear()
    device_check.check_throughput("cpu", True, gz, tmp_path / "root", tmp_path, table)
    assert [a[a.index("--precision") + 1] for a in calls] == ["fp32"], "a CPU runs it once, in float32"
