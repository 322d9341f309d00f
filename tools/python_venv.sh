#!/usr/bin/env bash
# Idempotent: the Python venv that builds and tests the `vidinfer` Python package (python/):
# maturin (builds the wheel from the Rust crate), pytest and numpy, pinned, in
# .cache/venv-python (git-ignored; pip cache in .cache/pip). Prints the venv's python on the
# last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(maturin==1.9.6 pytest==8.4.2 numpy==2.2.6)
CHECK='"$V/bin/python" -c "import pytest, numpy" && "$V/bin/maturin" --version'
V="$(bash "$ROOT/tools/pinned_venv.sh" python .cache/venv-python "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
