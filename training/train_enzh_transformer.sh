#!/usr/bin/env bash
# Reproduce checkpoints/enzh-transformer on CPU (60 CPU-minutes, one thread), then evaluate it
# beside the RNN translation models.
#   bash training/train_enzh_transformer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m training.train_transformer --data data/enzh --out checkpoints/enzh-transformer \
    --threads 1 --cpu-budget 60 --extra-config "$(cat training/enzh_transformer_app_config.json)"
python -m training.evaluate_enzh
