#!/usr/bin/env bash
# Idempotent: the Python venv for the OpenCV reference and the baselines, in .cache/venv-ref.
# Prints the venv's python on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(opencv-python-headless==5.0.0.93 numpy==2.2.6 onnxruntime==1.31.1)
V=.cache/venv-ref
want="${PINS[*]}"
if [ "$(cat "$V/.pins" 2>/dev/null)" != "$want" ] || ! "$V/bin/python" -c 'import cv2, numpy, onnxruntime' >/dev/null 2>&1; then
  echo "[ref] creating $V (${PINS[*]})" >&2
  rm -rf "$V"
  python3 -m venv "$V"
  PIP_CACHE_DIR="$ROOT/.cache/pip" "$V/bin/pip" install -q --disable-pip-version-check "${PINS[@]}" >&2
  echo "$want" > "$V/.pins"
fi
echo "$ROOT/$V/bin/python"
