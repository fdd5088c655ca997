"""Train the convex-hull pointer network (``hull-ptrnet``) on point sets generated on the fly.

    bash training/train_hull.sh     # the shipped checkpoint: a curriculum in three phases (89 CPU-minutes)
    python -m training.train_hull --out runs/hull-curriculum-a --max-points 20 --lr-floor 0.5 --cpu-budget 25
    python -m training.train_hull --init runs/hull-curriculum-a --out runs/hull-curriculum-b \
        --lr 7e-4 --lr-floor 0.2 --cpu-budget 45 --stop-after 24.3 --seed 2

With ``--init`` the run is a further phase: it goes on from that checkpoint's weights (and
architecture) with a new learning-rate schedule and data stream, and its curves follow the earlier
phases' in ``metrics.json`` (``phase``: 1, 2, …).

Each batch draws n uniformly from ``--min-points``..``--max-points`` and that many points uniform in
[0, 1]² per example (seeded); targets come from ``scipy.spatial.ConvexHull``. Every
``--eval-every`` batches the model is evaluated teacher-forced (NLL) and by greedy decoding (exact
hull accuracy) on fixed validation sets (n = 5, 10, 50; seeds disjoint from training's stream);
the checkpoint with the best mean validation accuracy is kept. The learning rate decays
exponentially to ``--lr-floor`` × its start over the CPU budget (``--stop-after`` ends a phase
sooner, on the same schedule).
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from gen_models.checkpoint import load_checkpoint, read_metrics, save_checkpoint
from gen_models.models.pointer_network import PointerConfig, PointerNetwork, hull_batch
from training.hull_metrics import greedy_hulls, hull_accuracy
from training.train import write_curves

VALID_SIZES = (5, 10, 50)
VALID_SEED = 7_000_000


def validation_sets(n_examples: int) -> dict[int, dict]:
    """Fixed validation batches by point count."""
    return {n: hull_batch(n, n_examples, random.Random(VALID_SEED + n)) for n in VALID_SIZES}


@torch.no_grad()
def evaluate(model: PointerNetwork, valid: dict[int, dict]) -> dict:
    """Teacher-forced NLL and greedy exact-hull accuracy (%) per validation size."""
    model.eval()
    row = {}
    for n, batch in valid.items():
        row[f"valid_nll_{n}"] = float(model(**batch)["nll"])
        predicted = greedy_hulls(model, batch["points"])
        row[f"valid_accuracy_{n}"] = 100 * hull_accuracy(predicted, batch["points"].double().numpy())
    row["valid_nll"] = sum(row[f"valid_nll_{n}"] for n in valid) / len(valid)
    row["valid_accuracy"] = sum(row[f"valid_accuracy_{n}"] for n in valid) / len(valid)
    model.train()
    return row


def train(args: argparse.Namespace) -> None:
    """Train until the CPU budget is spent; write the best checkpoint and its curves."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    earlier = []  # the first phase's curves, when this run goes on from a checkpoint
    if args.init:  # a second phase: go on from a trained checkpoint (its architecture, new schedule)
        earlier = [dict(row, phase=row.get("phase", 1)) for row in read_metrics(args.init).get("curves", [])]
        model = load_checkpoint(args.init, device="cpu").train()
        model.name = args.out.name
    else:
        model = PointerNetwork(PointerConfig(args.emb_dim, args.hidden_dim, bidirectional=args.bidirectional),
                               name=args.out.name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    valid = validation_sets(args.valid_size)
    budget_s = args.cpu_budget * 60
    cpu_start, wall_start = time.process_time(), time.time()
    curves, best, batches, examples = [], -1.0, 0, 0
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; budget {args.cpu_budget} CPU-min")
    while True:
        spent = time.process_time() - cpu_start
        for group in optimizer.param_groups:
            group["lr"] = args.lr * args.lr_floor ** min(spent / budget_s, 1.0)
        batch = hull_batch(rng.randint(args.min_points, args.max_points), args.batch_size, rng)
        loss = model(**batch)["nll"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        batches, examples = batches + 1, examples + args.batch_size
        done = time.process_time() - cpu_start > (args.stop_after or args.cpu_budget) * 60
        if batches % args.eval_every == 0 or done:
            row = {"batches": batches, "examples": examples, "train_loss": loss.item(),
                   "lr": optimizer.param_groups[0]["lr"], "minutes": (time.time() - wall_start) / 60,
                   "cpu_minutes": (time.process_time() - cpu_start) / 60, **evaluate(model, valid)}
            curves.append(row)
            print(json.dumps(row), flush=True)
            if row["valid_accuracy"] > best:
                best = row["valid_accuracy"]
                save_checkpoint(model, args.out, {"exhibit": "Pointer networks: convex hull",
                                                  "examples": EXAMPLES}, fp16=False)
            write_curves(args.out, earlier + [_after(row, earlier) for row in curves], args)
        if done:
            break


def _after(row: dict, earlier: list[dict]) -> dict:
    """A curve row of this phase counted on from the earlier phase's last row."""
    if not earlier:
        return row
    last = earlier[-1]
    counted = {k: row[k] + last.get(k, 0) for k in ("batches", "examples", "minutes", "cpu_minutes")}
    return {**row, **counted, "phase": last.get("phase", 1) + 1}


EXAMPLES = ["random 10 seed 1", "random 30 seed 4",
            "0.1 0.1; 0.9 0.2; 0.5 0.5; 0.8 0.9; 0.2 0.8; 0.4 0.3; 0.6 0.6",
            "random 50 seed 7"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--init", type=Path, help="start from this checkpoint (a second training phase)")
    parser.add_argument("--bidirectional", action="store_true", help="a bidirectional encoder")
    parser.add_argument("--min-points", type=int, default=5)
    parser.add_argument("--max-points", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-floor", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=2.0)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--valid-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=55.0, help="CPU minutes of this process")
    parser.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                        help="stop after this many CPU minutes, the learning rate still decaying over "
                             "--cpu-budget (a phase cut short)")
    parser.add_argument("--seed", type=int, default=1)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
