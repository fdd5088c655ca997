"""Train a sentence VAE (Bowman et al. 2016) on short chat sentences.

    python -m training.train_vae --out checkpoints/vae-plain    --anneal none     --word-dropout 0
    python -m training.train_vae --out checkpoints/vae-annealed --anneal logistic --word-dropout 0.25

KL weight at update t: ``none`` → 1 from the start; ``logistic`` → 1 / (1 + exp(−k (t − x0))) with
``--anneal-k`` (0.0025) and ``--anneal-x0`` (2500 updates), the schedule of Bowman et al.'s Fig. 2 as
usually reproduced. Word dropout replaces each decoder input word (never ``<s>``) with ``<unk>`` with
probability ``--word-dropout`` (keep rate 1 − rate). Each epoch's validation reconstruction NLL,
KL (nats per sentence) and the KL weight go into metrics.json (``curves``); the epoch with the best
validation ELBO (NLL + KL) is kept. Training stops at ``--epochs`` or the CPU budget.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from gen_models.checkpoint import save_checkpoint
from gen_models.models.sentence_vae import SentenceVAE, VAEConfig
from gen_models.text import tokenize
from gen_models.vocab import Vocab
from training.train import write_curves


def read_sentences(data_dir: Path, split: str, max_tokens: int) -> list[list[str]]:
    """Lowercased token lists of ``<data_dir>/<split>.jsonl.gz``."""
    with gzip.open(Path(data_dir) / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [tokenize(json.loads(line)["text"])[:max_tokens] for line in f]


def sentence_batch(model: SentenceVAE, sentences: list[list[str]]) -> dict:
    """Padded tensors: encoder ids, decoder inputs ``<s> x`` and targets ``x </s>`` (B, T)."""
    vocab = model.vocab
    ids = [[vocab.id(t) for t in s] for s in sentences]
    S, T = max(len(i) for i in ids), max(len(i) for i in ids) + 1
    src = torch.full((len(ids), S), vocab.pad_id)
    dec_in = torch.full((len(ids), T), vocab.pad_id)
    target = torch.full((len(ids), T), vocab.pad_id)
    for b, row in enumerate(ids):
        src[b, : len(row)] = torch.tensor(row)
        dec_in[b, : len(row) + 1] = torch.tensor([vocab.bos_id] + row)
        target[b, : len(row) + 1] = torch.tensor(row + [vocab.eos_id])
    return {"src": src, "src_mask": src != vocab.pad_id, "dec_in": dec_in, "target": target,
            "target_mask": target != vocab.pad_id}


def kl_weight(update: int, schedule: str, k: float, x0: float) -> float:
    """The KL term's weight at ``update`` under ``schedule`` ("none" or "logistic")."""
    if schedule == "none":
        return 1.0
    return 1.0 / (1.0 + math.exp(-k * (update - x0)))


@torch.no_grad()
def evaluate(model: SentenceVAE, sentences: list[list[str]], batch_size: int = 256) -> dict:
    """Posterior-mean evaluation: reconstruction NLL and KL per sentence, and per-word perplexity
    of the bound exp((NLL + KL) / tokens)."""
    model.eval()
    totals = {"nll": 0.0, "kl": 0.0, "tokens": 0.0}
    for i in range(0, len(sentences), batch_size):
        chunk = sentences[i : i + batch_size]
        out = model(**sentence_batch(model, chunk))
        for name in totals:
            totals[name] += float(out[name]) * len(chunk)
    model.train()
    n = len(sentences)
    return {"nll": totals["nll"] / n, "kl": totals["kl"] / n,
            "ppl": math.exp((totals["nll"] + totals["kl"]) / totals["tokens"])}


def train(args: argparse.Namespace) -> None:
    """Train and write the checkpoint folder with its curves."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    train_set = read_sentences(args.data, "train", args.max_tokens)
    valid_set = read_sentences(args.data, "valid", args.max_tokens)[: args.valid_size]
    vocab = Vocab.build(train_set, args.vocab_size)
    model = SentenceVAE(VAEConfig(len(vocab), args.emb_dim, args.hidden_dim, args.latent_dim), vocab,
                        name=args.out.name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    cpu_start, wall_start, update, best, curves = time.process_time(), time.time(), 0, math.inf, []
    print(f"{len(train_set)} train / {len(valid_set)} valid sentences; vocabulary {len(vocab)}; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    for epoch in range(1, args.epochs + 1):
        order = sorted(rng.sample(train_set, len(train_set)), key=len)
        chunks = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        rng.shuffle(chunks)
        sums = {"loss": 0.0, "nll": 0.0, "kl": 0.0}
        for chunk in tqdm(chunks, desc=f"epoch {epoch}", mininterval=30):
            weight = kl_weight(update, args.anneal, args.anneal_k, args.anneal_x0)
            out = model(**sentence_batch(model, chunk), kl_weight=weight, dropout_rate=args.word_dropout)
            optimizer.zero_grad()
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            update += 1
            for name in sums:
                sums[name] += out[name].item()
            if time.process_time() - cpu_start > args.cpu_budget * 60:
                break
        valid = evaluate(model, valid_set)
        batches = max(1, min(update - (epoch - 1) * len(chunks), len(chunks)))
        row = {"epoch": epoch, "updates": update, "kl_weight": weight,
               **{f"train_{k}": v / batches for k, v in sums.items()},
               **{f"valid_{k}": v for k, v in valid.items()},
               "minutes": (time.time() - wall_start) / 60, "cpu_minutes": (time.process_time() - cpu_start) / 60}
        curves.append(row)
        print(json.dumps(row), flush=True)
        if valid["nll"] + valid["kl"] < best:
            best = valid["nll"] + valid["kl"]
            save_checkpoint(model, args.out, json.loads(args.extra_config))
        write_curves(args.out, curves, args)
        if time.process_time() - cpu_start > args.cpu_budget * 60:
            print(f"CPU budget of {args.cpu_budget} minutes reached")
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/chitchat/sentences"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--anneal", choices=("none", "logistic"), default="logistic")
    parser.add_argument("--anneal-k", type=float, default=0.0025)
    parser.add_argument("--anneal-x0", type=float, default=2500)
    parser.add_argument("--word-dropout", type=float, default=0.25, help="rate (keep rate = 1 - rate)")
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=5.0)
    parser.add_argument("--valid-size", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=30.0, help="CPU minutes of this process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extra-config", default="{}", help="JSON merged into config.json")
    train(parser.parse_args())


if __name__ == "__main__":
    main()
