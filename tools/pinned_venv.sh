#!/usr/bin/env bash
# Idempotent: a Python venv at DIR (inside the repo, git-ignored) with exactly PINS installed,
# pip cache in .cache/pip. CHECK is a shell command, run with $V set to DIR, that succeeds once
# the venv works: a cached venv is kept only if its pins match and CHECK passes; a new one must
# pass it before its .pins is written (last, so a venv with the right .pins is complete).
# Prints the venv's absolute path on the last line.
# usage: tools/pinned_venv.sh TAG DIR CHECK PIN...   (TAG prefixes its messages)
# VENV_PYTHON (default python3) makes the venv; VENV_ARGS are extra `venv` flags (e.g.
# --system-site-packages, to use a Debian package such as python3-torch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TAG="$1" V="$2" CHECK="$3"
shift 3
want="$*"
if [ "$(cat "$V/.pins" 2>/dev/null)" != "$want" ] || ! (eval "$CHECK") >/dev/null 2>&1; then
  echo "[$TAG] creating $V ($want)" >&2
  rm -rf "$V"
  mkdir -p .cache/pip
  # shellcheck disable=SC2086 # VENV_ARGS is a list of flags
  "${VENV_PYTHON:-python3}" -m venv ${VENV_ARGS:-} "$V" >&2 || {
    echo "[$TAG] 'python3 -m venv' failed: on Debian, apt-get install -y python3-venv" >&2
    exit 1
  }
  PIP_CACHE_DIR="$ROOT/.cache/pip" "$V/bin/pip" install -q --no-input --disable-pip-version-check "$@" >&2
  (eval "$CHECK") >&2
  echo "$want" > "$V/.pins"
fi
echo "$ROOT/$V"
