"""The e2e tests share the trained runs of the GUI tests."""

from tests.explorer.conftest import run_paths  # noqa: F401
