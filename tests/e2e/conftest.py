"""The e2e tests share the trained runs and the window fixture of the GUI tests."""

from tests.explorer.conftest import run_paths, window  # noqa: F401
