"""Start-up stays quick: slow imports wait for first use or load behind the shown window."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]   # the repository (this file is in tests/explorer/<package>/)


def test_start_up_leaves_slow_imports_for_later():
    """The window's modules import neither umap (numba compiles for ~35 s) nor scipy.signal and
    scipy.spatial (over a second together), nor torch, nor NumPy (60 ms: the status bar's label came
    from the module of to_qimage); those load on first use or behind the shown window."""
    code = ("import sys; import explorer.window.start_up, explorer.window.main_window; "
            "bad = [m for m in ('umap', 'numba', 'scipy.signal', 'scipy.spatial', 'torch', 'numpy') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
                    reason="counts threads through Linux's /proc on a machine with 2+ cores")
def test_the_gui_thread_starts_no_openmp_threads_of_its_own(tmp_path):
    """In the app as ``main()`` starts it, a parallel torch op on the GUI thread runs on that thread
    alone: an OpenMP team of its own would make the training thread's team sleep and wake at
    every parallel region (libgomp spins only briefly once it manages more threads than cores)."""
    code = """
import os, sys
import explorer.window.start_up as app

def count():
    return len(os.listdir('/proc/self/task'))

def check():
    import torch
    from PySide6.QtWidgets import QApplication
    before = count(); torch.ones(4_000_000).exp_(); after = count()
    torch.set_num_threads(2); torch.ones(4_000_000).exp_()
    print(before, after, count())
    QApplication.instance().quit()

def instead_of_preloading():
    from PySide6.QtCore import QTimer
    QTimer.singleShot(200, check)

app.preload_in_background = instead_of_preloading
sys.exit(app.main([]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120, capture_output=True,
                         text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}).stdout
    before, after, with_a_team = map(int, out.split()[-3:])
    assert after == before
    assert with_a_team > after   # the check can see a team start


def test_the_status_bar_names_the_training_threads_not_the_gui_threads():
    """On the CPU (no GPU visible, whatever the machine has) with a training team of 2, the status
    bar says 2 training threads, although the GUI thread itself runs torch on 1 after tune_for_gui."""
    code = ("import torch; from explorer.window.runtime import tune_for_gui; tune_for_gui(); "
            "from engine.training import TRAIN_THREADS; from explorer.window.main_window import device_description; "
            "assert not torch.cuda.is_available() and TRAIN_THREADS == 2 and torch.get_num_threads() == 1, "
            "(TRAIN_THREADS, torch.get_num_threads()); "
            "d = device_description(); assert d == 'CPU (2 training threads)', d")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "CUDA_VISIBLE_DEVICES": "",
                        "OMP_NUM_THREADS": "2"})


def test_the_app_trains_without_cuda_graphs_and_the_cli_with_them():
    """The graphed step made the drag on a GPU ten times slower (engine/cuda_graphs.py): the app's
    set-up turns it off; a process that is not the app (the CLI) keeps it."""
    code = ("import torch; import engine.cuda_graphs as g; from engine.models import build_model; "
            "from engine.config import ModelConfig; m = build_model(ModelConfig(variant='vae', latent_dim=2), (1, 8, 8), 10); "
            "o = m.configure_optimizers(1e-3); before = g.graphable(m, o, torch.device('cuda')); "
            "from explorer.window.runtime import tune_for_gui; tune_for_gui(); "
            "print(before, '|', g.graphable(m, o, torch.device('cuda')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120, capture_output=True, text=True,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).stdout.strip()
    assert out == "None | CUDA graphs are turned off"


def test_after_the_preload_a_run_starts_without_importing_and_leaves_few_young_objects():
    """What a training thread imports on its first run (torch.optim's constructor alone pulls in
    torch._dynamo and ~900 modules) comes in the launch's background preload instead, before the
    app freezes the long-lived objects: otherwise ~150,000 young objects made the first collections
    after a run started hold the interpreter lock for ~80 ms under the cursor."""
    code = """
import gc, sys
import torch
import explorer.window.start_up as app
from engine.datasets import load_dataset
from engine.training import Trainer
from tests.engine.helpers import DIGITS, quick_train, small_model
dataset = load_dataset(DIGITS)
assert app.preload_in_background().wait(120_000)
assert app.PRELOADED.is_set() and 'torch._dynamo' in sys.modules
gc.collect(); gc.freeze()
before = set(sys.modules)
for update in Trainer(DIGITS, small_model('vae'), quick_train(epochs=1), dataset=dataset).updates():
    break
young = sum(len(gc.get_objects(g)) for g in range(3))
print(len(set(sys.modules) - before), young)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=180, capture_output=True,
                         text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}).stdout
    new_modules, young = map(int, out.split()[-2:])
    assert new_modules < 20, f"a run's start imported {new_modules} modules the preload had not"
    assert young < 40_000, f"{young} young objects after a run's start"
