#!/usr/bin/env bash
# Idempotent: the Python venv for the expert's OpenVINO loop (tools/baselines/openvino_async.py):
# OpenCV for decoding and blobFromImage, OpenVINO for inference, in .cache/venv-expert
# (git-ignored; pip cache in .cache/pip). The same pins as tools/ov_venv.sh and tools/ref_venv.sh,
# so the loop runs the OpenVINO that benchmark_app measures. Prints the venv's python on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(openvino==2026.4.1 opencv-python-headless==5.0.0.93 numpy==2.2.6)
CHECK='"$V/bin/python" -c "import cv2, openvino, numpy"'
V="$(bash "$ROOT/tools/pinned_venv.sh" expert .cache/venv-expert "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
