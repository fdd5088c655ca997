"""What the keyword-introduced reply models (Seq2BF, HGFU) share: a PMI keyword table kept with the
weights, and the choice of keyword for a query — predicted by PMI, or given by the user (an
intervention: ``encode(text, topics=[keyword])``, the app's keyword picker, the API's ``keyword``
and the CLI's ``--keyword``).
"""
from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from ..keywords import KeywordTable, PMITable
from ..protocol import Encoded
from ..vocab import Vocab
from .seq2seq import Seq2SeqAttention, Seq2SeqConfig

KEYWORD_FILE = "keywords.json.gz"
STOP_FILE = "stop_nouns.txt"
CANDIDATES = 10


@dataclass
class KeywordConfig(Seq2SeqConfig):
    """Seq2seq arguments plus the size of the PMI table and the keyword used when a query has no
    PMI candidate (the most frequent training keyword). For queries unlike the corpus:
    ``stop_nouns`` are never chosen by PMI or as the fallback (generic candidates such as "people",
    "thing", "way"); a query without a PMI candidate gets the last candidate noun it contains before
    the fallback (``query_nouns_first``: before PMI's candidate too)."""

    pmi_entries: int = 0
    fallback_keyword: str = ""
    stop_nouns: list = field(default_factory=list)
    query_nouns_first: bool = False


class KeywordReplyModel(Seq2SeqAttention):
    """Base of the keyword models: keeps the PMI table, chooses each query's keyword."""

    model_type = "keyword_reply_base"
    config_class = KeywordConfig

    def __init__(self, config: KeywordConfig, vocab: Vocab, name: str):
        super().__init__(config, vocab, name)
        self.keywords = KeywordTable(config.pmi_entries)

    @classmethod
    def new_config(cls, vocab_size: int, examples: list, **options) -> KeywordConfig:
        return KeywordConfig(vocab_size, **options)

    def fit_corpus(self, data_dir: Path) -> None:
        """Load the corpus's PMI table (``keywords.json.gz`` of data/prepare_chat_pairs.py) and its stop
        nouns (``stop_nouns.txt``, one per line, ``#`` comments; none when absent), and pick the
        fallback keyword: the most frequent training keyword that is not a stop noun."""
        with gzip.open(Path(data_dir) / KEYWORD_FILE, "rt", encoding="utf-8") as f:
            table = PMITable.from_json(json.load(f))
        self.keywords.load_table(table, self.vocab)
        with gzip.open(Path(data_dir) / "train.jsonl.gz", "rt", encoding="utf-8") as f:
            counts = Counter(json.loads(line).get("keyword", "") for line in f)
        counts.pop("", None)
        stop_file = Path(data_dir) / STOP_FILE
        if stop_file.is_file():
            lines = stop_file.read_text(encoding="utf-8").splitlines()
            self.config.stop_nouns = sorted({w.strip() for w in lines if w.strip() and not w.startswith("#")})
        for word in self.config.stop_nouns:
            counts.pop(word, None)
        self.config.pmi_entries = len(self.keywords.pmi)
        self.config.fallback_keyword = max(counts, key=lambda w: (counts[w], w)) if counts else ""

    def condition(self, encoded: Encoded, topics: Optional[list[str]]) -> None:
        """Choose the keyword (``topics[0]`` when given, else by PMI)."""
        self.choose_keyword(encoded, topics)

    def keyword_ids(self, examples: list) -> torch.Tensor:
        """(B,) vocabulary ids of the examples' keywords (their first topic word)."""
        return torch.tensor([self.vocab.id(ex.topics[0]) if ex.topics else self.vocab.unk_id for ex in examples])

    def choose_keyword(self, encoded: Encoded, given: Optional[list[str]]) -> int:
        """The keyword's vocabulary id: the given one, else the best PMI candidate, else the fallback.
        Records ``keyword``, ``keyword_source`` and the top ``keyword_candidates`` [[noun, PMI], …]
        in ``encoded.extra`` (ValueError for a given keyword outside the vocabulary)."""
        stop = {self.vocab.stoi[w] for w in self.config.stop_nouns if w in self.vocab.stoi}
        ranked = [(i, v) for i, v in self.keywords.rank(encoded.source_ids, self.vocab_size, CANDIDATES + len(stop))
                  if i not in stop][:CANDIDATES]
        encoded.extra["keyword_candidates"] = [[self.vocab.itos[i], round(v, 3)] for i, v in ranked]
        in_query = self.query_nouns(encoded.source_ids, stop)
        words = [w.strip().lower() if self.config.lowercase else w.strip() for w in given or [] if w.strip()]
        if words:
            if words[0] not in self.vocab.stoi or self.vocab.stoi[words[0]] < len(self.vocab.itos[:4]):
                raise ValueError(f"keyword {words[0]!r} is not in {self.name}'s vocabulary of "
                                 f"{self.vocab_size} words")
            keyword, source = self.vocab.stoi[words[0]], "given"
        elif ranked and not (self.config.query_nouns_first and in_query):
            keyword, source = ranked[0][0], "PMI"
        elif in_query:
            keyword, source = in_query[-1], "query noun"  # the last: English noun phrases end in their head
        else:
            keyword, source = self.vocab.id(self.config.fallback_keyword), "fallback"
            encoded.notices.append(f"no query word is associated with a keyword noun: using the most frequent "
                                   f"training keyword '{self.config.fallback_keyword}'")
        encoded.extra["keyword"] = self.vocab.itos[keyword]
        encoded.extra["keyword_source"] = source
        encoded.topics = [self.vocab.itos[keyword]]
        return keyword

    def query_nouns(self, source_ids: torch.Tensor, stop: set) -> list[int]:
        """Candidate nouns (those with PMI entries) the query contains, stop nouns left out, in
        query order without repeats."""
        candidates = set(self.keywords.noun_ids.tolist())
        return list(dict.fromkeys(i for i in source_ids.tolist() if i in candidates and i not in stop))
