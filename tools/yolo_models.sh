#!/usr/bin/env bash
# Idempotent: vidinfer's Ultralytics test models in .cache/yolo/models (git-ignored), made by
# tools/yolo_models.py in the pinned venv (tools/yolo_venv.sh): labels from vidinfer's own SSD
# detections on vtest.avi, Ultralytics' trainer, Ultralytics' ONNX export. Run by tools/test,
# not by tools/setup (training takes minutes on a laptop CPU; the SSD demo does not need them).
# Kept while the stamp (the tool, the pins and the SSD model) matches. Prints the folder last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIR=.cache/yolo
OUT="$DIR/models"
PY="$(bash tools/yolo_venv.sh | tail -n1)"
stamp="$(cat tools/yolo_models.py tools/yolo_venv.sh models/ssd_mobilenet_v2_coco.onnx | sha256sum | cut -c1-16)"
if [ "$(cat "$OUT/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "[yolo] training and exporting the Ultralytics test models (several minutes)" >&2
  rm -rf "$OUT" "$OUT.tmp" "$DIR/work"
  mkdir -p "$DIR/work" "$DIR/config"
  cargo build --release -q
  # The labels: SSD's own detections on every third frame of vtest.avi.
  target/release/vidinfer detect samples/vtest.avi --stride 3 --out "$DIR/work/ssd" --name vtest \
      --outputs jsonl --no-progress -q
  # Debian's torch does its matrix products through libblas.so.3, which is the reference BLAS
  # unless OpenBLAS is installed (tools/setup --for-tests installs it): on OpenBLAS RT-DETR's
  # transformer trains 7x faster and the YOLOs 4-5x. Put it first even where the alternative
  # points elsewhere.
  blas=/usr/lib/x86_64-linux-gnu/openblas-pthread
  [ -e "$blas/libblas.so.3" ] || echo "[yolo] no OpenBLAS ($blas): RT-DETR will train very slowly (tools/setup --for-tests)" >&2
  # Ultralytics never touches the network: offline, its settings in the cache, no plots (which
  # would download a font), no AMP check (CPU).
  LD_LIBRARY_PATH="$blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" YOLO_OFFLINE=1 YOLO_CONFIG_DIR="$ROOT/$DIR/config" "$PY" tools/yolo_models.py \
      --dets samples/vtest.avi "$DIR/work/ssd/vtest.jsonl" --out "$OUT.tmp" --work "$DIR/work" \
      --every 4 "$@" >"$DIR/train.log" 2>&1 || { tail -n 30 "$DIR/train.log" >&2; exit 1; }
  mv "$OUT.tmp" "$OUT"
  echo "$stamp" > "$OUT/.stamp"
fi
echo "$ROOT/$OUT"
