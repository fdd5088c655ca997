#!/usr/bin/env bash
# Reproduce the two topic-to-poem checkpoints on CPU, then evaluate them on held-out topic sets.
#   bash training/train_poems.sh            (OUT=runs bash training/train_poems.sh writes elsewhere)
# Both models train side by side on one thread each, with the same recipe: form features, a
# topic-character bonus, token-level unlikelihood of repeated characters and random topic subsets;
# MTA-LSTM also spends its topic coverage (training/objectives.py). One epoch (about 40 CPU-minutes),
# then a final phase of 55 CPU-minutes with the written-character state added (like See et al.'s
# coverage phase; it penalises repeats and masks the topic bonus) and MTA's coverage loss replaced by
# the spend loss, keeping the best validation NLL: 95 CPU-minutes per checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-checkpoints}"
EXTRA="$(cat training/poems_app_config.json)"
COMMON=(--data data/poems --src-field topics --tgt-field poem --cased --max-tgt 80 --threads 1 --time-budget 600
        --extra-config "$EXTRA" --sort-by-target --form-features --topic-char-bias --unlikelihood 1.0 --topic-subsets)
MAIN=(--epochs 1 --cpu-budget 60)
FINAL=(--written-penalty --epochs 2 --cpu-budget 55 --seed 2)
python -m training.train "${COMMON[@]}" "${MAIN[@]}" --model-type mta_lstm --topic-coverage-loss 1.0 --out runs/poem-mta-e1 &
python -m training.train "${COMMON[@]}" "${MAIN[@]}" --model-type tav_lstm --out runs/poem-tav-e1 &
wait
python -m training.train "${COMMON[@]}" "${FINAL[@]}" --init-from runs/poem-mta-e1 --topic-spend-loss 1.0 \
  --out "$OUT/poem-mta" &
python -m training.train "${COMMON[@]}" "${FINAL[@]}" --init-from runs/poem-tav-e1 --out "$OUT/poem-tav" &
wait
if [ "$OUT" = checkpoints ]; then python -m training.evaluate_poems; fi
