"""Train a copy model (``ntm-copy`` or ``copy-lstm``) on random 8-bit sequences made on the fly.

    python -m training.train_copy --model ntm --out checkpoints/ntm-copy --max-batches 5000
    python -m training.train_copy --model lstm --out checkpoints/copy-lstm --max-batches 10000

Each batch draws a length uniformly from 1..``--max-length`` (20) and that many random vectors per
sequence (Graves et al. 2014, section 4.1). Every ``--eval-every`` batches the model is scored on
fixed validation sets (lengths 10 and 20; seeds disjoint from the training stream and the test
sets) as bit errors per sequence; the checkpoint with the fewest (latest on ties) is kept. Adam with
gradient clipping (Collier & Beel 2018), one thread, for ``--max-batches`` (or until the CPU budget is
spent, whichever comes first; the batch count makes the stop independent of the machine's speed).
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from gen_models.checkpoint import save_checkpoint
from gen_models.copy_task import copy_batch
from gen_models.models.copy_lstm import CopyLSTM, CopyLSTMConfig
from gen_models.models.ntm import NTM, NTMConfig
from training.train import write_curves

VALID_LENGTHS = (10, 20)
VALID_SEED = 7_000_000
EXAMPLES = ["random copy 10 seed 1", "random copy 20 seed 2", "random copy 40 seed 3",
            "10110010 01100111 11110000 00001111 10101010"]


def validation_sets(n: int) -> dict[int, torch.Tensor]:
    """Fixed validation batches by length."""
    return {length: copy_batch(length, n, random.Random(VALID_SEED + length)) for length in VALID_LENGTHS}


@torch.no_grad()
def evaluate(model, valid: dict[int, torch.Tensor]) -> dict:
    """Loss and mean bit errors per sequence for each validation length."""
    model.eval()
    row = {}
    for length, bits in valid.items():
        out = model(bits)
        row[f"valid_loss_{length}"] = float(out["loss"])
        row[f"valid_bit_errors_{length}"] = float(out["bit_errors"].mean())
    row["valid_bit_errors"] = sum(row[f"valid_bit_errors_{n}"] for n in valid) / len(valid)
    model.train()
    return row


def build(args: argparse.Namespace):
    """The model the arguments ask for."""
    if args.model == "ntm":
        return NTM(NTMConfig(args.controller_dim, args.memory_size, args.memory_width), name=args.out.name)
    return CopyLSTM(CopyLSTMConfig(args.hidden_dim, args.layers), name=args.out.name)


def train(args: argparse.Namespace) -> None:
    """Train until the CPU budget is spent; write the best checkpoint and its curves."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    model = build(args).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    valid = validation_sets(args.valid_size)
    budget_s = args.cpu_budget * 60
    cpu_start, wall_start = time.process_time(), time.time()
    curves, best, batches, sequences, losses = [], float("inf"), 0, 0, []
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f}M parameters; budget {args.cpu_budget} CPU-min")
    while True:
        bits = copy_batch(rng.randint(1, args.max_length), args.batch_size, rng)
        loss = model(bits)["loss"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        batches, sequences = batches + 1, sequences + args.batch_size
        losses.append(loss.item())
        done = time.process_time() - cpu_start > budget_s or batches >= args.max_batches
        if batches % args.eval_every == 0 or done:
            row = {"batches": batches, "sequences": sequences, "train_loss": sum(losses) / len(losses),
                   "minutes": (time.time() - wall_start) / 60,
                   "cpu_minutes": (time.process_time() - cpu_start) / 60, **evaluate(model, valid)}
            losses = []
            curves.append(row)
            print(json.dumps(row), flush=True)
            if row["valid_bit_errors"] <= best:
                best = row["valid_bit_errors"]
                save_checkpoint(model, args.out, {"exhibit": "Neural Turing machine: copy", "examples": EXAMPLES})
            write_curves(args.out, curves, args)
        if done:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("ntm", "lstm"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--controller-dim", type=int, default=100)
    parser.add_argument("--memory-size", type=int, default=128)
    parser.add_argument("--memory-width", type=int, default=20)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=10.0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--valid-size", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=55.0, help="CPU minutes of this process")
    parser.add_argument("--max-batches", type=int, default=10**9,
                        help="stop after this many batches (a stop that does not depend on the machine's speed)")
    parser.add_argument("--seed", type=int, default=1)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
