"""The stepper protocol every generator implements, so that decoding never needs to know the model.

A generator turns text into an :class:`Encoded` source once, then is driven one token at a time:

    encoded = model.encode(source_text, topics)           # batch of one hypothesis
    out = model.step(state, prev_ids, controls)            # StepOutput for every live hypothesis
    state = model.reorder(out.state, beam_index)           # keep / duplicate hypotheses

Token ids live in the model's *extended* vocabulary: ``0..V-1`` is the fixed vocabulary and
``V..V+len(encoded.oov_words)-1`` are this source's out-of-vocabulary words (copy models only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import torch


@dataclass
class Encoded:
    """A source prepared for decoding.

    ``source_ids``: (S,) extended-vocabulary ids of the (possibly truncated) source tokens.
    ``state``: the model's decoder state for one hypothesis (opaque to decoding).
    ``extra``: per-run signals by name (arrays or JSON values, e.g. a point set, a latent vector);
    they reach ``GenerationTrace.extra`` unchanged. ``companions``: further starting points by
    name (e.g. a VAE's homotopy latents); decoding runs the same generic search greedily from each
    and puts their output texts in ``GenerationTrace.extra[name]``.
    ``encoder_attention``: (L, H, S, S) self-attention of a Transformer encoder over the source
    (None for other models or when too large to record); ``notices``: what the user should know
    about this encoding (e.g. the attention was averaged over heads). ``extra["cased_forms"]``: for
    a model that lowercases its input, the source's own spelling of its words
    (:func:`gen_models.text.cased_forms`); decoding writes those words that way in the output text
    and views show them so (case restored by copying); the output tokens stay the model's own.
    ``extra["read_as_unknown"]``: source positions a word model's encoder embeds as ``<unk>`` (words
    outside its vocabulary, and rare ones it is set to read so); the copy view marks them.
    """

    source_tokens: list[str]
    source_ids: torch.Tensor  # (S,)
    oov_words: list[str]
    state: Any
    topics: list[str] = field(default_factory=list)
    truncated: bool = False
    encoder_attention: Any = None
    notices: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    companions: dict[str, list["Encoded"]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFeatures:
    """What a model can do and show, declared once on its class (never probed with ``getattr``).

    ``copies``: has a copy/generate switch (p_gen, extended vocabulary); ``coverage``: records
    attention coverage; ``topics``: takes topic words as input; ``topic_coverage``: records topic
    attention and a topic coverage that can be overwritten; ``keywords``: builds its output around a
    keyword chosen by PMI or given (``encode(text, topics=[keyword])``);
    ``generates``: False for encoder-only models (encoded, never stepped); ``architecture``:
    "encoder-decoder", "decoder-only", "encoder-only", "pointer network" …; ``input_kind``:
    "text", "topics" or "points"; ``input_hint`` / ``task``: shown by the app for this model;
    ``settings``: the model's own default decoding settings (names of ``DecodeSettings`` fields);
    ``memory``: what one item of the model's memory is ("story sentence", "memory location"), for a
    model that can decode with items knocked out (``StepControls.knock_out``; the trace's
    ``extra["memory_size"]`` counts them); "" for the others. ``soft_inputs``: the decoder reads
    its previous token as an embedding and can read a distribution instead
    (``StepControls.input_distribution``: the "feed the distribution" intervention). ``completes``:
    the model can tell a complete output from a partial one and hold its end symbol back until then
    (``StepControls.end_when_complete``).
    ``decoder_positions``: how many tokens the decoder may read in all (its position embeddings: a
    decoder-only model's prompt counts), 0 for no limit; a decode that would pass it is refused.
    ``parameters`` / ``cache_bytes_per_token``: what one token fed costs a large model (its weights,
    and the key/value cache one token adds to one hypothesis); the work budget scales a decode's
    cost by them (:mod:`gen_models.limits`); 0 for models too small to count.
    """

    copies: bool = False
    coverage: bool = False
    topics: bool = False
    topic_coverage: bool = False
    keywords: bool = False
    generates: bool = True
    architecture: str = "encoder-decoder"
    input_kind: str = "text"
    input_hint: str = ""
    task: str = ""
    settings: tuple[tuple[str, Any], ...] = ()
    memory: str = ""
    soft_inputs: bool = False
    completes: bool = False
    decoder_positions: int = 0
    parameters: int = 0
    cache_bytes_per_token: int = 0


@dataclass
class StepControls:
    """Interventions applied inside ``model.step``; models ignore those they have no signal for.

    ``p_gen``: force the copy/generate switch to this value. ``reset_coverage``: zero the
    attention coverage before this step. ``topic_coverage``: overwrite topic coverage entries
    ``{topic index: value}`` before this step. ``form``: (characters per line, lines) of a
    regulated poem that a poem model must write (line ends and the end forced), or None.
    ``knock_out``: memory items removed before this step (a memory network's story sentences, a
    neural Turing machine's memory locations; 0-based). ``input_distribution``: (B, V_ext)
    probabilities; when given, a ``soft_inputs`` model reads Σ_w P(w)·E(w) as its previous token
    instead of the embedding of ``prev_ids`` (copied source words' mass read as ``<unk>``).
    ``end_when_complete``: a ``completes`` model masks its end symbol until its output so far is a
    complete answer by its own test (a convex hull: the chosen points enclose every point).
    """

    step: int = 0
    p_gen: Optional[float] = None
    reset_coverage: bool = False
    topic_coverage: dict[int, float] = field(default_factory=dict)
    form: Optional[tuple[int, int]] = None
    knock_out: list[int] = field(default_factory=list)
    input_distribution: Optional[Any] = None
    end_when_complete: bool = False


def expected_embedding(distribution: torch.Tensor, weight: torch.Tensor, unk_id: int) -> torch.Tensor:
    """Σ_w P(w)·E(w) (B, E) of ``distribution`` (B, V_ext) over the rows of ``weight`` (V, E); the
    mass of extended ids (copied source words, ≥ V) counts as ``<unk>``'s, as their embedding does."""
    V = weight.size(0)
    in_vocab = distribution[:, :V]  # (B, V)
    if distribution.size(1) > V:
        in_vocab = in_vocab.index_add(1, torch.tensor([unk_id], device=distribution.device),
                                      distribution[:, V:].sum(1, keepdim=True))  # (B, V)
    return in_vocab.to(weight.dtype) @ weight  # (B, E)


def form_length(form: tuple[int, int]) -> int:
    """Tokens of a poem of ``form`` (characters per line, lines): characters, line ends and the end."""
    width, lines = form
    return (width + 1) * lines + 1


@dataclass
class StepOutput:
    """What one step returns for B live hypotheses.

    ``log_probs``: (B, V_ext) log-probabilities over the extended vocabulary.
    ``internals``: optional tensors, each with a leading B dimension:
    ``attention`` (B, S) or (B, L, H, S); ``coverage`` (B, S) before the step; ``p_gen`` (B,);
    ``generate_probs`` / ``copy_probs`` (B, V_ext) whose sum is ``exp(log_probs)``;
    ``topic_attention`` (B, K); ``topic_coverage`` (B, K) after the step;
    ``self_attention`` (B, L, H, t+1). Any other name (e.g. a fusion ``gate`` (B, D)) is recorded
    in the trace's ``Step.extra`` under that name.
    """

    log_probs: torch.Tensor
    state: Any
    internals: dict[str, torch.Tensor] = field(default_factory=dict)


class Generator(Protocol):
    """What decoding and the app need from a model.

    ``features`` declares what the model can do and show (:class:`ModelFeatures`); nothing else is
    probed. An encoder-only model (``features.generates`` False, e.g. BERT) is encoded but never
    stepped: its trace holds the source and its encoder attention only.
    """

    name: str
    features: ModelFeatures
    bos_id: int
    eos_id: int
    unk_id: Optional[int]  # None for models without an unknown-word token
    vocab_size: int  # V, the fixed vocabulary
    max_source_len: int

    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Tokenise, truncate to ``max_source_len`` and encode one source."""

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> Any:
        """The decoder state of B copies of ``encoded``'s source with each source item's input
        embedding multiplied by ``scale`` (B, S); ones give ``encoded.state``. Differentiable: input
        attribution integrates along it (:mod:`gen_models.attribution`)."""

    def step(self, state: Any, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """Advance every hypothesis by one token; ``prev_ids`` is (B,) in the extended vocabulary.
        Differentiable (decoding calls it under ``torch.no_grad``)."""

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        """Select hypotheses ``index`` (B',) from a state of B hypotheses."""

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """The text of an extended-vocabulary id."""

    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """The extended-vocabulary id of a token text for this source (None if it has none)."""

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """Readable text of generated ids (end token excluded by the caller)."""

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference output as the ids the model would have to generate (end token excluded)."""
