"""The engine runs without a display: import-linter's contract in pyproject.toml holds."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the [test] extra"
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_engine_imports_without_qt():
    code = ("import sys; import engine.cli, engine.training, engine.runs, engine.export, engine.projection; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'explorer'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_no_module_of_the_engine_imports_qt():
    """Every module of engine/, each imported: none brings in Qt (the training thread's Qt side
    lives in explorer/tasks.py), and the import contract has no exemption."""
    code = ("import importlib, pkgutil, sys, engine; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(engine.__path__, 'engine.')]; "
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'pyqtgraph', 'explorer'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=180)
    assert "ignore_imports" not in (ROOT / "pyproject.toml").read_text()
