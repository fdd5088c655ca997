"""Train a GenScope checkpoint (seq2seq, pointer-generator, MTA-LSTM, TAV) on a prepared corpus.

    python -m training.train --data data/debian --out checkpoints/debian-pointer \
        --model-type pointer_generator --epochs 6

Coverage is switched on for a final phase by starting from a converged checkpoint
(See et al. 2017's schedule):

    python -m training.train --data data/debian --init-from checkpoints/debian-pointer \
        --out checkpoints/debian-pointer-coverage --coverage --epochs 1 --lr 3e-4

Topic-to-text models read a list field as their topics:

    python -m training.train --data data/poems --src-field topics --tgt-field poem --cased \
        --model-type mta_lstm --out checkpoints/poem-mta

Scheduled sampling, attention regularisation, ``<unk>``-free targets and copy-only rare names are
options (``training/objectives.py`` gives the formulas):

    python -m training.train ... --scheduled-sampling inverse_sigmoid --ss-k 2000
    python -m training.train ... --attention-reg 1.0 --attention-target 1.0
    python -m training.train ... --mask-unk-targets --copy-only-latin-below 100
    python -m training.train ... --scramble-names 0.5 --unk-rare-source-below 5
    python -m training.train ... --unlikelihood 1.0 --topic-coverage-loss 1.0 --topic-subsets

Self-critical sequence training fine-tunes a converged checkpoint on ROUGE-L (``training/scst.py``):

    python -m training.train ... --init-from checkpoints/debian-pointer-coverage --scst 0.9 --lr 1e-4

Each epoch's train loss, teacher-forced validation NLL, mean p_gen and coverage loss are written to
``metrics.json`` (``curves``); the best epoch by validation NLL is kept.
"""
from __future__ import annotations

import argparse
import gzip
import inspect
import json
import math
import random
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from gen_models.checkpoint import MODEL_TYPES, load_checkpoint, read_metrics, save_checkpoint
from gen_models.text import tokenize
from gen_models.vocab import Vocab
from training.objectives import (
    SCHEDULES,
    copy_only_words,
    loss_mask,
    scramble_names,
    set_copy_only,
    set_source_unknown,
    teacher_forcing_probability,
    topic_subset,
)
from training.scst import greedy_rouge_l, scst_loss


@dataclass
class Example:
    """One tokenised training pair; ``topics`` holds the topic words of topic-to-text corpora."""

    src: list[str]
    tgt: list[str]
    topics: list[str] = field(default_factory=list)


def read_split(data_dir: Path, split: str, max_src: int, max_tgt: int, lowercase: bool = True,
               src_field: str = "src", tgt_field: str = "tgt", topics_field: str = "") -> list[Example]:
    """Tokenised, truncated pairs of ``<data_dir>/<split>.jsonl.gz``; a list-valued source field
    (e.g. ``topics``) becomes the example's topic words, as does ``topics_field`` (a word or a list,
    e.g. a reply's keyword)."""
    with gzip.open(Path(data_dir) / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    examples = []
    for row in rows:
        src = row[src_field]
        topics = list(src) if isinstance(src, list) else []
        text = " ".join(src) if topics else src
        if topics_field:
            conditioning = row[topics_field]
            topics = [w for w in ([conditioning] if isinstance(conditioning, str) else conditioning) if w]
        examples.append(Example(tokenize(text, lowercase)[:max_src], tokenize(row[tgt_field], lowercase)[:max_tgt],
                                topics))
    return examples


def make_batch(model, examples: list[Example], mask_unk: bool = False) -> dict:
    """The training batch for ``model`` (each model class makes its own), its target mask without
    the targets the loss leaves out (see :func:`training.objectives.loss_mask`)."""
    batch = model.training_batch(examples)
    if "target_ext" in batch:
        batch["target_mask"] = loss_mask(model, batch, mask_unk)
    return batch


def batches(examples: list[Example], batch_size: int, rng: random.Random,
            by_target: bool = False) -> list[list[Example]]:
    """Shuffled batches of similar source (or target) length (sorted within pools of 50 batches)."""
    order = list(examples)
    rng.shuffle(order)
    pool = batch_size * 50
    result = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i : i + pool], key=lambda ex: len(ex.tgt if by_target else ex.src))
        result += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(result)
    return result


@torch.no_grad()
def evaluate(model, examples: list[Example], batch_size: int, mask_unk: bool = False) -> dict:
    """Teacher-forced validation: mean NLL per token, coverage loss, p_gen (token-weighted)."""
    model.eval()
    totals, tokens = {}, 0
    for i in range(0, len(examples), batch_size):
        batch = make_batch(model, examples[i : i + batch_size], mask_unk)
        n = int(batch["target_mask"].sum())
        for name, value in model(**batch).items():
            totals[name] = totals.get(name, 0.0) + float(value) * n
        tokens += n
    model.train()
    return {f"valid_{k}": v / tokens for k, v in totals.items()}


def build_model(args, train: list[Example]):
    """A fresh model with a vocabulary from the training split, or the ``--init-from`` one."""
    parts = {name: True for name in TOPIC_PARTS if getattr(args, name)}
    parts["rare_source_unk"] = bool(args.unk_rare_source_below)
    if args.init_from:
        model = load_checkpoint(Path(args.init_from))
        if model.config.lowercase == args.cased:
            raise SystemExit("--cased must match the checkpoint given to --init-from")
        if args.coverage:
            model.config.coverage = True
        model = with_parts(model, parts)
    else:
        vocab = Vocab.build((ex.src + ex.tgt for ex in train), args.vocab_size)
        model_cls = MODEL_TYPES[args.model_type]
        options = {name: True for name, on in {"copy_only": bool(args.copy_only_latin_below), **parts}.items() if on}
        config = model_cls.new_config(len(vocab), train, emb_dim=args.emb_dim, hidden_dim=args.hidden_dim,
                                      coverage=args.coverage, max_source_len=args.max_source_len,
                                      lowercase=not args.cased, **options)
        model = model_cls(config, vocab, name=Path(args.out).name)
        if args.copy_only_latin_below:
            marked = set_copy_only(model, copy_only_words([ex.tgt for ex in train], args.copy_only_latin_below))
            print(f"{marked} Latin-script words can only be copied")
        model.fit_corpus(Path(args.data))
    if args.default_length_penalty is not None:
        if not hasattr(model.config, "default_length_penalty"):
            raise SystemExit(f"--default-length-penalty needs a seq2seq-family model, not {type(model).__name__}")
        model.config.default_length_penalty = args.default_length_penalty
    if args.unk_rare_source_below:
        marked = set_source_unknown(model, [ex.src for ex in train], args.unk_rare_source_below)
        print(f"{marked} Latin-script words are read as <unk> by the encoder")
    return model.train()


TOPIC_PARTS = ("form_features", "topic_char_bias", "written_penalty", "topic_word_continuation")


def with_parts(model, parts: dict):
    """``model`` with optional ``parts`` (config flags) switched on: the new parts start from their
    initialisation, everything else keeps its trained weights (a final phase, like coverage)."""
    parts = {name: on for name, on in parts.items() if on and not getattr(model.config, name, False)}
    if not parts:
        return model
    extended = type(model)(replace(model.config, **parts), model.vocab, name=model.name)
    result = extended.load_state_dict(model.state_dict(), strict=False)
    if result.unexpected_keys:
        raise SystemExit(f"cannot add {', '.join(parts)}: unexpected weights {result.unexpected_keys}")
    return extended


def check_options(model, args) -> None:
    """Stop with a message when an objective option needs what ``model``'s training cannot do."""
    accepted = inspect.signature(model.forward).parameters
    wanted = {"teacher_forcing": args.scheduled_sampling != "none", "attention_target": args.attention_reg > 0}
    missing = [name for name, used in wanted.items() if used and name not in accepted]
    if missing:
        raise SystemExit(f"{type(model).__name__} does not train with {', '.join(missing)}")
    topic_options = args.unlikelihood or args.topic_coverage_loss or args.topic_spend_loss or args.topic_subsets or any(
        getattr(args, name) for name in TOPIC_PARTS)
    if topic_options and "form_features" not in model.config_dict():
        raise SystemExit("--unlikelihood, --topic-* and --form-features need a topic model (mta_lstm, tav_lstm)")
    copy_options = args.copy_only_latin_below or args.scramble_names or args.unk_rare_source_below
    if copy_options and not model.features.copies:
        raise SystemExit("--copy-only-latin-below, --scramble-names and --unk-rare-source-below need a model that "
                         "copies (pointer_generator)")


def train(args) -> None:
    """Run training and write the checkpoint folder."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    lowercase = not args.cased
    fields = (lowercase, args.src_field, args.tgt_field, args.topics_field)
    keep = (lambda ex: ex.topics and set(ex.topics) <= set(ex.tgt)) if args.topics_in_target else bool
    train_set = [ex for ex in read_split(args.data, "train", args.train_max_src, args.max_tgt, *fields) if keep(ex)]
    valid_set = [ex for ex in read_split(args.data, "valid", args.train_max_src, args.max_tgt, *fields)
                 if keep(ex)][: args.valid_size]
    model = build_model(args, train_set)
    check_options(model, args)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    curves = read_metrics(Path(args.init_from)).get("curves", []) if args.init_from else []
    phase = "scst" if args.scst > 0 else "coverage" if args.coverage else "final" if args.init_from else "main"
    best, start, cpu_start = math.inf, time.time(), time.process_time()

    def over_budget() -> bool:
        cpu_spent = args.cpu_budget is not None and time.process_time() - cpu_start > args.cpu_budget * 60
        return time.time() - start > args.time_budget * 60 or cpu_spent

    rewards = []

    def record(epoch: int, step: int, losses: list, best: float) -> float:
        """Evaluate, append a curve row, save the checkpoint when it is the best so far; the new best."""
        row = {"phase": phase, "epoch": epoch, "step": step, "train_loss": sum(losses) / len(losses),
               "minutes": (time.time() - start) / 60, "cpu_minutes": (time.process_time() - cpu_start) / 60,
               "teacher_forcing": objective_options(args, step).get("teacher_forcing", 1.0),
               **evaluate(model, valid_set, args.batch_size, args.mask_unk_targets)}
        if args.scst > 0:
            row["train_reward_sample"], row["train_reward_greedy"] = map(statistics.mean, zip(*rewards))
            rewards.clear()
            row["valid_greedy_rouge_l"] = greedy_rouge_l(model, valid_set[: args.scst_valid], args.batch_size,
                                                         args.max_tgt, make_batch)
        curves.append(row)
        print(json.dumps(row))
        score = -row["valid_greedy_rouge_l"] if args.scst > 0 else row["valid_nll"]
        if score < best:
            best = score
            save_checkpoint(model, Path(args.out), json.loads(args.extra_config))
        write_curves(Path(args.out), curves, args)
        return best

    print(f"{len(train_set)} train / {len(valid_set)} valid pairs; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; phase {phase}")
    step = 0
    for epoch in range(1, args.epochs + 1):
        losses = []
        for batch_examples in tqdm(batches(train_set, args.batch_size, rng, args.sort_by_target),
                                   desc=f"epoch {epoch}"):
            batch_examples = [augmented(ex, args, rng) for ex in batch_examples]
            batch = make_batch(model, batch_examples, args.mask_unk_targets)
            out = model(**batch, **objective_options(args, step))
            step += 1
            loss = word_level_loss(out, model, args)
            if args.scst > 0:
                critical = scst_loss(model, batch, batch_examples, args.max_tgt)
                loss = args.scst * critical["rl"] + (1 - args.scst) * loss
                rewards.append((critical["reward_sample"], critical["reward_greedy"]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            losses.append(loss.item())
            if over_budget() or (args.eval_every and step % args.eval_every == 0):
                best = record(epoch, step, losses, best)
                losses = []
            if over_budget():
                break
        if losses:
            best = record(epoch, step, losses, best)
        if over_budget():
            print(f"budget reached ({args.time_budget} wall-clock / {args.cpu_budget or 'no'} CPU minutes)")
            break


def word_level_loss(out: dict, model, args) -> torch.Tensor:
    """The teacher-forced loss of one batch: NLL plus the regularisers switched on in ``args``."""
    loss = out["nll"] + (args.coverage_weight * out["coverage"] if model.features.coverage else 0.0)
    weights = {"attention_reg": args.attention_reg, "unlikelihood": args.unlikelihood,
               "coverage": args.topic_coverage_loss, "spend": args.topic_spend_loss}
    for name, weight in weights.items():
        if weight > 0:
            loss = loss + weight * out[name]
    return loss


def augmented(example: Example, args, rng: random.Random) -> Example:
    """``example`` as this training step sees it: a random subset of its topic words
    (``--topic-subsets``), shared names made up (``--scramble-names``)."""
    if args.topic_subsets:
        example = replace(example, topics=topic_subset(example.topics, rng))
    if args.scramble_names:
        src, tgt = scramble_names(example.src, example.tgt, rng, args.scramble_names)
        example = replace(example, src=src, tgt=tgt)
    return example


def objective_options(args, step: int) -> dict:
    """The forward options of the objectives in use at training step ``step``."""
    options = {}
    if args.scheduled_sampling != "none":
        options["teacher_forcing"] = teacher_forcing_probability(args.scheduled_sampling, step, args.ss_k,
                                                                 args.ss_c, args.ss_floor)
    if args.attention_reg > 0:
        options["attention_target"] = args.attention_target
    return options


def write_curves(folder: Path, curves: list, args) -> None:
    """Curves and the training arguments into the checkpoint's ``metrics.json`` (test metrics kept);
    every trainer writes them this way."""
    metrics = read_metrics(folder)
    metrics["curves"] = curves
    metrics["training"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-type", choices=sorted(MODEL_TYPES), default="pointer_generator")
    parser.add_argument("--init-from", type=Path)
    parser.add_argument("--coverage", action="store_true")
    parser.add_argument("--coverage-weight", type=float, default=1.0)
    parser.add_argument("--src-field", default="src", help="input field (a list field = topic words)")
    parser.add_argument("--tgt-field", default="tgt")
    parser.add_argument("--topics-field", default="", help="a field whose word(s) condition the output (a keyword)")
    parser.add_argument("--topics-in-target", action="store_true",
                        help="train only on examples whose conditioning words occur in the target (Seq2BF)")
    parser.add_argument("--cased", action="store_true", help="keep letter case (default: lowercase)")
    parser.add_argument("--vocab-size", type=int, default=20000)
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--max-source-len", type=int, default=400)
    parser.add_argument("--train-max-src", type=int, default=200)
    parser.add_argument("--max-tgt", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=2.0)
    parser.add_argument("--valid-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-budget", type=float, default=55.0, help="wall-clock minutes")
    parser.add_argument("--cpu-budget", type=float, default=None,
                        help="CPU minutes of this process (a busy machine trains as much, only slower)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mask-unk-targets", action="store_true", help="leave <unk> targets out of the loss")
    parser.add_argument("--copy-only-latin-below", type=int, default=0, metavar="N",
                        help="Latin-script words in fewer than N training targets can only be copied")
    parser.add_argument("--unk-rare-source-below", type=int, default=0, metavar="K",
                        help="the encoder reads Latin-script words seen in fewer than K training sources as <unk>")
    parser.add_argument("--scheduled-sampling", choices=SCHEDULES, default="none",
                        help="decay of the teacher-forcing probability (Bengio et al. 2015)")
    parser.add_argument("--ss-k", type=float, default=1000.0, help="k of the exponential / inverse sigmoid decay")
    parser.add_argument("--ss-c", type=float, default=1e-4, help="slope c of the linear decay")
    parser.add_argument("--ss-floor", type=float, default=0.0, help="ε_min, the lowest teacher-forcing probability")
    parser.add_argument("--attention-reg", type=float, default=0.0, metavar="LAMBDA",
                        help="weight λ of Σ_i (τ − Σ_t α_ti)² per target token (Xu et al. 2015)")
    parser.add_argument("--attention-target", type=float, default=1.0, metavar="TAU", help="τ of the regulariser")
    parser.add_argument("--scramble-names", type=float, default=0.0, metavar="P",
                        help="replace each name shared by source and target with a made-up word, with probability P")
    parser.add_argument("--unlikelihood", type=float, default=0.0, metavar="ALPHA",
                        help="weight α of token-level unlikelihood of already written characters (topic models)")
    parser.add_argument("--topic-coverage-loss", type=float, default=0.0, metavar="LAMBDA",
                        help="weight λ of the mean final topic coverage (MTA-LSTM)")
    parser.add_argument("--topic-spend-loss", type=float, default=0.0, metavar="LAMBDA",
                        help="weight λ of the mean (log Σ_t α_tj / φ_j)²: each topic spent exactly once (MTA-LSTM)")
    parser.add_argument("--topic-subsets", action="store_true",
                        help="train on random subsets of each example's topic words (topic models)")
    parser.add_argument("--form-features", action="store_true",
                        help="feed the line position, line count and line width (topic models)")
    parser.add_argument("--topic-char-bias", action="store_true",
                        help="a gated bonus on the logits of the attended topics' characters (topic models)")
    parser.add_argument("--written-penalty", action="store_true",
                        help="a learned penalty on the logits of characters already written (topic models)")
    parser.add_argument("--topic-word-continuation", action="store_true",
                        help="a gated bonus on the next character of a topic word just begun (topic models)")
    parser.add_argument("--scst", type=float, default=0.0, metavar="GAMMA",
                        help="self-critical sequence training: loss = γ·L_rl + (1 − γ)·L_mle, reward ROUGE-L "
                             "(training/scst.py); checkpoints are then selected on validation greedy ROUGE-L")
    parser.add_argument("--scst-valid", type=int, default=500, help="validation pairs decoded for selection")
    parser.add_argument("--eval-every", type=int, default=0, metavar="STEPS",
                        help="also evaluate (and keep the best checkpoint) every STEPS batches")
    parser.add_argument("--sort-by-target", action="store_true", help="batch examples of similar target length")
    parser.add_argument("--extra-config", default="{}", help="JSON merged into config.json")
    parser.add_argument("--default-length-penalty", type=float, default=None, metavar="ALPHA",
                        help="the checkpoint's own default GNMT length penalty α (seq2seq family; an "
                             "--init-from checkpoint's value is kept unless given)")
    train(parser.parse_args())


if __name__ == "__main__":
    main()
