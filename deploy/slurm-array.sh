#!/usr/bin/env bash
# vidinfer over a manifest of videos as a Slurm job array: task i of N processes every N-th
# input of the sorted manifest (vidinfer reads SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and
# SLURM_ARRAY_TASK_COUNT itself). Requeued or resubmitted tasks skip inputs whose
# `<name>.done` marker exists in the output directory.
#
#   sbatch --array=0-7 deploy/slurm-array.sh /shared/manifest.txt /shared/out
#
# VIDINFER_HOME is an unpacked release bundle (tools/package; deploy/README.md) on a shared
# file system: bin/vidinfer finds lib/, lib/onnxruntime/ and models/ beside itself, so the
# nodes need nothing installed. (A source tree works too: VIDINFER_HOME/target/release/vidinfer.)
#
#SBATCH --job-name=vidinfer
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=vidinfer-%A_%a.log
set -euo pipefail
MANIFEST="${1:?manifest file}"
OUT="${2:?output directory}"
VIDINFER_HOME="${VIDINFER_HOME:-$HOME/vidinfer}"
VIDINFER="$VIDINFER_HOME/bin/vidinfer"
[ -x "$VIDINFER" ] || VIDINFER="$VIDINFER_HOME/target/release/vidinfer"

exec "$VIDINFER" detect \
    --inputs-from "$MANIFEST" \
    --model "$VIDINFER_HOME/models/ssd_mobilenet_v2_coco.onnx" \
    --batch 8 --out "$OUT" --no-progress
