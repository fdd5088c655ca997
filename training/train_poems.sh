#!/usr/bin/env bash
# Reproduce the two topic-to-poem checkpoints on CPU, then evaluate them on held-out topic sets.
#   bash training/train_poems.sh            (OUT=runs bash training/train_poems.sh writes elsewhere)
# Both models train side by side on one thread each, with the same recipe: form features, a
# topic-character bonus, token-level unlikelihood of repeated characters and random topic subsets;
# MTA-LSTM also spends its topic coverage (training/objectives.py). One epoch (about 40 CPU-minutes);
# then 55 CPU-minutes with the written-character state added (like See et al.'s coverage phase; it
# penalises repeats and masks the topic bonus) and MTA's coverage loss replaced by the spend loss;
# then 20 CPU-minutes with the topic-word continuation bonus added. Each phase keeps its best
# validation NLL: 115 CPU-minutes per checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-checkpoints}"
EXTRA="$(cat training/poems_app_config.json)"
COMMON=(--data data/poems --src-field topics --tgt-field poem --cased --max-tgt 80 --threads 1 --time-budget 600
        --extra-config "$EXTRA" --sort-by-target --form-features --topic-char-bias --unlikelihood 1.0 --topic-subsets)
MAIN=(--epochs 1 --cpu-budget 45)
WRITTEN=(--written-penalty --epochs 2 --cpu-budget 55 --seed 2)
WORDS=(--written-penalty --topic-word-continuation --epochs 1 --cpu-budget 20 --seed 3)
python -m training.train "${COMMON[@]}" "${MAIN[@]}" --model-type mta_lstm --topic-coverage-loss 1.0 --out runs/poem-mta-e1 &
python -m training.train "${COMMON[@]}" "${MAIN[@]}" --model-type tav_lstm --out runs/poem-tav-e1 &
wait
python -m training.train "${COMMON[@]}" "${WRITTEN[@]}" --init-from runs/poem-mta-e1 --topic-spend-loss 1.0 \
  --out runs/poem-mta-written &
python -m training.train "${COMMON[@]}" "${WRITTEN[@]}" --init-from runs/poem-tav-e1 --out runs/poem-tav-written &
wait
python -m training.train "${COMMON[@]}" "${WORDS[@]}" --init-from runs/poem-mta-written --topic-spend-loss 1.0 \
  --out "$OUT/poem-mta" &
python -m training.train "${COMMON[@]}" "${WORDS[@]}" --init-from runs/poem-tav-written --out "$OUT/poem-tav" &
wait
if [ "$OUT" = checkpoints ]; then python -m training.evaluate_poems; fi
