"""Start-up stays quick: slow imports wait for first use or load behind the shown window."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_start_up_leaves_slow_imports_for_later():
    """The window's modules import neither umap (numba compiles for ~35 s) nor scipy.signal and
    scipy.spatial (over a second together); those load on first use or behind the shown window."""
    code = ("import sys; import explorer.app, explorer.main_window; "
            "bad = [m for m in ('umap', 'numba', 'scipy.signal', 'scipy.spatial') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
