#!/usr/bin/env bash
# Idempotent: the Python venv for the tracking peers in tools/compare (tools/track_peer.py):
# roboflow's `trackers` (ByteTrack, OC-SORT, and its MOT evaluation) and supervision's LineZone,
# pinned to the versions issue 24 compared against, in .cache/venv-tracking (git-ignored; pip
# cache in .cache/pip). Prints the venv's python on the last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PINS=(trackers==2.6.1 supervision==0.31.2)
CHECK='"$V/bin/python" -c "import trackers, supervision"'
V="$(bash "$ROOT/tools/pinned_venv.sh" tracking .cache/venv-tracking "$CHECK" "${PINS[@]}" | tail -n1)"
echo "$V/bin/python"
