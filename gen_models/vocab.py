"""A fixed word vocabulary with the four special tokens every GenScope RNN model uses."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """Token <-> id mapping; ids 0..3 are ``<pad> <unk> <s> </s>``."""

    def __init__(self, tokens: Iterable[str]):
        self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def id(self, token: str) -> int:
        """Id of ``token``, or the UNK id."""
        return self.stoi.get(token, self.unk_id)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], max_size: int, min_count: int = 2) -> "Vocab":
        """The ``max_size`` most frequent tokens (ties broken alphabetically) seen ``min_count`` times."""
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        ranked = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        return cls(ranked[: max_size - len(SPECIALS)])

    def save(self, path: Path) -> None:
        """One token per line (tokens never contain whitespace)."""
        Path(path).write_text("\n".join(self.itos) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        """Read a file written by :meth:`save`."""
        lines = Path(path).read_text(encoding="utf-8").split("\n")
        vocab = cls(lines[len(SPECIALS):-1] if lines[-1] == "" else lines[len(SPECIALS):])
        if vocab.itos[: len(SPECIALS)] != list(lines[: len(SPECIALS)]):
            raise ValueError(f"{path}: the first lines must be {SPECIALS}")
        return vocab
