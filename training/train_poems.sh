#!/usr/bin/env bash
# Reproduce the two topic-to-poem checkpoints on CPU, then evaluate them on the test topic sets.
#   bash training/train_poems.sh            (OUT=runs bash training/train_poems.sh writes elsewhere)
# Both models train side by side on one thread each; each run stops after 110 CPU-minutes
# (about three epochs), keeping the epoch with the best validation NLL. Both share the recipe:
# form features, a topic-character bonus, token-level unlikelihood of repeated characters and
# random topic subsets; MTA-LSTM also spends its topic coverage (training/objectives.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-checkpoints}"
EXTRA="$(cat training/poems_app_config.json)"
COMMON=(--data data/poems --src-field topics --tgt-field poem --cased --max-tgt 80 --epochs 12
        --threads 1 --time-budget 600 --cpu-budget 110 --extra-config "$EXTRA" --sort-by-target
        --form-features --topic-char-bias --unlikelihood 1.0 --topic-subsets)
python -m training.train "${COMMON[@]}" --model-type mta_lstm --topic-coverage-loss 1.0 --out "$OUT/poem-mta" &
python -m training.train "${COMMON[@]}" --model-type tav_lstm --out "$OUT/poem-tav" &
wait
if [ "$OUT" = checkpoints ]; then python -m training.evaluate_poems; fi
