"""Train ``enzh-transformer``: a small BART-style encoder-decoder, from scratch, on data/enzh
(and ``chat-transformer`` on data/chitchat/pairs with ``--word-level``, see training/train_chat.sh).

    python -m training.train_transformer --out checkpoints/enzh-transformer --cpu-budget 60

1. A shared BPE tokenizer (``tokenizers``: NFC, Metaspace pre-tokenizer, ``<s> … </s>`` template) is
   trained on the English and Chinese sides of the training split.
2. A ``BartConfig`` model (3+3 layers, d_model 256, 4 heads; tied embeddings) is trained with
   label-smoothed cross-entropy, AdamW and an inverse-square-root schedule, in length-sorted batches.
3. The budget is **process CPU time**, so a busy machine trains the same amount, only slower;
   training also stops once the validation NLL has not improved for ``--patience`` epochs. The
   epoch with the best validation NLL is kept, stored in the standard Hugging Face folder format
   (``model.safetensors`` in fp16, ``config.json``, ``tokenizer.json``) plus GenScope's app metadata
   as extra config keys and the curves in ``metrics.json``.
4. ``--negative-weight α`` adds negative training for safe replies (He & Glass 2020, "Negative Training
   for Neural Dialogue Response Generation"): every ``--negative-every`` steps the model greedily
   answers ``--negative-prompts`` messages (half training messages, half LibreOffice help sentences,
   text unlike chit-chat); each reply that is at least ``--negative-share`` of all its replies is a
   safe reply, and every step adds α × the unlikelihood loss −log(1 − p(y_t)) of a batch of those
   (message, safe reply) pairs to the MLE loss. ``metrics.json``'s ``negative_training`` logs each
   refresh: how many pairs, and the share of the ten most frequent replies.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tqdm import tqdm
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

from gen_models.text import _TOKEN_RE as TOKEN_RE
from gen_models.text import tokenize
from gen_models.vocab import SPECIALS as VOCAB_SPECIALS
from gen_models.vocab import Vocab
from training.evaluation import read_rows

OTHER_PROMPTS = Path("data/enzh")  # negative training's prompts unlike chit-chat (see negative_prompts)
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
BOS, PAD, EOS, UNK = range(4)


def train_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-fallback-free BPE tokenizer over both languages; encodes text as ``<s> pieces </s>``."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=2,
                                  limit_alphabet=6000, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=256)


def train_word_tokenizer(token_lists: list[list[str]], vocab_size: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with the RNN chat models' choices: :func:`gen_models.text.tokenize`'s
    lowercased words and punctuation (the same regex, as a pre-tokenizer), and the ``vocab_size``
    most frequent training tokens seen twice (:meth:`gen_models.vocab.Vocab.build`); ``<s> x </s>``."""
    words = Vocab.build(token_lists, vocab_size).itos[len(VOCAB_SPECIALS):]
    tokenizer = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(SPECIALS + words)}, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(TOKEN_RE.pattern), "isolated")])
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # words joined by spaces, "i 'm" -> "i'm"
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", BOS), ("</s>", EOS)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=256)


def build_model(vocab_size: int, args) -> BartForConditionalGeneration:
    """A small BART; decoding starts from ``<s>`` and stops at ``</s>``."""
    config = BartConfig(
        vocab_size=vocab_size, d_model=args.d_model, encoder_layers=args.layers, decoder_layers=args.layers,
        encoder_attention_heads=args.heads, decoder_attention_heads=args.heads,
        encoder_ffn_dim=4 * args.d_model, decoder_ffn_dim=4 * args.d_model, max_position_embeddings=256,
        dropout=args.dropout, attention_dropout=0.0, activation_dropout=0.0, scale_embedding=True,
        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=BOS,
        forced_bos_token_id=None, forced_eos_token_id=None, tie_word_embeddings=True)
    torch.manual_seed(args.seed)
    model = BartForConditionalGeneration(config)
    model.generation_config.update(decoder_start_token_id=BOS, eos_token_id=EOS, bos_token_id=BOS,
                                   pad_token_id=PAD, forced_bos_token_id=None, forced_eos_token_id=None,
                                   num_beams=4, max_length=128)
    return model


def encode_pairs(tokenizer, rows: list[dict], max_len: int) -> list[tuple[list[int], list[int]]]:
    """(source ids ``<s> x </s>``, target ids ``<s> y </s>``), each cut to ``max_len``."""
    src = tokenizer([r["src"] for r in rows])["input_ids"]
    tgt = tokenizer([r["tgt"] for r in rows])["input_ids"]
    return [(cut(s, max_len), cut(t, max_len)) for s, t in zip(src, tgt)]


def cut(ids: list[int], max_len: int) -> list[int]:
    """``<s> … </s>`` ids cut to ``max_len``, still ending in ``</s>``."""
    return ids[: max_len - 1] + [EOS] if len(ids) > max_len else ids


def make_batches(pairs: list, max_tokens: int, rng: random.Random) -> list[list]:
    """Shuffled batches of similar length holding at most ``max_tokens`` padded target+source tokens."""
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][1]), rng.random()))
    batches, batch, longest = [], [], 0
    for i in order:
        longest = max(longest, len(pairs[i][0]) + len(pairs[i][1]))
        if batch and longest * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch, longest = [], len(pairs[i][0]) + len(pairs[i][1])
        batch.append(pairs[i])
    batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(batch: list) -> dict:
    """Padded tensors: input_ids (B, S), attention_mask (B, S), decoder_input_ids and labels (B, T)."""
    S, T = max(len(s) for s, _ in batch), max(len(t) for _, t in batch) - 1
    input_ids = torch.full((len(batch), S), PAD)
    decoder_input_ids = torch.full((len(batch), T), PAD)
    labels = torch.full((len(batch), T), -100)
    for b, (s, t) in enumerate(batch):
        input_ids[b, : len(s)] = torch.tensor(s)
        decoder_input_ids[b, : len(t) - 1] = torch.tensor(t[:-1])  # <s> y
        labels[b, : len(t) - 1] = torch.tensor(t[1:])  # y </s>
    return {"input_ids": input_ids, "attention_mask": (input_ids != PAD).long(),
            "decoder_input_ids": decoder_input_ids, "labels": labels}


def drop_target_words(batch: dict, rate: float, generator: torch.Generator) -> dict:
    """The batch with each decoder input word after ``<s>`` replaced by ``<unk>`` at ``rate`` (Bowman et
    al. 2016's word dropout): a decoder that cannot lean on the reply so far must read the source, which
    keeps a small Transformer from collapsing into a language model of the replies."""
    inputs = batch["decoder_input_ids"]  # (B, T)
    drop = (torch.rand(inputs.shape, generator=generator) < rate) & (inputs != PAD)
    drop[:, 0] = False  # the start token stays
    return {**batch, "decoder_input_ids": inputs.masked_fill(drop, UNK)}


def batch_loss(model, batch: dict, smoothing: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(label-smoothed training loss, summed NLL, target tokens) of one batch."""
    labels = batch.pop("labels")
    logits = model(**batch).logits  # (B, T, V)
    flat_logits, flat_labels = logits.reshape(-1, logits.size(-1)), labels.reshape(-1)
    loss = torch.nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100, label_smoothing=smoothing)
    nll = torch.nn.functional.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum")
    return loss, nll.detach(), int((flat_labels != -100).sum())


def unlikelihood_loss(model, batch: dict) -> torch.Tensor:
    """Mean token-level unlikelihood −log(1 − p(y_t | x, y_<t)) of the batch's targets (Welleck et al.
    2020's loss, bounded unlike a negated NLL): trained against, these replies become less likely."""
    labels = batch.pop("labels")  # (B, T)
    log_probs = model(**batch).logits.log_softmax(-1)  # (B, T, V)
    mask = labels != -100  # (B, T)
    p = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1).exp()  # (B, T)
    return -(torch.log1p(-p.clamp(max=1 - 1e-6)) * mask).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def frequent_replies(model, prompts: list[list[int]], share: float, max_len: int,
                     batch_size: int = 64) -> tuple[list[tuple[list[int], list[int]]], Counter]:
    """The model's greedy replies to ``prompts`` that are each at least ``share`` of all its replies
    (its safe replies), as (prompt ids, reply ids ``<s> y </s>``) pairs to train against — He & Glass
    2020's negative training for frequent responses — and the count of every reply."""
    model.eval()
    replies = []
    for start in range(0, len(prompts), batch_size):
        batch = collate([(prompt, [BOS, EOS]) for prompt in prompts[start: start + batch_size]])
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             num_beams=1, do_sample=False, max_length=max_len)  # (b, ≤ max_len)
        for row in out.tolist():
            body = [t for t in row[1:] if t not in (PAD, EOS)][: max_len - 2]  # at most max_len with <s>, </s>
            replies.append(tuple([BOS, *body, EOS]))
    model.train()
    counts = Counter(replies)
    frequent = {reply for reply, n in counts.items() if n >= share * len(replies)}
    return [(prompt, list(reply)) for prompt, reply in zip(prompts, replies) if reply in frequent], counts


def negative_prompts(tokenizer, data: Path, count: int, max_len: int, seed: int) -> list[list[int]]:
    """Messages to find the model's safe replies with: half training messages, half English sentences
    of the en→zh corpus (LibreOffice help: text unlike chit-chat, as a visitor's queries often are)."""
    rng = random.Random(seed)
    chat = [r["src"] for r in read_rows(data, "train")]
    other = [r["src"].lower() for r in read_rows(OTHER_PROMPTS, "train") if 3 <= len(r["src"].split()) <= 20]
    texts = rng.sample(chat, count // 2) + rng.sample(other, count - count // 2)
    return [cut(ids, max_len) for ids in tokenizer(texts)["input_ids"]]


@torch.no_grad()
def validation_nll(model, pairs: list, max_tokens: int) -> float:
    """Mean per-token NLL of teacher-forced validation pairs."""
    model.eval()
    total, count = 0.0, 0
    for batch in make_batches(pairs, max_tokens, random.Random(0)):
        _, nll, n = batch_loss(model, collate(batch), 0.0)
        total, count = total + float(nll), count + n
    model.train()
    return total / count


def shuffled_sources(pairs: list) -> list:
    """Each target with the source of a pair far from it in a seeded shuffle: a model that reads its
    source scores these worse (a model whose valid NLL does not change has collapsed into a language
    model of the targets). Not the next pair's source: consecutive chat pairs are consecutive turns,
    so the next pair's source is this pair's target."""
    order = list(range(len(pairs)))
    random.Random(0).shuffle(order)
    donor = {i: order[(k + len(order) // 2) % len(order)] for k, i in enumerate(order)}
    return [(pairs[donor[i]][0], t) for i, (_, t) in enumerate(pairs)]


def save(model, tokenizer, out: Path, app_config: dict) -> None:
    """Hugging Face folder with fp16 safetensors weights and GenScope's metadata in config.json."""
    half = BartForConditionalGeneration(model.config)
    half.load_state_dict(model.state_dict())
    half.config.update(app_config)
    half.half().save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def train(args) -> None:
    """Tokenizer, model, training loop with a CPU-time budget; writes ``args.out``."""
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    dropout_rng = torch.Generator().manual_seed(args.seed)
    train_rows, valid_rows = read_rows(args.data, "train"), read_rows(args.data, "valid")[: args.valid_size]
    if args.init_from:  # a second phase: the first phase's tokenizer and weights
        tokenizer = PreTrainedTokenizerFast.from_pretrained(args.init_from)
    elif args.word_level:  # the chat models' words, each side cut to max_len - 2 as the RNN trainer does
        tokens = [tokenize(r[side])[: args.max_len - 2] for r in train_rows for side in ("src", "tgt")]
        tokenizer = train_word_tokenizer(tokens, args.vocab_size)
    else:
        tokenizer = train_tokenizer([r["src"] for r in train_rows] + [r["tgt"] for r in train_rows], args.vocab_size)
    train_pairs = encode_pairs(tokenizer, train_rows, args.max_len)
    valid_pairs = encode_pairs(tokenizer, valid_rows, args.max_len)
    model = build_model(len(tokenizer), args).train()
    if args.init_from:
        model.load_state_dict(BartForConditionalGeneration.from_pretrained(args.init_from).float().state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = args.warmup
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))
    print(f"{len(train_pairs)} train / {len(valid_pairs)} valid pairs; vocabulary {len(tokenizer)}; "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    args.out.mkdir(parents=True, exist_ok=True)
    app_config = json.loads(args.extra_config)
    curves, best, best_epoch, cpu_start, wall_start = [], math.inf, 0, time.process_time(), time.time()

    def spent() -> float:
        """CPU minutes used so far."""
        return (time.process_time() - cpu_start) / 60

    prompts = negative_prompts(tokenizer, args.data, args.negative_prompts, args.max_len, args.seed) \
        if args.negative_weight else []
    negatives, negative_log = [], []
    for epoch in range(1, args.epochs + 1):
        losses = []
        for batch in tqdm(make_batches(train_pairs, args.max_tokens, rng), desc=f"epoch {epoch}",
                          mininterval=60):
            if prompts and schedule.last_epoch % args.negative_every == 0:
                negatives = refresh_negatives(model, prompts, args, negative_log, spent())
            tensors = drop_target_words(collate(batch), args.target_word_dropout, dropout_rng)
            loss, _, _ = batch_loss(model, tensors, args.label_smoothing)
            if negatives:
                loss = loss + args.negative_weight * unlikelihood_loss(
                    model, collate(rng.sample(negatives, min(args.negative_batch, len(negatives)))))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            if spent() > args.cpu_budget:
                break
        row = {"phase": "main", "epoch": epoch, "train_loss": sum(losses) / len(losses),
               "valid_nll": validation_nll(model, valid_pairs, args.max_tokens),
               "valid_nll_shuffled_source": validation_nll(model, shuffled_sources(valid_pairs), args.max_tokens),
               "cpu_minutes": spent(), "minutes": (time.time() - wall_start) / 60, "steps": schedule.last_epoch}
        curves.append(row)
        print(json.dumps(row), flush=True)
        if row["valid_nll"] < best:
            best, best_epoch = row["valid_nll"], epoch
            save(model, tokenizer, args.out, app_config)
        training = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "extra_config"}
        metrics_path = args.out / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
        metrics.update(curves=curves, training=training, **({"negative_training": negative_log} if prompts else {}))
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if spent() > args.cpu_budget:
            print(f"CPU budget of {args.cpu_budget} min reached")
            break
        if epoch - best_epoch >= args.patience:
            print(f"validation NLL has not improved since epoch {best_epoch}: stopping")
            break


def refresh_negatives(model, prompts: list, args, log: list, cpu_minutes: float) -> list:
    """The model's current safe replies to the negative prompts, logged with their shares."""
    negatives, counts = frequent_replies(model, prompts, args.negative_share, args.max_len)
    top = [[n / len(prompts), reply] for reply, n in counts.most_common(10)]
    log.append({"cpu_minutes": cpu_minutes, "negative_pairs": len(negatives),
                "top10_share": sum(share for share, _ in top), "top": [[round(s, 4), list(r)] for s, r in top]})
    print(json.dumps({k: v for k, v in log[-1].items() if k != "top"}), flush=True)
    return negatives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/enzh"))
    parser.add_argument("--out", type=Path, default=Path("checkpoints/enzh-transformer"))
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--word-level", action="store_true",
                        help="word tokens and vocabulary as the RNN chat models (gen_models.text / Vocab.build)")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-len", type=int, default=128, help="tokens per side, special tokens included")
    parser.add_argument("--max-tokens", type=int, default=4096, help="padded tokens per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--init-from", type=Path, default=None,
                        help="start from this run's tokenizer and weights (a second phase, e.g. without word dropout)")
    parser.add_argument("--target-word-dropout", type=float, default=0.0,
                        help="share of decoder input words replaced by <unk> in training (0.25-0.4 for chat)")
    parser.add_argument("--negative-weight", type=float, default=0.0,
                        help="negative training (He & Glass 2020): weight of the unlikelihood loss on the model's "
                             "own frequent replies (0 = off)")
    parser.add_argument("--negative-share", type=float, default=0.01,
                        help="a greedy reply this share of all replies to the prompts is a safe reply")
    parser.add_argument("--negative-prompts", type=int, default=2000, help="messages decoded to find them")
    parser.add_argument("--negative-every", type=int, default=250, help="steps between refreshes")
    parser.add_argument("--negative-batch", type=int, default=32, help="safe-reply pairs per step")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--valid-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu-budget", type=float, default=60.0, help="CPU minutes")
    parser.add_argument("--patience", type=int, default=2, help="epochs without a better validation NLL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extra-config", default="{}", help="JSON of app metadata merged into config.json")
    args = parser.parse_args()
    if args.negative_weight and (args.negative_every < 1 or args.negative_prompts < 1 or args.negative_batch < 1):
        parser.error("--negative-every, --negative-prompts and --negative-batch must be at least 1")
    train(args)


if __name__ == "__main__":
    main()
