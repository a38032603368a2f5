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
echo "owa-builders is installed in $VENV"
