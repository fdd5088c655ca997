"""What every GenScope word/character-level model shares: vocabulary, embedding, protocol basics."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from .text import detokenize
from .vocab import Vocab


class VocabModel(nn.Module):
    """Base of the RNN generators: holds config, vocabulary and the token embedding table.

    Ids ``0..V-1`` are vocabulary tokens; ids from ``V`` on are this source's OOV words (copy models).
    """

    model_type = "base"
    copies = False
    bos_id, eos_id, unk_id = Vocab.bos_id, Vocab.eos_id, Vocab.unk_id

    def __init__(self, config: Any, vocab: Vocab, name: str):
        super().__init__()
        if len(vocab) != config.vocab_size:
            raise ValueError(f"vocabulary has {len(vocab)} tokens, config says {config.vocab_size}")
        self.config, self.vocab, self.name = config, vocab, name
        self.embedding = nn.Embedding(config.vocab_size, config.emb_dim, padding_idx=vocab.pad_id)

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """Text of an extended id."""
        if token_id < self.vocab_size:
            return self.vocab.itos[token_id]
        return oov_words[token_id - self.vocab_size]

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """Tokens joined with GenScope's detokeniser."""
        return detokenize([self.id_to_token(i, oov_words) for i in token_ids])

    def config_dict(self) -> dict:
        """Constructor arguments for config.json."""
        return asdict(self.config)
