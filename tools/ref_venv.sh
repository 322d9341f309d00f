#!/usr/bin/env bash
# Idempotent: the Python venv for the OpenCV (cv2.dnn) reference and the baselines, in
# .cache/venv-ref (git-ignored), pip cache in .cache/pip. Prints the venv's python on the last line.
# cv2 5.x's dnn runs both the detout and the raw model (and agrees with onnxruntime to ~5e-7).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(opencv-python-headless==5.0.0.93 numpy==2.2.6 onnxruntime==1.31.1)
V=.cache/venv-ref
want="${PINS[*]}"
if [ "$(cat "$V/.pins" 2>/dev/null)" != "$want" ] || ! "$V/bin/python" -c 'import cv2, numpy, onnxruntime' >/dev/null 2>&1; then
  echo "[ref] creating $V (${PINS[*]})" >&2
  rm -rf "$V"
  mkdir -p .cache/pip
  python3 -m venv "$V" >&2 || {
    echo "[ref] 'python3 -m venv' failed: on Debian, apt-get install -y python3-venv" >&2
    exit 1
  }
  PIP_CACHE_DIR="$ROOT/.cache/pip" "$V/bin/pip" install -q --no-input --disable-pip-version-check "${PINS[@]}" >&2
  "$V/bin/python" -c 'import cv2, numpy, onnxruntime' >&2
  echo "$want" > "$V/.pins"
fi
echo "$ROOT/$V/bin/python"
