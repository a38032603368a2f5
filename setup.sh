#!/usr/bin/env bash
# Set up owa-builders in a virtual environment (default: .venv beside this file).
# PyTorch goes in first, pinned to the CPU build (torch is an optional extra of the package;
# an unpinned torch would pull gigabytes of CUDA packages).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -e ".[fsl,torch,ray,test]"
# Debian's Chromium renders the preview pages in the tests (they skip without it). Installed only where
# apt-get can run (root, or password-less sudo); elsewhere setup goes on without it.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && SUDO="sudo -n"; } || SUDO=none
    if [ "$SUDO" != none ]; then
        export DEBIAN_FRONTEND=noninteractive
        { $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
            || { $SUDO apt-get update -qq >/dev/null 2>&1 \
                 && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; } \
            || echo "note: could not install chromium; the browser preview tests will be skipped"
    else
        echo "note: chromium not installed (needs root for apt-get); the browser preview tests will be skipped"
    fi
fi
# FFmpeg's shared libraries (libavcodec, ...) for torchcodec, measured beside the frame loader by
# `owa-builders bench-train` (PyAV bundles its own FFmpeg; the bench and tests skip torchcodec without
# them). Installed like chromium: only where apt-get can run.
if ! ldconfig -p 2>/dev/null | grep -q 'libavcodec\.so\.' && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && SUDO="sudo -n"; } || SUDO=none
    if [ "$SUDO" != none ]; then
        export DEBIAN_FRONTEND=noninteractive
        { $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null 2>&1 \
            || { $SUDO apt-get update -qq >/dev/null 2>&1 \
                 && $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null 2>&1; }; } \
            || echo "note: could not install FFmpeg's libraries; torchcodec will be skipped"
    else
        echo "note: FFmpeg's libraries not installed (needs root for apt-get); torchcodec will be skipped"
    fi
fi
"$VENV/bin/python" -m pip install --quiet -e ".[torchcodec]" \
    || echo "note: could not install torchcodec; the benchmark and tests skip it"
echo "owa-builders is installed in $VENV"
