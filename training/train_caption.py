"""Train the show-attend-tell captioner on scenes generated on the fly (:mod:`gen_models.scenes`).

    python -m training.train_caption --out checkpoints/caption-attention --reg-lambda 1 --cpu-budget 45
    python -m training.train_caption --out checkpoints/caption-noreg --reg-lambda 0 --cpu-budget 45
    python -m training.train_caption --out checkpoints/caption-supervised --reg-lambda 1 --supervise 1 --cpu-budget 45

Each batch draws its scene seeds below ``scenes.VALID_SEED``. The loss is the per-token NLL plus
``λ · mean_i (1 − Σ_t α_ti)²`` (the doubly stochastic regulariser averaged over the G² regions, as
in the common PyTorch port of Xu et al.; in the paper's scale — NLL summed over the caption,
penalty summed over regions — this λ is about λ · T / G²). With ``--supervise μ`` the loss also has μ times the
attention-correctness term of Liu et al. (2017): for each colour or shape word of the reference
caption, −log of the attention its emitting step puts on the cells of the objects the word names
(the scenes know their boxes); unsupervised soft attention (Xu et al.) is ``--supervise 0``. Every ``--eval-every`` batches the
model is evaluated by batched greedy decoding on fixed validation scenes (seeds from
``scenes.VALID_SEED``): exact match and the share of captions whose every claim is true; the
checkpoint with the best validation claim accuracy (then exact match) is kept. The learning rate
decays exponentially to ``--lr-floor`` × its start over the budget; training stops when the CPU
budget (process time) or the wall budget is spent.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from gen_models.checkpoint import save_checkpoint
from gen_models.models.captioner import AttentionCaptioner, CaptionConfig, caption_batch, caption_vocab
from gen_models.scenes import TRAIN_SEEDS, VALID_SEED
from training.caption_metrics import claims_true, greedy_captions, named_regions, pointing
from training.train import write_curves

EXAMPLES = ["random scene seed 1", "random scene seed 6", "random scene seed 9", "random scene seed 7"]


@torch.no_grad()
def evaluate(model: AttentionCaptioner, batch: dict) -> dict:
    """Teacher-forced token NLL, greedy exact match, claim accuracy and pointing (%) on a batch."""
    model.eval()
    losses = model(batch["images"], batch["dec_in"], batch["target"])
    words, alphas = greedy_captions(model, batch["images"])
    scenes = batch["scenes"]
    hits = [h for w, a, s in zip(words, alphas, scenes)
            for h in pointing(w, a, s.objects, model.config.grid, model.config.canvas)]
    model.train()
    return {"valid_token_nll": float(losses["token_nll"]), "valid_ds": float(losses["doubly_stochastic"]),
            "valid_exact": 100 * float(np.mean([" ".join(w) == s.caption for w, s in zip(words, scenes)])),
            "valid_claims": 100 * float(np.mean([claims_true(w, s.objects) for w, s in zip(words, scenes)])),
            "valid_pointing": 100 * float(np.mean(hits)) if hits else 0.0}


def train(args: argparse.Namespace) -> None:
    """Train until the CPU or wall budget is spent; write the best checkpoint and its curves."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    vocab = caption_vocab()
    config = CaptionConfig(len(vocab), args.emb_dim, args.hidden_dim, args.attn_dim, grid=args.grid,
                           kernels=tuple(args.kernels), input_feeding=not args.no_input_feeding,
                           reg_lambda=args.reg_lambda, supervise=args.supervise)
    model = AttentionCaptioner(config, vocab, name=args.out.name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    valid = caption_batch([VALID_SEED + i for i in range(args.valid_size)], vocab)
    budget_s, wall_budget_s = args.cpu_budget * 60, args.wall_budget * 60
    cpu_start, wall_start = time.process_time(), time.time()
    curves, best, batches = [], (-1.0, -1.0), 0
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; budget {args.cpu_budget} CPU-min")
    while True:
        spent = max((time.process_time() - cpu_start) / budget_s, (time.time() - wall_start) / wall_budget_s)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * args.lr_floor ** min(spent, 1.0)
        batch = caption_batch([rng.randrange(TRAIN_SEEDS) for _ in range(args.batch_size)], vocab)
        regions = named_regions([c.split() for c in (x.caption for x in batch["scenes"])], batch["scenes"],
                                config.grid, config.canvas, batch["target"].size(1)) if args.supervise else None
        losses = model(batch["images"], batch["dec_in"], batch["target"], regions)
        loss = losses["token_nll"] + args.reg_lambda * losses["doubly_stochastic"] / model.max_source_len
        if regions is not None:
            loss = loss + args.supervise * losses["attention_supervision"]
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        batches += 1
        done = spent >= 1.0
        if batches % args.eval_every == 0 or done:
            row = {"batches": batches, "examples": batches * args.batch_size, "train_token_nll": losses["token_nll"].item(),
                   "train_ds": losses["doubly_stochastic"].item(), "lr": optimizer.param_groups[0]["lr"],
                   **({"train_supervision": losses["attention_supervision"].item()} if regions is not None else {}),
                   "minutes": (time.time() - wall_start) / 60,
                   "cpu_minutes": (time.process_time() - cpu_start) / 60, **evaluate(model, valid)}
            curves.append(row)
            print(json.dumps(row), flush=True)
            if (row["valid_claims"], row["valid_exact"]) > best:
                best = (row["valid_claims"], row["valid_exact"])
                save_checkpoint(model, args.out, {"exhibit": "Show, attend and tell: captioning shape scenes",
                                                  "examples": EXAMPLES}, fp16=True)
            write_curves(args.out, curves, args)
        if done:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reg-lambda", type=float, default=1.0, help="doubly stochastic regulariser weight")
    parser.add_argument("--emb-dim", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--attn-dim", type=int, default=128)
    parser.add_argument("--grid", type=int, default=8)
    parser.add_argument("--kernels", type=int, nargs=4, default=[3, 3, 3, 3],
                        help="kernel size of each conv layer; 3 3 1 1 gives each region a 14-pixel receptive field (3 3 3 3: 38) on 8-pixel cells")
    parser.add_argument("--no-input-feeding", action="store_true",
                        help="the context z_t feeds only the output layer, not the LSTM (it cannot remember a glimpse)")
    parser.add_argument("--supervise", type=float, default=0.0,
                        help="weight μ of attention supervision (Liu et al. 2017): −log of the attention mass each "
                             "colour or shape word's emitting step puts on the cells of the objects it names")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lr-floor", type=float, default=0.05)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--eval-every", type=int, default=400)
    parser.add_argument("--valid-size", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=45.0, help="CPU minutes of this process")
    parser.add_argument("--wall-budget", type=float, default=80.0, help="wall-clock minutes at most")
    parser.add_argument("--seed", type=int, default=1)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
