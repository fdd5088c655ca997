#!/usr/bin/env bash
# Reproduce the three conversation checkpoints on CPU (one thread each; 45, 45 and 55 CPU-minutes:
# they may run in parallel), then evaluate them on the test split.
#   sudo apt-get install wordnet-base && python data/prepare_chat_pairs.py   (pairs + PMI table first)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="$(cat training/chat_app_config.json)"
COMMON=(--data data/chitchat/pairs --vocab-size 10000 --train-max-src 30 --max-tgt 30 --max-source-len 60
        --epochs 30 --threads 1 --time-budget 170 --topics-field keyword --extra-config "$EXTRA")
python -m training.train "${COMMON[@]}" --model-type seq2seq --cpu-budget 45 --out checkpoints/chat-seq2seq
python -m training.train "${COMMON[@]}" --model-type hgfu --cpu-budget 45 --out checkpoints/chat-hgfu
python -m training.train "${COMMON[@]}" --model-type seq2bf --cpu-budget 55 --topics-in-target --out checkpoints/chat-seq2bf
python -m training.evaluate_chat --limit 2000
