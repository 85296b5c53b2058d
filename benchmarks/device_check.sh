#!/usr/bin/env bash
# The device check in one command: every variant trained a few steps on the device, the
# throughput benchmark against pytorch/examples, `evaluate` on the device against the CPU on the
# same weights, the drag benchmark offscreen with training on the device; one table at the end
# (benchmarks/device_check.py says what each row is).
#
#   benchmarks/device_check.sh --device cuda [--quick] [--mnist-gz DIR] [--json OUT] [--skip drag,...]
#   benchmarks/device_check.sh --device cpu --quick      # the same on a CPU (tests/engine/test_device_check.py)
#
# Python: $PYTHON when set, else .venv/bin/python when it exists, else python3 when it can import
# the project's packages (torch, PySide6, pyqtgraph, safetensors, sklearn).  When none of them can, it
# makes .venv (python3 -m venv --system-site-packages, so a machine's own torch is kept) and runs
# pip install -e . into it, saying so: that step needs the package index (or its cache).
# Nothing else is installed or downloaded.  Exit status: 0 all rows passed, 1 a row failed, 2 bad use.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
needs="import torch, PySide6, pyqtgraph, safetensors, sklearn"

usable() { PYTHONPATH="$root" "$1" -c "$needs" >/dev/null 2>&1; }

if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ -x .venv/bin/python ]; then
    py=.venv/bin/python
else
    py=python3
fi
if ! usable "$py"; then
    if [ -x .venv/bin/python ] && usable .venv/bin/python; then
        py=.venv/bin/python
    else
        echo "device_check: $py cannot import the project's packages; making .venv:" >&2
        echo "    python3 -m venv --system-site-packages .venv && .venv/bin/python -m pip install -e ." >&2
        [ -x .venv/bin/python ] || python3 -m venv --system-site-packages .venv
        .venv/bin/python -m pip install --quiet -e .
        py=.venv/bin/python
    fi
fi
echo "device_check: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')" >&2
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" benchmarks/device_check.py "$@"
