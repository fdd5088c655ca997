"""Every view, declared once: the app builds its tabs from ``VIEWS``, handlers return figures by
view name, and the report and export iterate it. A new view is a visualizer file plus one line here.

A view's ``figure(trace, options)`` returns a plotly figure (or HTML when ``html``); ``applies(trace)``
says whether the trace has what it draws (views that do not apply are hidden, never drawn empty);
``click`` names what the ``customdata`` of a clicked point is: "step" (pin it), "node" (select that
search-tree node), "input" (a text to decode: it replaces the input), "keyword" (a keyword to
decode around: it replaces the keyword) or "token" (``[step, token id]``: that token is forced at
that step of the output and the rest decoded again, the alternative-token intervention). Views
with ``node`` draw ``options.node_id``'s hypothesis; the others always the chosen output. A
``needs_node`` view shows a hint until a node is selected and is left out of reports then; its
``title`` may name ``{node_id}``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from gen_models.trace import GenerationTrace

from .attention import attention_heatmap
from .beam_tree import beam_tree_figure, hypothesis_figure
from .caption import attention_total_figure, caption_strip_figure, has_image, word_attention_figure
from .common import ViewOptions, empty_figure
from .copy import copy_figure
from .coverage import coverage_figure
from .hull import has_points, hull_figure
from .keywords import gate_figure, has_gate, has_keyword, keyword_candidates_figure, reading_order_figure
from .latent import has_latent, has_map, homotopy_figure, kl_figure, latent_map_figure, samples_figure
from .memory import has_hops, hop_figure
from .ntm import bits_figure, has_copy_target, has_weightings, memory_figure, weightings_figure
from .probability import has_reference, probability_figure, reference_figure
from .sampling import has_processor_stages, sampling_rules_figure
from .topics import topic_figure
from .transformer import (
    attention_mask_figure,
    decoder_self_attention_figure,
    encoder_attention_figure,
    head_grid_figure,
    is_transformer_trace,
)

SELECT_NODE_HINT = ("Click a node in the tree (or pick one above) to see that hypothesis's own attention, "
                    "coverage and p_gen; the chosen output's are in the other tabs.")


def has_steps(trace: GenerationTrace) -> bool:
    """Whether anything was generated."""
    return bool(trace.steps)


def has_attention(trace: GenerationTrace) -> bool:
    """Whether every step records attention over the source."""
    return trace.has_attention


def reads_a_memory(trace: GenerationTrace) -> bool:
    """Whether the attention is over a memory (story sentences, NTM locations), not over tokens."""
    return has_hops(trace) or has_weightings(trace) or has_copy_target(trace)


def chooses_words(trace: GenerationTrace) -> bool:
    """Whether the model writes words from a vocabulary while it attends to tokens that it could
    copy (not a pointer network, a captioner, or a memory model, whose steps copy nothing)."""
    return has_attention(trace) and not (has_points(trace) or has_image(trace) or reads_a_memory(trace))


def has_self_attention(trace: GenerationTrace) -> bool:
    """Whether the steps record a Transformer decoder's self-attention."""
    return bool(trace.steps) and all(step.self_attention is not None for step in trace.steps)


@dataclass(frozen=True)
class View:
    """One view of a trace (see the module docstring)."""

    name: str
    tab: str
    title: str
    figure: Callable[[GenerationTrace, ViewOptions], Any]
    applies: Callable[[GenerationTrace], bool] = has_steps
    click: Optional[str] = None
    node: bool = False
    needs_node: bool = False
    html: bool = False

    def render(self, trace: GenerationTrace, options: ViewOptions) -> Any:
        """The view of ``trace``: the selected node's hypothesis for node views, else the output's."""
        return self.figure(trace, options if self.node else replace(options, node_id=None))


def _hypothesis(trace: GenerationTrace, options: ViewOptions) -> Any:
    if options.node_id is None:
        return empty_figure(SELECT_NODE_HINT, height=120)
    return hypothesis_figure(trace, replace(options, pinned_step=None))


VIEWS: list[View] = [
    View("attention", "Attention", "Attention", attention_heatmap, has_attention, click="step"),
    View("topics", "Coverage", "Topics", topic_figure, lambda t: t.has_topics, click="step"),
    View("coverage", "Coverage", "Coverage", coverage_figure, lambda t: has_attention(t) and not has_hops(t),
         click="step"),  # a memory network answers in a word: its hops are in the Memory tab
    View("copy", "Copy / generate", "Copy vs generate", copy_figure, chooses_words, click="step"),
    View("probability", "Probabilities", "Step probabilities", probability_figure, has_steps, click="step"),
    View("reference", "Probabilities", "Reference mode", reference_figure, has_reference, click="step"),
    View("sampling", "Probabilities", "Sampling rules", sampling_rules_figure, has_processor_stages, click="token"),
    View("beam", "Beam tree", "Search tree", beam_tree_figure, has_steps, click="node", node=True),
    View("hypothesis", "Beam tree", "Hypothesis at node {node_id}", _hypothesis, has_steps, node=True,
         needs_node=True),
    View("heads", "Transformer", "Every head at the pinned step", head_grid_figure,
         lambda t: t.heads is not None and bool(t.steps)),
    View("self_attention", "Transformer", "Decoder self-attention", decoder_self_attention_figure,
         has_self_attention, click="step"),
    View("encoder_attention", "Transformer", "Encoder self-attention", encoder_attention_figure,
         lambda t: t.encoder_attention is not None),
    View("mask", "Transformer", "Attention mask", lambda t, o: attention_mask_figure(t, o.mask_kind),
         is_transformer_trace),
    View("hull", "Convex hull", "Points and hull", hull_figure, has_points, click="step"),
    View("pointer", "Convex hull", "Pointer distribution per step", attention_heatmap, has_points, click="step"),
    View("picture", "Picture", "Attention on the picture", word_attention_figure, has_image, click="step"),
    View("caption_strip", "Picture", "Attention for every word", caption_strip_figure, has_image, click="step"),
    View("attention_total", "Picture", "Total attention per region", attention_total_figure, has_image),
    View("keywords", "Keyword", "Candidate keywords", keyword_candidates_figure, has_keyword, click="keyword"),
    View("reading_order", "Keyword", "Reply in reading order", reading_order_figure, has_keyword, click="step"),
    View("gate", "Keyword", "Fusion gate", gate_figure, has_gate, click="step"),
    View("latent_map", "Latent space", "Latent map", latent_map_figure, has_map, click="input"),
    View("homotopy", "Latent space", "Homotopy", homotopy_figure, has_latent),
    View("kl_dims", "Latent space", "KL per latent dimension", kl_figure, has_latent),
    View("prior_samples", "Latent space", "Samples from the prior", samples_figure, has_latent),
    View("hops", "Memory", "Attention per hop over the story", hop_figure, has_hops),
    View("ntm_weightings", "Memory", "Write and read weightings", weightings_figure, has_weightings, click="step"),
    View("ntm_memory", "Memory", "Memory at the pinned step", memory_figure, has_weightings),
    View("copy_bits", "Memory", "Copied bits", bits_figure, has_copy_target, click="step"),
]


def register_view(view: View) -> View:
    """Add a view (e.g. a plug-in's or a test's) after the built-in ones; names must be unique."""
    if any(v.name == view.name for v in VIEWS):
        raise ValueError(f"a view named {view.name!r} is already registered")
    VIEWS.append(view)
    return view


def view_named(name: Any) -> Optional[View]:
    """The registered view called ``name`` (None if there is none)."""
    return next((v for v in VIEWS if v.name == name), None)


def tabs() -> list[str]:
    """Tab titles in registry order."""
    return list(dict.fromkeys(v.tab for v in VIEWS))


def report_figures(trace: GenerationTrace, options: ViewOptions) -> dict[str, Any]:
    """The figures of a report by section title: every view that applies and has something to show."""
    return {view.title.format(node_id=options.node_id): view.render(trace, options) for view in VIEWS
            if view.applies(trace) and not view.html and (options.node_id is not None or not view.needs_node)}


def render_views(trace: GenerationTrace, options: ViewOptions, tab: Optional[str] = None) -> dict[str, Any]:
    """Figures by view name for the views that apply to ``trace`` (those of ``tab`` only, when
    given); views that do not apply map to None."""
    return {view.name: view.render(trace, options) if view.applies(trace) else None
            for view in VIEWS if tab is None or view.tab == tab}
