"""The trace contract: the only thing models hand to views.

A :class:`GenerationTrace` records one decoding run: the source, the chosen output, one
:class:`Step` per output token with the model's internals at that step, and the whole search tree
as a flat list of :class:`BeamNode` (every hypothesis that was alive at some step, with its own
internals, plus the candidates that were scored but pruned).

Arrays are held as numpy arrays while decoding (cheap to record) and become plain lists in JSON.
``to_json``/``from_json`` round-trip losslessly: floats are rounded to ``FLOAT_DECIMALS`` when a trace
is first serialised, and a trace read back from JSON serialises to the same text.

Shapes (S = source length, K = number of topics, L = layers, H = heads):

- ``attention``: ``(S,)`` for RNN models; ``(L, H, S)`` for multi-head models, or, when that would
  be more than ``gen_models.decoding.COMPACT_ATTENTION_VALUES`` (16,384) numbers per step (long
  prompts of large models), a :class:`TopKAttention`: per layer and head the
  ``decoding.ATTENTION_TOP_K`` (8) most attended source positions
  with their weights and the mass on the rest, and the exact mean over layers and heads ``(S,)``.
  In JSON it is an object ``{"positions", "weights", "rest", "average"}``; views dense-ify it for
  the range they show (:meth:`TopKAttention.dense`).
- ``coverage``: ``(S,)`` running sum of all *earlier* steps' attention (zeros at step 0).
- ``topic_attention``: ``(K,)``; ``topic_coverage``: ``(K,)`` coverage *after* the step.
- ``Step.extra`` / ``GenerationTrace.extra``: model-specific per-step / per-run signals by name
  (arrays, numbers or JSON values); any internal a model returns that has no typed field lands in
  ``Step.extra``, never dropped. Numeric lists read back from JSON become float64 arrays.
- ``self_attention``: ``(L, H, t+1)`` a Transformer decoder's attention over the tokens it was fed so
  far (``<s>`` and the output prefix; decoder-only models: the output prefix, ``(L, H, t)``).
- ``GenerationTrace.encoder_attention``: ``(L, H, S, S)`` a Transformer encoder's self-attention.
- ``Step.processors``: what the logits processors (repetition penalties, n-gram block, min length,
  banned and forced tokens, temperature, top-k, top-p; :mod:`gen_models.scoring`) did to the step's
  distribution (:class:`ProcessorStages`): ``probs`` ``(1 + R, C)`` for the model's top ``C`` tokens
  (and the chosen one) before the R processors and after each. Kept on the chosen output's steps
  only (the nodes off it have ``None``): the views that read it show the output, and an
  intervention forces a token on the output's path.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

FLOAT_DECIMALS = 6
NODE_STATUSES = ("alive", "pruned", "finished", "chosen")
STEP_ARRAY_FIELDS = ("attention", "coverage", "topic_attention", "topic_coverage", "self_attention")
STEP_SCALAR_FIELDS = ("p_gen", "entropy")


@dataclass(slots=True)
class TopKAttention:
    """Multi-head attention over a long source, kept compactly (see the module docstring).

    ``positions`` (L, H, k) source positions, most attended first; ``weights`` (L, H, k) their
    attention; ``rest`` (L, H) the attention on every other source position; ``average`` (S,) the
    exact attention averaged over layers and heads. A decoder-only model's attention over its own
    output (``Step.self_attention``) is not part of it: ``weights + rest + self_attention`` sum to 1.
    """

    positions: Any
    weights: Any
    rest: Any
    average: Any

    @property
    def shape(self) -> tuple[int, int, int]:
        """(L, H, S), the shape of the dense attention it stands for."""
        layers, heads, _ = np.shape(self.weights)
        return layers, heads, int(np.shape(self.average)[-1])

    @property
    def ndim(self) -> int:
        """3, as the dense ``(L, H, S)`` attention."""
        return 3

    def dense(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """(L, H, stop − start): the kept weights at their positions in ``[start, stop)``, zeros elsewhere."""
        L, H, S = self.shape
        stop = S if stop is None else stop
        positions = np.asarray(self.positions, dtype=np.int64)  # (L, H, k)
        weights = np.asarray(self.weights, dtype=float)  # (L, H, k)
        out = np.zeros((L, H, stop - start))
        inside = (positions >= start) & (positions < stop)  # (L, H, k)
        layer, head, slot = np.nonzero(inside)
        out[layer, head, positions[inside] - start] = weights[layer, head, slot]
        return out

    @classmethod
    def from_plain(cls, data: dict) -> "TopKAttention":
        """Rebuild from its JSON object (positions back to integers)."""
        return cls(np.asarray(data["positions"], dtype=np.int32), np.asarray(data["weights"], dtype=np.float64),
                   np.asarray(data["rest"], dtype=np.float64), np.asarray(data["average"], dtype=np.float64))


def mean_attention(attention: Any) -> np.ndarray:
    """A step's attention averaged over layers and heads, (S,) (single-head attention as it is)."""
    if isinstance(attention, TopKAttention):
        return np.asarray(attention.average, dtype=float)
    attention = np.asarray(attention, dtype=float)
    return attention.mean(axis=tuple(range(attention.ndim - 1))) if attention.ndim > 1 else attention


@dataclass(slots=True)
class Candidate:
    """One of the top-k tokens of a step's distribution.

    ``p_generate`` = p_gen·P_vocab(w) and ``p_copy`` = (1 − p_gen)·Σ attention on w, for copy models;
    ``p_generate + p_copy == exp(logprob)`` there. ``None`` for models without a copy mechanism.
    """

    token: str
    token_id: int
    logprob: float
    p_generate: Optional[float] = None
    p_copy: Optional[float] = None


@dataclass(slots=True)
class ProcessorStages:
    """What the logits processors did to one step's distribution, for a few tokens.

    ``names``: the R processors decoding applied, in order (empty when none was on: then only the
    model's own distribution is kept; one with nothing to do at this step, such as min length past
    it, is listed and changes nothing). ``token_ids`` / ``tokens`` (C,): the model distribution's most likely
    tokens, best first, then the step's chosen token when it is not among them. ``probs``
    ``(1 + R, C)``: their probability under the model (row 0) and after each processor (row r),
    renormalised over the whole vocabulary (what sampling draws from; greedy and beam search rank by
    the same scores). ``removed_by`` (C,): the index into ``names`` of the processor that first gave
    the token −inf (removed it), None for a token no processor removed.
    """

    names: list[str]
    token_ids: list[int]
    tokens: list[str]
    probs: Any  # (1 + R, C)
    removed_by: list[Optional[int]]

    def remover(self, index: int) -> Optional[str]:
        """The name of the processor that removed the ``index``-th token (None if none did)."""
        removed = self.removed_by[index]
        return None if removed is None else self.names[removed]


@dataclass(slots=True)
class Step:
    """One decoding step of one hypothesis: the token it chose and the internals that chose it."""

    token: str
    token_id: int
    logprob: float
    copied_from: list[int] = field(default_factory=list)  # source positions holding this token
    attention: Any = None  # (S,) or (L, H, S), or a TopKAttention for long sources
    coverage: Any = None  # (S,) coverage before this step
    p_gen: Optional[float] = None
    topic_attention: Any = None  # (K,)
    topic_coverage: Any = None  # (K,) after this step
    self_attention: Any = None  # (L, H, t+1) for Transformer decoders
    candidates: list[Candidate] = field(default_factory=list)
    entropy: Optional[float] = None  # nats, of the step's whole distribution (before search rules)
    processors: Optional[ProcessorStages] = None  # the chosen output's steps only
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific signals by name


@dataclass(slots=True)
class BeamNode:
    """A node of the search tree. The root (``parent is None``, ``step == -1``) is the start token.

    ``score`` is the cumulative log-probability (``parent.score + logprob``); ``adjusted_score`` is
    the score after the scoring rules (length/coverage penalty) that ranked it.
    ``internals`` is the :class:`Step` that produced this node's token (alive, finished and chosen
    nodes only; ``None`` for pruned candidates and the root). ``extra``: numbers a scoring rule kept
    for this node by name (MMI: ``score_before_mmi``, ``score_after_mmi``, ``lm_logprob`` or
    ``reverse_logprob``, see :mod:`gen_models.mmi`; diverse beam search: ``group``, the 0-based beam
    group, and where its diversity penalty applied ``score_before_diversity`` and
    ``score_after_diversity``, the latter being ``score``).
    """

    id: int
    parent: Optional[int]
    step: int
    token: str
    token_id: int
    logprob: float
    score: float
    adjusted_score: float
    status: str
    internals: Optional[Step] = None
    extra: dict = field(default_factory=dict)


@dataclass
class GenerationTrace:
    """Everything one decoding run produced; see the module docstring for shapes."""

    model: str
    source_tokens: list[str]
    output_tokens: list[str]
    output_text: str
    steps: list[Step]
    beam: list[BeamNode]
    settings: dict
    timings: dict = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    truncated: bool = False
    notices: list[str] = field(default_factory=list)
    encoder_attention: Any = None  # (L, H, S, S) Transformer encoder self-attention, or None
    architecture: str = "encoder-decoder"  # or "decoder-only", "encoder-only", "pointer network", ...
    oov_words: list[str] = field(default_factory=list)  # extended ids V.. of this source (copy models)
    reference: Optional[dict] = None  # reference mode: see gen_models.decoding.score_reference
    extra: dict[str, Any] = field(default_factory=dict)  # per-run signals by name (a latent, a point set)

    # -- queries ---------------------------------------------------------------------------------
    @property
    def nodes_by_id(self) -> dict[int, BeamNode]:
        """The search tree indexed by node id (built once per trace)."""
        index = self.__dict__.get("_nodes_by_id")
        if index is None or len(index) != len(self.beam):
            index = {node.id: node for node in self.beam}
            self.__dict__["_nodes_by_id"] = index
        return index

    def node(self, node_id: int) -> BeamNode:
        """The beam node with this id (KeyError if absent)."""
        try:
            return self.nodes_by_id[node_id]
        except KeyError:
            raise KeyError(f"no beam node with id {node_id}") from None

    def path(self, node_id: Optional[int] = None) -> list[BeamNode]:
        """Nodes from the root's first child down to ``node_id`` (the chosen leaf when None; empty
        if nothing was chosen). KeyError for an unknown id."""
        if node_id is None:
            chosen = [node for node in self.beam if node.status == "chosen"]
            if not chosen:
                return []
            node_id = chosen[0].id
        node: Optional[BeamNode] = self.node(node_id)
        path = []
        while node is not None and node.parent is not None:
            path.append(node)
            node = self.nodes_by_id.get(node.parent)
        return path[::-1]

    def chosen_path(self) -> list[int]:
        """Node ids from the root to the chosen leaf (empty if nothing was chosen)."""
        path = self.path()
        return [path[0].parent, *[node.id for node in path]] if path else []

    def output_ids(self) -> list[int]:
        """Extended ids of the chosen output (including a final end token if generated)."""
        return [node.token_id for node in self.path()]

    @property
    def has_copy_switch(self) -> bool:
        """Whether the steps record a copy/generate switch (p_gen)."""
        return bool(self.steps) and all(step.p_gen is not None for step in self.steps)

    @property
    def has_topics(self) -> bool:
        """Whether the steps record topic attention (topic-to-text models)."""
        return bool(self.steps) and all(step.topic_attention is not None for step in self.steps)

    @property
    def has_attention(self) -> bool:
        """Whether every step records attention over the source."""
        return bool(self.steps) and all(step.attention is not None for step in self.steps)

    @property
    def heads(self) -> Optional[tuple[int, int]]:
        """(layers, heads) of multi-head attention ((L, H, S) per step, or an encoder-only model's
        (L, H, S, S) encoder attention); None for single-head models."""
        if not self.steps:
            shape = np.shape(self.encoder_attention) if self.encoder_attention is not None else ()
            return (shape[0], shape[1]) if len(shape) == 4 else None
        shape = np.shape(self.steps[0].attention) if self.steps[0].attention is not None else ()
        return (shape[0], shape[1]) if len(shape) == 3 else None

    def to_dict(self) -> dict:
        """A JSON-ready dict (arrays become nested lists of rounded floats)."""
        return _to_plain(self)

    def to_json(self, indent: Optional[int] = None) -> str:
        """The trace as JSON text."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationTrace":
        """Rebuild a trace from :meth:`to_dict` output (arrays come back as float64 numpy arrays)."""
        data = dict(data)
        data["steps"] = [_step_from_dict(s) for s in data["steps"]]
        data["beam"] = [_node_from_dict(n) for n in data["beam"]]
        data["encoder_attention"] = _array_or_none(data.get("encoder_attention"))
        data["extra"] = _extra_from_plain(data.get("extra") or {})
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "GenerationTrace":
        """Rebuild a trace from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), FLOAT_DECIMALS).tolist()
    if isinstance(value, (np.floating, float)):
        return _finite(round(float(value), FLOAT_DECIMALS))
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _finite(x: float) -> Optional[float]:
    """JSON has no infinities: -inf log-probs (impossible tokens) become the most negative float."""
    if x == float("-inf"):
        return -1e30
    if x == float("inf"):
        return 1e30
    return None if x != x else x


def _array_or_none(value: Any) -> Any:
    if value is None or isinstance(value, (int, float)):
        return value
    return np.asarray(value, dtype=np.float64)


def _extra_from_plain(extra: dict) -> dict:
    """Numeric (nested) lists back to float64 arrays; other JSON values as they are."""
    restored = {}
    for name, value in extra.items():
        if isinstance(value, list) and value:
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                array = None
            restored[name] = array if array is not None and array.dtype != object else value
        else:
            restored[name] = value
    return restored


def _step_from_dict(data: dict) -> Step:
    data = dict(data)
    data["candidates"] = [Candidate(**c) for c in data.get("candidates", [])]
    for name in STEP_ARRAY_FIELDS:
        value = data.get(name)
        data[name] = TopKAttention.from_plain(value) if isinstance(value, dict) else _array_or_none(value)
    data["extra"] = _extra_from_plain(data.get("extra") or {})
    if data.get("processors") is not None:
        stages = data["processors"]
        data["processors"] = ProcessorStages(**{**stages, "probs": np.asarray(stages["probs"], dtype=np.float64)})
    return Step(**data)


def _node_from_dict(data: dict) -> BeamNode:
    data = dict(data)
    if data.get("internals") is not None:
        data["internals"] = _step_from_dict(data["internals"])
    return BeamNode(**data)
