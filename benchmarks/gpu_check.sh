#!/usr/bin/env bash
# The whole accelerator measurement of paper scale in one command (see benchmarks/gpu_check.py):
#   benchmarks/gpu_check.sh                         # CUDA: within 8 minutes on one H100/H200
#   benchmarks/gpu_check.sh --device cpu --small    # the same script at toy sizes on a CPU
# GPU_CHECK_TIMEOUT (seconds, default 480) bounds it; PYTHON picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "${PYTHON:-.venv/bin/python}" benchmarks/gpu_check.py "$@"
