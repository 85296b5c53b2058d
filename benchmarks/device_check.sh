#!/usr/bin/env bash
# The device check in one command: every variant trained a few steps on the device, the
# throughput benchmark against pytorch/examples, `evaluate` on the device against the CPU on the
# same weights, the drag benchmark offscreen with training on the device; one table at the end
# (benchmarks/device_check.py says what each row is).
#
#   benchmarks/device_check.sh --device cuda [--quick] [--mnist-gz DIR] [--json OUT] [--skip drag,...]
#   benchmarks/device_check.sh --device cpu --quick      # the same on a CPU (tests/engine/test_device_check.py)
#
# Python: $PYTHON when set, else .venv/bin/python when it exists, else python3, as long as it can
# import the engine (torch, safetensors, scikit-learn, ...).  When none can, it makes .venv
# (python3 -m venv --system-site-packages, so a machine's own torch is kept) and runs
# pip install -e . into it, saying so: that step needs the package index (or pip's cache).
# A Python that has the engine but not the GUI (PySide6, pyqtgraph) runs every check but the
# drag benchmark, saying so.  Nothing else is installed or downloaded.
# Exit status: 0 every row passed, 1 a row failed, 2 bad use (e.g. --device cuda without CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# what a Python can run, in one start: "gui" (everything), "engine" (all but the drag benchmark) or nothing
can_run() {
    PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" QT_QPA_PLATFORM=offscreen "$1" - 2>/dev/null <<'PY' || true
try:
    import benchmarks.common, engine.cli, engine.metrics, engine.training  # noqa: F401
except Exception:
    raise SystemExit(0)
try:
    import pyqtgraph, PySide6.QtWidgets  # noqa: F401
    print("gui")
except Exception:
    print("engine")
PY
}

if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ -x .venv/bin/python ]; then
    py=.venv/bin/python
else
    py=python3
fi
can="$(can_run "$py")"
if [ -z "$can" ] && [ "$py" != .venv/bin/python ] && [ -x .venv/bin/python ]; then
    py=.venv/bin/python
    can="$(can_run "$py")"
fi
if [ -z "$can" ]; then
    echo "device_check: $py cannot import the engine; making .venv:" >&2
    echo "    python3 -m venv --system-site-packages .venv && .venv/bin/python -m pip install -e ." >&2
    [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
    .venv/bin/python -m pip install --quiet -e .
    py=.venv/bin/python
    can="$(can_run "$py")"
    [ -n "$can" ] || { echo "device_check: .venv still cannot import the engine." >&2; exit 2; }
fi
echo "device_check: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')" >&2
extra=()
if [ "$can" != gui ]; then
    echo "device_check: $py cannot import PySide6 and pyqtgraph (or Qt's system libraries are missing):" \
         "the drag benchmark is left out" >&2
    extra=(--skip-gui)
fi
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" benchmarks/device_check.py "$@" ${extra[@]+"${extra[@]}"}
