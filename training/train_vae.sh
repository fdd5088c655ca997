#!/usr/bin/env bash
# Reproduce the two sentence-VAE checkpoints (30 CPU-minutes each, one thread each, one after the other).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA='{"exhibit": "Sentence VAE: latent space and posterior collapse", "examples": ["i just took a nap and now i feel worse", "what kind of music do you like to listen to?", "i love going to the beach in the summer", "do you have any pets at home?"]}'
python -m training.train_vae --out checkpoints/vae-plain --anneal none --word-dropout 0 --cpu-budget 30 --extra-config "$EXTRA"
python -m training.train_vae --out checkpoints/vae-annealed --anneal logistic --word-dropout 0.25 --cpu-budget 30 --extra-config "$EXTRA"
