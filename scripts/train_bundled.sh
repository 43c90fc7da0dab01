#!/usr/bin/env bash
# Train (or, with --resume, continue) the bundled Imagenette-64 prior in the background,
# scoring every checkpoint on the scoreboard.  Usage:
#   scripts/train_bundled.sh            # start
#   scripts/train_bundled.sh --resume   # continue after a stop, a kill or a reboot
# Extra options go to `dgp train` (after --resume they override the saved settings).
# Output: $OUT (default runs/bundled, ignored by git): samples/ (an 8×10 grid per
# checkpoint: a row per fixed latent, a column per class), scoreboard.md, train.log,
# nohup.log. The resume state (checkpoint.pt, ~50 MB), the snapshots of every checkpoint
# (snapshots/, ~15 MB each) and the scoreboard (scoreboard.json/.csv/.md) never go into the
# repository: dgp train keeps them in the user cache (training/bundled-<digest of $OUT>/,
# printed on the first line of train.log), or in $STATE_DIR when set.
# Stopping: Ctrl-C/SIGTERM saves a checkpoint; a kill loses at most one checkpoint interval.
# The run stops by itself after $CPU_HOURS CPU-hours (the process's CPU time in training
# steps, all sittings; sittings before 2026-12-05 23:10 UTC counted wall × threads).
# Ship the best checkpoint by the scoreboard (not the last):
#   python scripts/export_bundled.py --best <state folder> \
#       --recipe-notes bench/results/bundled_recipe.md
# (the evaluation classifier in resources/models/bundled stays as it is).
# On a GPU: DEVICE=cuda THREADS=1 CPU_HOURS=0.16 (≈ 10 minutes) scripts/train_bundled.sh
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-$REPO/../shared/datasets/imagenette/train.npz}"
OUT="${OUT:-$REPO/runs/bundled}"
THREADS="${THREADS:-2}"
DEVICE="${DEVICE:-cpu}"
CPU_HOURS="${CPU_HOURS:-6}"
CLASSIFIER="$REPO/resources/models/bundled/eval_classifier.safetensors"
STATE=()
if [ -n "${STATE_DIR:-}" ]; then STATE=(--state-dir "$STATE_DIR"); fi
# The recipe the shipped run started with (chosen by bench/train_recipes.py). That run was
# changed while it trained, each change judged on its scoreboard (bench/results/
# bundled_recipe.md): --batch 32 from step 640; --lr-g 1e-4 --lr-d 2e-4 from 2675;
# --d-steps 2 --augment color,translation from 3172; --lr-d 4e-4 from 4139, to step 6476 (shipped).
RECIPE=(--res 64 --ch 16 --attn 0 --batch 64 --lr-g 2e-4 --lr-d 4e-4 --lecam 0.01
    --augment color,translation,cutout --d-steps 1 --ema-decay 0.999 --steps 1000000)
if [ "${1:-}" = "--resume" ]; then RECIPE=(); fi # the checkpoint holds the settings
mkdir -p "$OUT"
# glibc allocator settings measured to halve time per step on this CPU (DGP.md §12).
export OMP_NUM_THREADS="$THREADS" MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000
. "$REPO/.venv/bin/activate"
nohup dgp train --data "$DATA" --out "$OUT" ${RECIPE[@]+"${RECIPE[@]}"} \
    --max-cpu-hours "$CPU_HOURS" --eval-classifier "$CLASSIFIER" --eval-samples 5000 \
    --threads "$THREADS" --device "$DEVICE" --checkpoint-minutes 10 --log-every 20 \
    ${STATE[@]+"${STATE[@]}"} "$@" >>"$OUT/nohup.log" 2>&1 &
echo "started PID $! → $OUT/train.log"
