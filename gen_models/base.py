"""What every GenScope word/character-level model shares: vocabulary, embedding, protocol basics."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .protocol import expected_embedding
from .text import detokenize, tokenize
from .vocab import Vocab


class VocabModel(nn.Module):
    """Base of the RNN generators: holds config, vocabulary and the token embedding table.

    Ids ``0..V-1`` are vocabulary tokens; ids from ``V`` on are this source's OOV words (copy models).
    """

    model_type = "base"
    config_class: type = object
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

    def embed_previous(self, ids: torch.Tensor, distribution: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The decoder's input (B, E): the embedding of the previous tokens ``ids`` (B,), or, under
        the "feed the distribution" intervention, the expected embedding of ``distribution`` (B, V_ext)."""
        if distribution is None:
            return self.embedding(ids)
        return expected_embedding(distribution, self.embedding.weight, self.unk_id)

    @property
    def device(self) -> torch.device:
        """Where the weights are (see :mod:`gen_models.device`)."""
        return self.embedding.weight.device

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """Text of an extended id."""
        if token_id < self.vocab_size:
            return self.vocab.itos[token_id]
        return oov_words[token_id - self.vocab_size]

    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """Vocabulary id of ``token``, else its extended id if it is one of this source's OOV words
        (copy models), else None."""
        if token in self.vocab.stoi:
            return self.vocab.stoi[token]
        return self.vocab_size + oov_words.index(token) if token in oov_words else None

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference output tokenised as the model's targets: copyable OOV words get their extended
        id, other unknown words ``<unk>``."""
        ids = [self.token_to_id(t, oov_words) for t in tokenize(text, self.config.lowercase)]
        return [self.vocab.unk_id if i is None else i for i in ids]

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """Tokens joined with GenScope's detokeniser."""
        return detokenize([self.id_to_token(i, oov_words) for i in token_ids])

    def teacher_targets(self, targets: list[list[str]], oov_lists: list[list[str]]):
        """Decoder inputs ``<s> y`` (in-vocabulary ids) and targets ``y </s>`` (extended ids: a
        target word that is one of the source's OOV words gets its copy id), both (B, T)."""
        vocab = self.vocab
        T = max(len(tgt) for tgt in targets) + 1
        dec_in = torch.full((len(targets), T), vocab.pad_id)
        target = torch.full((len(targets), T), vocab.pad_id)
        for b, (tgt, oovs) in enumerate(zip(targets, oov_lists)):
            tgt_ids = [vocab.id(t) for t in tgt]
            tgt_ext = [self.vocab_size + oovs.index(t) if i == vocab.unk_id and t in oovs else i
                       for t, i in zip(tgt, tgt_ids)]
            dec_in[b, : len(tgt_ids) + 1] = torch.tensor([vocab.bos_id] + tgt_ids)
            target[b, : len(tgt_ext) + 1] = torch.tensor(tgt_ext + [vocab.eos_id])
        return dec_in, target

    def fit_corpus(self, data_dir: Path) -> None:
        """Learn what the model keeps besides its weights from a prepared corpus folder (e.g. a PMI
        keyword table), before training; most models keep nothing."""

    def config_dict(self) -> dict:
        """Constructor arguments for config.json."""
        return asdict(self.config)
