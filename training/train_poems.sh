#!/usr/bin/env bash
# Reproduce the two topic-to-poem checkpoints on CPU, then evaluate them on the test topic sets.
#   bash training/train_poems.sh   (each run stops at its 46-minute time budget)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/poems_app_config.json)"
COMMON=(--data data/poems --src-field topics --tgt-field poem --cased --max-tgt 80 --epochs 12
        --time-budget 46 --extra-config "$EXTRA")
python -m training.train "${COMMON[@]}" --model-type mta_lstm --out checkpoints/poem-mta
python -m training.train "${COMMON[@]}" --model-type tav_lstm --out checkpoints/poem-tav
python -m training.evaluate_poems
