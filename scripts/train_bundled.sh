#!/usr/bin/env bash
# Train (or, with --resume, continue) the bundled Imagenette-64 prior on one CPU thread in
# the background.  Usage: scripts/train_bundled.sh [--resume] [extra dgp train options]
# Output: $OUT (default runs/bundled, ignored by git): samples/, train.log, nohup.log.
# The resume state (checkpoint.pt, ~50 MB) never goes into the repository: dgp train keeps
# it in the user cache (training/bundled-<digest of $OUT>/, printed on the first line of
# train.log), or in $STATE_DIR when set; --resume with the same $OUT (and $STATE_DIR) finds
# it. Export it with scripts/export_bundled.py --checkpoint <that folder>/checkpoint.pt.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-$REPO/../shared/datasets/imagenette/train.npz}"
OUT="${OUT:-$REPO/runs/bundled}"
STATE=()
if [ -n "${STATE_DIR:-}" ]; then STATE=(--state-dir "$STATE_DIR"); fi
mkdir -p "$OUT"
# glibc allocator settings measured to halve time per step on this CPU (DGP.md §12).
export OMP_NUM_THREADS=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
. "$REPO/.venv/bin/activate"
nohup dgp train --data "$DATA" --out "$OUT" --res 64 --ch 16 --batch 32 --steps 20000 \
    --lr-g 2e-4 --lr-d 4e-4 --attn 0 --threads 1 --checkpoint-minutes 10 --log-every 20 \
    ${STATE[@]+"${STATE[@]}"} "$@" >>"$OUT/nohup.log" 2>&1 &
echo "started PID $! → $OUT/train.log"
