"""Generic decoding over the stepper protocol: greedy, beam search and sampling, fully traced.

Nothing here knows which model it drives. Every run returns a :class:`GenerationTrace` whose
``beam`` is the whole search tree: each hypothesis that was alive at some step (with the internals
of the step that produced it), the candidates that were scored but pruned, the finished leaves and
the chosen one. Greedy and sampling record their single path plus each step's pruned alternatives.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

import numpy as np
import torch

from . import limits, mmi
from .protocol import Encoded, Generator, ModelFeatures, StepControls, StepOutput, form_length
from .scoring import (
    NEG_INF,
    BanTokens,
    EncoderRepetitionPenalty,
    FinishedLengthNorm,
    ForcedPrefix,
    GNMTScorer,
    HammingDiversity,
    MinLength,
    NoRepeatNGram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    apply_processors,
    processor_stages,
)
from .text import restore_case
from .trace import (
    STEP_ARRAY_FIELDS,
    STEP_SCALAR_FIELDS,
    BeamNode,
    Candidate,
    GenerationTrace,
    ProcessorStages,
    Step,
    TopKAttention,
)

STRATEGIES = ("greedy", "beam", "sample", "beam_sample")
BEAM_STRATEGIES = ("beam", "beam_sample")  # beam_sample: the 2k candidates drawn, not the top 2k (generate's do_sample + num_beams)
LENGTH_PENALTY_FORMS = ("gnmt", "hf")
POEM_FORMS = ("free", "5x4", "7x4", "5x8", "7x8")  # characters per line x lines
MAX_TRACED_WORK = limits.LIBRARY_DEFAULTS.traced_work  # source tokens × beams × steps of one recorded trace
PRUNED_NODE_VALUES = 12  # what one pruned candidate node costs, in recorded numbers (ids, scores, text)
COMPACT_ATTENTION_VALUES = 16_384  # L·H·S numbers per step and hypothesis above which attention is kept compact
ATTENTION_TOP_K = 8  # source positions kept per layer and head in compact attention (gen_models.trace.TopKAttention)
STAGE_CANDIDATES = 12  # the model's most likely tokens a step follows through the logits processors
_PROB_PARTS = ("generate_probs", "copy_probs")
_COMPACT_PARTS = ("attention_positions", "attention_weights", "attention_rest", "attention_average")
MB = 1024 * 1024


def setting(default: Any, label: str, low: Any = None, high: Any = None, step: Any = None,
            panel: Optional[str] = None, choices: tuple = (), compare: bool = False, cli: str = "",
            help: str = "", feature: str = "") -> Any:
    """A :class:`DecodeSettings` field with everything derived from it: its label, limits and
    slider step (settings panel, validation, CLI flag, API parameter), the ``panel`` group it is
    shown in ("search", "sampling"; None: not in the panel), its ``choices``, whether run B of a
    comparison may override it (``compare``), an extra CLI alias (``cli``), and the
    :class:`ModelFeatures` flag a model needs for the panel to show it (``feature``; "mmi": a
    checkpoint whose config.json names its MMI companions, :func:`gen_models.mmi.companion`)."""
    meta = dict(label=label, low=low, high=high, step=step, panel=panel, choices=choices, compare=compare,
                cli=cli, help=help, feature=feature)
    if isinstance(default, (list, dict)):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DecodeSettings:
    """Decoding options, each declared once with its label and limits (see :func:`setting`).
    ``ban_unk`` forbids the unknown-word token. ``forced_prefix`` holds extended-vocabulary ids;
    interventions: ``force_p_gen`` (None = the model's own), ``reset_coverage_at`` (steps before which
    coverage is zeroed), ``topic_coverage`` ({topic index: value} written at ``topic_coverage_step``),
    ``knock_out`` (memory items removed at every step: a memory network's sentences, an NTM's locations),
    ``feed_distribution_from`` / ``_steps`` (steps whose input is the previous step's whole distribution)."""

    strategy: str = setting("beam", "Strategy", panel="search", choices=STRATEGIES, compare=True)
    beam_size: int = setting(4, "Beam size", 1, 16, 1, panel="search", compare=True, cli="--beam")
    max_len: int = setting(30, "Max length", 1, 200, 1, panel="search")
    min_len: int = setting(0, "Min length", 0, 200, 1, panel="search")
    length_penalty: float = setting(0.0, "Length penalty α", 0.0, 5.0, 0.1, panel="search", compare=True,
                                    help="GNMT alpha")
    length_penalty_form: str = setting("gnmt", "Length penalty form", panel="search", choices=LENGTH_PENALTY_FORMS,
                                       compare=True, help="gnmt: every hypothesis ranked by score / ((5 + |Y|) / 6)^α "
                                       "(Wu et al. 2016); hf: a finished one scores score / |Y|^α (transformers' "
                                       "generate)")
    coverage_penalty: float = setting(0.0, "Coverage penalty β", 0.0, 5.0, 0.1, panel="search", compare=True,
                                      help="GNMT beta")
    no_repeat_ngram: int = setting(0, "Block repeated n-grams of size (0 = off)", 0, 10, 1, panel="search",
                                   compare=True, help="n-grams of the decoder's input: a decoder-only model's prompt "
                                   "counts, as in generate")
    repetition_penalty: float = setting(1.0, "Repetition penalty (1 = off)", 0.5, 5.0, 0.05, panel="search",
                                        compare=True, help="log-probabilities of tokens already read (a decoder-only "
                                        "model's prompt too) × penalty, as generate's beam search")
    encoder_repetition_penalty: float = setting(1.0, "Source repetition reward (1 = off)", 0.5, 5.0, 0.05,
                                                panel="search", compare=True,
                                                help="log-probabilities of the source's tokens ÷ penalty (generate's "
                                                "encoder_repetition_penalty)")
    num_return: int = setting(1, "Sequences returned (beam)", 1, 16, 1, panel="search",
                              help="the best finished hypotheses, best first, in the trace's extra['returned']")
    beam_groups: int = setting(1, "Beam groups (diverse beam search; 1 = off)", 1, 16, 1, panel="search", compare=True,
                               help="the beams split into this many groups of beam_size / beam_groups, each searched "
                               "on its own, the later ones penalised for the earlier ones' tokens (Vijayakumar et al. "
                               "2016; generate's num_beam_groups)")
    diversity_penalty: float = setting(0.0, "Diversity penalty (0 = off)", 0.0, 10.0, 0.1, panel="search",
                                       compare=True, help="subtracted from a group's log-probability of a token once "
                                       "for each earlier group's beam that chose it at this step (Hamming diversity; "
                                       "generate's diversity_penalty)")
    temperature: float = setting(1.0, "Temperature", 0.05, 10.0, 0.05, panel="sampling")
    top_k: int = setting(0, "Top-k (0 = off)", 0, 1000, 1, panel="sampling")
    top_p: float = setting(1.0, "Top-p", 0.01, 1.0, 0.01, panel="sampling")
    seed: int = setting(0, "Seed", 0, 2**31 - 1, 1, panel="sampling")
    poem_form: str = setting("free", "Poem form (characters × lines)", panel="search", choices=POEM_FORMS,
                             feature="topics",
                             help="free, or 5x4 五绝, 7x4 七绝, 5x8 五律, 7x8 七律: line ends and the end are forced")
    mmi: str = setting("off", "MMI (Li et al. 2016)", panel="search", choices=mmi.MODES, compare=True, feature="mmi",
                       help="antilm: rank by log p(T|S) − λ·log p_LM(T) over the first γ tokens; bidi: rerank the "
                            "finished beam by log p(T|S) + λ·log p(S|T) (beam search; chat models)")
    mmi_lambda: float = setting(0.5, "MMI λ", 0.0, 2.0, 0.05, panel="search", compare=True, feature="mmi",
                                help="weight of the reply LM (antilm) or of the reverse model (bidi)")
    mmi_gamma: int = setting(5, "MMI-antiLM γ (first tokens penalised)", 1, 50, 1, panel="search", feature="mmi",
                             help="the reply LM's log-probability is subtracted over the first γ tokens")
    end_when_complete: bool = setting(False, "End only when complete", panel="search", compare=True,
                                      feature="completes",
                                      help="the end symbol stays masked until the output is complete by the model's "
                                           "own test (a convex hull: the chosen points enclose every point)")
    num_candidates: int = setting(5, "Candidates recorded per step", 1, 20, 1)
    ban_unk: bool = setting(False, "Never produce <unk>", help="never produce the <unk> token")
    forced_prefix: list[int] = setting([], "Forced prefix (token ids)", help="token ids to force")
    force_p_gen: Optional[float] = setting(None, "Force p_gen", 0, 1, help="intervention: fix p_gen")
    reset_coverage_at: list[int] = setting([], "Reset coverage before steps", help="steps")
    topic_coverage: dict[int, float] = setting({}, "Topic coverage {topic: value}")
    topic_coverage_step: int = setting(0, "Step at which topic coverage is written")
    knock_out: list[int] = setting([], "Knocked-out memory items", help="intervention: memory items removed")
    feed_distribution_from: Optional[int] = setting(
        None, "Feed the distribution from step", 1, 200, 1,
        help="intervention: the input of this step (and of feed_distribution_steps − 1 more) is the expected "
             "embedding Σ_w P(w)·E(w) of the previous step's distribution, not its chosen token's")
    feed_distribution_steps: int = setting(1, "Steps fed the distribution (0 = to the end)", 0, 200, 1)
    record: bool = setting(True, "Record internals")

    @classmethod
    def for_model(cls, features: ModelFeatures, **values: Any) -> "DecodeSettings":
        """Settings with the model's own defaults (``features.settings``) under ``values``."""
        return cls(**{**dict(features.settings), **values})

    def validate(self) -> "DecodeSettings":
        """Raise ValueError naming the limit for any out-of-range option; return self."""
        for name, f in SETTING_FIELDS.items():
            choices = f.metadata["choices"]
            if choices and getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if value is None and SETTING_FIELDS[name].default is None:
                continue  # an intervention left off
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{name} must be a number between {low} and {high}, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value}")
        if self.min_len > self.max_len:
            raise ValueError(f"min_len ({self.min_len}) must not exceed max_len ({self.max_len})")
        if self.form:
            needed = form_length(self.form)
            if not self.min_len <= needed <= self.max_len:
                raise ValueError(f"poem_form {self.poem_form} is {needed} tokens long: it needs max_len ≥ {needed} "
                                 f"and min_len ≤ {needed} (got {self.max_len} and {self.min_len})")
        if self.num_return > 1 and (self.strategy not in BEAM_STRATEGIES or self.num_return > self.beam_size):
            raise ValueError(f"num_return ({self.num_return}) needs beam search with at least as many beams "
                             f"(got {self.strategy}, beam_size {self.beam_size})")
        self._validate_groups()
        if self.mmi != "off" and self.strategy not in BEAM_STRATEGIES:
            raise ValueError(f"mmi {self.mmi} is a beam search rule: set strategy to beam or beam_sample "
                             f"(got {self.strategy})")
        if len(self.forced_prefix) > self.max_len:
            raise ValueError(f"forced_prefix is longer than max_len ({self.max_len})")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.knock_out):
            raise ValueError(f"knock_out holds 0-based memory item indices (whole numbers ≥ 0), got {self.knock_out!r}")
        if any(not 0.0 <= v <= 10.0 for v in self.topic_coverage.values()):
            raise ValueError("topic_coverage values must be between 0 and 10")
        return self

    def _validate_groups(self) -> None:
        """Diverse beam search: groups only under plain beam search, each with as many beams."""
        if self.beam_groups > 1 and self.strategy != "beam":
            raise ValueError(f"beam_groups ({self.beam_groups}) is diverse beam search, which does not sample: set "
                             f"strategy to beam (got {self.strategy})")
        if self.beam_size % self.beam_groups:
            raise ValueError(f"beam_size ({self.beam_size}) must be a multiple of beam_groups ({self.beam_groups}): "
                             "each group has beam_size / beam_groups beams")
        if self.diversity_penalty and self.beam_groups == 1:
            raise ValueError(f"diversity_penalty ({self.diversity_penalty}) needs beam_groups > 1: it penalises a "
                             "group for the tokens the groups before it chose")

    def feeds_distribution(self, step: int) -> bool:
        """Whether the input of ``step`` is the previous step's distribution (not its token)."""
        start, count = self.feed_distribution_from, self.feed_distribution_steps
        return start is not None and step >= start and (count == 0 or step < start + count)

    def controls(self, step: int, previous: Optional[torch.Tensor] = None) -> StepControls:
        """The interventions that apply at ``step``; ``previous`` (B, V_ext): the log-probabilities
        of the step that chose the live hypotheses' last tokens (fed when :meth:`feeds_distribution`)."""
        fed = previous.exp() if previous is not None and self.feeds_distribution(step) else None
        return StepControls(
            step=step,
            p_gen=self.force_p_gen,
            reset_coverage=step in self.reset_coverage_at,
            topic_coverage=self.topic_coverage if step == self.topic_coverage_step else {},
            form=self.form,
            knock_out=self.knock_out,
            input_distribution=fed,
            end_when_complete=self.end_when_complete,
        )

    @property
    def form(self) -> Optional[tuple[int, int]]:
        """``poem_form`` as (characters per line, lines), or None when free."""
        return None if self.poem_form == "free" else tuple(int(n) for n in self.poem_form.split("x"))


SETTING_FIELDS = {f.name: f for f in fields(DecodeSettings)}
LIMITS = {name: (f.metadata["low"], f.metadata["high"]) for name, f in SETTING_FIELDS.items()
          if f.metadata["low"] is not None}
SETTING_NAMES = tuple(name for name, f in SETTING_FIELDS.items() if f.metadata["panel"])  # panel / API order
COMPARE_NAMES = tuple(name for name, f in SETTING_FIELDS.items() if f.metadata["compare"])


@torch.no_grad()
def generate(model: Generator, text: str, settings: Optional[DecodeSettings] = None,
             topics: Optional[list[str]] = None, reference: Optional[str] = None) -> GenerationTrace:
    """Encode ``text`` (and ``topics``) and decode it with ``settings``; the full trace. With a
    ``reference`` output, the trace's ``reference`` also scores it (:func:`score_reference`)."""
    settings = (settings or DecodeSettings()).validate()
    start = time.perf_counter()
    encoded = model.encode(text, topics)
    _check_forced_ids(model, encoded, settings)
    if model.features.generates:
        _check_work(model, encoded, settings)
    encoded_at = time.perf_counter()
    recorder = TreeRecorder(model, encoded, settings)
    if model.features.generates and settings.strategy in BEAM_STRATEGIES:
        _beam_search(model, encoded, settings, recorder, mmi.rule_for(model, text, settings, encoded.oov_words))
    elif model.features.generates:
        _single_path(model, encoded, settings, recorder)
    done = time.perf_counter()
    for name, companions in encoded.companions.items():
        encoded.extra[name] = [decode_companion(model, companion, settings) for companion in companions]
    timings = {"encode_ms": 1e3 * (encoded_at - start), "decode_ms": 1e3 * (done - encoded_at),
               "companions_ms": 1e3 * (time.perf_counter() - done)}
    trace = recorder.trace(timings)
    if reference is not None and model.features.generates:
        trace.reference = score_reference(model, encoded, reference, trace)
    elif reference is not None:
        trace.notices.append("this model does not generate: the reference was not scored")
    return trace


@torch.no_grad()
def teacher_forced(model: Generator, encoded: Encoded, ids: list[int],
                   settings: Optional[DecodeSettings] = None) -> tuple[list[float], list[int]]:
    """Log-probability and rank (1 = the most likely) of each of ``ids`` and then the end token, with
    the model fed the ids before it (teacher forcing) under the same interventions as the search.
    Models never modify the state they are given, so ``encoded`` may already have been searched."""
    settings = settings or DecodeSettings()
    device = encoded.source_ids.device
    state, prev = encoded.state, torch.tensor([model.bos_id], device=device)
    logprobs, ranks, previous = [], [], None
    for step, token in enumerate([*ids, model.eos_id]):
        row = model.step(state, prev, settings.controls(step, previous))  # one hypothesis
        scores, previous = row.log_probs[0], row.log_probs  # (V_ext,), (1, V_ext)
        logprobs.append(float(scores[token]))
        ranks.append(int((scores > scores[token]).sum()) + 1)
        state, prev = row.state, torch.tensor([token], device=device)
    return logprobs, ranks


def trace_settings(trace: GenerationTrace) -> DecodeSettings:
    """The settings a trace was decoded with (its JSON-ready ``settings`` back as a dataclass)."""
    values = dict(trace.settings)
    values["topic_coverage"] = {int(k): v for k, v in values.get("topic_coverage", {}).items()}
    return DecodeSettings(**values)


def score_reference(model: Generator, encoded: Encoded, text: str, trace: GenerationTrace) -> dict:
    """Reference mode: the reference's tokens with their teacher-forced log-probabilities and ranks,
    the first step where the output departs from it, both totals (raw log-probabilities, before any
    length or coverage penalty), and a verdict: "search error" when the model scores the reference
    higher than the output it returned (the search lost it), "model error" when it scores its own
    output higher, "tie" when both score the same, "match" when the output is the reference, and
    "output cut" when the output stopped at max_len without its end token (totals not comparable)."""
    limit = SETTING_FIELDS["max_len"].metadata["high"]
    ids = model.reference_ids(text, encoded.oov_words)
    if not ids or len(ids) >= limit:
        raise ValueError(f"a reference needs 1 to {limit - 1} tokens, got {len(ids)}")
    logprobs, ranks = teacher_forced(model, encoded, ids, trace_settings(trace))
    output_ids, wanted = trace.output_ids(), [*ids, model.eos_id]
    departure = next((i for i, (a, b) in enumerate(zip(output_ids, wanted)) if a != b),
                     None if len(output_ids) == len(wanted) else min(len(output_ids), len(wanted)))
    total = sum(logprobs)
    output_total = sum(node.logprob for node in trace.path())
    if departure is None:
        verdict = "match"
    elif model.eos_id not in output_ids:
        verdict = "output cut"
    else:
        verdict = ("tie" if abs(total - output_total) <= 1e-6 else
                   "search error" if total > output_total else "model error")
    return {"tokens": [model.id_to_token(i, encoded.oov_words) for i in wanted], "token_ids": wanted,
            "logprobs": logprobs, "ranks": ranks, "total_logprob": total, "output_logprob": output_total,
            "first_departure": departure, "verdict": verdict}


@torch.no_grad()
def decode_companion(model: Generator, encoded: Encoded, settings: DecodeSettings) -> str:
    """The output text from another starting point (a companion run, nothing recorded), found by the
    run's own search (strategy, beam, length and sampling settings; no interventions), so that a
    companion starting where the output did decodes to the output."""
    quick = DecodeSettings(**{name: getattr(settings, name) for name in (*SETTING_NAMES, "ban_unk")}, record=False)
    recorder = TreeRecorder(model, encoded, quick)
    (_beam_search if quick.strategy == "beam" else _single_path)(model, encoded, quick, recorder)
    return recorder.trace({}).output_text


def _check_work(model: Generator, encoded: Encoded, settings: DecodeSettings) -> None:
    """Bound a decode before it runs: a recorded trace keeps internals per source token, hypothesis and
    step (:data:`gen_models.limits.Limits.traced_work`); a model that declares its size costs
    parameters × tokens run (:data:`Limits.model_work`) and a key/value cache that grows with every
    token of every hypothesis (:data:`Limits.cache_mb`), recorded or not."""
    beams = settings.beam_size if settings.strategy in BEAM_STRATEGIES else 1
    source, steps, current = len(encoded.source_tokens), settings.max_len, limits.current()
    shape = f"{source:,} source tokens × {beams} beams × {steps} steps"
    advice = "lower the beam size or the max length, or shorten the input"
    if settings.record:
        limits.check_cost("trace", max(source, 1) * beams * steps, current.traced_work, shape, advice)
    features = model.features
    _check_positions(model, source, steps)
    if features.parameters:
        limits.check_cost("decode", features.parameters * (source + beams * steps), current.model_work,
                          f"{features.parameters:,} parameters × ({source:,} source tokens + {beams} beams × "
                          f"{steps} steps)", f"{advice} (the limit is GENSCOPE_MODEL_WORK on a server)")
    if features.cache_bytes_per_token:
        megabytes = math.ceil(features.cache_bytes_per_token * beams * (source + steps) / MB)
        limits.check_cost("decode", megabytes, current.cache_mb,
                          f"{features.cache_bytes_per_token:,} bytes of key/value cache per token × {beams} beams "
                          f"× ({source:,} source tokens + {steps} steps), in MB",
                          f"{advice} (the limit is GENSCOPE_CACHE_MB on a server)")


def _check_positions(model: Generator, source: int, steps: int) -> None:
    """Refuse a decode whose tokens would pass the model's positions: a decoder-only model's prompt
    and output share them (as ``generate``'s ``max_length`` counts), an encoder-decoder's output has
    them to itself."""
    limit, shared = model.features.decoder_positions, model.features.architecture == "decoder-only"
    needed = source + steps if shared else steps
    if limit and needed > limit:
        what = f"{source:,} prompt tokens + a max length of {steps}" if shared else f"a max length of {steps}"
        raise ValueError(f"{model.name} has {limit:,} positions and this decode would need {needed:,} "
                         f"({what}): lower the max length to {max(limit - needed + steps, 1)} or shorten the input")


def check_recorded_values(per_step: list[float], settings: DecodeSettings) -> None:
    """Refuse a trace whose recorded numbers would pass :data:`Limits.recorded_values`, estimated
    from the values one hypothesis recorded at its first two steps (``per_step``; what grows with
    the step, such as a decoder's self-attention over its own prefix, grows linearly)."""
    beams = settings.beam_size if settings.strategy in BEAM_STRATEGIES else 1
    steps, first = settings.max_len, per_step[0]
    growth = max(per_step[1] - per_step[0], 0.0) if len(per_step) > 1 else 0.0
    per_hypothesis = steps * first + growth * steps * (steps - 1) / 2
    limits.check_cost("trace", int(beams * per_hypothesis), limits.current().recorded_values,
                      f"{beams} beams × {steps} steps × ~{int(first + growth * (steps - 1) / 2):,} numbers "
                      "recorded per hypothesis and step (attention maps, coverage, candidates)",
                      "lower the beam size or the max length, or shorten the input")


def _check_forced_ids(model: Generator, encoded: Encoded, settings: DecodeSettings) -> None:
    limit = model.vocab_size + len(encoded.oov_words)
    bad = [i for i in settings.forced_prefix if not 0 <= i < limit]
    if bad:
        raise ValueError(f"forced_prefix ids must be in [0, {limit}) for this source, got {bad}")


def decoder_context(model: Generator, encoded: Encoded) -> list[int]:
    """The tokens a decoder has read before its first output token: a decoder-only model's prompt,
    else the start token (the processors' history starts with them, as ``generate``'s input_ids do)."""
    return encoded.source_ids.tolist() if model.features.architecture == "decoder-only" else [model.bos_id]


def _processors(model: Generator, encoded: Encoded, settings: DecodeSettings, sampling: bool) -> list:
    processors: list = [ForcedPrefix(settings.forced_prefix)] if settings.forced_prefix else []
    if settings.encoder_repetition_penalty != 1.0:
        processors.append(EncoderRepetitionPenalty(settings.encoder_repetition_penalty, encoded.source_ids))
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(settings.repetition_penalty))
    if settings.min_len:
        processors.append(MinLength(settings.min_len, model.eos_id))
    if settings.ban_unk and model.unk_id is not None:
        processors.append(BanTokens([model.unk_id]))
    if settings.no_repeat_ngram:
        processors.append(NoRepeatNGram(settings.no_repeat_ngram))
    if sampling:
        if settings.temperature != 1.0:
            processors.append(Temperature(settings.temperature))
        if settings.top_k:
            processors.append(TopK(settings.top_k))
        if settings.top_p < 1.0:
            processors.append(TopP(settings.top_p))
    return processors


def _single_path(model: Generator, encoded: Encoded, settings: DecodeSettings,
                 recorder: "TreeRecorder") -> None:
    """Greedy (argmax) or sampling: one hypothesis, each step's alternatives recorded as pruned."""
    sampling = settings.strategy == "sample"
    processors = _processors(model, encoded, settings, sampling)
    rng = torch.Generator().manual_seed(settings.seed)  # on the host: samples are drawn there
    device = encoded.source_ids.device
    state, prev = encoded.state, torch.tensor([model.bos_id], device=device)
    node, history, score, previous = recorder.root, [decoder_context(model, encoded)], 0.0, None
    for step in range(settings.max_len):
        out = model.step(state, prev, settings.controls(step, previous))
        stages = processor_stages(processors, out.log_probs, history, step)  # R × (1, V_ext)
        scores = stages[-1] if stages else out.log_probs  # (1, V_ext)
        _check_possible(scores, step)
        if sampling:
            token = int(torch.multinomial(scores.exp().cpu(), 1, generator=rng)[0, 0])
        else:
            token = int(scores[0].argmax())
        logprob = float(out.log_probs[0, token])
        score += logprob
        is_last = token == model.eos_id or step == settings.max_len - 1
        views = recorder.step_views(out, processors, stages)
        node = recorder.add_child(node, 0, views, token, logprob, score, score,
                                  "finished" if is_last else "alive")
        recorder.add_pruned([node.parent_node], out.log_probs, scores, [{token}], (score - logprob) + out.log_probs)
        if is_last:
            break
        history[0].append(token)
        state, prev, previous = out.state, torch.tensor([token], device=device), out.log_probs
    recorder.choose(node)


def _beam_search(model: Generator, encoded: Encoded, settings: DecodeSettings,
                 recorder: "TreeRecorder", rule: Optional[mmi.MMIRule] = None) -> None:
    """Beam search ranking candidates by the adjusted score; of the top ``2k`` candidates (drawn
    without replacement in proportion to exp(score) under ``beam_sample``) the best ``k`` unfinished
    ones go on, and end-of-sequence candidates among the first ``k`` finish (with the ``hf`` length
    penalty form, scored score / length^α). Stops when ``k`` hypotheses have finished or at
    ``max_len``; the best ``num_return`` of the ``k`` best finished ones are the trace's
    ``extra["returned"]``.

    Diverse beam search (``beam_groups`` G > 1; Vijayakumar et al. 2016, as ``generate``'s
    ``num_beam_groups`` in transformers 4.x): the beams are G groups of k = beam_size / G, each
    searched as above with its own finished pool, all stepped by the model in one batch. At each
    step the groups select in order, each token's processed log-probability in group g lowered by
    ``diversity_penalty`` × the number of live hypotheses groups < g gave it at this step
    (:class:`HammingDiversity`, before the other processors, as ``generate`` orders them); a group
    stops when k of its hypotheses have finished, the search when every group has. The output is
    the best of the groups' k best finished hypotheses. Every node of a group records ``group`` in
    its ``extra`` and, where a penalty applied, ``score_before_diversity`` / ``score_after_diversity``
    (its ``score`` is the latter: the penalty stays in the cumulative score, as in ``generate``).
    One difference from ``generate``: a group that has finished counts for nothing afterwards, where
    ``generate`` keeps it running on padding tokens that the later groups' penalty then counts; the
    outputs differ only where a later group would choose the padding token (the end token, for
    models whose padding token is their end token).

    With an MMI ``rule`` (:mod:`gen_models.mmi`): MMI-antiLM ranks by log p(T|S) − λ·log p_LM(T)
    (before the length/coverage penalty); MMI-bidi reranks the finished hypotheses by their
    adjusted score + λ·log p(S|T). Each selected node keeps ``score`` = log p(T|S) and records the
    rule's numbers in ``extra`` (``score_before_mmi``, ``score_after_mmi``, ``lm_logprob`` or
    ``reverse_logprob``)."""
    BeamSearch(model, encoded, settings, recorder, rule).run()


@dataclass
class BeamGroup:
    """One group of diverse beam search (the whole beam when there is one): its live hypotheses,
    the row of each in the batch the model steps, and the hypotheses it finished."""

    alive: list["LiveNode"]
    rows: list[int]
    finished: list["LiveNode"] = field(default_factory=list)

    def best(self, k: int) -> list["LiveNode"]:
        """Its ``k`` best finished hypotheses, best first (``generate`` keeps k per group)."""
        return sorted(self.finished, key=lambda n: -n.adjusted_score)[:k]


@dataclass
class SearchStep:
    """What one step computed for the whole batch (B live hypotheses, group after group)."""

    step: int
    out: StepOutput
    history: list[list[int]]  # what each hypothesis's decoder has read (the processors' history)
    processed: torch.Tensor  # (B, V_ext) log-probabilities after the processors
    prefix: torch.Tensor  # (B,) each hypothesis's cumulative score
    coverage: Optional[torch.Tensor]  # (B, S) attention summed over the steps so far, this one included
    views: dict  # the recorder's views of the step's internals
    lm_step: Optional[torch.Tensor] = None  # (B, V_ext) MMI-antiLM: the reply LM's log-probabilities
    lm_prefix: Optional[torch.Tensor] = None  # (B,) MMI-antiLM: its sum over the penalised tokens so far


@dataclass
class GroupScores:
    """One group's scores of every extension of its R live hypotheses at one step, each (R, V_ext)."""

    totals: torch.Tensor  # cumulative processed log-probabilities: the ``score`` of a node
    ranked: torch.Tensor  # after MMI-antiLM (``totals`` without it)
    adjusted: torch.Tensor  # after the length/coverage penalty: what the group ranks by
    plain: Optional[torch.Tensor] = None  # ``totals`` without this step's diversity penalty (None: none applied)
    lm_step: Optional[torch.Tensor] = None  # MMI-antiLM: the reply LM's log-probabilities


class BeamSearch:
    """One run of :func:`_beam_search`: its rules set up once, then :meth:`run`."""

    def __init__(self, model: Generator, encoded: Encoded, settings: DecodeSettings, recorder: "TreeRecorder",
                 rule: Optional[mmi.MMIRule] = None):
        self.model, self.encoded, self.settings, self.recorder, self.rule = model, encoded, settings, recorder, rule
        sampling = settings.strategy == "beam_sample"
        self.processors = _processors(model, encoded, settings, sampling=sampling)
        hf_form = settings.length_penalty_form == "hf"
        self.scorer = GNMTScorer(0.0 if hf_form else settings.length_penalty, settings.coverage_penalty)
        self.finish = FinishedLengthNorm(settings.length_penalty) if hf_form else None
        self.rng = torch.Generator().manual_seed(settings.seed) if sampling else None  # on the host, as in sampling
        self.anti = rule.antilm if rule is not None else None
        self.k = settings.beam_size // settings.beam_groups  # beams per group
        self.device = encoded.source_ids.device
        self.context = decoder_context(model, encoded)

    def run(self) -> None:
        """Search step by step until every group has finished (or ``max_len``), then choose."""
        settings, model = self.settings, self.model
        groups = [BeamGroup([self.recorder.root], [0]) for _ in range(settings.beam_groups)]
        batch = [self.recorder.root]  # the live hypotheses the model steps, group after group
        state, attention_sum, previous = self.encoded.state, None, None
        for step in range(settings.max_len):
            prev = torch.tensor([n.token_id for n in batch], device=self.device)  # (B,)
            out = model.step(state, prev, settings.controls(step, previous))
            found = self._score_step(step, out, batch, attention_sum)
            parents = self._extend(groups, found)
            if not parents:
                break
            index = torch.tensor(parents, device=self.device)  # (B',) the rows the next batch continues
            state = model.reorder(out.state, index)
            if settings.feed_distribution_from is not None:  # kept only while the intervention may need it
                previous = out.log_probs[index]  # (B', V_ext)
            attention_sum = found.coverage[index] if found.coverage is not None else None  # (B', S)
            batch = [n for group in groups for n in group.alive]
        self._choose(groups)

    def _score_step(self, step: int, out: StepOutput, batch: list["LiveNode"],
                    attention_sum: Optional[torch.Tensor]) -> SearchStep:
        """The batch's processed scores, coverage and recorded views at ``step``."""
        history = [self.context + n.history for n in batch]
        stages = processor_stages(self.processors, out.log_probs, history, step)  # R × (B, V_ext)
        found = SearchStep(step, out, history, stages[-1] if stages else out.log_probs,
                           torch.tensor([n.score for n in batch], device=self.device),
                           _coverage_after(attention_sum, out), self.recorder.step_views(out, self.processors, stages))
        if self.anti is not None:
            found.lm_step = self.anti.step_logprobs(history, step).to(self.device)  # (B, V_ext)
            found.lm_prefix = torch.tensor([n.lm_prefix for n in batch], device=self.device)  # (B,)
        return found

    def _extend(self, groups: list[BeamGroup], found: SearchStep) -> list[int]:
        """Each live group, in order, selects its next hypotheses; returns the rows of ``found``'s
        batch that the next batch continues (group after group) and gives each group its rows there."""
        earlier: list[int] = []  # the tokens earlier groups gave their live hypotheses at this step
        parents: list[int] = []
        for g, group in enumerate(groups):
            if not group.alive:
                continue
            alive, rows, going_on = self._select(group, g, found, self._group_scores(found, group.rows, earlier))
            earlier += going_on
            done = len(group.finished) >= self.k
            group.alive = [] if done else alive
            group.rows = [] if done else list(range(len(parents), len(parents) + len(rows)))
            parents += [] if done else rows
        return parents

    def _group_scores(self, found: SearchStep, rows: list[int], earlier: list[int]) -> GroupScores:
        """The scores of one group's rows, the diversity penalty for the ``earlier`` groups' tokens
        applied first (as ``generate`` does) when there is one."""
        index = torch.tensor(rows, device=self.device)  # (R,)
        prefix = found.prefix[index, None]  # (R, 1)
        totals, plain = prefix + found.processed[index], None  # (R, V_ext)
        if earlier and self.settings.diversity_penalty:
            diverse = [HammingDiversity(self.settings.diversity_penalty, tuple(earlier)), *self.processors]
            history = [found.history[r] for r in rows]
            plain, totals = totals, prefix + apply_processors(diverse, found.out.log_probs[index], history, found.step)
        ranked, lm_step = totals, None
        if self.anti is not None:
            lm_step = found.lm_step[index]  # (R, V_ext)
            ranked = mmi.antilm_scores(totals, found.lm_prefix[index], lm_step, self.anti.lam)  # (R, V_ext)
        coverage = found.coverage[index] if found.coverage is not None else None  # (R, S)
        adjusted = self.scorer(ranked, found.step + 1, coverage)  # (R, V_ext)
        _check_possible(adjusted, found.step)
        return GroupScores(totals, ranked, adjusted, plain, lm_step)

    def _select(self, group: BeamGroup, g: int, found: SearchStep,
                scores: GroupScores) -> tuple[list["LiveNode"], list[int], list[int]]:
        """One group's step: of its top ``2k`` candidates, the best ``k`` unfinished go on and
        end-of-sequence ones among the first ``k`` finish (into ``group.finished``; at the last
        step, the first ``k`` finish); the others of each hypothesis's top candidates are recorded
        as pruned. Returns the new live hypotheses, the batch row each extends, and the tokens of
        the best ``k`` candidates that do not end (the later groups' diversity penalty counts these,
        as ``generate`` does, at the last step too)."""
        k, is_last_step = self.k, found.step == self.settings.max_len - 1
        alive, rows, going_on = [], [], []
        selected: list[set] = [set() for _ in group.alive]
        for rank, flat_index in _candidates(scores.adjusted, k, self.rng):
            i, token = divmod(flat_index, scores.adjusted.size(1))
            if token != self.model.eos_id and len(going_on) < k:
                going_on.append(token)
            ends = token == self.model.eos_id or is_last_step
            if (rank >= k) if ends else (len(alive) == k):
                continue  # only the first k candidates may finish (as in HF and OpenNMT); k go on
            node = self._add(group, g, found, scores, i, token, ends)
            selected[i].add(token)
            (group.finished if ends else alive).append(node)
            if not ends:
                rows.append(group.rows[i])
        index = torch.tensor(group.rows, device=self.device)  # (R,)
        named = {} if scores.plain is None else {"score_before_diversity": scores.plain,
                                                 "score_after_diversity": scores.totals}
        self.recorder.add_pruned(group.alive, found.out.log_probs[index], scores.adjusted, selected, scores.totals,
                                 self._group_extra(g), named)
        return alive, rows, going_on

    def _add(self, group: BeamGroup, g: int, found: SearchStep, scores: GroupScores, i: int, token: int,
             ends: bool) -> "LiveNode":
        """Record the extension of the group's ``i``-th live hypothesis by ``token``, with the
        numbers its rules kept."""
        row, step = group.rows[i], found.step
        value = float(scores.adjusted[i, token])
        extra = self._group_extra(g)
        if scores.plain is not None:
            extra.update(score_before_diversity=float(scores.plain[i, token]),
                         score_after_diversity=float(scores.totals[i, token]))
        if self.anti is not None:
            extra.update(score_before_mmi=float(scores.totals[i, token]),
                         score_after_mmi=float(scores.ranked[i, token]), lm_logprob=float(scores.lm_step[i, token]))
        node = self.recorder.add_child(
            group.alive[i], row, found.views, token, float(found.out.log_probs[row, token]),
            float(scores.totals[i, token]), self.finish(value, step + 1) if ends and self.finish else value,
            "finished" if ends else "alive", extra)
        if self.anti is not None:
            node.lm_prefix = float(found.lm_prefix[row]) + float(scores.lm_step[i, token])
        return node

    def _group_extra(self, g: int) -> dict:
        """A node's ``extra`` to start with: its group, under diverse beam search."""
        return {"group": g} if self.settings.beam_groups > 1 else {}

    def _choose(self, groups: list[BeamGroup]) -> None:
        """The output: the best of each group's ``k`` best finished hypotheses (MMI-bidi reranks
        them first); the best ``num_return`` are returned."""
        pool = [n for group in groups for n in group.best(self.k)]
        if self.rule is not None and self.rule.reverse is not None:
            _rerank_bidi(self.model, self.encoded, pool, self.rule, self.recorder)
        best_first = sorted(pool, key=lambda n: -n.adjusted_score)
        self.recorder.choose(best_first[0])
        if self.settings.num_return > 1:
            self.recorder.returned = best_first[: self.settings.num_return]


def _candidates(adjusted: torch.Tensor, k: int, rng: Optional[torch.Generator]) -> list[tuple[int, int]]:
    """(rank, flat index) of the ``2k`` candidates of a beam step (``adjusted`` (B, V)), best score
    first: the top 2k, or with ``rng`` 2k drawn without replacement from softmax over all B·V scores
    (``generate``'s beam sampling; rank is then the order of the draw, and rows short of k beams are
    padded with impossible ones, as ``generate`` holds k copies of the first beam at step 0)."""
    flat = adjusted.reshape(-1)  # (B·V,)
    n_take = min(2 * k, int(torch.isfinite(flat).sum()))
    if rng is None:
        return list(enumerate(torch.topk(flat, n_take).indices.tolist()))
    padded = torch.full((k * adjusted.size(1),), NEG_INF, device=flat.device)  # (k·V,)
    padded[: flat.numel()] = flat
    probs = torch.softmax(padded[None].cpu(), -1)  # (1, k·V)
    drawn = torch.multinomial(probs, min(n_take, int((probs > 0).sum())), generator=rng)[0].tolist()
    values = flat.cpu()
    return sorted(enumerate(drawn), key=lambda pair: -float(values[pair[1]]))


def _rerank_bidi(model: Generator, encoded: Encoded, nodes: list["LiveNode"], rule: mmi.MMIRule,
                 recorder: "TreeRecorder") -> None:
    """MMI-bidi: each hypothesis's adjusted score becomes adjusted + λ·log p(S|T) (in place, in the
    tree too), the numbers kept in the node's ``extra``."""
    for node in nodes:
        words = [t for t in node.history if t != model.eos_id]
        reverse = rule.reverse_logprob(model.decode_text(words, encoded.oov_words))
        after = mmi.bidi_score(node.adjusted_score, reverse, rule.lam)
        recorder.nodes[node.id].extra.update(score_before_mmi=node.adjusted_score, score_after_mmi=after,
                                             reverse_logprob=reverse)
        node.adjusted_score = recorder.nodes[node.id].adjusted_score = after


def _check_possible(scores: torch.Tensor, step: int) -> None:
    """ValueError when the rules leave no possible token at ``step`` (e.g. a forced token the model
    cannot produce there, or a minimum length longer than the model can go)."""
    if not torch.isfinite(scores).any():
        raise ValueError(f"no token is possible at step {step} under these settings (a forced token the model "
                         "cannot produce there, or a minimum length longer than it can go)")


def _coverage_after(attention_sum: Optional[torch.Tensor], out: StepOutput) -> Optional[torch.Tensor]:
    """Running attention sum (B, S) including this step; multi-head attention is averaged."""
    attention = out.internals.get("attention")
    if attention is None:
        return None
    attention = attention.reshape(attention.size(0), -1, attention.size(-1)).mean(1)  # (B, S)
    return attention if attention_sum is None else attention_sum + attention


@dataclass
class LiveNode:
    """Bookkeeping for a recorded node during search."""

    id: int
    parent_node: Optional["LiveNode"]
    token_id: int
    score: float
    adjusted_score: float
    history: list[int]
    lm_prefix: float = 0.0  # MMI-antiLM: the reply LM's log-probability of the penalised tokens


class TreeRecorder:
    """Builds the trace's tree and steps while search runs.

    With ``settings.record`` off only the nodes needed to read back the output are kept (no
    internals, no candidates, no pruned nodes): the untraced baseline of the benchmark.
    """

    def __init__(self, model: Generator, encoded: Encoded, settings: DecodeSettings):
        self.model, self.encoded, self.settings = model, encoded, settings
        self.record = settings.record
        self.nodes: dict[int, BeamNode] = {}
        self.positions: dict[int, list[int]] = {}
        for pos, tok in enumerate(encoded.source_ids.tolist()):
            self.positions.setdefault(tok, []).append(pos)
        self.root = self._new(None, -1, model.bos_id, 0.0, 0.0, 0.0, "alive", None)
        self.chosen: Optional[LiveNode] = None
        self.returned: list[LiveNode] = []  # the best finished hypotheses when several are asked for
        self.extra_names: Optional[frozenset] = None  # internals without a typed Step field
        self.values_per_step: list[float] = []  # numbers one hypothesis recorded at the first steps
        self.compacted: Optional[tuple[int, int, int]] = None  # (L, H, S) of attention kept compact
        self.stage_rows: dict[int, tuple] = {}  # node id -> its step's processor stages (see _stage_row)

    def _new(self, parent: Optional[LiveNode], step: int, token_id: int, logprob: float, score: float,
             adjusted: float, status: str, internals: Optional[Step], extra: Optional[dict] = None) -> LiveNode:
        node_id = len(self.nodes)
        token = self.token(token_id)
        self.nodes[node_id] = BeamNode(node_id, parent.id if parent else None, step, token, token_id,
                                       logprob, score, adjusted, status, internals, extra or {})
        history = parent.history + [token_id] if parent else []
        return LiveNode(node_id, parent, token_id, score, adjusted, history)

    def token(self, token_id: int) -> str:
        """Text of an extended id."""
        return self.model.id_to_token(token_id, self.encoded.oov_words)

    def step_views(self, out: StepOutput, processors: Sequence = (), stages: Sequence[torch.Tensor] = ()) -> dict:
        """This step's internals as numpy arrays (one row per live hypothesis), computed once, with
        what the logits ``processors`` did (``stages``: the scores after each, (B, V_ext)) to the
        model's top :data:`STAGE_CANDIDATES` tokens. Every step passes here: the run's deadline and
        recorded-values limit are checked here."""
        limits.check_time()
        if not self.record:
            return {}
        c = self.settings.num_candidates
        top = torch.topk(out.log_probs, min(max(c, STAGE_CANDIDATES), out.log_probs.size(1)), dim=-1)  # (B, C')
        ids, stage_ids = top.indices[:, :c], top.indices[:, :STAGE_CANDIDATES]  # (B, C), (B, C_stages)
        on_device = {k: v.detach().float() for k, v in out.internals.items() if k not in _PROB_PARTS}
        if "attention" in on_device:
            on_device.update(self.compact(on_device.pop("attention")))
        on_device.update(top_ids=ids, top_logprobs=top.values[:, :c].float(), stage_ids=stage_ids,
                         **stage_scores(out.log_probs, stages, stage_ids))
        for part in _PROB_PARTS:
            if part in out.internals:
                on_device[part] = out.internals[part].gather(1, ids).float()  # (B, C)
        probs = out.log_probs.exp()  # (B, V_ext)
        on_device["entropy"] = -(probs * out.log_probs.clamp(min=-1e4)).sum(-1).float()  # (B,)
        views = {k: v.numpy() for k, v in _to_host(on_device).items()}
        if len(self.values_per_step) < 2:
            rows = max(out.log_probs.size(0), 1)
            self.values_per_step.append(sum(v.size for v in views.values()) / rows + c * PRUNED_NODE_VALUES)
            if len(self.values_per_step) == 2 or self.settings.max_len == 1:
                check_recorded_values(self.values_per_step, self.settings)
        views["stage_probs"], views["removed_at"] = stage_probs(views["stage_scores"], views["stage_norms"])
        views.update(stages=[out.log_probs, *stages],
                     processor_names=[p.label for p in processors])
        if self.extra_names is None:
            known = {*STEP_ARRAY_FIELDS, *STEP_SCALAR_FIELDS, *_PROB_PARTS}
            self.extra_names = frozenset(out.internals) - known
        return views

    def compact(self, attention: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"attention": attention}`` as it is, or, for (B, L, H, S) attention of more than
        :data:`COMPACT_ATTENTION_VALUES` numbers per hypothesis, the parts of a :class:`TopKAttention`
        per hypothesis (the shape is kept for the trace's notice)."""
        if attention.dim() != 4 or attention[0].numel() <= COMPACT_ATTENTION_VALUES:
            return {"attention": attention}
        self.compacted = tuple(attention.shape[1:])
        top = torch.topk(attention, min(ATTENTION_TOP_K, attention.size(-1)), dim=-1)  # (B, L, H, k) each
        return {"attention_positions": top.indices, "attention_weights": top.values,
                "attention_rest": attention.sum(-1) - top.values.sum(-1),  # (B, L, H)
                "attention_average": attention.mean(dim=(1, 2))}  # (B, S)

    def _step(self, views: dict, row: int, token_id: int, logprob: float) -> Optional[Step]:
        """The Step of hypothesis ``row``: typed fields for the common internals, every other
        internal by name in ``extra`` (scalars as floats, arrays as arrays)."""
        if not self.record:
            return None
        arrays = {k: views[k][row] for k in STEP_ARRAY_FIELDS if k in views}
        if _COMPACT_PARTS[0] in views:
            arrays["attention"] = TopKAttention(*(views[part][row] for part in _COMPACT_PARTS))
        scalars = {k: float(views[k][row]) for k in STEP_SCALAR_FIELDS if k in views}
        extra = {k: _plain(v[row]) for k, v in views.items() if k in self.extra_names}
        return Step(self.token(token_id), token_id, logprob, list(self.positions.get(token_id, [])),
                    candidates=self._candidates(views, row), extra=extra, **arrays, **scalars)

    def _candidates(self, views: dict, row: int) -> list[Candidate]:
        ids, lps = views["top_ids"][row], views["top_logprobs"][row]
        gen, copy = views.get("generate_probs"), views.get("copy_probs")
        return [
            Candidate(self.token(int(i)), int(i), float(lp),
                      float(gen[row, j]) if gen is not None else None,
                      float(copy[row, j]) if copy is not None else None)
            for j, (i, lp) in enumerate(zip(ids, lps))
        ]

    def add_child(self, parent: LiveNode, row: int, views: dict, token_id: int, logprob: float,
                  score: float, adjusted: float, status: str, extra: Optional[dict] = None) -> LiveNode:
        """Record a selected hypothesis (alive or finished) with its step internals (row ``row`` of
        ``views``) and the numbers its scoring rules kept (``extra``)."""
        step = len(parent.history)
        node = self._new(parent, step, token_id, logprob, score, adjusted, status,
                         self._step(views, row, token_id, logprob), extra)
        if self.record:
            self.stage_rows[node.id] = _stage_row(views, row, token_id)
        return node

    def add_pruned(self, parents: list, logprobs: torch.Tensor, adjusted: torch.Tensor, selected: list[set],
                   totals: torch.Tensor, extra: Optional[dict] = None,
                   named: Optional[dict[str, torch.Tensor]] = None) -> None:
        """Record each parent's top candidates that search did not keep; ``logprobs``, ``adjusted``,
        ``totals`` and each of ``named`` are (B, V), one row per parent. Every pruned node's
        ``extra`` holds ``extra`` and its own entry of each of ``named`` by name."""
        if not self.record:
            return
        k = min(self.settings.num_candidates, adjusted.size(1))
        top_adjusted, top_ids = torch.topk(adjusted, k, dim=-1)  # (B, C)
        top_logprobs = logprobs.gather(1, top_ids).tolist()
        top_totals = totals.gather(1, top_ids).tolist()
        top_named = {name: values.gather(1, top_ids).tolist() for name, values in (named or {}).items()}
        for row, parent in enumerate(parents):
            for j, (token_id, value) in enumerate(zip(top_ids[row].tolist(), top_adjusted[row].tolist())):
                if value == NEG_INF:
                    break
                if token_id not in selected[row]:
                    numbers = {name: values[row][j] for name, values in top_named.items()}
                    self._new(parent, len(parent.history), token_id, top_logprobs[row][j], top_totals[row][j],
                              value, "pruned", None, {**(extra or {}), **numbers})

    def choose(self, node: LiveNode) -> None:
        """Mark the output hypothesis."""
        self.nodes[node.id].status = "chosen"
        self.chosen = node

    def trace(self, timings: dict) -> GenerationTrace:
        """Assemble the trace; ``steps`` follow the chosen path (its last token may be ``</s>``)."""
        path = []
        node = self.chosen
        while node is not None and node.parent_node is not None:
            path.append(self.nodes[node.id])
            node = node.parent_node
        path.reverse()
        for node in path:
            if node.id in self.stage_rows:
                node.internals.processors = self._processor_stages(*self.stage_rows[node.id])
        output_tokens = [n.token for n in path]
        words = [n.token_id for n in path if n.token_id != self.model.eos_id]
        settings = asdict(self.settings)
        settings["topic_coverage"] = {str(k): v for k, v in self.settings.topic_coverage.items()}
        extra = dict(self.encoded.extra)
        if self.returned:
            extra["returned"] = [self._returned(node) for node in self.returned]
        return GenerationTrace(
            model=self.model.name,
            source_tokens=list(self.encoded.source_tokens),
            output_tokens=output_tokens,
            output_text=restore_case(self.model.decode_text(words, self.encoded.oov_words),
                                     self.encoded.extra.get("cased_forms", {})),
            steps=[n.internals for n in path] if self.record else [],
            beam=list(self.nodes.values()),
            settings=settings,
            timings=timings,
            topics=list(self.encoded.topics),
            truncated=self.encoded.truncated,
            notices=([f"input truncated to {self.model.max_source_len} tokens"] if self.encoded.truncated else [])
            + list(self.encoded.notices) + self.compact_notice(),
            encoder_attention=self.encoded.encoder_attention,
            architecture=self.model.features.architecture,
            oov_words=list(self.encoded.oov_words),
            extra=extra,
        )

    def compact_notice(self) -> list[str]:
        """What the trace says when its attention was kept compact (:meth:`compact`)."""
        if self.compacted is None:
            return []
        L, H, S = self.compacted
        return [f"attention over the {S:,} source tokens is kept compactly: per layer and head its "
                f"{min(ATTENTION_TOP_K, S)} most attended positions and the mass on the rest, and the exact "
                f"mean over the {L} layers × {H} heads (all of it would be {L * H * S:,} numbers per step, "
                f"over {COMPACT_ATTENTION_VALUES:,}); a single layer or head is drawn from its top positions"]

    def _processor_stages(self, names: list[str], ids: list[int], probs: np.ndarray,
                          removed: np.ndarray) -> ProcessorStages:
        """A step's :class:`ProcessorStages` from its :func:`_stage_row`."""
        return ProcessorStages(names, ids, [self.token(i) for i in ids], probs.copy(),  # not a view of all rows
                               [int(r) - 1 if r else None for r in removed])

    def _returned(self, node: LiveNode) -> dict:
        """One returned sequence: its leaf node id, tokens, ids, text and scores (and its group,
        under diverse beam search)."""
        ids = list(node.history)  # the generated tokens, this node's last
        words = [i for i in ids if i != self.model.eos_id]
        group = self.nodes[node.id].extra.get("group")
        return {"node_id": node.id, "tokens": [self.token(i) for i in ids], "token_ids": ids,
                "text": self.model.decode_text(words, self.encoded.oov_words), "score": node.score,
                "adjusted_score": node.adjusted_score, **({"group": group} if group is not None else {})}


def stage_scores(log_probs: torch.Tensor, stages: Sequence[torch.Tensor], ids: torch.Tensor) -> dict:
    """The scores of ``ids`` (B, C) under the model (``log_probs`` (B, V)) and after each of the
    processors' ``stages`` (each (B, V)), and each one's log-normaliser (the model's is 0; a
    processor that changed nothing returned its input, whose normaliser is known)."""
    every = [log_probs, *stages]
    norms = [torch.zeros_like(log_probs[:, 0])]  # (1 + R) × (B,)
    for before, after in zip(every, stages):
        norms.append(norms[-1] if after is before else after.logsumexp(-1))
    return {"stage_scores": torch.stack([s.gather(1, ids) for s in every], 1).float(),  # (B, 1 + R, C)
            "stage_norms": torch.stack(norms, 1).float()}  # (B, 1 + R)


def stage_probs(scores: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (..., 1 + R, C) from stage ``scores`` (..., 1 + R, C) and log-normalisers
    ``norms`` (..., 1 + R); and per token (..., C) the stage 1..R whose processor first made it
    impossible (−inf), 0 where none did."""
    possible = np.isfinite(scores)  # (..., 1 + R, C)
    with np.errstate(invalid="ignore", over="ignore"):
        probs = np.where(possible, np.exp(scores - norms[..., None]), 0.0)  # (..., 1 + R, C)
    kept = possible.cumprod(-2).sum(-2)  # (..., C): the stages it stays possible through, the model's first
    return probs, np.where(kept < scores.shape[-2], kept, 0)


def _stage_row(views: dict, row: int, token_id: int) -> tuple:
    """(processor names, token ids, probabilities (1 + R, C), removing stage (C,)) of hypothesis
    ``row``'s step, its chosen ``token_id`` appended when it is not among the top ids."""
    ids = views["stage_ids"][row].tolist()
    probs, removed = views["stage_probs"][row], views["removed_at"][row]
    if token_id not in ids:
        scores = torch.stack([s[row, token_id] for s in views["stages"]]).float().cpu().numpy()  # (1 + R,)
        more_probs, more_removed = stage_probs(scores[:, None], views["stage_norms"][row])
        ids = ids + [token_id]
        probs, removed = np.concatenate([probs, more_probs], 1), np.concatenate([removed, more_removed])
    return views["processor_names"], ids, probs, removed


def _to_host(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors on the host (those already there as they are; see :func:`gather_to_host`)."""
    return tensors if all(t.device.type == "cpu" for t in tensors.values()) else gather_to_host(tensors)


def gather_to_host(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors copied to the host in one transfer per dtype: flattened into one buffer on their
    device, copied, then split back into their shapes."""
    host = {}
    for dtype in {t.dtype for t in tensors.values()}:
        group = {name: t for name, t in tensors.items() if t.dtype == dtype}
        flat = torch.cat([t.reshape(-1) for t in group.values()]).cpu()
        parts = flat.split([t.numel() for t in group.values()])
        host.update({name: part.view(t.shape) for (name, t), part in zip(group.items(), parts)})
    return {name: host[name] for name in tensors}


def _plain(value: Any) -> Any:
    """A 0-d array as a float; other arrays as they are."""
    return float(value) if getattr(value, "ndim", 1) == 0 else value
