"""Seq2BF: a reply generated backward from a keyword to its start, then forward to its end
(Mou et al. 2016) — the keyword is a hard constraint: every reply contains it.

Two Bahdanau seq2seq decoders read the same query (each with its own encoder, as in the paper's two
seq2seq models). For a reply w_1 … w_n split at the keyword w_k:

    backward decoder:  <s> → w_k, w_{k-1}, …, w_1, </s>         (its own step 0 predicts w_k)
    forward decoder:   <s> w_1 … w_k (given) → w_{k+1}, …, w_n, </s>

Decoding runs through the generic search as one sequence in *generation order*:
``w_k  w_{k-1} … w_1  <s>  w_{k+1} … w_n  </s>``. Step 0 is forced to the keyword; in the backward
half the backward decoder's end probability is moved to ``<s>`` (reply start reached); at ``<s>`` the
forward decoder reads the reply so far in reading order and continues. Each step records which half
it belongs to (``Step.extra["half"]``: 0 backward, 1 forward) and the output text is the reply in
*reading order* (:meth:`reading_order`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput
from ..scoring import NEG_INF
from ..text import detokenize
from ..vocab import Vocab
from .keyword_reply import KeywordConfig, KeywordReplyModel
from .seq2seq import DecoderState, Seq2SeqAttention

BACKWARD, FORWARD = 0, 1


@dataclass
class SplitState:
    """B hypotheses: both decoders' states, the tokens emitted so far (B, t) and each one's half."""

    backward: DecoderState
    forward: DecoderState
    forward_start: DecoderState  # the forward decoder's state before <s>, for one hypothesis
    emitted: torch.Tensor  # (B, t)
    half: torch.Tensor  # (B,) BACKWARD or FORWARD
    keyword: int
    started: bool = False


class Seq2BF(KeywordReplyModel):
    """Backward/forward seq2seq around a keyword; this module is the backward model."""

    model_type = "seq2bf"
    features = ModelFeatures(soft_inputs=True, architecture="backward + forward seq2seq (Seq2BF)", keywords=True,
                             task="reply to a chat message that contains a keyword (hard constraint)",
                             settings=(("ban_unk", True),
                                       ("no_repeat_ngram", 2)))  # without it: "oh cool!!!!!…", "i like cooking, cooking"

    def __init__(self, config: KeywordConfig, vocab: Vocab, name: str = "seq2bf"):
        super().__init__(config, vocab, name)
        self.forward_half = Seq2SeqAttention(config, vocab, name=f"{name}-forward")

    # -- decoding -----------------------------------------------------------------------------
    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> SplitState:
        """Both decoders' states for B copies of the query (embeddings scaled by ``scale`` (B, S))."""
        B = scale.size(0)
        start = self.forward_half.encode_scaled(encoded, scale)
        return SplitState(super().encode_scaled(encoded, scale), start, start,
                          torch.zeros(B, 0, dtype=torch.long, device=scale.device),
                          torch.full((B,), BACKWARD, device=scale.device),
                          self.vocab.stoi[encoded.extra["keyword"]])

    def step(self, state: SplitState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """Both decoders advance; each hypothesis takes the one of its half. (B,) prev_ids."""
        emitted = torch.cat([state.emitted, prev_ids.unsqueeze(1)], 1) if state.started else state.emitted
        switching = (state.half == BACKWARD) & (prev_ids == self.bos_id) & bool(state.started)  # (B,)
        half = torch.where(switching, FORWARD, state.half)  # (B,)
        soft = controls.input_distribution  # (B, V) or None: both halves read the same input
        back_lp, back_state, back_internals = self.decode_step(state.backward, prev_ids, distribution=soft)
        fwd_lp, fwd_state, fwd_internals = self.forward_half.decode_step(state.forward, prev_ids, distribution=soft)
        fwd_attention = fwd_internals["attention"]  # (B, S)
        for row in switching.nonzero().flatten().tolist():
            lp, row_state, internals = self.start_forward(state, emitted[row], row)
            fwd_lp, fwd_attention = _set_row(fwd_lp, row, lp), _set_row(fwd_attention, row, internals["attention"])
            fwd_state = replace(fwd_state, **{k: _set_row(getattr(fwd_state, k), row, getattr(row_state, k))
                                              for k in ("h", "c", "context", "coverage")})
        in_forward = (half == FORWARD).unsqueeze(1)  # (B, 1)
        back_lp = self.backward_log_probs(back_lp, first=not state.started, keyword=state.keyword)
        no_switch = torch.zeros_like(fwd_lp)
        no_switch[:, self.bos_id] = NEG_INF  # the forward half never returns to the start
        log_probs = torch.where(in_forward, fwd_lp + no_switch, back_lp)  # (B, V)
        attention = torch.where(in_forward, fwd_attention, back_internals["attention"])  # (B, S)
        new_state = SplitState(back_state, fwd_state, state.forward_start, emitted, half, state.keyword, True)
        return StepOutput(log_probs, new_state, {"attention": attention, "half": half.float()})

    def backward_log_probs(self, log_probs: torch.Tensor, first: bool, keyword: int) -> torch.Tensor:
        """Step 0: the keyword only. Later: the backward end (``</s>``) becomes ``<s>``, the switch."""
        if first:
            forced = torch.full_like(log_probs, NEG_INF)
            forced[:, keyword] = 0.0
            return forced
        switched = log_probs.clone()
        switched[:, self.bos_id] = log_probs[:, self.eos_id]
        switched[:, self.eos_id] = NEG_INF
        return switched

    def start_forward(self, state: SplitState, emitted: torch.Tensor, row: int):
        """The forward decoder run over ``<s>`` and the reply so far in reading order (hypothesis ``row``);
        returns the last step's (log_probs (1, V), state, internals)."""
        prefix = [self.bos_id] + self.reading_order(emitted[:-1].tolist())
        row_state = _one_source(state.forward_start, row)
        for token in prefix:
            log_probs, row_state, internals = self.forward_half.decode_step(
                row_state, torch.tensor([token], device=emitted.device))
        return log_probs, row_state, internals

    def reorder(self, state: SplitState, index: torch.Tensor) -> SplitState:
        return replace(state, backward=super().reorder(state.backward, index),
                       forward=self.forward_half.reorder(state.forward, index),
                       emitted=state.emitted[index], half=state.half[index])

    def reading_order(self, ids: list[int]) -> list[int]:
        """Generation order ``k b_1 … b_m [<s> f_1 …]`` → reading order ``b_m … b_1 k f_1 …``."""
        if not ids:
            return []
        keyword, rest = ids[0], ids[1:]
        cut = rest.index(self.bos_id) if self.bos_id in rest else len(rest)
        return rest[:cut][::-1] + [keyword] + rest[cut + 1:]

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """The reply in reading order."""
        return detokenize([self.id_to_token(i, oov_words) for i in self.reading_order(token_ids)])

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """Not defined: a reference would have to say which of its words is the keyword."""
        raise ValueError("Seq2BF generates around a keyword, so a plain reference cannot be scored "
                         "step by step; use chat-seq2seq or chat-hgfu for reference mode")

    # -- training -----------------------------------------------------------------------------
    def training_batch(self, examples: list) -> dict:
        """Both halves' teacher-forced tensors; each example's keyword (``topics[0]``) is in its target."""
        batch = super().training_batch(examples)
        backward = []
        for ex in examples:
            k = ex.tgt.index(ex.topics[0])
            backward.append([ex.tgt[k]] + ex.tgt[:k][::-1])
        dec_in, target = self.teacher_targets(backward, [[] for _ in examples])
        return {**batch, "back_in": dec_in, "back_target": target}

    def forward(self, src_ext, src_mask, n_oov, dec_in, target_ext, target_mask, back_in, back_target):
        """Mean of the two halves' per-token losses (forward over whole replies)."""
        back = super().forward(src_ext, src_mask, n_oov, back_in, back_target, back_target != self.vocab.pad_id)
        fwd = self.forward_half(src_ext, src_mask, n_oov, dec_in, target_ext, target_mask)
        return {name: (back[name] + fwd[name]) / 2 for name in back}


def _one_source(state: DecoderState, row: int) -> DecoderState:
    """The forward start of hypothesis ``row`` (sources with one row are shared by all hypotheses)."""
    values = {f.name: getattr(state, f.name) for f in fields(DecoderState)}
    return replace(state, **{name: value[row : row + 1] for name, value in values.items()
                             if isinstance(value, torch.Tensor) and value.size(0) > 1})


def _set_row(batch: torch.Tensor, row: int, value: torch.Tensor) -> torch.Tensor:
    """``batch`` with ``batch[row]`` replaced by ``value`` (1, …) (not in place)."""
    out = batch.clone()
    out[row] = value[0]
    return out
