#!/usr/bin/env bash
# Idempotent: a Python venv with OpenVINO itself (its `benchmark_app`), in .cache/venv-ov
# (git-ignored; pip cache in .cache/pip), for tools/compare to measure OpenVINO's own speed on
# our model beside vidinfer's. Prints the venv's bin folder on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(openvino==2026.4.1 numpy==2.2.6)
V=.cache/venv-ov
want="${PINS[*]}"
if [ "$(cat "$V/.pins" 2>/dev/null)" != "$want" ] || ! "$V/bin/python" -c 'import openvino' >/dev/null 2>&1; then
  echo "[ov] creating $V (${PINS[*]})" >&2
  rm -rf "$V"
  mkdir -p .cache/pip
  python3 -m venv "$V" >&2
  PIP_CACHE_DIR="$ROOT/.cache/pip" "$V/bin/pip" install -q --no-input --disable-pip-version-check "${PINS[@]}" >&2
  "$V/bin/benchmark_app" --help >/dev/null
  echo "$want" > "$V/.pins"
fi
echo "$ROOT/$V/bin"
