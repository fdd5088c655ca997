"""Pointer network for the planar convex hull (Vinyals et al. 2015).

The output vocabulary *is* the input: each step's distribution is a softmax of additive attention
over the input points, plus one learned "end" slot.

    e_j   = LSTM_enc(W_in p_j)                              encoder over coordinates (optionally
                                                            bidirectional, projected back to H)
    d_t   = LSTMCell(W_in p_{y_{t-1}}, d_{t-1})              fed the previously chosen point
    u_tj  = v · tanh(W_1 e_j + W_2 d_t)                      j ∈ {end, 1..n}
    P(y_t = j) = softmax_j(u_tj), chosen points masked

Conventions: the target is the hull (``scipy.spatial.ConvexHull``; collinear points excluded) in
counter-clockwise order starting from its lowest-index vertex, then the end symbol. Points already
chosen are masked (they cannot be chosen twice); the end symbol is masked at step 0 and, with the
``end_when_complete`` setting (this model's default), until the chosen points enclose every point: a
hull cannot stop short, which is what beam search's shorter, higher-scoring hypotheses did.

Token ids: 0 = ``<s>`` (never produced), 1 = ``</s>`` (end), ``2 + i`` = input point i (0-based). The
fixed vocabulary is those two symbols; the points are the source's "out-of-vocabulary words", so
decoding's extended-vocabulary machinery (forced prefixes, id checks) works unchanged. Token texts
are 1-based point numbers, and the output text is them joined by spaces (``"3 7 1 5"``).
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput

BOS_ID, EOS_ID, FIRST_POINT = 0, 1, 2
MIN_POINTS, MAX_POINTS, MAX_RANDOM_SEED = 3, 500, 2**31 - 1
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|infinity|nan)"
_RANDOM = re.compile(r"^\s*random\s+(\d+)(?:\s+seed\s+(\d+))?\s*$", re.IGNORECASE)
_PAIR = re.compile(rf"^\s*({_NUMBER})\s*[, ]\s*({_NUMBER})\s*$", re.IGNORECASE)
POINTS_HINT = "points as 'x y; x y; ...' (at least 3, at most 500), or 'random N [seed S]'"


@dataclass
class PointerConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    emb_dim: int = 128
    hidden_dim: int = 256
    max_points: int = MAX_POINTS
    bidirectional: bool = False  # each point's encoding sees the whole set, not just the points before it


@dataclass
class PointerState:
    """Decoder state of B hypotheses over one (or B) point sets."""

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    enc_feat: torch.Tensor  # (B|1, 1+n, H) W_1 e_j, the end slot first
    points: torch.Tensor  # (B|1, n, 2)
    chosen: torch.Tensor  # (B, 1+n) True where masked (chosen points; end at step 0)
    vertices: Optional[torch.Tensor] = None  # (B|1, 1+n) True on the true hull's vertices (end slot False)


def random_points(n: int, seed: int) -> np.ndarray:
    """``n`` points uniform in [0, 1]², reproducible from ``seed``: (n, 2)."""
    return np.random.default_rng(seed).random((n, 2))


def hull_order(points: np.ndarray) -> list[int]:
    """Hull vertex indices, counter-clockwise, starting from the lowest index (scipy's hull)."""
    from scipy.spatial import ConvexHull  # on first use: the app's start does not pay for scipy.spatial

    vertices = ConvexHull(points).vertices.tolist()  # counter-clockwise for 2-D input
    start = vertices.index(min(vertices))
    return vertices[start:] + vertices[:start]


def parse_points(text: str, max_points: int = MAX_POINTS) -> np.ndarray:
    """Points (n, 2) from ``'x y; x y; ...'`` or ``'random N [seed S]'``; ValueError naming the rule."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"no points: give {POINTS_HINT}")
    match = _RANDOM.match(text)
    if match:
        n, seed = int(match.group(1)), int(match.group(2) or 0)
        if not MIN_POINTS <= n <= max_points:
            raise ValueError(f"random N needs {MIN_POINTS} <= N <= {max_points}, got {n}")
        if seed > MAX_RANDOM_SEED:
            raise ValueError(f"seed must be at most {MAX_RANDOM_SEED}, got {seed}")
        return random_points(n, seed)
    parts = [p for p in text.strip().strip(";").split(";")]
    if len(parts) > max_points:
        raise ValueError(f"too many points: {len(parts)} (at most {max_points})")
    rows = []
    for index, part in enumerate(parts, 1):
        pair = _PAIR.match(part)
        if not pair:
            raise ValueError(f"point {index} ({part.strip()[:30]!r}) is not 'x y': give {POINTS_HINT}")
        rows.append((float(pair.group(1)), float(pair.group(2))))
    points = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(points).all():
        bad = int(np.flatnonzero(~np.isfinite(points).all(1))[0]) + 1
        raise ValueError(f"point {bad} has a non-finite coordinate: coordinates must be finite numbers")
    if len(points) < MIN_POINTS:
        raise ValueError(f"a hull needs at least {MIN_POINTS} points, got {len(points)}")
    _, first = np.unique(points, axis=0, return_index=True)
    if len(first) < len(points):
        dup = sorted(set(range(len(points))) - set(first.tolist()))[0] + 1
        raise ValueError(f"point {dup} duplicates an earlier point: points must be distinct")
    if _is_degenerate(points):
        raise ValueError("the points are collinear: a hull needs points that span an area")
    return points


def _is_degenerate(points: np.ndarray) -> bool:
    centred = points - points.mean(0)
    return np.linalg.matrix_rank(centred, tol=1e-12 * max(1.0, float(np.abs(centred).max()))) < 2


def normalise(points: np.ndarray) -> np.ndarray:
    """Points scaled into the unit square the model was trained on (aspect ratio kept)."""
    low = points.min(0)
    span = float((points.max(0) - low).max()) or 1.0
    return (points - low) / span


class PointerNetwork(nn.Module):
    """LSTM encoder over coordinates, LSTM decoder, additive attention as the output distribution."""

    model_type = "pointer_network"
    config_class = PointerConfig
    bos_id, eos_id, unk_id, vocab_size, vocab = BOS_ID, EOS_ID, None, FIRST_POINT, None
    features = ModelFeatures(input_kind="points", architecture="pointer network",
                             input_hint=POINTS_HINT, task="points → their convex hull",
                             completes=True,  # the end waits until the chosen points enclose the set
                             settings=(("max_len", 100),  # a hull of many points in convex position
                                       ("end_when_complete", True)))  # beam 4 then no longer loses to greedy: README

    def __init__(self, config: PointerConfig, vocab=None, name: str = "hull-ptrnet"):
        super().__init__()
        self.config, self.name = config, name
        E, H = config.emb_dim, config.hidden_dim
        self.point_in = nn.Linear(2, E)
        self.encoder = nn.LSTM(E, H, batch_first=True, bidirectional=config.bidirectional)
        if config.bidirectional:  # both directions' outputs and final states back to H
            self.enc_out = nn.Linear(2 * H, H)
            self.enc_h, self.enc_c = nn.Linear(2 * H, H), nn.Linear(2 * H, H)
        self.end_slot = nn.Parameter(torch.randn(H) / math.sqrt(H))
        self.start_in = nn.Parameter(torch.randn(E) / math.sqrt(E))
        self.cell = nn.LSTMCell(E, H)
        self.attn_enc = nn.Linear(H, H, bias=False)
        self.attn_dec = nn.Linear(H, H)
        self.attn_v = nn.Linear(H, 1, bias=False)

    @property
    def max_source_len(self) -> int:
        return self.config.max_points

    @property
    def device(self) -> torch.device:
        """Where the weights are (see :mod:`gen_models.device`)."""
        return self.end_slot.device

    def config_dict(self) -> dict:
        """Constructor arguments for config.json."""
        return asdict(self.config)

    # -- stepper protocol -------------------------------------------------------------------
    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """``</s>`` or a 1-based point number to its id (None if it names no point)."""
        if token in ("</s>", "end"):
            return EOS_ID
        return FIRST_POINT + oov_words.index(token) if token in oov_words else None

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """``<s>``, ``</s>`` or the 1-based number of a point."""
        return ("<s>", "</s>")[token_id] if token_id < FIRST_POINT else oov_words[token_id - FIRST_POINT]

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference hull as 1-based point numbers ("3 7 1 5"); ValueError names a bad one."""
        words = text.replace(",", " ").split()
        if words and words[-1] in ("</s>", "end"):
            words = words[:-1]  # the end symbol is implied
        ids = [self.token_to_id(t, oov_words) for t in words]
        if None in ids or EOS_ID in ids:
            raise ValueError(f"a reference hull lists point numbers between 1 and {len(oov_words)}")
        return ids

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """The chosen points as space-separated 1-based indices."""
        return " ".join(self.id_to_token(i, oov_words) for i in token_ids if i >= FIRST_POINT)

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Parse and encode one point set (ValueError naming the limit if malformed)."""
        points = parse_points(text, self.config.max_points)
        labels = [str(i + 1) for i in range(len(points))]
        hull = hull_order(points)
        extra = {"points": points, "true_hull": np.asarray(hull, dtype=np.int64) + 1}
        ids = torch.arange(FIRST_POINT, FIRST_POINT + len(points), device=self.device)  # (n,)
        encoded = Encoded(labels, ids, labels, None, extra=extra)
        encoded.state = self.encode_scaled(encoded, torch.ones(1, len(points), device=self.device))
        return encoded

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> PointerState:
        """The state of B copies of the point set, each point's input embedding multiplied by
        ``scale`` (B, n); differentiable, for attribution."""
        points = torch.tensor(normalise(encoded.extra["points"]), dtype=torch.float32, device=scale.device)[None]  # (1, n, 2)
        vertices = vertex_mask([(encoded.extra["true_hull"] - 1).tolist()], len(encoded.extra["points"]), scale.device)
        return replace(self.initial_state(points.expand(scale.size(0), -1, -1), scale), vertices=vertices)

    def step(self, state: PointerState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One pointer step for B hypotheses; ``prev_ids`` (B,)."""
        log_probs, new_state = self.decode_step(state, prev_ids, controls.end_when_complete)
        pointer = log_probs[:, FIRST_POINT:].exp()  # (B, n)
        internals = {"attention": pointer, "p_end": log_probs[:, EOS_ID].exp()}
        return StepOutput(log_probs, new_state, internals)

    def reorder(self, state: PointerState, index: torch.Tensor) -> PointerState:
        """Keep hypotheses ``index`` (B',)."""
        return replace(state, h=state.h[index], c=state.c[index], chosen=state.chosen[index])

    # -- shared by training and decoding ------------------------------------------------------
    def initial_state(self, points: torch.Tensor, scale: Optional[torch.Tensor] = None) -> PointerState:
        """Encode a batch of point sets (B, n, 2) of equal size; ``scale`` (B, n) multiplies each
        point's input embedding."""
        embedded = self.point_in(points) if scale is None else self.point_in(points) * scale.unsqueeze(-1)
        enc, (h, c) = self.encoder(embedded)  # (B, n, H or 2H); h, c (1 or 2, B, H)
        if self.config.bidirectional:
            enc = self.enc_out(enc)  # (B, n, H)
            h = self.enc_h(torch.cat([h[0], h[1]], -1))[None]  # (1, B, H)
            c = self.enc_c(torch.cat([c[0], c[1]], -1))[None]  # (1, B, H)
        B = points.size(0)
        slots = torch.cat([self.end_slot.expand(B, 1, -1), enc], 1)  # (B, 1+n, H)
        chosen = torch.zeros(B, slots.size(1), dtype=torch.bool, device=points.device)
        chosen[:, 0] = True  # no empty hull
        return PointerState(h[0], c[0], self.attn_enc(slots), points, chosen)

    def decode_step(self, state: PointerState, prev_ids: torch.Tensor,
                    end_when_complete: bool = False) -> tuple[torch.Tensor, PointerState]:
        """(log_probs (B, 2 + n), new state) given the previously chosen ids (B,). With
        ``end_when_complete`` the end symbol stays masked until the chosen points enclose every point
        (until every vertex of the true hull is chosen: the same test, as the hull of the chosen
        points then contains the whole set), and the distribution is renormalised over the rest."""
        B = prev_ids.size(0)
        points = state.points.expand(B, -1, -1)  # (B, n, 2)
        index = (prev_ids - FIRST_POINT).clamp(min=0)  # (B,)
        rows = torch.arange(B, device=prev_ids.device)  # (B,)
        prev_xy = points[rows, index]  # (B, 2)
        is_start = (prev_ids < FIRST_POINT).unsqueeze(1)  # (B, 1)
        x = torch.where(is_start, self.start_in.expand(B, -1), self.point_in(prev_xy))  # (B, E)
        h, c = self.cell(x, (state.h, state.c))  # (B, H)
        scores = self.attn_v(torch.tanh(state.enc_feat + self.attn_dec(h).unsqueeze(1))).squeeze(-1)  # (B, 1+n)
        masked = state.chosen.expand(B, -1).clone()  # (B, 1+n)
        masked[rows, index + 1] |= ~is_start.squeeze(1)
        scores = scores.masked_fill(masked, float("-inf"))
        if end_when_complete and state.vertices is not None:
            incomplete = (state.vertices & ~masked).any(-1)  # (B,) a hull vertex not yet chosen
            scores[:, 0] = scores[:, 0].masked_fill(incomplete, float("-inf"))
        chosen = masked.clone()
        chosen[:, 0] = False  # the end symbol is allowed from step 1 on
        slot_logp = torch.log_softmax(scores, -1)  # (B, 1+n)
        log_probs = torch.cat([slot_logp.new_full((B, 1), float("-inf")), slot_logp], 1)  # (B, 2+n): <s> impossible
        return log_probs, replace(state, h=h, c=c, chosen=chosen)

    def forward(self, points: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor) -> dict:
        """Teacher-forced NLL per target token: points (B, n, 2), target/target_mask (B, T) ids."""
        state = self.initial_state(points)
        prev = torch.full((points.size(0),), BOS_ID, device=points.device)
        nll = []
        for t in range(target.size(1)):
            log_probs, state = self.decode_step(state, prev)
            nll.append(-log_probs.gather(1, target[:, t : t + 1]).squeeze(1))  # (B,)
            prev = target[:, t].masked_fill(~target_mask[:, t], EOS_ID)
        mask = target_mask.float()  # (B, T)
        return {"nll": (torch.stack(nll, 1) * mask).sum() / mask.sum()}


def vertex_mask(hulls: list[list[int]], n: int, device=None) -> torch.Tensor:
    """(B, 1+n) True on each set's hull vertices (0-based indices in ``hulls``); the end slot False."""
    mask = torch.zeros(len(hulls), 1 + n, dtype=torch.bool, device=device)
    for b, hull in enumerate(hulls):
        mask[b, [1 + i for i in hull]] = True
    return mask


def hull_batch(n: int, batch_size: int, rng: random.Random) -> dict:
    """A training batch of ``batch_size`` random ``n``-point sets with their hull targets."""
    sets = [random_points(n, rng.randrange(MAX_RANDOM_SEED)) for _ in range(batch_size)]
    hulls = [hull_order(p) for p in sets]
    T = max(len(h) for h in hulls) + 1
    target = torch.full((batch_size, T), EOS_ID)
    for b, hull in enumerate(hulls):
        target[b, : len(hull)] = torch.tensor(hull) + FIRST_POINT
    lengths = torch.tensor([len(h) + 1 for h in hulls])
    mask = torch.arange(T)[None] < lengths[:, None]  # (B, T)
    return {"points": torch.tensor(np.stack(sets), dtype=torch.float32), "target": target, "target_mask": mask}
