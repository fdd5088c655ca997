"""Evaluate the conversation checkpoints, with and without MMI decoding, on the held-out test split
and on everyday queries unlike the corpus, beside retrieval baselines.

    python -m training.evaluate_chat [--models ...] [--mmi off antilm bidi] [--limit 150] [--ppl-limit 2000]

Two sets: the first ``--limit`` test (query, reply) pairs of data/chitchat/pairs (conversations never
seen in training), and the 228 everyday queries of data/chitchat/everyday_queries.txt (written
here, no references). Per system: distinct-1/2 (unique n-grams / all n-grams over the set), mean
length, safe-reply rate (share of outputs that are one of that system's 10 most frequent outputs
on that set), question rate (the reply has a "?"), negative rate (the reply has a negation word of
:data:`NEGATIONS`), repetition (the reply repeats a word trigram), contradiction (the reply contradicts
itself or clashes with the query's feeling: :mod:`gen_models.contradiction`), keyword use (share of outputs
containing the query's PMI-predicted keyword), and on the test split corpus BLEU (sacrebleu, 13a on
lowercased detokenised text) and reference perplexity (teacher-forced on the first ``--ppl-limit``
real replies, per word token incl. the end token, the same tokens for every model; with the
predicted keyword for HGFU; undefined for Seq2BF, whose halves need the keyword in the reply).
MMI (``gen_models/mmi.py``) changes decoding only, so a model's perplexity is the same with it.
Decoded outputs are cached in runs/chat_eval/ (one file per model, MMI mode and set size), so
the modes can be run as their companion models become available. Writes each checkpoint's
``metrics.json``, model card and ``docs/results_chat.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import Counter

import sacrebleu
import torch
from rank_bm25 import BM25Okapi

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.contradiction import NEGATIONS, contradicts
from gen_models.decoding import SETTING_FIELDS, DecodeSettings
from gen_models.keywords import PMITable
from gen_models.text import detokenize, tokenize
from training.evaluation import (
    ROOT,
    decode_split,
    output_tokens,
    read_rows,
    save_results,
    write_model_card,
)
from training.metrics import ngrams
from training.train import Example

DATA = ROOT / "data" / "chitchat" / "pairs"
EVERYDAY = ROOT / "data" / "chitchat" / "everyday_queries.txt"
EVERYDAY_DEV = ROOT / "data" / "chitchat" / "everyday_dev_queries.txt"  # 100 others, for choosing between runs
CACHE = ROOT / "runs" / "chat_eval"
OWN_DEFAULTS = ("ban_unk", "no_repeat_ngram", "repetition_penalty", "length_penalty")  # in the cache key when set
MODELS = ["chat-seq2seq", "chat-hgfu", "chat-seq2bf", "chat-transformer"]
MMI_NAMES = {"off": "", "antilm": " + MMI-antiLM", "bidi": " + MMI-bidi"}
GENERATION_ORDER_MODELS = ("chat-seq2bf",)  # not decoded in reading order: MMI-antiLM is not evaluated on them
EXAMPLE_EVERY = 397
EVERYDAY_EXAMPLES = (0, 1, 4, 10, 14, 25, 48, 72, 103, 150)


def distinct(outputs: list[list[str]], n: int) -> float:
    """Unique n-grams over all n-grams of the outputs (Li et al. 2016's distinct-n)."""
    grams = [g for out in outputs for g in ngrams(out, n)]
    return len(set(grams)) / max(len(grams), 1)


def safe_reply_rate(outputs: list[list[str]], top: int = 10) -> float:
    """Share of outputs that are one of the ``top`` most frequent outputs."""
    counts = Counter(" ".join(o) for o in outputs)
    frequent = {text for text, _ in counts.most_common(top)}
    return sum(" ".join(o) in frequent for o in outputs) / max(len(outputs), 1)


def is_question(output: list[str]) -> bool:
    """The reply asks something back."""
    return "?" in output


def is_negative(output: list[str]) -> bool:
    """The reply has a negation word (:data:`NEGATIONS`)."""
    return any(t in NEGATIONS for t in output)


def repeats(output: list[str], n: int = 3) -> bool:
    """The reply repeats a word n-gram (e.g. "i really like to cook, but i really like to cook")."""
    grams = ngrams(output, n)
    return len(set(grams)) < len(grams)


def reply_free_scores(rows: list[dict], outputs: list[list[str]], keywords: list | None = None) -> dict:
    """The metrics that need no reference reply. Keyword use counts the keyword a keyword model
    chose for each reply (``keywords``; its stop nouns and fallback may differ from the plain PMI
    ranking), else the row's PMI-predicted noun."""
    chosen = keywords if keywords and any(keywords) else [r["predicted"] for r in rows]
    keyword_rows = [(k, o) for k, o in zip(chosen, outputs) if k]
    share = lambda test: sum(map(test, outputs)) / max(len(outputs), 1)  # noqa: E731
    return {"distinct_1": distinct(outputs, 1), "distinct_2": distinct(outputs, 2),
            "mean_length": statistics.mean(len(o) for o in outputs), "safe_reply_rate": safe_reply_rate(outputs),
            "question_rate": share(is_question), "negative_rate": share(is_negative), "repetition_rate": share(repeats),
            "contradiction_rate": sum(contradicts(r["src"], detokenize(o)) for r, o in zip(rows, outputs))
            / max(len(outputs), 1),
            "keyword_in_output": sum(k in o for k, o in keyword_rows) / max(len(keyword_rows), 1),
            "unk_rate": sum(o.count("<unk>") for o in outputs) / max(sum(map(len, outputs)), 1)}


def score(rows: list[dict], outputs: list[list[str]], keywords: list | None = None) -> dict:
    """Every text metric of ``outputs`` against the rows' replies and keywords (:func:`reply_free_scores`)."""
    bleu = sacrebleu.corpus_bleu([detokenize(o) for o in outputs], [[r["tgt"].lower() for r in rows]])
    return {**reply_free_scores(rows, outputs, keywords), "bleu": bleu.score}


def everyday_rows(path: "Path | None" = None) -> list[dict]:
    """The everyday queries (or those of ``path``, e.g. ``EVERYDAY_DEV``) as rows with their
    PMI-predicted keyword (no reference reply)."""
    with __import__("gzip").open(DATA / "keywords.json.gz", "rt", encoding="utf-8") as f:
        table = PMITable.from_json(json.load(f))
    queries = [line.strip() for line in (path or EVERYDAY).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"src": q, "tgt": None, "predicted": (table.rank(tokenize(q), 1) or [("", 0)])[0][0]} for q in queries]


@torch.no_grad()
def reference_perplexity(name: str, rows: list[dict]) -> float | None:
    """exp(mean NLL per reply token incl. the end token) under teacher forcing; None for Seq2BF.
    The Transformer (a Hugging Face folder) is scored on the same word tokens through its own
    word-level tokenizer."""
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    if getattr(model, "model_type", None) == "seq2bf":
        return None
    total = tokens = 0.0
    for i in range(0, len(rows), 64):
        chunk = rows[i : i + 64]
        if hasattr(model, "training_batch"):
            examples = [Example(tokenize(r["src"])[:60], tokenize(r["tgt"]), [r["predicted"]] if r["predicted"] else [])
                        for r in chunk]
            batch = model.training_batch(examples)
            n = float(batch["target_mask"].sum())
            total += float(model(**batch)["nll"]) * n
        else:
            nll, n = _hf_nll(model, chunk)
            total += nll
        tokens += n
    return math.exp(total / tokens)


@torch.no_grad()
def _hf_nll(model, rows: list[dict]) -> tuple[float, float]:
    """Summed NLL and token count of the rows' replies (``t </s>``) under a Hugging Face seq2seq."""
    tok = model.tokenizer
    pad = tok.pad_token_id
    sources = [ids[:61] + [tok.eos_token_id] if len(ids) > 62 else ids for ids in tok([r["src"] for r in rows])["input_ids"]]
    targets = tok([r["tgt"] for r in rows])["input_ids"]  # <s> t </s>
    S, T = max(map(len, sources)), max(map(len, targets)) - 1
    input_ids = torch.full((len(rows), S), pad)
    dec_in = torch.full((len(rows), T), pad)
    labels = torch.full((len(rows), T), -100)
    for b, (s, t) in enumerate(zip(sources, targets)):
        input_ids[b, : len(s)], dec_in[b, : len(t) - 1], labels[b, : len(t) - 1] = (
            torch.tensor(s), torch.tensor(t[:-1]), torch.tensor(t[1:]))
    logits = model.model(input_ids=input_ids, attention_mask=(input_ids != pad).long(), decoder_input_ids=dec_in).logits
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                            ignore_index=-100, reduction="sum")
    return float(nll), float((labels != -100).sum())


def cached_perplexity(name: str, rows: list[dict]) -> float | None:
    """:func:`reference_perplexity`, kept in runs/chat_eval/ by model weights and row count."""
    weights = (CHECKPOINT_ROOT / name / "model.safetensors").stat()
    path = CACHE / f"{name}.ppl{len(rows)}.{weights.st_size}-{int(weights.st_mtime)}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["ppl"]
    ppl = reference_perplexity(name, rows)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ppl": ppl}) + "\n", encoding="utf-8")
    return ppl


def retrieval_baseline(train: list[dict], rows: list[dict]) -> list[list[str]]:
    """The reply of the training query most similar to each test query (BM25 over query tokens)."""
    bm25 = BM25Okapi([tokenize(r["src"]) for r in train])
    return [tokenize(train[int(bm25.get_scores(tokenize(r["src"])).argmax())]["tgt"]) for r in rows]


def decoded(name: str, mode: str, rows: list[dict], tag: str, settings: DecodeSettings, fresh: bool,
            cached_only: bool = False) -> dict | None:
    """{"outputs": reply tokens in reading order, "decoding": speed} of ``name`` under MMI ``mode``
    on ``rows`` (cached in runs/chat_eval/ by name, mode, set and settings)."""
    path = CACHE / f"{name}.{mode}.{tag}.json"
    key = {k: v for k, v in vars(settings).items() if k in ("beam_size", "max_len", "mmi", "mmi_lambda", "mmi_gamma")}
    key.update({k: v for k, v in vars(settings).items() if k in OWN_DEFAULTS and v != SETTING_FIELDS[k].default})
    folder = CHECKPOINT_ROOT / name
    weights = (folder / "model.safetensors").stat()
    key.update(args=json.loads((folder / "config.json").read_text(encoding="utf-8")).get("args", {}),
               weights=f"{weights.st_size}-{int(weights.st_mtime)}")  # a retrained or reconfigured model decodes anew
    stem = tag.rstrip("0123456789")
    for other in ([] if fresh else sorted(CACHE.glob(f"{name}.{mode}.{stem}*.json"))):
        cached = json.loads(other.read_text(encoding="utf-8"))  # the same rows come first in a longer run
        if cached["settings"] == key and len(cached["outputs"]) >= len(rows):
            return {**cached, "outputs": cached["outputs"][: len(rows)], "keywords": cached["keywords"][: len(rows)]}
    if cached_only:
        return None
    traces, stats = decode_split(name, rows, settings)
    result = {"settings": key, "outputs": [output_tokens_in_reading_order(t) for t in traces], "decoding": stats,
              "keywords": [t.extra.get("keyword") for t in traces]}
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def evaluate(names: list[str], modes: list[str], rows: list[dict], everyday: list[dict], train: list[dict],
             args: argparse.Namespace) -> dict:
    """{system: {"test": metrics, "everyday": metrics, "outputs": …, "everyday_outputs": …}}."""
    most_common = Counter(r["tgt"].lower() for r in train).most_common(1)[0][0]
    cached = CACHE / f"bm25.test{len(rows)}.everyday{len(everyday)}.json"
    if cached.is_file() and not args.fresh:
        retrieval = json.loads(cached.read_text(encoding="utf-8"))
    else:
        retrieval = retrieval_baseline(train, rows + everyday)
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(retrieval, ensure_ascii=False) + "\n", encoding="utf-8")
    systems = {"most frequent training reply": ([tokenize(most_common)] * len(rows), [tokenize(most_common)] * len(everyday)),
               "BM25 retrieval (nearest training query's reply)": (retrieval[: len(rows)], retrieval[len(rows):]),
               "reference": ([tokenize(r["tgt"]) for r in rows], None)}
    results = {}
    ppl_rows = read_rows(DATA, "test")[: args.ppl_limit or None]
    for name in names:
        ppl = cached_perplexity(name, ppl_rows)
        features = load_checkpoint(CHECKPOINT_ROOT / name).features  # its own defaults (ban_unk, no-repeat), as in the app
        for mode in modes:
            if mode == "antilm" and name in GENERATION_ORDER_MODELS:
                continue  # the reply LM would read Seq2BF's keyword-outward generation order, not a reply
            settings = DecodeSettings.for_model(features, beam_size=args.beam, max_len=30, mmi=mode, record=False,
                                                mmi_lambda=args.mmi_lambda[mode], mmi_gamma=args.mmi_gamma)
            test = decoded(name, mode, rows, f"test{len(rows)}", settings, args.fresh, args.cached_only)
            free = decoded(name, mode, everyday, f"everyday{len(everyday)}", settings, args.fresh, args.cached_only)
            if test is None or free is None:
                continue  # --cached-only: not decoded yet
            system = name + MMI_NAMES[mode]
            systems[system] = (test["outputs"], free["outputs"])
            results[system] = {"model": name, "mmi": mode, "decoding": test["decoding"], "reference_perplexity": ppl,
                               "settings": test["settings"], "test_keywords": test["keywords"],
                               "everyday_keywords": free["keywords"]}
    for system, (test_outputs, free_outputs) in systems.items():
        entry = results.setdefault(system, {})
        entry.update(test=score(rows, test_outputs, entry.get("test_keywords")), outputs=test_outputs)
        if free_outputs is not None:
            entry.update(everyday=reply_free_scores(everyday, free_outputs, entry.get("everyday_keywords")),
                         everyday_outputs=free_outputs)
    return results


def output_tokens_in_reading_order(trace) -> list[str]:
    """Output tokens as the reply reads (Seq2BF generates from its keyword outwards)."""
    return tokenize(trace.output_text) if trace.extra.get("keyword") is not None else output_tokens(trace)


def _pct(value) -> str:
    return f"{100 * value:.1f}"


def results_table(results: dict, n: int, n_everyday: int) -> str:
    """Markdown tables of the metrics on both sets."""
    lines = [f"Test split: {n} (query, reply) pairs from conversations never seen in training; everyday: "
             f"{n_everyday} queries written here, unlike the corpus (no references). Rates in %; BLEU: sacrebleu "
             "corpus BLEU; reference ppl on the test split (the same with and without MMI).", "",
             "| system | set | distinct-1 | distinct-2 | length | safe-reply rate | question | negative | repetition | "
             "contradiction | keyword used | BLEU | reference ppl |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for split in ("test", "everyday"):
        for name, res in results.items():
            if split not in res:
                continue
            t = res[split]
            ppl = res.get("reference_perplexity") if split == "test" else None
            bleu = f"{t['bleu']:.2f}" if "bleu" in t else "–"
            lines.append(f"| {name} | {split} | {_pct(t['distinct_1'])} | {_pct(t['distinct_2'])} | {t['mean_length']:.1f} | "
                         f"{_pct(t['safe_reply_rate'])} | {_pct(t['question_rate'])} | {_pct(t['negative_rate'])} | "
                         f"{_pct(t['repetition_rate'])} | {_pct(t['contradiction_rate'])} | "
                         f"{_pct(t['keyword_in_output'])} | {bleu} | "
                         f"{f'{ppl:.1f}' if ppl else '–'} |")
    return "\n".join(lines) + "\n"


def examples_table(rows: list[dict], everyday: list[dict], results: dict) -> str:
    """Fixed test pairs and everyday queries with every system's reply."""
    systems = [s for s, r in results.items() if "model" in r]
    parts = []
    for i in range(0, len(rows), EXAMPLE_EVERY)[:6]:
        parts.append(f"**{rows[i]['src']}** (predicted keyword: {rows[i]['predicted'] or '–'})\n")
        parts.append(f"- reference: {rows[i]['tgt']}")
        parts += [f"- {s}: {detokenize(results[s]['outputs'][i])}" for s in systems]
        parts.append("")
    parts.append("Everyday queries (written here, unlike the corpus):\n")
    for i in EVERYDAY_EXAMPLES:
        if i >= len(everyday):
            continue
        parts.append(f"**{everyday[i]['src']}** (predicted keyword: {everyday[i]['predicted'] or '–'})\n")
        for s in systems:
            keyword = results[s]["everyday_keywords"][i]
            parts.append(f"- {s}: {detokenize(results[s]['everyday_outputs'][i])}" + (f" (keyword: {keyword})" if keyword else ""))
        parts.append("")
    return "\n".join(parts)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--mmi", nargs="*", default=list(MMI_NAMES), choices=list(MMI_NAMES))
    parser.add_argument("--limit", type=int, default=150, help="decode the first N test rows")
    parser.add_argument("--ppl-limit", type=int, default=2000, help="reference perplexity on the first N test rows")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--antilm-lambda", type=float, default=0.5)
    parser.add_argument("--bidi-lambda", type=float, default=0.5)
    parser.add_argument("--mmi-gamma", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="decode again even where runs/chat_eval has outputs")
    parser.add_argument("--cached-only", action="store_true",
                        help="only the systems runs/chat_eval already has outputs for (assemble the tables)")
    args = parser.parse_args()
    args.mmi_lambda = {"off": 0.5, "antilm": args.antilm_lambda, "bidi": args.bidi_lambda}
    return args


def main() -> None:
    torch.set_num_threads(1)
    args = parse_args()
    rows = read_rows(DATA, "test")[: args.limit or None]
    everyday, train = everyday_rows(), read_rows(DATA, "train")
    names = [n for n in args.models if (CHECKPOINT_ROOT / n / "config.json").is_file()]
    results = evaluate(names, args.mmi, rows, everyday, train, args)
    table = results_table(results, len(rows), len(everyday))
    examples = examples_table(rows, everyday, results)
    print(table)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_chat.md").write_text(table + "\n" + examples, encoding="utf-8")
    baselines = {b: {k: v for k, v in results[b].items() if k in ("test", "everyday")} for b in list(results)[:2]}
    for name in names:
        mine = {s: r for s, r in results.items() if r.get("model") == name}
        if not mine:
            continue
        plain = mine.get(name, next(iter(mine.values())))
        kept = {"test": plain["test"], "everyday": plain.get("everyday"), "decoding": plain["decoding"],
                "reference_perplexity": plain["reference_perplexity"], "baselines": baselines,
                "mmi": {r["mmi"]: {"test": r["test"], "everyday": r.get("everyday"), "settings": r["settings"]}
                        for r in mine.values() if r["mmi"] != "off"}}
        save_results(name, kept, {"beam_size": args.beam, "max_len": 30, "test_rows": len(rows),
                                  "everyday_queries": len(everyday)})
        write_model_card(name, "model_card_chat.md", table=table, examples=examples)


if __name__ == "__main__":
    main()
