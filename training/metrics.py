"""Corpus-level metrics for generated text (token lists), shared by the evaluation scripts."""
from __future__ import annotations

import re
from collections import Counter
from statistics import mean

from rouge_score import rouge_scorer

from gen_models.text import RougeTokenizer

_ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=RougeTokenizer())  # Han chars count
_ROUGE_L = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())


def is_word(token: str) -> bool:
    """True for tokens with at least one letter or digit (punctuation excluded)."""
    return any(ch.isalnum() for ch in token)


def is_regulated(poem: str) -> bool:
    """4 or 8 lines of 5 or 7 Han characters each."""
    lines = [line for line in re.split(r"[，。？！；,.?!;]", poem) if line]
    return len(lines) in (4, 8) and len({len(line) for line in lines}) == 1 and len(lines[0]) in (5, 7)


def ngrams(tokens: list[str], n: int) -> list[tuple]:
    """All n-grams of ``tokens`` in order."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def rouge_f1(references: list[list[str]], outputs: list[list[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (rouge-score, Porter stemmer) over lowercased token texts; each Han
    character is one token (``gen_models.text.RougeTokenizer``)."""
    scores = [_ROUGE.score(" ".join(ref), " ".join(out)) for ref, out in zip(references, outputs)]
    return {key: mean(s[key].fmeasure for s in scores) for key in ("rouge1", "rouge2", "rougeL")}


def rouge_l_f1(reference: list[str], output: list[str]) -> float:
    """ROUGE-L F1 of one output's tokens against one reference's (the scorer of :func:`rouge_f1`)."""
    return _ROUGE_L.score(" ".join(reference), " ".join(output))["rougeL"].fmeasure


def duplicate_ngram_rates(outputs: list[list[str]], max_n: int = 4) -> dict[str, float]:
    """Share of n-grams (n = 1..max_n) that repeat an earlier n-gram of the same output,
    and the share of outputs containing any repeated trigram."""
    rates = {}
    for n in range(1, max_n + 1):
        total = repeated = 0
        for out in outputs:
            grams = ngrams([t for t in out if is_word(t)] if n == 1 else out, n)
            total += len(grams)
            repeated += len(grams) - len(set(grams))
        rates[f"dup_{n}gram"] = repeated / max(total, 1)
    rates["outputs_with_repeated_trigram"] = mean(
        len(ngrams(out, 3)) != len(set(ngrams(out, 3))) for out in outputs) if outputs else 0.0
    return rates


def novel_ngram_rates(sources: list[list[str]], outputs: list[list[str]], max_n: int = 2) -> dict[str, float]:
    """Share of output n-grams that do not occur in the source (n = 1..max_n)."""
    rates = {}
    for n in range(1, max_n + 1):
        total = novel = 0
        for src, out in zip(sources, outputs):
            seen = set(ngrams(src, n))
            grams = [g for g in ngrams(out, n) if n > 1 or is_word(g[0])]
            total += len(grams)
            novel += sum(g not in seen for g in grams)
        rates[f"novel_{n}gram"] = novel / max(total, 1)
    return rates


def token_share(outputs: list[list[str]], token: str) -> float:
    """Share of output tokens equal to ``token`` (e.g. ``<unk>``)."""
    counts = Counter(t for out in outputs for t in out)
    return counts[token] / max(sum(counts.values()), 1)
