#!/usr/bin/env bash
# Idempotent: the Python venv for post-training quantisation (tools/quantize), in
# .cache/venv-nncf (git-ignored; pip cache in .cache/pip). NNCF's ONNX backend quantises the
# ONNX model itself and calibrates with onnxruntime; openvino is there to time the result the way
# it will run. Prints the venv's python on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(nncf==3.4.0 onnx==1.22.0 onnxruntime==1.31.1 openvino==2026.4.1 numpy==2.2.6)
CHECK='"$V/bin/python" -c "import nncf, onnx, onnxruntime, openvino, numpy"'
V="$(bash "$ROOT/tools/pinned_venv.sh" nncf .cache/venv-nncf "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
