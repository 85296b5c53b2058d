#!/usr/bin/env bash
# Pack what the GPU machine lacks, for benchmarks/device_check.sh there (see "On a GPU" in README.md).
#
#   benchmarks/device_pack.sh            # here: writes .devsite/pack.tar.xz and .devsite/mnist/ (~40 MB)
#   bash benchmarks/device_pack.sh --run [device_check.sh arguments]   # there: unpack, then the check
#
# The device machine's Python (3.12, torch with CUDA, NumPy, SciPy, scikit-learn, safetensors,
# Pillow, imageio) lacks PySide6, shiboken6, pyqtgraph and platformdirs, and Qt's system libraries
# (libxkbcommon, libfontconfig, libEGL, ...), and it has no network.  This packs them from .venv
# (PySide6's wheels are abi3, so a 3.11 build loads in 3.12): only the Qt modules and the offscreen
# platform plugin that the app and the drag benchmark load (90 MB of PySide6's 234), and the system
# libraries they link against.  --run installs them into that Python's site-packages (so the
# check's child processes see them), puts only the system libraries missing there on
# LD_LIBRARY_PATH, and runs device_check.sh on CUDA with the packed MNIST; its JSON goes to $OUT.
# .devsite/ is git-ignored (.git/info/exclude); carry .devsite/pack.tar.xz and .devsite/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --run ]; then
    shift
    mkdir -p /tmp/devsite && tar xJf .devsite/pack.tar.xz -C /tmp/devsite
    site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cp -r /tmp/devsite/site/* "$site"/
    mkdir -p /tmp/devsite/missing
    for f in /tmp/devsite/syslibs/*; do
        n=$(basename "$f"); ldconfig -p | grep -qF "$n (" || cp "$f" /tmp/devsite/missing/
    done
    export LD_LIBRARY_PATH=/tmp/devsite/missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    PYTHON=python3 exec benchmarks/device_check.sh --device cuda --mnist-gz .devsite/mnist \
        --data-root /tmp/devsite/data --json "${OUT:-/tmp}/device_check.json" "$@"
fi
sp=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mnist=${MNIST_GZ:-../shared/data/mnist}
grep -qx '/.devsite/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo /.devsite/ >> .git/info/exclude; }
rm -rf .devsite && mkdir -p .devsite/site/PySide6/Qt/lib .devsite/site/PySide6/Qt/plugins/platforms .devsite/syslibs .devsite/mnist
cp -r "$sp"/shiboken6 "$sp"/pyqtgraph "$sp"/platformdirs "$sp"/pyside6_essentials-*.dist-info "$sp"/shiboken6-*.dist-info .devsite/site/
rm -rf .devsite/site/pyqtgraph/examples .devsite/site/pyqtgraph/opengl
pyside="$sp/PySide6"
cp "$pyside"/*.py "$pyside"/libpyside6.abi3.so.* .devsite/site/PySide6/
cp -r "$pyside"/support "$pyside"/glue .devsite/site/PySide6/
for m in Core Gui Widgets OpenGL OpenGLWidgets Svg Test DBus; do
    cp "$pyside/Qt$m.abi3.so" .devsite/site/PySide6/
    cp "$pyside/Qt/lib/libQt6$m.so.6" .devsite/site/PySide6/Qt/lib/
done
cp "$pyside"/Qt/lib/libicu*.so.* .devsite/site/PySide6/Qt/lib/
cp "$pyside"/Qt/plugins/platforms/libqoffscreen.so .devsite/site/PySide6/Qt/plugins/platforms/
# the system libraries those link against, beyond the C and C++ runtimes every machine has
for f in $(find .devsite/site/PySide6 -name '*.so*'); do LD_LIBRARY_PATH=.devsite/site/PySide6/Qt/lib ldd "$f"; done \
    | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u \
    | grep -vE 'devsite|lib(c|m|pthread|dl|rt|stdc\+\+|gcc_s|python[0-9.]*)\.so|ld-linux' \
    | while read -r name path; do cp -L "$path" ".devsite/syslibs/$name"; done
cp "$mnist"/*-ubyte.gz .devsite/mnist/
(cd .devsite && tar cJf pack.tar.xz site syslibs && rm -rf site syslibs)
du -sh .devsite/pack.tar.xz .devsite/mnist
