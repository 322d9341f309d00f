#!/usr/bin/env bash
# Idempotent: a venv with the vidinfer wheel built from this tree (tools/package --python, in
# .cache/python-dist) beside numpy and OpenCV pinned as in tools/ref_venv.sh, for
# tools/baselines/vidinfer_python.py in tools/compare. The wheel's sha256 is one of the pins,
# so a rebuilt wheel makes a new venv. Prints the venv's python on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEEL="$(tools/package --python --out-dir .cache/python-dist | tail -n1)"
SUM="$(sha256sum "$WHEEL" | cut -d' ' -f1)"
PINS=("vidinfer @ file://$WHEEL#sha256=$SUM" numpy==2.2.6 opencv-python-headless==5.0.0.93)
CHECK='cd / && "$ROOT/$V/bin/python" -c "import vidinfer, cv2"'
V="$(bash "$ROOT/tools/pinned_venv.sh" vidinfer-py .cache/venv-vidinfer-py "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
