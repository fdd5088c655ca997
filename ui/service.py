"""App-side logic between raw request values and views: run a trace, render every view of it,
compare two runs. No Gradio here, so it is testable and timeable on its own."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import plotly.graph_objects as go

from gen_models.decoding import DecodeSettings, generate
from gen_models.text import tokenize
from gen_models.trace import GenerationTrace
from visualizers import (
    ViewOptions,
    attention_heatmap,
    attention_mask_figure,
    beam_tree_figure,
    compare_figure,
    copy_figure,
    coverage_figure,
    decoder_self_attention_figure,
    diff_html,
    empty_figure,
    encoder_attention_figure,
    head_grid_figure,
    hypothesis_figure,
    is_transformer_trace,
    output_html,
    topic_figure,
)

from .registry import ModelEntry, ModelRegistry
from .validation import clean_text, decode_settings

EMPTY_HINT = "Type or paste some text (e.g. a Debian package description), or pick an example."
ENCODER_ONLY_HINT = "an encoder-only model does not generate: its self-attention is in the Transformer tab"
SELECT_NODE_HINT = ("Click a node in the tree (or pick one above) to see that hypothesis's own attention, "
                    "coverage and p_gen; the chosen output's are in the other tabs.")


@dataclass
class TraceResult:
    """A decoding run for the app: the trace (None when there was nothing to decode) and notices."""

    trace: Optional[GenerationTrace]
    notices: list[str] = field(default_factory=list)
    hint: str = ""
    elapsed_ms: float = 0.0


@dataclass
class Views:
    """Every view of one trace, as figures and HTML."""

    output: str
    attention: go.Figure
    coverage: go.Figure
    copy: go.Figure
    beam: go.Figure
    hypothesis: go.Figure
    topics: Optional[go.Figure]
    heads: go.Figure
    self_attention: go.Figure
    encoder_attention: go.Figure
    mask: go.Figure
    node_id: Optional[int] = None
    transformer: bool = False

    def figures(self) -> dict[str, go.Figure]:
        """The figures by section title (for the report): the topic view only for topic models, the
        hypothesis view only when a node is selected, the Transformer views only for Transformers."""
        figures = {"Attention": self.attention, "Coverage": self.coverage, "Copy vs generate": self.copy,
                   "Topics": self.topics, "Search tree": self.beam,
                   f"Hypothesis at node {self.node_id}": self.hypothesis if self.node_id is not None else None}
        if self.transformer:
            figures.update({"Every head at the pinned step": self.heads,
                            "Decoder self-attention": self.self_attention,
                            "Encoder self-attention": self.encoder_attention, "Attention mask": self.mask})
        return {name: figure for name, figure in figures.items() if figure is not None}


def prepare(registry: ModelRegistry, model_name: Any, text: Any,
            settings_values: dict[str, Any], **interventions: Any) -> tuple[ModelEntry, str, DecodeSettings, list[str]]:
    """Validate a request: (model entry, capped text, settings, notices). ValueError names the problem."""
    entry = registry.get(model_name)
    text, notices = clean_text(text)
    return entry, text, decode_settings(settings_values, **interventions), notices


def run_trace(registry: ModelRegistry, model_name: Any, text: Any, settings_values: dict[str, Any],
              **interventions: Any) -> TraceResult:
    """Decode ``text`` with the named model; an input without tokens gives a hint instead."""
    start = time.perf_counter()
    entry, text, settings, notices = prepare(registry, model_name, text, settings_values, **interventions)
    if not tokenize(text):
        return TraceResult(None, notices, EMPTY_HINT)
    trace = generate(entry.model, text, settings)
    return TraceResult(trace, notices + list(trace.notices), "", 1e3 * (time.perf_counter() - start))


def rerun(entry: ModelEntry, text: str, settings: DecodeSettings, **changes: Any) -> GenerationTrace:
    """Decode again with some settings changed (interventions)."""
    return generate(entry.model, text, replace(settings, **changes).validate())


def render_views(trace: GenerationTrace, options: ViewOptions) -> Views:
    """All views of ``trace`` under ``options``; the hypothesis view shows ``options.node_id``
    (a hint to select one when it is None)."""
    chosen = replace(options, node_id=None)
    transformer = dict(heads=head_grid_figure(trace, chosen),
                       self_attention=decoder_self_attention_figure(trace, chosen),
                       encoder_attention=encoder_attention_figure(trace, chosen),
                       mask=attention_mask_figure(trace, options.mask_kind), transformer=is_transformer_trace(trace))
    if not trace.steps:
        hint = ENCODER_ONLY_HINT if trace.architecture == "encoder-only" else "no output steps"
        blank = empty_figure(hint)
        return Views(output=f"<div class='gs-output gs-empty'>{hint}.</div>", attention=blank,
                     coverage=blank, copy=blank, beam=blank, hypothesis=blank, topics=None, **transformer)
    return Views(
        output=output_html(trace, chosen),
        attention=attention_heatmap(trace, chosen),
        coverage=coverage_figure(trace, chosen),
        copy=copy_figure(trace, chosen),
        beam=beam_tree_figure(trace, options),
        hypothesis=hypothesis_figure(trace, replace(options, pinned_step=None)) if options.node_id is not None
        else empty_figure(SELECT_NODE_HINT, height=120),
        topics=topic_figure(trace, chosen) if has_topics(trace) else None,
        node_id=options.node_id,
        **transformer,
    )


def has_topics(trace: GenerationTrace) -> bool:
    """Whether the trace records topic attention (topic-to-text models)."""
    return bool(trace.steps) and all(step.topic_attention is not None for step in trace.steps)


def compare_runs(registry: ModelRegistry, text: Any, model_a: Any, values_a: dict[str, Any],
                 model_b: Any, values_b: dict[str, Any]) -> tuple[TraceResult, TraceResult]:
    """Run A and B on the same input; B's settings are A's with B's non-empty values on top."""
    merged = dict(values_a, **{k: v for k, v in values_b.items() if v is not None and v != ""})
    return run_trace(registry, model_a, text, values_a), run_trace(registry, model_b, text, merged)


def comparison_views(trace_a: GenerationTrace, trace_b: GenerationTrace, labels: tuple[str, str],
                     options: Optional[ViewOptions] = None) -> tuple[str, go.Figure]:
    """The step-aligned diff (HTML) and the side-by-side figure of two traces."""
    return diff_html(trace_a, trace_b, labels), compare_figure(trace_a, trace_b, options, labels)
