#!/usr/bin/env bash
# Reproduce the two en->zh checkpoints on CPU, then evaluate them on the test split.
#   bash training/train_enzh.sh   (enzh-seq2seq: 40 min; enzh-pointer-coverage: 32 + 10 min)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/enzh_app_config.json)"
COMMON=(--data data/enzh --cased --train-max-src 60 --max-tgt 80 --max-source-len 120 --extra-config "$EXTRA")
python -m training.train "${COMMON[@]}" --model-type seq2seq --epochs 12 --time-budget 40 \
  --out checkpoints/enzh-seq2seq
python -m training.train "${COMMON[@]}" --model-type pointer_generator --epochs 12 --time-budget 32 \
  --out runs/enzh-pointer
python -m training.train "${COMMON[@]}" --init-from runs/enzh-pointer --coverage --epochs 1 --lr 5e-4 \
  --time-budget 10 --out checkpoints/enzh-pointer-coverage
python -m training.evaluate_enzh
