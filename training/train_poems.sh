#!/usr/bin/env bash
# Reproduce the two topic-to-poem checkpoints on CPU, then evaluate them on the test topic sets.
#   bash training/train_poems.sh
# Both models train side by side on one thread each; each run stops after 60 CPU-minutes
# (about 2.7 epochs), keeping the epoch with the best validation NLL.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/poems_app_config.json)"
COMMON=(--data data/poems --src-field topics --tgt-field poem --cased --max-tgt 80 --epochs 12
        --threads 1 --time-budget 600 --cpu-budget 60 --extra-config "$EXTRA")
python -m training.train "${COMMON[@]}" --model-type mta_lstm --out checkpoints/poem-mta &
python -m training.train "${COMMON[@]}" --model-type tav_lstm --out checkpoints/poem-tav &
wait
python -m training.evaluate_poems
