"""HGFU: a cue word fused into every decoder step by a gate (Yao et al. 2017), on Bahdanau seq2seq.

Two LSTM cells share the previous state (s, m) and the attention-fed input x_t (:mod:`.seq2seq`);
the cue-word cell also reads the keyword's embedding w:

    (h_y, m_y) = LSTM_y(x_t, (s_{t-1}, m_{t-1}))           the standard decoder
    (h_w, m_w) = LSTM_w([x_t; w], (s_{t-1}, m_{t-1}))      the cue-word decoder
    k_t = σ(W_k [h_y; h_w] + b_k)                           a *vector* gate, one value per dimension
    s_t = k_t ⊙ h_y + (1 − k_t) ⊙ h_w,   m_t = k_t ⊙ m_y + (1 − k_t) ⊙ m_w

k near 1 follows the query alone, near 0 the keyword. The gate is recorded at every step
(``Step.extra["gate"]``, (H,)). The keyword is a soft constraint: the reply need not contain it.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import nn

from ..protocol import Encoded, ModelFeatures
from ..vocab import Vocab
from .keyword_reply import KeywordConfig, KeywordReplyModel
from .seq2seq import DecoderState


@dataclass
class CueState(DecoderState):
    """A decoder state with the cue word's vocabulary id (B|1,)."""

    keyword: Optional[torch.Tensor] = None


class HGFU(KeywordReplyModel):
    """Hierarchical gated fusion unit: seq2seq with a gated cue-word decoder."""

    model_type = "hgfu"
    features = ModelFeatures(soft_inputs=True, architecture="seq2seq + cue-word GRU fusion (HGFU)", keywords=True,
                             task="reply to a chat message around a keyword (soft constraint)",
                             settings=(("ban_unk", True),
                                       ("no_repeat_ngram", 2)))  # without it: "oh cool!!!!!…", "i like cooking, cooking"

    def __init__(self, config: KeywordConfig, vocab: Vocab, name: str = "hgfu"):
        super().__init__(config, vocab, name)
        E, H = config.emb_dim, config.hidden_dim
        self.cue_cell = nn.LSTMCell(2 * E, H)
        self.fusion_gate = nn.Linear(2 * H, H)

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> CueState:
        return self.with_keyword(super().encode_scaled(encoded, scale),
                                 torch.tensor([self.vocab.stoi[encoded.extra["keyword"]]], device=scale.device))

    def training_batch(self, examples: list) -> dict:
        return {**super().training_batch(examples), "keyword_ids": self.keyword_ids(examples)}

    def start_state(self, src_ext, mask, n_oov, keyword_ids=None) -> CueState:
        return self.with_keyword(self.initial_state(src_ext, mask, n_oov), keyword_ids)

    @staticmethod
    def with_keyword(state: DecoderState, keyword: torch.Tensor) -> CueState:
        return CueState(**{f.name: getattr(state, f.name) for f in fields(DecoderState)}, keyword=keyword)

    def recur(self, x: torch.Tensor, state: CueState):
        """Both cells from the shared state, fused by the gate; the gate (B, H) is an internal."""
        h_y, c_y = self.cell(x, (state.h, state.c))  # (B, H)
        cue = self.embedding(state.keyword).expand(x.size(0), -1)  # (B, E)
        h_w, c_w = self.cue_cell(torch.cat([x, cue], -1), (state.h, state.c))  # (B, H)
        gate = torch.sigmoid(self.fusion_gate(torch.cat([h_y, h_w], -1)))  # (B, H)
        h = gate * h_y + (1 - gate) * h_w  # (B, H)
        c = gate * c_y + (1 - gate) * c_w  # (B, H)
        return h, c, {"gate": gate}
