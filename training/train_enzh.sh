#!/usr/bin/env bash
# Reproduce the two en->zh checkpoints on CPU, then evaluate them on the test split.
#   bash training/train_enzh.sh   (enzh-seq2seq: 40 min; enzh-pointer-coverage: 45 + 10 CPU-minutes)
# The pointer model never learns to write <unk> (--mask-unk-targets) and can only copy the Latin-script
# words seen in fewer than 100 training targets (--copy-only-latin-below 100): it learns to copy names.
# In its coverage phase half of the names shared by source and target become made-up words
# (--scramble-names 0.5), which it can only copy: it learns to copy names it has never seen.
# Last, its encoder is set to read the Latin-script words seen in fewer than 5 training sources as
# <unk> (weights unchanged): it copies PAM or LDAP like a made-up name instead of mistranslating it.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/enzh_app_config.json)"
COMMON=(--data data/enzh --cased --train-max-src 60 --max-tgt 80 --max-source-len 120 --extra-config "$EXTRA")
COPY=(--mask-unk-targets --copy-only-latin-below 100 --threads 1 --time-budget 600)
python -m training.train "${COMMON[@]}" --model-type seq2seq --epochs 12 --time-budget 40 \
  --out checkpoints/enzh-seq2seq
python -m training.train "${COMMON[@]}" "${COPY[@]}" --model-type pointer_generator --epochs 12 --cpu-budget 45 \
  --out runs/enzh-pointer-copy
python -m training.train "${COMMON[@]}" "${COPY[@]}" --init-from runs/enzh-pointer-copy --coverage --epochs 1 \
  --lr 5e-4 --cpu-budget 10 --scramble-names 0.5 --out checkpoints/enzh-pointer-coverage
python -m training.mark_rare_sources checkpoints/enzh-pointer-coverage --data data/enzh --below 5
python -m training.evaluate_enzh
