#!/usr/bin/env bash
# Scheduled sampling and attention regularisation beside their teacher-forced twin: three coverage
# phases of 10 CPU-minutes from the same en->zh pointer run (train_enzh.sh makes runs/enzh-pointer-copy),
# then the comparison table (docs/results_objectives.md).
#   bash training/train_enzh_objectives.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/enzh_app_config.json)"
PHASE=(--data data/enzh --cased --train-max-src 60 --max-tgt 80 --max-source-len 120 --extra-config "$EXTRA"
       --mask-unk-targets --copy-only-latin-below 100 --threads 1 --time-budget 600
       --init-from runs/enzh-pointer-copy --coverage --epochs 1 --lr 5e-4 --cpu-budget 10)
python -m training.train "${PHASE[@]}" --out runs/enzh-pc-tf
python -m training.train "${PHASE[@]}" --scheduled-sampling linear --ss-c 6.25e-4 --ss-floor 0.75 --out runs/enzh-pc-ss
python -m training.train "${PHASE[@]}" --attention-reg 1 --attention-target 1 --out runs/enzh-pc-attreg
python -m training.compare_objectives runs/enzh-pc-tf runs/enzh-pc-ss runs/enzh-pc-attreg --limit 400
