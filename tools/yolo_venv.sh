#!/usr/bin/env bash
# Idempotent: the Python venv that makes and checks the Ultralytics test models (tools/yolo_models.sh,
# tools/yolo_reference.py), in .cache/venv-yolo (git-ignored; pip cache in .cache/pip).
# Torch is Debian's python3-torch 1.13 (CPU) and python3-torchvision, seen through
# --system-site-packages: PyPI's torch wheel brings ~5 GB of CUDA libraries this CPU-only job
# never uses, and the CPU-only wheels live on a package index this machine cannot reach.
# Both Debian packages are in tools/setup's TEST_APT_PKGS. numpy < 2, opencv-python < 4.12 and
# onnx < 1.18 are what Debian's torch 1.13 works with. onnxruntime is vidinfer's own release,
# so both sides of the conformance test run the same kernels. Prints the venv's python last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(ultralytics==8.4.190 numpy==1.26.4 opencv-python==4.11.0.86 onnx==1.17.0
      onnxruntime==1.31.1 onnxslim==0.1.98)
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  echo "[yolo] Debian's python3-torch and python3-torchvision are missing: tools/setup --for-tests installs them" >&2
  exit 1
fi
CHECK='"$V/bin/python" -c "import ultralytics, torch, onnx, onnxruntime; assert torch.__version__.startswith(\"1.13\"), torch.__version__"'
V="$(VENV_PYTHON=/usr/bin/python3 VENV_ARGS=--system-site-packages \
     bash "$ROOT/tools/pinned_venv.sh" yolo .cache/venv-yolo "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
