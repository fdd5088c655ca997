"""Sequence-to-sequence with additive (Bahdanau) attention, optionally with coverage.

Encoder: embedding -> bidirectional LSTM, final states reduced to the decoder size.
Decoder step t (See et al. 2017's ordering, which the pointer-generator inherits):

    x_t   = W_x [emb(y_{t-1}); h*_{t-1}]                  input feeding
    s_t   = LSTM(x_t, s_{t-1})
    e_ti  = v · tanh(W_h h_i + W_s s_t + w_c c_ti + b)     attention from the *new* state s_t
    a_t   = softmax(e_t) over non-pad positions
    h*_t  = Σ_i a_ti h_i
    P_vocab = softmax(V' (V [s_t; h*_t] + b) + b')

Coverage (Tu et al. 2016; See et al. 2017): c_t = Σ_{t'<t} a_t' (zeros at t = 0, in training and
decoding alike) feeds the attention score, and the coverage loss is Σ_i min(a_ti, c_ti).

Training options of :meth:`Seq2SeqAttention.forward` (``training/train.py`` sets them):
scheduled sampling (Bengio et al. 2015) feeds, per token, the model's own sampled previous output
instead of the reference one with probability 1 − ``teacher_forcing``; doubly stochastic attention
(Xu et al. 2015) reports Σ_i (τ − Σ_t a_ti)² per target token as ``attention_reg``. A ``copy_only``
model has a ``generable`` mask over its vocabulary: masked words get no generation probability and
can only be copied from the source (a pointer-generator trained to copy rare names). A
``rare_source_unk`` model has a ``source_known`` mask: the encoder embeds the unmasked words as
``<unk>``, so a name seen too rarely to learn its embedding reads like any unknown word, which the
pointer copies, rather than as a noisy embedding that it mistranslates.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..base import VocabModel
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput
from ..text import cased_forms, tokenize
from ..vocab import Vocab

EPS = 1e-12


@dataclass
class Seq2SeqConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    vocab_size: int
    emb_dim: int = 128
    hidden_dim: int = 256
    coverage: bool = False
    max_source_len: int = 400
    lowercase: bool = True
    copy_only: bool = False
    rare_source_unk: bool = False
    default_length_penalty: float = 0.0  # the checkpoint's own decoding default: GNMT length penalty α


@dataclass
class DecoderState:
    """Decoder state of B hypotheses over one (or B) encoded sources.

    Encoder tensors keep a leading dim of 1 at decode time and broadcast over hypotheses.
    """

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    context: torch.Tensor  # (B, 2H)
    coverage: torch.Tensor  # (B, S)
    enc_out: torch.Tensor  # (B|1, S, 2H)
    enc_feat: torch.Tensor  # (B|1, S, 2H) W_h h_i, precomputed
    mask: torch.Tensor  # (B|1, S) True on real tokens
    src_ext: torch.Tensor  # (B|1, S) extended ids
    n_oov: int = 0


class Seq2SeqAttention(VocabModel):
    """Bahdanau-attention seq2seq; the pointer-generator subclass adds copying."""

    model_type = "seq2seq"
    config_class = Seq2SeqConfig
    copies = False

    def __init__(self, config: Seq2SeqConfig, vocab: Vocab, name: str = "seq2seq"):
        super().__init__(config, vocab, name)
        E, H = config.emb_dim, config.hidden_dim
        self.encoder = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.reduce_h = nn.Linear(2 * H, H)
        self.reduce_c = nn.Linear(2 * H, H)
        self.input_proj = nn.Linear(E + 2 * H, E)
        self.cell = nn.LSTMCell(E, H)
        self.attn_h = nn.Linear(2 * H, 2 * H, bias=False)
        self.attn_s = nn.Linear(H, 2 * H)
        self.attn_c = nn.Linear(1, 2 * H, bias=False)
        self.attn_v = nn.Linear(2 * H, 1, bias=False)
        self.out_hidden = nn.Linear(3 * H, H)
        self.out_vocab = nn.Linear(H, config.vocab_size)
        if config.copy_only:
            self.register_buffer("generable", torch.ones(config.vocab_size, dtype=torch.bool))  # (V,)
        if config.rare_source_unk:
            self.register_buffer("source_known", torch.ones(config.vocab_size, dtype=torch.bool))  # (V,)

    # -- stepper protocol -------------------------------------------------------------------
    @property
    def max_source_len(self) -> int:
        return self.config.max_source_len

    @property
    def features(self) -> ModelFeatures:
        """Copies (pointer-generator subclass) and coverage as configured; a configured
        ``default_length_penalty`` is the model's own default decoding."""
        alpha = self.config.default_length_penalty
        return ModelFeatures(copies=self.copies, coverage=self.config.coverage, soft_inputs=True,
                             settings=(("length_penalty", alpha),) if alpha else ())

    def source_ids(self, tokens: list[str]) -> tuple[list[int], list[str]]:
        """Ids of source tokens and the source's OOV words (none: this model cannot copy)."""
        return [self.vocab.id(t) for t in tokens], []

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Tokenise and encode one source for decoding (ValueError if it has no tokens)."""
        tokens = tokenize(text, self.config.lowercase)
        if not tokens:
            raise ValueError("the input has no tokens")
        truncated = len(tokens) > self.max_source_len
        tokens = tokens[: self.max_source_len]
        ids, oovs = self.source_ids(tokens)
        encoded = Encoded(tokens, torch.tensor(ids, device=self.device), oovs, None, list(topics or []), truncated)
        read = self.source_embedding_ids(encoded.source_ids).cpu().numpy()  # (S,)
        encoded.extra["read_as_unknown"] = np.flatnonzero(read == self.vocab.unk_id).astype(np.float64)  # as from JSON
        if self.config.lowercase:
            encoded.extra["cased_forms"] = cased_forms(text)
        self.condition(encoded, topics)
        encoded.state = self.encode_scaled(encoded, torch.ones(1, len(ids), device=self.device))
        return encoded

    def condition(self, encoded: Encoded, topics: Optional[list[str]]) -> None:
        """Per-source choices made before encoding (keyword models choose their keyword); none here."""

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> DecoderState:
        """The decoder state of B copies of ``encoded``'s source, each token's embedding multiplied by
        ``scale`` (B, S) (ones: the source as it is); differentiable, for attribution."""
        src_ext = encoded.source_ids.unsqueeze(0).expand(scale.size(0), -1)  # (B, S)
        return self.initial_state(src_ext, torch.ones_like(src_ext, dtype=torch.bool), len(encoded.oov_words), scale)

    def step(self, state: DecoderState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One decoding step for B hypotheses (prev_ids (B,) extended ids)."""
        if controls.reset_coverage:
            state = replace(state, coverage=torch.zeros_like(state.coverage))
        log_probs, new_state, internals = self.decode_step(state, prev_ids, controls.p_gen,
                                                           controls.input_distribution)
        return StepOutput(log_probs, new_state, internals)

    def reorder(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Keep hypotheses ``index`` (B',)."""
        return replace(state, h=state.h[index], c=state.c[index], context=state.context[index],
                       coverage=state.coverage[index])

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def new_config(cls, vocab_size: int, examples: list, **options) -> Seq2SeqConfig:
        """The config of a fresh model for ``examples`` (options: emb_dim, hidden_dim, coverage,
        max_source_len, lowercase)."""
        return Seq2SeqConfig(vocab_size, **options)

    def training_batch(self, examples: list) -> dict:
        """Padded tensors for :meth:`forward` from examples with ``src``/``tgt`` token lists."""
        srcs, oov_lists = zip(*(self.source_ids(ex.src) for ex in examples))
        src_ext = torch.full((len(examples), max(len(s) for s in srcs)), self.vocab.pad_id)
        for b, ids in enumerate(srcs):
            src_ext[b, : len(ids)] = torch.tensor(ids)
        dec_in, target = self.teacher_targets([ex.tgt for ex in examples], list(oov_lists))
        return {"src_ext": src_ext, "src_mask": src_ext != self.vocab.pad_id,
                "n_oov": max(len(o) for o in oov_lists), "dec_in": dec_in, "target_ext": target,
                "target_mask": target != self.vocab.pad_id}

    # -- shared by training and decoding ------------------------------------------------------
    def initial_state(self, src_ext: torch.Tensor, mask: torch.Tensor, n_oov: int,
                      scale: Optional[torch.Tensor] = None) -> DecoderState:
        """Encode a padded batch (B, S) of extended ids; ``mask`` (B, S) marks real tokens; ``scale``
        (B, S) multiplies each token's embedding."""
        ids = self.source_embedding_ids(src_ext)  # (B, S)
        lengths = mask.sum(1).cpu()
        embedded = self.embedding(ids) if scale is None else self.embedding(ids) * scale.unsqueeze(-1)  # (B, S, E)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, (h, c) = self.encoder(packed)
        enc_out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.size(1))
        h = torch.relu(self.reduce_h(torch.cat([h[0], h[1]], dim=-1)))  # (B, H)
        c = torch.relu(self.reduce_c(torch.cat([c[0], c[1]], dim=-1)))  # (B, H)
        B, S = ids.shape
        return DecoderState(h, c, enc_out.new_zeros(B, enc_out.size(2)), enc_out.new_zeros(B, S),
                            enc_out, self.attn_h(enc_out), mask, src_ext, n_oov)

    def start_state(self, src_ext: torch.Tensor, mask: torch.Tensor, n_oov: int, **conditioning) -> DecoderState:
        """The training batch's first decoder state (subclasses add their conditioning)."""
        return self.initial_state(src_ext, mask, n_oov)

    def in_vocab(self, ids: torch.Tensor) -> torch.Tensor:
        """Map extended ids (copied OOVs) to UNK for embedding lookup."""
        return ids.masked_fill(ids >= self.vocab_size, self.vocab.unk_id)

    def source_embedding_ids(self, src_ext: torch.Tensor) -> torch.Tensor:
        """The ids (B, S) the encoder embeds: copied OOVs and, in a ``rare_source_unk`` model, the words
        it does not know as a source become UNK."""
        ids = self.in_vocab(src_ext)  # (B, S)
        if self.config.rare_source_unk:
            ids = ids.masked_fill(~self.source_known[ids], self.vocab.unk_id)
        return ids

    def attend(self, s: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Attention (B, S) from decoder state s (B, H); padding masked before normalising."""
        feat = state.enc_feat + self.attn_s(s).unsqueeze(1)  # (B, S, 2H)
        if self.config.coverage:
            feat = feat + self.attn_c(state.coverage.unsqueeze(-1))  # (B, S, 2H)
        scores = self.attn_v(torch.tanh(feat)).squeeze(-1)  # (B, S)
        scores = scores.masked_fill(~state.mask, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def decode_step(self, state: DecoderState, prev_ids: torch.Tensor, force_p_gen: Optional[float] = None,
                    distribution: Optional[torch.Tensor] = None):
        """(log_probs (B, V_ext), new state, internals) for one step (``distribution`` (B, V_ext):
        read instead of ``prev_ids``, see :meth:`embed_previous`)."""
        emb = self.embed_previous(self.in_vocab(prev_ids), distribution)  # (B, E)
        x = self.input_proj(torch.cat([emb, state.context], -1))  # (B, E)
        h, c, recurrence = self.recur(x, state)  # (B, H)
        attention = self.attend(h, state)  # (B, S)
        context = torch.bmm(attention.unsqueeze(1), state.enc_out.expand(h.size(0), -1, -1)).squeeze(1)  # (B, 2H)
        vocab_logits = self.out_vocab(self.out_hidden(torch.cat([h, context], -1)))  # (B, V)
        if self.config.copy_only:
            vocab_logits = vocab_logits.masked_fill(~self.generable, float("-inf"))  # (B, V)
        log_probs, internals = self.output_distribution(vocab_logits, attention, state, x, h, context,
                                                        force_p_gen)
        internals["attention"] = attention
        internals.update(recurrence)
        if self.config.coverage:
            internals["coverage"] = state.coverage
        new_state = replace(state, h=h, c=c, context=context, coverage=state.coverage + attention)
        return log_probs, new_state, internals

    def recur(self, x: torch.Tensor, state: DecoderState):
        """The decoder's new (h, c) from input x (B, E), and any internals of the recurrence."""
        h, c = self.cell(x, (state.h, state.c))  # (B, H)
        return h, c, {}

    def output_distribution(self, vocab_logits, attention, state, x, h, context, force_p_gen):
        """Log-probabilities over the vocabulary (no copying in the plain model)."""
        return torch.log_softmax(vocab_logits, dim=-1), {}

    def forward(self, src_ext, src_mask, n_oov, dec_in, target_ext, target_mask, teacher_forcing: float = 1.0,
                attention_target: float = 1.0, **conditioning):
        """Teacher-forced losses for a batch: dict of scalar ``nll``, ``coverage``, ``attention_reg``
        (all per target token) and ``p_gen``.

        src_ext/src_mask (B, S); dec_in/target_ext/target_mask (B, T); ``teacher_forcing``: the
        probability that a step reads the reference token rather than one sampled from the model's
        previous distribution; ``attention_target``: τ of the attention regulariser;
        ``conditioning``: what a subclass's :meth:`start_state` takes besides the source.
        """
        state = self.start_state(src_ext, src_mask, n_oov, **conditioning)
        nll, cov_loss, p_gen_sum = [], [], []
        mask = target_mask.float()  # (B, T)
        attention_total = torch.zeros_like(src_ext, dtype=mask.dtype)  # (B, S)
        log_probs = None  # (B, V_ext) of the previous step
        for t in range(dec_in.size(1)):
            prev = dec_in[:, t]  # (B,)
            if log_probs is not None and teacher_forcing < 1.0:
                prev = self.scheduled_input(prev, log_probs, teacher_forcing)
            coverage_before = state.coverage
            log_probs, state, internals = self.decode_step(state, prev)
            nll.append(-log_probs.gather(1, target_ext[:, t : t + 1]).squeeze(1))  # (B,)
            cov_loss.append(torch.minimum(internals["attention"], coverage_before).sum(-1))  # (B,)
            attention_total = attention_total + internals["attention"] * mask[:, t : t + 1]  # (B, S)
            if "p_gen" in internals:
                p_gen_sum.append(internals["p_gen"])
        tokens = mask.sum()
        imbalance = ((attention_target - attention_total) ** 2 * src_mask).sum()
        losses = {
            "nll": (torch.stack(nll, 1) * mask).sum() / tokens,
            "coverage": (torch.stack(cov_loss, 1) * mask).sum() / tokens,
            "attention_reg": imbalance / tokens,
        }
        if p_gen_sum:
            losses["p_gen"] = (torch.stack(p_gen_sum, 1) * mask).sum() / tokens
        return losses

    def scheduled_input(self, reference: torch.Tensor, log_probs: torch.Tensor, teacher_forcing: float):
        """Scheduled sampling's decoder input (B,): per token, the reference id with probability
        ``teacher_forcing``, else an id sampled from the previous step's distribution (B, V_ext)."""
        sampled = torch.multinomial(log_probs.detach().exp(), 1).squeeze(1)  # (B,)
        coin = torch.rand(reference.shape, device=reference.device) < teacher_forcing  # (B,)
        return torch.where(coin, reference, sampled)
