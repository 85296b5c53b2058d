#!/usr/bin/env bash
# Make sure the system libraries Qt needs are installed (Debian/Ubuntu).
#   tools/system_libs.sh offscreen   libraries for the offscreen platform (tests)
#   tools/system_libs.sh gui         plus the xcb set for a real window
# As root it installs what is missing with apt-get; otherwise it prints the apt line and fails.
set -euo pipefail
offscreen="libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libdbus-1-3"
xcb="libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0"
wanted="$offscreen"
[ "${1:-offscreen}" = gui ] && wanted="$offscreen $xcb"
[ "${1:-offscreen}" = xvfb ] && wanted="$offscreen $xcb xvfb xauth"
command -v dpkg-query >/dev/null 2>&1 || exit 0   # not Debian: nothing we can check
missing=""
for p in $wanted; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system libraries for Qt:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
    echo "Qt needs system libraries that are missing. Install them with:" >&2
    echo "    sudo apt-get install$missing" >&2
    exit 1
fi
