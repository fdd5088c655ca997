"""Keywords for keyword-introduced replies (Seq2BF, Mou et al. 2016; HGFU, Yao et al. 2017).

A reply's keyword is a noun predicted from the query by pointwise mutual information between query
words and reply nouns, counted over training pairs (each word counted once per side of a pair):

    PMI(w, n) = log( (c(w, n) - δ) · N / (c(w) · c(n)) )     c(·): pairs containing the word(s)
    keyword(q) = argmax_n Σ_{w ∈ set(q)} PMI(w, n)

``δ`` (absolute discounting) and minimum counts keep rare words from dominating: a pair seen twice
out of 70,000 says little. Only positive PMI entries are kept; an absent pair counts as 0.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch


@dataclass(frozen=True)
class PMITable:
    """Positive PMI between query words and candidate reply nouns: ``entries[word][noun]``."""

    nouns: tuple[str, ...]
    entries: dict[str, dict[str, float]]

    def rank(self, query: Sequence[str], k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` best candidate nouns for a tokenised query with their summed PMI (best first;
        ties alphabetical). Nouns no query word is associated with are not listed."""
        scores: Counter = Counter()
        for word in set(query):
            scores.update(self.entries.get(word, {}))
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]

    def best_in(self, query: Sequence[str], reply: Sequence[str]) -> str:
        """The reply's noun most associated with the query ("" if the reply has no candidate noun):
        the keyword a reply was generated around, for training."""
        present = set(reply) & set(self.nouns)
        if not present:
            return ""
        totals = {noun: sum(self.entries.get(w, {}).get(noun, 0.0) for w in set(query)) for noun in present}
        return min(totals, key=lambda noun: (-totals[noun], noun))

    def to_json(self) -> dict:
        """A JSON-ready form (``nouns`` and ``[word, noun, pmi]`` rows)."""
        rows = [[w, n, round(v, 4)] for w, nouns in sorted(self.entries.items()) for n, v in sorted(nouns.items())]
        return {"nouns": list(self.nouns), "entries": rows}

    @classmethod
    def from_json(cls, data: dict) -> "PMITable":
        entries: dict[str, dict[str, float]] = {}
        for word, noun, value in data["entries"]:
            entries.setdefault(word, {})[noun] = float(value)
        return cls(tuple(data["nouns"]), entries)


def pmi_table(pairs: Iterable[tuple[Sequence[str], Sequence[str]]], nouns: Iterable[str],
              min_word: int = 20, min_noun: int = 20, min_pair: int = 3, discount: float = 1.0) -> PMITable:
    """Count ``(query tokens, reply tokens)`` pairs and keep positive, discounted PMI between query
    words seen in ``min_word`` pairs and candidate nouns seen in ``min_noun`` replies, for
    co-occurrences seen in at least ``min_pair`` pairs."""
    candidates = set(nouns)
    words, replies, joint, n_pairs = Counter(), Counter(), Counter(), 0
    for query, reply in pairs:
        n_pairs += 1
        query_words, reply_nouns = set(query), set(reply) & candidates
        words.update(query_words)
        replies.update(reply_nouns)
        joint.update((w, n) for w in query_words for n in reply_nouns)
    kept_nouns = tuple(sorted(n for n, c in replies.items() if c >= min_noun))
    entries: dict[str, dict[str, float]] = {}
    for (word, noun), count in joint.items():
        if count < min_pair or words[word] < min_word or replies[noun] < min_noun:
            continue
        value = math.log((count - discount) * n_pairs / (words[word] * replies[noun]))
        if value > 0:
            entries.setdefault(word, {})[noun] = value
    return PMITable(kept_nouns, entries)


class KeywordTable(torch.nn.Module):
    """A :class:`PMITable` inside a model, as buffers saved with its weights (``entries`` rows of
    query-word id, noun id, PMI over the model's vocabulary), with the keyword choice models share."""

    def __init__(self, entries: int):
        super().__init__()
        self.register_buffer("word_ids", torch.zeros(entries, dtype=torch.long))  # (N,)
        self.register_buffer("noun_ids", torch.zeros(entries, dtype=torch.long))  # (N,)
        self.register_buffer("pmi", torch.zeros(entries))  # (N,)

    def load_table(self, table: PMITable, vocab) -> None:
        """Fill the buffers from ``table`` (entries whose words the vocabulary lacks are dropped)."""
        rows = [(vocab.stoi[w], vocab.stoi[n], v) for w, nouns in table.entries.items() for n, v in nouns.items()
                if w in vocab.stoi and n in vocab.stoi]
        words, nouns, values = zip(*rows) if rows else ((), (), ())
        self.word_ids = torch.tensor(words, dtype=torch.long)
        self.noun_ids = torch.tensor(nouns, dtype=torch.long)
        self.pmi = torch.tensor(values, dtype=torch.float)

    def rank(self, query_ids: torch.Tensor, vocab_size: int, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` best noun ids for query ids (S,) with their summed PMI, best first."""
        hit = torch.isin(self.word_ids, query_ids.unique())  # (N,)
        scores = self.pmi.new_zeros(vocab_size).index_add_(0, self.noun_ids[hit], self.pmi[hit])  # (V,)
        top = torch.topk(scores, min(k, vocab_size))
        return [(int(i), float(v)) for i, v in zip(top.indices, top.values) if v > 0]
