#!/usr/bin/env bash
# Idempotent: a Python venv with OpenVINO itself (its `benchmark_app`), in .cache/venv-ov
# (git-ignored; pip cache in .cache/pip), for tools/compare to measure OpenVINO's own speed on
# our model beside vidinfer's. Prints the venv's bin folder on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PINS=(openvino==2026.4.1 numpy==2.2.6)
CHECK='"$V/bin/python" -c "import openvino" && "$V/bin/benchmark_app" --help >/dev/null'
V="$(bash "$ROOT/tools/pinned_venv.sh" ov .cache/venv-ov "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin"
