#!/usr/bin/env bash
# The shipped hull-ptrnet: 55 CPU-minutes from scratch, then 60 more at a lower learning rate on a
# fresh data stream (one thread each; about 115 CPU-minutes in all). Budgets are CPU time, so a
# rerun lands near, not exactly on, the shipped weights.
set -euo pipefail
python -m training.train_hull --out runs/hull-phase1 --cpu-budget 55
python -m training.train_hull --init runs/hull-phase1 --out checkpoints/hull-ptrnet \
    --lr 4e-4 --lr-floor 0.1 --cpu-budget 60 --seed 2
python -m training.evaluate_hull
