#!/usr/bin/env bash
# Execute every chapter on a GPU (OOD_DEVICE=cuda) and print each chapter's time.
#
#   bash tools/gpu_check.sh                                   # every notebook of _toc.yml
#   bash tools/gpu_check.sh notebooks/04_attacking_twins.ipynb
#
# Needs a CUDA device and the datasets under $OOD_DATA_ROOT. Starts from an empty model cache
# (a temporary folder unless $OOD_CACHE_DIR is set), so every chapter's training runs on the GPU.
# The device tool runs it on a lent GPU: one short prepared run (see DEVELOPERS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
"$python" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("tools/gpu_check.sh needs a CUDA GPU, and torch sees none: run it on a GPU machine "
             "(the device tool, or a Colab GPU runtime)")
print(f"GPU: {torch.cuda.get_device_name(0)} | torch {torch.__version__} | CUDA {torch.version.cuda}", flush=True)
PY
export OOD_DEVICE=cuda
export OOD_PROFILE="${OOD_PROFILE:-fast}"
export OOD_CACHE_DIR="${OOD_CACHE_DIR:-$(mktemp -d)}"
export OOD_RESULTS_DIR="${OOD_RESULTS_DIR:-$(mktemp -d)}"
"$python" tools/run_notebooks.py "$@"
