#!/usr/bin/env bash
# Idempotent: the Python venv for the OpenCV (cv2.dnn) reference and the baselines, in
# .cache/venv-ref (git-ignored), pip cache in .cache/pip. Prints the venv's python on the last line.
# cv2 5.x's dnn runs both the detout and the raw model (and agrees with onnxruntime to ~5e-7).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(opencv-python-headless==5.0.0.93 numpy==2.2.6 onnxruntime==1.31.1)
CHECK='"$V/bin/python" -c "import cv2, numpy, onnxruntime"'
V="$(bash "$ROOT/tools/pinned_venv.sh" ref .cache/venv-ref "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
