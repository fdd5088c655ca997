"""Nearest training examples by BM25 (``bm25s``: Okapi BM25 with Robertson's idf, k1 = 1.5,
b = 0.75, scores stored as one sparse matrix) over a checkpoint's training data.

An index is built lazily, once per corpus file, on the first request, and at most ``KEPT_INDEXES``
are kept (the least recently used is freed: every exhibit has its own corpus; with ``rank_bm25``'s
dict per document an index held 100–200 MB and keeping all of them took the server from 0.9 to
1.65 GB; the sparse matrix holds the 35,000 Debian pairs in about 60 MB and answers in a millisecond).
Each is capped: at most
``MAX_DOCS`` rows, ``MAX_DOC_TOKENS`` tokens per row and ``BUILD_SECONDS`` of reading (whatever was
read by then is indexed, and the answer says so). Queries keep their ``MAX_QUERY_TERMS`` rarest
terms so a huge paste stays fast.
"""
from __future__ import annotations

import gc
import gzip
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import bm25s

from gen_models.text import tokenize

KEPT_INDEXES = int(os.environ.get("GENSCOPE_NEIGHBOR_INDEXES", "2"))
MAX_DOCS = 60_000
MAX_DOC_TOKENS = 128
MAX_QUERY_TERMS = 32
BUILD_SECONDS = 30.0
SHOWN_SOURCE_CHARS = 300


@dataclass
class Neighbor:
    """One retrieved training pair."""

    score: float
    src: str
    tgt: str


@dataclass
class CorpusIndex:
    """A BM25 index over one corpus, with the (shortened) texts it returns."""

    path: Path
    bm25: Optional[bm25s.BM25]
    sources: list[str]
    targets: list[str]
    notice: str = ""

    def search(self, text: str, k: int = 5) -> list[Neighbor]:
        """The ``k`` best-scoring training pairs for ``text`` (positive scores only)."""
        if self.bm25 is None:
            return []
        terms = query_terms(self.bm25, tokenize(text))
        if not terms:
            return []
        scores = self.bm25.get_scores(terms)
        best = np.argsort(-scores)[:k]
        return [Neighbor(float(scores[i]), self.sources[i], self.targets[i]) for i in best if scores[i] > 0]


def query_terms(bm25: bm25s.BM25, tokens: list[str]) -> list[str]:
    """The distinct query tokens known to the index, the rarest (fewest documents, then
    alphabetical) ``MAX_QUERY_TERMS``."""
    ids, starts = bm25.vocab_dict, bm25.scores["indptr"]  # a token's documents: starts[id] .. starts[id + 1]
    known = {t for t in tokens if t in ids}
    return sorted(known, key=lambda t: (int(starts[ids[t] + 1] - starts[ids[t]]), t))[:MAX_QUERY_TERMS]


def _pair(row: dict) -> tuple[str, str]:
    """(source, target) of a training row: ``src``/``tgt``, or ``topics``/``poem`` for topic corpora."""
    src = row.get("src", " ".join(row.get("topics", [])))
    return str(src), str(row.get("tgt", row.get("poem", "")))


def build_index(path: Path, max_docs: int = MAX_DOCS, seconds: float = BUILD_SECONDS,
                progress: Optional[Callable[[float, str], None]] = None) -> CorpusIndex:
    """Read ``src``/``tgt`` rows of a ``.jsonl`` or ``.jsonl.gz`` file and index them; ``progress``
    (fraction done, what is happening) is called every 2,000 rows and before the index is built."""
    start = time.perf_counter()
    docs, sources, targets, notice = [], [], [], ""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if len(docs) >= max_docs or time.perf_counter() - start > seconds:
                notice = f"index limited to the first {len(docs):,} training pairs"
                break
            row = json.loads(line)
            src, tgt = _pair(row)
            tokens = [sys.intern(t) for t in (tokenize(tgt) + tokenize(src))[:MAX_DOC_TOKENS]]  # one str per word
            if tokens:
                if progress is not None and len(docs) % 2000 == 0:
                    progress(0.8 * len(docs) / max_docs, f"reading training pairs for the index ({len(docs):,})")
                docs.append(tokens)
                sources.append(src[:SHOWN_SOURCE_CHARS] + ("…" if len(src) > SHOWN_SOURCE_CHARS else ""))
                targets.append(tgt)
    if progress is not None:
        progress(0.8, f"building the BM25 index over {len(docs):,} training pairs")
    bm25 = None
    if docs:
        bm25 = bm25s.BM25(k1=1.5, b=0.75, method="robertson")
        bm25.index(docs, show_progress=False)
    return CorpusIndex(path, bm25, sources, targets, notice or ("" if bm25 else "the training file has no rows"))


class NeighborIndex:
    """Indexes built on first use, one per corpus path, the ``kept`` most recently used kept (the
    others freed); concurrent first requests build once."""

    def __init__(self, kept: int = KEPT_INDEXES) -> None:
        self._indexes: dict[Path, CorpusIndex] = {}  # least recently used first
        self._lock = threading.Lock()
        self.kept = max(1, int(kept))

    def __len__(self) -> int:
        return len(self._indexes)

    def get(self, path: Path, progress: Optional[Callable[[float, str], None]] = None) -> CorpusIndex:
        """The index of ``path``, building it if needed (FileNotFoundError if the file is missing);
        ``progress`` follows a build (see :func:`build_index`)."""
        path = Path(path).resolve()
        with self._lock:
            if path not in self._indexes:
                if not path.is_file():
                    raise FileNotFoundError(f"training data {path.name} is not available on this server")
                while len(self._indexes) >= self.kept:
                    self._indexes.pop(next(iter(self._indexes)))
                self._indexes[path] = build_index(path, progress=progress)
                from .service import release_memory

                gc.collect()
                release_memory()  # hand a freed index and the build's token lists back to the system
            self._indexes[path] = self._indexes.pop(path)  # now the most recently used
            return self._indexes[path]
