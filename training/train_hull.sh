#!/usr/bin/env bash
# The shipped hull-ptrnet: a curriculum over n in three phases on one thread (89 CPU-minutes in all).
#   A: 25 CPU-minutes from scratch on n = 5-20 (the learning rate decays only to half);
#   B: 24 more on the full range n = 5-50, a fresh data stream, 7e-4 on a schedule that would decay to
#      a fifth over 45 minutes (the shipped run of this phase was cut at 24.3; --stop-after repeats that);
#   C: 40 more at 3e-4 decaying to a tenth.
# Each phase keeps its best checkpoint by mean greedy validation accuracy over n = 5, 10, 50. Budgets
# are CPU time, so a rerun lands near, not exactly on, the shipped weights.
set -euo pipefail
python -m training.train_hull --out runs/hull-curriculum-a --max-points 20 --lr-floor 0.5 --cpu-budget 25 --seed 1
python -m training.train_hull --init runs/hull-curriculum-a --out runs/hull-curriculum-b \
    --lr 7e-4 --lr-floor 0.2 --cpu-budget 45 --stop-after 24.3 --seed 2
python -m training.train_hull --init runs/hull-curriculum-b --out checkpoints/hull-ptrnet \
    --lr 3e-4 --lr-floor 0.1 --cpu-budget 40 --seed 3
python -m training.evaluate_hull
