"""Evaluate the conversation checkpoints on the held-out test split, beside retrieval baselines.

    python -m training.evaluate_chat [--models chat-seq2seq chat-hgfu chat-seq2bf] [--limit N]

Metrics: distinct-1/2 (unique n-grams / all n-grams over the split), mean length, safe-reply rate
(share of outputs that are one of that system's 10 most frequent outputs), keyword use (share of
outputs containing the query's PMI-predicted keyword), corpus BLEU (sacrebleu, 13a tokenisation
on lowercased detokenised text) and reference perplexity (teacher-forced on the real replies, with
the predicted keyword for HGFU; undefined for Seq2BF, whose halves need the keyword in the reply).
Writes each checkpoint's ``metrics.json``, model card and ``docs/results_chat.md``.
"""
from __future__ import annotations

import math
import statistics
from collections import Counter

import sacrebleu
import torch
from rank_bm25 import BM25Okapi

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings
from gen_models.text import detokenize, tokenize
from training.evaluation import (
    ROOT,
    decode_split,
    evaluation_args,
    output_tokens,
    read_rows,
    save_results,
    write_model_card,
)
from training.metrics import ngrams
from training.train import Example

DATA = ROOT / "data" / "chitchat" / "pairs"
MODELS = ["chat-seq2seq", "chat-hgfu", "chat-seq2bf"]
EXAMPLE_EVERY = 397
UNSEEN_QUERIES = [  # written here, unlike the corpus's student chats: what a demo visitor types
    "my cat knocked a glass of water onto my laptop this morning",
    "have you ever been to a jazz concert?",
    "i am thinking about learning to cook indian food",
    "the train was late again so i missed my exam",
    "what do you think about electric cars?",
    "we are going camping in the mountains next weekend",
]


def distinct(outputs: list[list[str]], n: int) -> float:
    """Unique n-grams over all n-grams of the outputs (Li et al. 2016's distinct-n)."""
    grams = [g for out in outputs for g in ngrams(out, n)]
    return len(set(grams)) / max(len(grams), 1)


def safe_reply_rate(outputs: list[list[str]], top: int = 10) -> float:
    """Share of outputs that are one of the ``top`` most frequent outputs."""
    counts = Counter(" ".join(o) for o in outputs)
    frequent = {text for text, _ in counts.most_common(top)}
    return sum(" ".join(o) in frequent for o in outputs) / max(len(outputs), 1)


def score(rows: list[dict], outputs: list[list[str]]) -> dict:
    """Every text metric of ``outputs`` against the rows' replies and predicted keywords."""
    keyword_rows = [(r["predicted"], o) for r, o in zip(rows, outputs) if r["predicted"]]
    bleu = sacrebleu.corpus_bleu([detokenize(o) for o in outputs], [[r["tgt"].lower() for r in rows]])
    return {"distinct_1": distinct(outputs, 1), "distinct_2": distinct(outputs, 2),
            "mean_length": statistics.mean(len(o) for o in outputs), "safe_reply_rate": safe_reply_rate(outputs),
            "keyword_in_output": sum(k in o for k, o in keyword_rows) / max(len(keyword_rows), 1),
            "bleu": bleu.score, "unk_rate": sum(o.count("<unk>") for o in outputs) / max(sum(map(len, outputs)), 1)}


@torch.no_grad()
def reference_perplexity(name: str, rows: list[dict]) -> float | None:
    """exp(mean NLL per reply token incl. the end token) under teacher forcing; None for Seq2BF."""
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    if model.model_type == "seq2bf":
        return None
    total = tokens = 0.0
    for i in range(0, len(rows), 64):
        examples = [Example(tokenize(r["src"])[:60], tokenize(r["tgt"]), [r["predicted"]] if r["predicted"] else [])
                    for r in rows[i : i + 64]]
        batch = model.training_batch(examples)
        n = float(batch["target_mask"].sum())
        total += float(model(**batch)["nll"]) * n
        tokens += n
    return math.exp(total / tokens)


def retrieval_baseline(train: list[dict], rows: list[dict]) -> list[list[str]]:
    """The reply of the training query most similar to each test query (BM25 over query tokens)."""
    bm25 = BM25Okapi([tokenize(r["src"]) for r in train])
    return [tokenize(train[int(bm25.get_scores(tokenize(r["src"])).argmax())]["tgt"]) for r in rows]


def evaluate(names: list[str], rows: list[dict], train: list[dict], settings: DecodeSettings) -> dict:
    """{system: {"test": metrics, "outputs": [...], ...}} for baselines and models."""
    most_common = Counter(r["tgt"].lower() for r in train).most_common(1)[0][0]
    systems = {"most frequent training reply": [tokenize(most_common)] * len(rows),
               "BM25 retrieval (nearest training query's reply)": retrieval_baseline(train, rows),
               "reference": [tokenize(r["tgt"]) for r in rows]}
    results = {}
    for name in names:
        traces, decode_stats = decode_split(name, rows, settings)
        systems[name] = [output_tokens_in_reading_order(t) for t in traces]
        results[name] = {"decoding": decode_stats, "reference_perplexity": reference_perplexity(name, rows)}
    for name, outputs in systems.items():
        results.setdefault(name, {}).update(test=score(rows, outputs), outputs=outputs)
    return results


def output_tokens_in_reading_order(trace) -> list[str]:
    """Output tokens as the reply reads (Seq2BF generates from its keyword outwards)."""
    return tokenize(trace.output_text) if trace.extra.get("keyword") is not None else output_tokens(trace)


def results_table(results: dict, n: int) -> str:
    """Markdown table of the metrics."""
    lines = [f"Test split: {n} (query, reply) pairs from conversations never seen in training. Distinct, "
             "safe-reply rate and keyword use in %; BLEU: sacrebleu corpus BLEU.", "",
             "| system | distinct-1 | distinct-2 | length | safe-reply rate | predicted keyword in output | BLEU | "
             "reference ppl | UNK % | ms/input |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        t, d = res["test"], res.get("decoding", {})
        ppl, speed = res.get("reference_perplexity"), d.get("ms_per_input_p50")
        lines.append(f"| {name} | {100 * t['distinct_1']:.1f} | {100 * t['distinct_2']:.1f} | {t['mean_length']:.1f} | "
                     f"{100 * t['safe_reply_rate']:.1f} | {100 * t['keyword_in_output']:.1f} | {t['bleu']:.2f} | "
                     f"{f'{ppl:.1f}' if ppl else '–'} | {100 * t['unk_rate']:.2f} | "
                     f"{f'{speed:.0f}' if speed else '–'} |")
    return "\n".join(lines) + "\n"


def examples_table(rows: list[dict], results: dict, names: list[str], settings: DecodeSettings) -> str:
    """Ten fixed test pairs and the unseen queries with every model's reply (and the keyword)."""
    from gen_models.decoding import generate

    parts = []
    for i in range(0, len(rows), EXAMPLE_EVERY)[:10]:
        parts.append(f"**{rows[i]['src']}** (predicted keyword: {rows[i]['predicted'] or '–'})\n")
        parts.append(f"- reference: {rows[i]['tgt']}")
        parts += [f"- {name}: {detokenize(results[name]['outputs'][i])}" for name in names]
        parts.append("")
    parts.append("Queries written here, unlike the corpus:\n")
    models = {name: load_checkpoint(CHECKPOINT_ROOT / name) for name in names}
    for query in UNSEEN_QUERIES:
        parts.append(f"**{query}**\n")
        for name, model in models.items():
            trace = generate(model, query, settings)
            keyword = trace.extra.get("keyword")
            parts.append(f"- {name}: {trace.output_text}" + (f" (keyword: {keyword})" if keyword else ""))
        parts.append("")
    return "\n".join(parts)


def main() -> None:
    args = evaluation_args(__doc__, MODELS)
    rows = read_rows(DATA, "test")[: args.limit or None]
    train = read_rows(DATA, "train")
    settings = DecodeSettings(beam_size=args.beam, max_len=30)
    results = evaluate(args.models, rows, train, settings)
    table = results_table(results, len(rows))
    examples = examples_table(rows, results, args.models, settings)
    print(table)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_chat.md").write_text(table + "\n" + examples, encoding="utf-8")
    for name in args.models:
        kept = {k: v for k, v in results[name].items() if k != "outputs"}
        kept["baselines"] = {b: results[b]["test"] for b in list(results)[:2]}
        save_results(name, kept, {"beam_size": args.beam, "max_len": 30})
        write_model_card(name, "model_card_chat.md", table=table, examples=examples)


if __name__ == "__main__":
    main()
