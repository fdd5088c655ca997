"""Train ``memory-network`` (MemN2N) jointly on bAbI-style tasks 1, 2 and 8 generated here.

    python -m training.train_memory --out checkpoints/memory-network --epochs 40 --linear-start 5

Data (:mod:`gen_models.babi`): ``--train-per-task`` stories per task from seeds 0… (10,000, as in
bAbI's 10k set), validation from seed 1,000,000 (``--valid-per-task``); the test seeds (from
2,000,000) are left to ``training.evaluate_memory``. Adam, the learning rate halved every
``--halve-every`` epochs, gradient-norm clipping at 40 (the paper's); random noise (Sukhbaatar et
al. 2015, section 4.2): each training story gets 10% empty memories inserted, so the temporal
encoding does not overfit; with ``--linear-start N`` the first N epochs train without the hops'
softmax (linear start, section 4.2). The epoch with the best validation answer accuracy is kept.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from gen_models.babi import TASKS, VALID_SEED, Story, stories, vocabulary
from gen_models.checkpoint import save_checkpoint
from gen_models.models.memory_network import MemoryConfig, MemoryNetwork
from gen_models.vocab import Vocab
from training.train import write_curves

EXAMPLES = ["random story task 1 seed 2000001", "random story task 2 seed 2000002",
            "random story task 8 seed 2000003",
            "Mary moved to the bathroom. John went to the hallway. Mary travelled to the kitchen. Where is Mary?",
            "John picked up the football. John went to the garden. Mary moved to the office. Where is the football?"]


def story_batch(model: MemoryNetwork, batch: list[Story], noise: float = 0.0,
                rng: random.Random | None = None) -> dict:
    """Tensors for a list of stories: story (B, S, J), question (B, J), lengths (B,), answer_in/out
    (B, T); with
    ``noise`` > 0, that share of empty sentences is inserted at random places in each story."""
    sentences = []
    for story in batch:
        rows = list(story.sentences)
        for _ in range(int(noise * len(rows) + (rng.random() if noise else 0))):
            rows.insert(rng.randrange(len(rows) + 1), [])
        sentences.append(rows[-model.config.memory_size:])
    S, J, pad = max(len(s) for s in sentences), model.config.sentence_len, model.vocab.pad_id
    story_ids = torch.full((len(batch), S, J), pad, dtype=torch.long)
    for b, rows in enumerate(sentences):
        story_ids[b, : len(rows)] = model.words_to_ids(rows)
    question = torch.stack([model.words_to_ids([s.question])[0] for s in batch])
    T = max(len(s.answer) for s in batch) + 1
    answer_in = torch.full((len(batch), T), pad, dtype=torch.long)
    answer_out = torch.full((len(batch), T), pad, dtype=torch.long)
    for b, story in enumerate(batch):
        ids = [model.vocab.id(w) for w in story.answer]
        answer_in[b, : len(ids) + 1] = torch.tensor([model.vocab.bos_id, *ids])
        answer_out[b, : len(ids) + 1] = torch.tensor([*ids, model.vocab.eos_id])
    lengths = torch.tensor([len(rows) for rows in sentences])
    return {"story": story_ids, "question": question, "lengths": lengths, "answer_in": answer_in, "answer_out": answer_out}


@torch.no_grad()
def accuracy(model: MemoryNetwork, data: list[Story], batch_size: int = 500) -> float:
    """Share (%) of stories whose whole answer (and end) is right, teacher-forced."""
    model.eval()
    right = sum(int(model(**story_batch(model, data[i : i + batch_size]))["correct"].sum())
                for i in range(0, len(data), batch_size))
    model.train()
    return 100 * right / len(data)


def train(args: argparse.Namespace) -> None:
    """Train for ``--epochs``; write the best checkpoint (by validation accuracy) and its curves."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    vocab = Vocab(vocabulary())
    model = MemoryNetwork(MemoryConfig(len(vocab), args.emb_dim, args.hops), vocab, name=args.out.name).train()
    train_set = [s for task in TASKS for s in stories(task, 0, args.train_per_task)]
    valid = {task: stories(task, VALID_SEED, args.valid_per_task) for task in TASKS}
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    cpu_start, curves, best = time.process_time(), [], -1.0
    for epoch in range(1, args.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 ** ((epoch - 1) // args.halve_every)
        model.linear_start = epoch <= args.linear_start
        rng.shuffle(train_set)
        losses = []
        for i in range(0, len(train_set), args.batch_size):
            batch = story_batch(model, train_set[i : i + args.batch_size], args.noise, rng)
            loss = model(**batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            losses.append(loss.item())
        model.linear_start = False
        row = {"epoch": epoch, "linear_start": epoch <= args.linear_start, "train_loss": sum(losses) / len(losses),
               "lr": optimizer.param_groups[0]["lr"],
               "cpu_minutes": (time.process_time() - cpu_start) / 60,
               **{f"valid_accuracy_task{t}": accuracy(model, v) for t, v in valid.items()}}
        row["valid_accuracy"] = sum(row[f"valid_accuracy_task{t}"] for t in TASKS) / len(TASKS)
        curves.append(row)
        print(json.dumps(row), flush=True)
        if row["valid_accuracy"] >= best:
            best = row["valid_accuracy"]
            save_checkpoint(model, args.out, {"exhibit": "Memory networks: bAbI-style stories", "examples": EXAMPLES})
        write_curves(args.out, curves, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--emb-dim", type=int, default=50)
    parser.add_argument("--hops", type=int, default=3)
    parser.add_argument("--train-per-task", type=int, default=10_000)
    parser.add_argument("--valid-per-task", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--halve-every", type=int, default=10)
    parser.add_argument("--clip", type=float, default=40.0)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--linear-start", type=int, default=0,
                        help="epochs trained without the hops' softmax first (the paper's linear start)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    train(parser.parse_args())


if __name__ == "__main__":
    main()
