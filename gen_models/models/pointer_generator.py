"""Pointer-generator network (See et al. 2017), with optional coverage.

On top of :class:`Seq2SeqAttention`, each step mixes generating and copying:

    p_gen = σ(w_h · h*_t + w_s · s_t + w_x · x_t + b)
    P(w)  = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i: w_i = w} a_ti

over the *extended* vocabulary: source words outside the fixed vocabulary get temporary ids
V, V+1, … (in order of first appearance), so they can be produced by copying. Decoder inputs
map those ids back to UNK. Log-probabilities are taken of the mixture plus a tiny epsilon, so a
saturated p_gen or a gold id with zero mass gives a large finite loss, never NaN.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..vocab import Vocab
from .seq2seq import EPS, DecoderState, Seq2SeqAttention, Seq2SeqConfig


class PointerGenerator(Seq2SeqAttention):
    """Seq2seq + copy switch p_gen over the extended vocabulary."""

    model_type = "pointer_generator"
    copies = True

    def __init__(self, config: Seq2SeqConfig, vocab: Vocab, name: str = "pointer_generator"):
        super().__init__(config, vocab, name)
        H, E = config.hidden_dim, config.emb_dim
        self.p_gen_linear = nn.Linear(2 * H + H + E, 1)

    def source_ids(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        """Extended ids: in-vocabulary ids, and V + k for the k-th distinct OOV word."""
        oovs: list[str] = []
        ids = []
        for tok in tokens:
            tid = self.vocab.stoi.get(tok)
            if tid is None:
                if tok not in oovs:
                    oovs.append(tok)
                tid = self.vocab_size + oovs.index(tok)
            ids.append(tid)
        return ids, oovs

    def output_distribution(self, vocab_logits, attention, state: DecoderState, x, h, context,
                            force_p_gen: Optional[float]):
        """log(p_gen·P_vocab + (1−p_gen)·copy) over the extended vocabulary, and its two parts."""
        p_gen = torch.sigmoid(self.p_gen_linear(torch.cat([context, h, x], -1)))  # (B, 1)
        if force_p_gen is not None:
            p_gen = torch.full_like(p_gen, force_p_gen)
        B = vocab_logits.size(0)
        generate = p_gen * torch.softmax(vocab_logits, dim=-1)  # (B, V)
        generate = torch.cat([generate, generate.new_zeros(B, state.n_oov)], -1)  # (B, V_ext)
        src = state.src_ext.expand(B, -1)  # (B, S)
        copy = torch.zeros_like(generate).scatter_add(1, src, (1 - p_gen) * attention)  # (B, V_ext)
        log_probs = torch.log(generate + copy + EPS)  # (B, V_ext)
        internals = {"p_gen": p_gen.squeeze(1), "generate_probs": generate, "copy_probs": copy}
        return log_probs, internals
