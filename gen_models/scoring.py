"""Small pluggable scoring rules for decoding.

Two kinds of callables:

- *logits processors* ``(log_probs (B, V), history list[list[int]], step) -> log_probs (B, V)``
  change a step's distribution before selection (n-gram blocking, repetition penalties, minimum
  length, banned and forced tokens, temperature, top-k, top-p). A banned token gets ``-inf``.
  ``history`` holds, per hypothesis, every token the decoder has read: its context (a decoder-only
  model's prompt, or the start token) and then the tokens generated so far — what
  ``transformers``' processors see as ``input_ids``. Each has a ``label`` naming it and its
  setting (the trace's :class:`~gen_models.trace.ProcessorStages` keeps what each one did).
  :class:`HammingDiversity` is built afresh for each beam group at each step (it holds the tokens
  the groups before it chose at that step).
- *hypothesis scorers* ``(scores (B, V), length, coverage (B, S) | None) -> adjusted (B, V)`` turn
  cumulative log-probabilities into the scores beam search ranks by (GNMT length and coverage
  penalties, Wu et al. 2016).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

LogitsProcessor = Callable[[torch.Tensor, list, int], torch.Tensor]
HypothesisScorer = Callable[[torch.Tensor, int, Optional[torch.Tensor]], torch.Tensor]
NEG_INF = float("-inf")


@dataclass
class MinLength:
    """Forbid end-of-sequence before ``min_len`` tokens have been produced."""

    min_len: int
    eos_id: int

    @property
    def label(self) -> str:
        return f"min length {self.min_len}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        if step < self.min_len:
            log_probs = log_probs.clone()
            log_probs[:, self.eos_id] = NEG_INF
        return log_probs


@dataclass
class NoRepeatNGram:
    """Forbid any token that would repeat an n-gram already in the hypothesis."""

    n: int

    @property
    def label(self) -> str:
        return f"no repeated {self.n}-gram"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        banned = [(row, tok) for row, hyp in enumerate(history) for tok in self.banned_tokens(hyp)]
        if not banned:
            return log_probs
        log_probs = log_probs.clone()
        rows, toks = zip(*banned)
        log_probs[list(rows), list(toks)] = NEG_INF
        return log_probs

    def banned_tokens(self, hyp: Sequence[int]) -> set[int]:
        """Tokens that would complete an n-gram already present in ``hyp``."""
        if self.n <= 0 or len(hyp) < self.n - 1:
            return set()
        if self.n == 1:
            return set(hyp)
        prefix = tuple(hyp[len(hyp) - self.n + 1 :])
        return {
            hyp[i + self.n - 1]
            for i in range(len(hyp) - self.n + 1)
            if tuple(hyp[i : i + self.n - 1]) == prefix
        }


@dataclass
class RepetitionPenalty:
    """Keskar et al. (2019) as ``generate``'s ``repetition_penalty``: each token already in the
    history has its log-probability multiplied by ``penalty`` (divided where it is positive), so
    ``penalty`` > 1 makes repeats less likely. On log-probabilities, as ``generate``'s beam search
    applies it (its greedy and sampling apply it to raw logits, whose sign varies)."""

    penalty: float

    @property
    def label(self) -> str:
        return f"repetition penalty {self.penalty:g}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        if not history or not history[0]:
            return log_probs
        ids = torch.tensor(history, device=log_probs.device)  # (B, T)
        return _penalise(log_probs, ids, self.penalty)


@dataclass
class EncoderRepetitionPenalty:
    """``generate``'s ``encoder_repetition_penalty``: the inverse penalty on the source's tokens
    (``source_ids`` (S,)), so ``penalty`` > 1 makes copying the input more likely."""

    penalty: float
    source_ids: torch.Tensor  # (S,)

    @property
    def label(self) -> str:
        return f"source repetition reward {self.penalty:g}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        ids = self.source_ids.to(log_probs.device)[None].expand(log_probs.size(0), -1)  # (B, S)
        return _penalise(log_probs, ids, 1.0 / self.penalty)


def _penalise(log_probs: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """``log_probs`` (B, V) with the entries at ``ids`` (B, T) multiplied by ``penalty`` where
    negative and divided by it where positive."""
    values = log_probs.gather(1, ids)  # (B, T)
    return log_probs.scatter(1, ids, torch.where(values < 0, values * penalty, values / penalty))


@dataclass(frozen=True)
class HammingDiversity:
    """Diverse beam search's Hamming diversity (Vijayakumar et al. 2016; ``generate``'s
    ``diversity_penalty``): each token loses ``penalty`` × the number of times the groups before
    this one chose it for their live hypotheses at this step (``earlier_tokens``)."""

    penalty: float
    earlier_tokens: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"diversity penalty {self.penalty:g}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        if not self.earlier_tokens:
            return log_probs
        ids = torch.tensor(self.earlier_tokens, device=log_probs.device)  # (N,)
        counts = torch.bincount(ids, minlength=log_probs.size(1)).to(log_probs.dtype)  # (V,)
        return log_probs - self.penalty * counts


@dataclass
class BanTokens:
    """Never produce these tokens (e.g. ``<unk>``: a copy model then copies or picks a real word)."""

    token_ids: Sequence[int]

    @property
    def label(self) -> str:
        return "banned tokens"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        log_probs = log_probs.clone()
        log_probs[:, list(self.token_ids)] = NEG_INF
        return log_probs


@dataclass
class ForcedPrefix:
    """Force the first ``len(token_ids)`` tokens (an intervention: "take this token here")."""

    token_ids: Sequence[int]

    @property
    def label(self) -> str:
        return "forced prefix"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        if step >= len(self.token_ids):
            return log_probs
        forced = torch.full_like(log_probs, NEG_INF)
        tok = self.token_ids[step]
        forced[:, tok] = log_probs[:, tok]
        return forced


@dataclass
class Temperature:
    """Divide log-probabilities by ``temperature`` and renormalise."""

    temperature: float

    @property
    def label(self) -> str:
        return f"temperature {self.temperature:g}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        return torch.log_softmax(log_probs / self.temperature, dim=-1)


@dataclass
class TopK:
    """Keep only the ``k`` most likely tokens."""

    k: int

    @property
    def label(self) -> str:
        return f"top-k {self.k}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        k = min(self.k, log_probs.size(-1))
        kth = torch.topk(log_probs, k, dim=-1).values[:, -1:]  # (B, 1)
        return log_probs.masked_fill(log_probs < kth, NEG_INF)


@dataclass
class TopP:
    """Keep the smallest set of most likely tokens whose probability reaches ``p`` (nucleus), that
    probability renormalised over the tokens still possible (after top-k, or a repetition penalty,
    the scores no longer sum to one), as ``generate``'s top-p does."""

    p: float

    @property
    def label(self) -> str:
        return f"top-p {self.p:g}"

    def __call__(self, log_probs: torch.Tensor, history: list, step: int) -> torch.Tensor:
        sorted_lp, order = torch.sort(log_probs, dim=-1, descending=True)  # (B, V)
        probs = sorted_lp.softmax(dim=-1)  # (B, V)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # (B, V)
        drop_sorted = mass_before >= self.p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        return log_probs.masked_fill(drop, NEG_INF)


@dataclass
class GNMTScorer:
    """Wu et al. (2016): score / lp(Y) + cp(X; Y).

    lp(Y) = ((5 + |Y|) / 6) ** alpha;  cp = beta · Σ_i log(min(Σ_j a_ij, 1)).
    With ``alpha == beta == 0`` the score is the plain cumulative log-probability.
    """

    alpha: float = 0.0
    beta: float = 0.0

    def __call__(self, scores: torch.Tensor, length: int, coverage: Optional[torch.Tensor]) -> torch.Tensor:
        adjusted = scores / self.length_penalty(length) if self.alpha else scores
        if self.beta and coverage is not None:
            penalty = coverage.clamp(min=1e-6, max=1.0).log().sum(-1, keepdim=True)  # (B, 1)
            adjusted = adjusted + self.beta * penalty
        return adjusted

    def length_penalty(self, length: int) -> float:
        """GNMT's lp(Y) for a hypothesis of ``length`` tokens."""
        return math.pow((5.0 + length) / 6.0, self.alpha)


@dataclass
class FinishedLengthNorm:
    """``generate``'s length penalty: a finished hypothesis scores its cumulative log-probability
    divided by ``length ** alpha`` (tokens generated, the end token included); running hypotheses
    are ranked by the plain score. GNMT's (:class:`GNMTScorer`) instead ranks every hypothesis by
    score / ((5 + |Y|) / 6) ** alpha."""

    alpha: float

    def __call__(self, score: float, length: int) -> float:
        return score / math.pow(length, self.alpha)


def processor_stages(
    processors: Sequence[LogitsProcessor], log_probs: torch.Tensor, history: list, step: int
) -> list[torch.Tensor]:
    """The scores after each of ``processors`` in turn, each (B, V) like ``log_probs``; the last is
    what selection ranks by (none: the scores are ``log_probs`` as they are)."""
    stages = []
    for processor in processors:
        log_probs = processor(log_probs, history, step)
        stages.append(log_probs)
    return stages


def apply_processors(
    processors: Sequence[LogitsProcessor], log_probs: torch.Tensor, history: list, step: int
) -> torch.Tensor:
    """Run ``processors`` in order: the last of :func:`processor_stages`."""
    stages = processor_stages(processors, log_probs, history, step)
    return stages[-1] if stages else log_probs
