"""Train the reply language model p_LM(T) that MMI-antiLM subtracts (:mod:`gen_models.mmi`).

    python -m training.train_reply_lm --out checkpoints/mmi/chat-reply-lm --threads 1 --cpu-budget 15

The replies (``tgt``) of data/chitchat/pairs' training split, tokenised and cut as the chat models'
(lowercased GenScope tokens, at most 30), over the same 10,000-token vocabulary (built from both
sides of the training pairs, :meth:`Vocab.build`). A one-layer LSTM, Adam, batches of similar
length; process CPU-time budget; the epoch (or half epoch) with the best validation perplexity is
kept as fp16 safetensors with config.json, vocab.txt and metrics.json.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch

from gen_models.mmi import ReplyLM, ReplyLMConfig
from gen_models.text import tokenize
from gen_models.vocab import Vocab
from training.evaluation import read_rows


def encode(vocab: Vocab, replies: list[list[str]]) -> list[list[int]]:
    """``<s> t </s>`` ids of each reply."""
    return [[vocab.bos_id] + [vocab.id(t) for t in r] + [vocab.eos_id] for r in replies if r]


def batches(seqs: list[list[int]], size: int, rng: random.Random) -> list[torch.Tensor]:
    """Padded (B, T) batches of similar length, in shuffled order."""
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), rng.random()))
    out = []
    for i in range(0, len(order), size):
        group = [seqs[j] for j in order[i : i + size]]
        batch = torch.full((len(group), max(map(len, group))), Vocab.pad_id)
        for b, s in enumerate(group):
            batch[b, : len(s)] = torch.tensor(s)
        out.append(batch)
    rng.shuffle(out)
    return out


def nll(model: ReplyLM, batch: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed NLL of the batch's next tokens (the end token included) and their count."""
    logits = model(batch[:, :-1])  # (B, T-1, V)
    target = batch[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                             ignore_index=Vocab.pad_id, reduction="sum")
    return loss, int((target != Vocab.pad_id).sum())


@torch.no_grad()
def perplexity(model: ReplyLM, data: list[torch.Tensor]) -> float:
    model.eval()
    total = count = 0
    for batch in data:
        loss, n = nll(model, batch)
        total, count = total + float(loss), count + n
    model.train()
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/chitchat/pairs"))
    parser.add_argument("--out", type=Path, default=Path("checkpoints/mmi/chat-reply-lm"))
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--max-len", type=int, default=30)
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=15.0, help="CPU minutes")
    parser.add_argument("--max-batches", type=int, default=0, help="stop after this many batches (0: no limit)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    train_rows, valid_rows = read_rows(args.data, "train"), read_rows(args.data, "valid")
    cut = lambda text: tokenize(text)[: args.max_len]  # noqa: E731
    vocab = Vocab.build((cut(r[side]) for r in train_rows for side in ("src", "tgt")), args.vocab_size)
    train = encode(vocab, [cut(r["tgt"]) for r in train_rows])
    valid = batches(encode(vocab, [cut(r["tgt"]) for r in valid_rows])[:2000], 128, random.Random(0))
    model = ReplyLM(ReplyLMConfig(len(vocab), args.emb_dim, args.hidden_dim), vocab).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"{len(train)} replies; vocabulary {len(vocab)}; {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    cpu_start, wall_start, curves, best = time.process_time(), time.time(), [], math.inf
    spent = lambda: (time.process_time() - cpu_start) / 60  # noqa: E731
    extra = {"exhibit": "reply language model p_LM(T) for MMI-antiLM (not a generator)",
             "train_data": str(args.data / "train.jsonl.gz")}

    def evaluate(epoch: float, losses: list[float]) -> None:
        nonlocal best
        row = {"epoch": epoch, "train_nll": sum(losses) / max(len(losses), 1), "valid_ppl": perplexity(model, valid),
               "cpu_minutes": spent(), "minutes": (time.time() - wall_start) / 60}
        curves.append(row)
        print(json.dumps(row), flush=True)
        if row["valid_ppl"] < best:
            best = row["valid_ppl"]
            model.save(args.out, extra)
        metrics = {"curves": curves, "best_valid_ppl": best,
                   "training": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    for epoch in range(1, args.epochs + 1):
        data, losses = batches(train, args.batch_size, rng), []
        for i, batch in enumerate(data):
            loss, n = nll(model, batch)
            optimizer.zero_grad()
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()) / n)
            if i + 1 == len(data) // 2:
                evaluate(epoch - 0.5, losses)
            if spent() > args.cpu_budget or (args.max_batches and (epoch - 1) * len(data) + i + 1 >= args.max_batches):
                break
        if args.max_batches and (epoch - 1) * len(data) + i + 1 >= args.max_batches:
            if i + 1 != len(data) // 2:
                evaluate(round(epoch - 1 + (i + 1) / len(data), 2), losses)
            print(f"stopped after {args.max_batches} batches")
            break
        evaluate(epoch if spent() <= args.cpu_budget else round(epoch - 1 + (i + 1) / len(data), 2), losses)
        if spent() > args.cpu_budget:
            print(f"CPU budget of {args.cpu_budget} min reached")
            break


if __name__ == "__main__":
    main()
