"""Gradio event handlers: raw component values in, component values out.

Every handler validates its inputs server-side and never lets an exception reach the user: a bad
parameter becomes a warning toast plus a status message naming the limit; anything unexpected is
logged and reported as an internal error. Outputs are tuples in the order app.py wires them (each
method's docstring lists them). "VIEWS" is the tuple built by :meth:`Handlers.render`; "VIEW
OPTIONS" are the inputs named in ``VIEW_OPTION_NAMES``.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import gradio as gr
import numpy as np

from gen_models.trace import GenerationTrace
from visualizers import MASK_KINDS, ViewOptions, empty_figure, standalone_report, training_curves

from .interventions import (
    Intervention,
    force_p_gen,
    reset_coverage,
    set_topic_coverage,
    take_alternative,
)
from .model_card import card_markdown
from .neighbors import NeighborIndex
from .plots import IMAGE_FORMATS, plot_payload
from .registry import ModelRegistry
from .service import TraceResult, compare_runs, comparison_views, prepare, render_views, run_trace
from .validation import SETTING_NAMES, as_float, as_int, optional_node, p_gen_choice, settings_dict, step_index

LOG = logging.getLogger("genscope.app")
MAX_NODE_CHOICES = 1500
MAX_REPEAT_NGRAM = 6
EXPORT_MAX_AGE_S = 3600
CHOSEN_NODE = -1
MEAN = "mean"
N_SETTINGS = len(SETTING_NAMES)
VIEW_OPTION_NAMES = ("repeat_ngram_marks", "show_pruned", "image_format", "layer", "head", "mask_kind")
N_VIEWS = 12
OWN_MASK = "own"
DEFAULT_INPUT_HINT = "Type or paste text; the output updates as you type."
DEFAULT_EXAMPLE = ("libjson-c5: JSON manipulation library for C. This library allows you to easily construct "
                   "JSON objects in C, output them as JSON formatted strings and parse JSON formatted strings "
                   "back into the C representation of JSON objects.")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def markdown_text(text: str) -> str:
    """Plain text made inert inside Markdown."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def notices_markdown(notices: list[str]) -> str:
    """Notices as warning paragraphs."""
    return "".join(f"\n\n⚠ {markdown_text(n)}" for n in notices)


def guarded(n_outputs: int, status_at: int, cleared: Optional[dict[int, Any]] = None, toast: bool = True) -> Callable:
    """Turn errors of a handler into a status message (and a warning toast unless ``toast`` is
    off, as for the live trace, which would raise one per keystroke); other outputs are left as they
    are (``gr.skip()``) except ``cleared`` ones, which get the given value."""
    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except (ValueError, FileNotFoundError) as error:
                message = str(error)
                if toast:
                    gr.Warning(message)
            except Exception:  # the user must never see a traceback
                LOG.exception("handler %s failed", handler.__name__)
                message = "internal error while handling this request (details are in the server log)"
            outputs = [gr.skip()] * n_outputs
            outputs[status_at] = f"⚠ {markdown_text(message)}"
            for index, value in (cleared or {}).items():
                outputs[index] = value
            return tuple(outputs) if n_outputs > 1 else outputs[0]
        return run
    return wrap


def api_parameters(*extra: str) -> Callable:
    """Name the parameters of a ``(self, model, text, *values)`` handler for the API docs and
    clients: model, text, the decode settings (``SETTING_NAMES``), then ``extra``."""
    names = ("self", "model", "text", *SETTING_NAMES, *extra)

    def wrap(handler: Callable) -> Callable:
        handler.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names])
        return handler
    return wrap


def clamp_step(value: Any, n_steps: int) -> int:
    """The pinned step kept inside the output (0 when unset or unreadable)."""
    try:
        step = int(float(value))
    except (TypeError, ValueError):
        step = 0
    return min(max(step, 0), max(n_steps - 1, 0))


def attention_heads(trace: GenerationTrace) -> Optional[tuple[int, int]]:
    """(layers, heads) when the trace has multi-head (L, H, S) attention (or, for encoder-only
    models, an (L, H, S, S) encoder attention), else None."""
    if not trace.steps:
        shape = np.shape(trace.encoder_attention) if trace.encoder_attention is not None else ()
        return (shape[0], shape[1]) if len(shape) == 4 else None
    if trace.steps[0].attention is None:
        return None
    shape = np.shape(trace.steps[0].attention)
    return (shape[0], shape[1]) if len(shape) == 3 else None


def head_index(name: str, value: Any, count: Optional[int]) -> Optional[int]:
    """A layer/head index within ``count``, or None for the mean (ValueError naming the range)."""
    if value is None or value == "" or value == MEAN or count is None:
        return None
    index = as_float(name, value)
    if not index.is_integer() or not 0 <= index < count:
        raise ValueError(f"{name} must be '{MEAN}' or a whole number between 0 and {count - 1}, got {value!r}")
    return int(index)


def mask_kind(value: Any) -> Optional[str]:
    """The attention-mask layout to show: None for the model's own (ValueError naming the choices)."""
    if value is None or value == "" or value == OWN_MASK:
        return None
    if value not in MASK_KINDS:
        raise ValueError(f"mask kind must be one of {', '.join([OWN_MASK, *MASK_KINDS])}, got {str(value)[:40]!r}")
    return value


def view_options(trace: GenerationTrace, pinned: Any, node: Any, repeat_n: Any, show_pruned: Any,
                 layer: Any = None, head: Any = None, mask: Any = None) -> ViewOptions:
    """Validated view options for ``trace`` (the pinned step is clamped into the output)."""
    repeat = as_int("repeat n-gram size", 3 if repeat_n is None else repeat_n)
    if not 0 <= repeat <= MAX_REPEAT_NGRAM:
        raise ValueError(f"repeat n-gram size must be between 0 and {MAX_REPEAT_NGRAM}, got {repeat_n!r}")
    heads = attention_heads(trace)
    return ViewOptions(pinned_step=clamp_step(pinned, len(trace.steps)) if trace.steps else None,
                       node_id=optional_node(node, {n.id for n in trace.beam}), repeat_ngram=repeat,
                       show_pruned=True if show_pruned is None else bool(show_pruned),
                       layer=head_index("layer", layer, heads[0] if heads else None),
                       head=head_index("head", head, heads[1] if heads else None), mask_kind=mask_kind(mask))


def image_format_of(value: Any) -> str:
    """The plot export format (ValueError naming the choices otherwise)."""
    value = value or "png"
    if value not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {str(value)[:20]!r}")
    return value


def node_choices(trace: GenerationTrace) -> list[tuple[str, int]]:
    """Dropdown choices: the chosen output, then its path, then the other nodes by step."""
    chosen = trace.chosen_path()
    on_path = set(chosen)
    others = sorted((n for n in trace.beam if n.id not in on_path), key=lambda n: (n.step, -n.adjusted_score))
    choices = [("chosen output", CHOSEN_NODE)]
    for node in [trace.node(i) for i in chosen[1:]] + others[:MAX_NODE_CHOICES]:
        choices.append((f"#{node.id} · step {node.step} · {node.token} · {node.adjusted_score:.2f} ({node.status})",
                        node.id))
    return choices


def alternative_choices(trace: GenerationTrace, step: Optional[int]) -> list[tuple[str, int]]:
    """The pinned step's candidates other than the chosen token, with their probabilities."""
    if step is None or not trace.steps:
        return []
    chosen = trace.steps[step]
    return [(f"{c.token}  (p={float(np.exp(c.logprob)):.3f})", c.token_id)
            for c in chosen.candidates if c.token_id != chosen.token_id]


def head_controls(trace: Optional[GenerationTrace], layer: Any, head: Any) -> tuple:
    """Layer and head dropdowns: shown (with their choices) only for multi-head attention."""
    heads = attention_heads(trace) if trace is not None else None
    if heads is None:
        return (gr.Dropdown(choices=[MEAN], value=MEAN, visible=False),
                gr.Dropdown(choices=[MEAN], value=MEAN, visible=False))
    return (gr.Dropdown(choices=[MEAN, *range(heads[0])], value=_kept(layer, heads[0]), visible=True),
            gr.Dropdown(choices=[MEAN, *range(heads[1])], value=_kept(head, heads[1]), visible=True))


def _kept(value: Any, count: int) -> Any:
    """A layer/head choice that still exists, else the mean."""
    return value if isinstance(value, int) and 0 <= value < count else MEAN


def topic_choices(trace: Optional[GenerationTrace]) -> gr.Dropdown:
    """The topic dropdown of the topic-coverage intervention (topics of topic models only)."""
    if trace is None or not trace.steps or trace.steps[0].topic_attention is None:
        return gr.Dropdown(choices=[], value=None)
    topics = trace.topics or trace.source_tokens
    return gr.Dropdown(choices=[(t, i) for i, t in enumerate(topics)], value=0)


def status_markdown(result: TraceResult) -> str:
    """One line of facts about a run plus its notices."""
    trace = result.trace
    if trace.architecture == "encoder-only":
        return (f"✓ encoded in **{result.elapsed_ms:.0f} ms** · encoder-only model: it does not generate; its "
                f"self-attention over the {len(trace.source_tokens)} source tokens is in the Transformer tab"
                + notices_markdown(result.notices))
    settings = trace.settings
    search = {"beam": f"beam search, {settings.get('beam_size')} beams", "greedy": "greedy",
              "sample": f"sampling (seed {settings.get('seed')})"}.get(settings.get("strategy"), "?")
    line = (f"✓ decoded in **{result.elapsed_ms:.0f} ms** · {search} · {len(trace.steps)} output tokens · "
            f"{len(trace.source_tokens)} source tokens · {len(trace.beam)} search-tree nodes")
    return line + notices_markdown(result.notices)


class Handlers:
    """The app's event handlers over one model registry."""

    def __init__(self, registry: ModelRegistry, neighbors: Optional[NeighborIndex] = None):
        self.registry = registry
        self.neighbors = neighbors or NeighborIndex()
        self.export_dir = Path(tempfile.gettempdir()) / f"genscope-exports-{os.getpid()}"

    # -- the live trace and its views --------------------------------------------------------
    def render(self, trace: Optional[GenerationTrace], options: ViewOptions, image_format: str) -> tuple:
        """VIEWS: output HTML, attention, coverage, copy, topics (shown for topic models only), beam
        tree, hypothesis, alternatives, then the Transformer views: every head at the pinned step,
        decoder self-attention, encoder self-attention, attention mask."""
        if trace is None:
            blank = plot_payload(empty_figure("no output yet"), image_format)
            return ("<div class='gs-output gs-empty'>No output yet.</div>", blank, blank, blank,
                    gr.Plot(visible=False), blank, blank, gr.Dropdown(choices=[], value=None), *[blank] * 4)
        views = render_views(trace, options)
        payload = functools.partial(plot_payload, image_format=image_format)
        topics = gr.Plot(payload(views.topics, filename="topics"), visible=True) if views.topics else \
            gr.Plot(visible=False)
        alternatives = alternative_choices(trace, options.pinned_step)
        return (views.output, payload(views.attention, filename="attention"),
                payload(views.coverage, filename="coverage"), payload(views.copy, filename="copy-vs-generate"),
                topics, payload(views.beam, filename="beam-tree"),
                payload(views.hypothesis, filename="hypothesis"),
                gr.Dropdown(choices=alternatives, value=alternatives[0][1] if alternatives else None),
                payload(views.heads, filename="attention-heads"),
                payload(views.self_attention, filename="decoder-self-attention"),
                payload(views.encoder_attention, filename="encoder-self-attention"),
                payload(views.mask, filename="attention-mask"))

    @api_parameters("pinned_step", *VIEW_OPTION_NAMES)
    @guarded(8 + N_VIEWS, status_at=2, cleared={1: ""}, toast=False)
    def trace(self, model: Any, text: Any, *values: Any) -> tuple:
        """trace state, trace JSON, status, pinned step, node, layer, head, topic, then VIEWS."""
        return self._trace(model, text, values, with_json=True)

    @guarded(7 + N_VIEWS, status_at=1, toast=False)
    def trace_live(self, model: Any, text: Any, *values: Any) -> tuple:
        """:meth:`trace`'s outputs without the trace JSON, for the browser's live updates: only API
        clients read the JSON, and it is 100–300 kB per keystroke."""
        outputs = self._trace(model, text, values, with_json=False)
        return outputs[:1] + outputs[2:]

    def _trace(self, model: Any, text: Any, values: tuple, with_json: bool) -> tuple:
        settings, (pinned, repeat_n, show_pruned, image_format, layer, head, mask) = \
            values[:N_SETTINGS], values[N_SETTINGS:]
        image_format = image_format_of(image_format)
        result = run_trace(self.registry, model, text, settings_dict(*settings))
        if result.trace is None:
            hint = "✎ " + result.hint + notices_markdown(result.notices)
            return (None, "", hint, gr.Slider(value=0, maximum=1), gr.Dropdown(choices=[], value=None),
                    *head_controls(None, layer, head), topic_choices(None),
                    *self.render(None, ViewOptions(), image_format))
        trace = result.trace
        heads = attention_heads(trace) or (0, 0)
        layer, head = _kept(layer, heads[0]), _kept(head, heads[1])
        options = view_options(trace, pinned, None, repeat_n, show_pruned, layer, head, mask)
        rendered = self.render(trace, options, image_format)
        return (trace, trace.to_json() if with_json else "", status_markdown(result),
                gr.Slider(value=options.pinned_step or 0, maximum=max(len(trace.steps) - 1, 1)),
                gr.Dropdown(choices=node_choices(trace), value=CHOSEN_NODE), *head_controls(trace, layer, head),
                topic_choices(trace), *rendered)

    @guarded(1 + N_VIEWS, status_at=0)
    def views(self, trace: Optional[GenerationTrace], pinned: Any, node: Any, *view_values: Any) -> tuple:
        """status, then VIEWS re-rendered for a new pin / node / view option."""
        repeat_n, show_pruned, image_format, layer, head, mask = view_values
        if trace is None:
            return (gr.skip(), *self.render(None, ViewOptions(), image_format_of(image_format)))
        options = view_options(trace, pinned, node, repeat_n, show_pruned, layer, head, mask)
        return (gr.skip(), *self.render(trace, options, image_format_of(image_format)))

    @guarded(3 + N_VIEWS, status_at=0)
    def plot_click(self, trace: Optional[GenerationTrace], pinned: Any, node: Any, repeat_n: Any, show_pruned: Any,
                   image_format: Any, layer: Any, head: Any, mask: Any, event: gr.EventData) -> tuple:
        """status, pinned step, node, then VIEWS: a click on a heatmap row or p_gen bar pins that
        step; a click on a beam-tree node selects it."""
        if trace is None:
            return (gr.skip(),) * (3 + N_VIEWS)
        pinned, node = clicked_selection(getattr(event, "_data", None) or {}, pinned, node)
        options = view_options(trace, pinned, node, repeat_n, show_pruned, layer, head, mask)
        node_value = CHOSEN_NODE if options.node_id is None else options.node_id
        return (gr.skip(), options.pinned_step, node_value, *self.render(trace, options, image_format_of(image_format)))

    @guarded(2 + N_VIEWS, status_at=0)
    def token_click(self, trace: Optional[GenerationTrace], node: Any, repeat_n: Any, show_pruned: Any,
                    image_format: Any, layer: Any, head: Any, mask: Any, event: gr.EventData) -> tuple:
        """status, pinned step, then VIEWS: a click on an output token pins its step."""
        data = getattr(event, "_data", None) or {}
        if trace is None or "step" not in data:
            return (gr.skip(),) * (2 + N_VIEWS)
        step = step_index(data["step"], len(trace.steps))
        options = view_options(trace, step, node, repeat_n, show_pruned, layer, head, mask)
        return (gr.skip(), step, *self.render(trace, options, image_format_of(image_format)))

    # -- interventions and comparison ----------------------------------------------------------
    def _intervene(self, model: Any, text: Any, settings: tuple, run: Callable) -> tuple:
        """Decode the original, apply ``run(entry, text, original, settings)``, show both."""
        entry, text, decode, notices = prepare(self.registry, model, text, settings_dict(*settings))
        original = run_trace(self.registry, model, text, settings_dict(*settings)).trace
        if original is None or not original.steps:
            raise ValueError("there is no output to intervene on yet: type some input first")
        outcome: Intervention = run(entry, text, original, decode)
        diff, figure = comparison_views(outcome.original, outcome.changed, ("original", outcome.label))
        status = f"✓ re-decoded with {markdown_text(outcome.label)}" + notices_markdown(notices + outcome.notices)
        return diff, plot_payload(figure, filename="intervention"), status

    @api_parameters("step", "token")
    @guarded(3, status_at=2)
    def intervene_token(self, model: Any, text: Any, *values: Any) -> tuple:
        """diff HTML, comparison plot, status: take ``token`` (an id or a token text) at ``step``
        and decode the rest."""
        settings, (step, token) = values[:N_SETTINGS], values[N_SETTINGS:]
        return self._intervene(model, text, settings, lambda e, t, o, s: take_alternative(e, t, o, s, step, token))

    @api_parameters("p_gen")
    @guarded(3, status_at=2)
    def intervene_p_gen(self, model: Any, text: Any, *values: Any) -> tuple:
        """diff HTML, comparison plot, status: decode with p_gen forced ("0", "1" or "model")."""
        settings, (choice,) = values[:N_SETTINGS], values[N_SETTINGS:]
        value = p_gen_choice(choice)
        return self._intervene(model, text, settings, lambda e, t, o, s: force_p_gen(e, t, o, s, value))

    @api_parameters("step")
    @guarded(3, status_at=2)
    def intervene_coverage(self, model: Any, text: Any, *values: Any) -> tuple:
        """diff HTML, comparison plot, status: decode with coverage zeroed before ``step``."""
        settings, (step,) = values[:N_SETTINGS], values[N_SETTINGS:]
        return self._intervene(model, text, settings, lambda e, t, o, s: reset_coverage(e, t, o, s, step))

    @api_parameters("step", "topic", "value")
    @guarded(3, status_at=2)
    def intervene_topic(self, model: Any, text: Any, *values: Any) -> tuple:
        """diff HTML, comparison plot, status: overwrite topic ``topic``'s coverage with ``value``
        before ``step`` (topic-to-text models)."""
        settings, (step, topic, value) = values[:N_SETTINGS], values[N_SETTINGS:]
        return self._intervene(model, text, settings,
                               lambda e, t, o, s: set_topic_coverage(e, t, o, s, step, topic, value))

    @api_parameters("model_b", "strategy_b", "beam_size_b", "length_penalty_b", "coverage_penalty_b",
                    "no_repeat_ngram_b")
    @guarded(3, status_at=2)
    def compare(self, model: Any, text: Any, *values: Any) -> tuple:
        """diff HTML, comparison plot, status for run A (the main settings) vs run B (another
        model and/or search settings; empty values inherit A's)."""
        settings, (model_b, *b_values) = values[:N_SETTINGS], values[N_SETTINGS:]
        names_b = ("strategy", "beam_size", "length_penalty", "coverage_penalty", "no_repeat_ngram")
        model_b = model_b or model
        run_a, run_b = compare_runs(self.registry, text, model, settings_dict(*settings), model_b,
                                    dict(zip(names_b, b_values)))
        if run_a.trace is None or run_b.trace is None:
            raise ValueError(run_a.hint or run_b.hint or "nothing to compare")
        diff, figure = comparison_views(run_a.trace, run_b.trace, (f"A: {model}", f"B: {model_b}"))
        status = f"✓ A {run_a.elapsed_ms:.0f} ms · B {run_b.elapsed_ms:.0f} ms" + notices_markdown(
            run_a.notices + run_b.notices)
        return diff, plot_payload(figure, filename="compare"), status

    # -- side panels ---------------------------------------------------------------------------
    @guarded(5, status_at=2)
    def model_card(self, model: Any, text: Any = None) -> tuple:
        """training-curves plot, card Markdown, status, examples dropdown, input box. An input
        that is empty or still some model's example becomes this model's first example."""
        entry = self.registry.get(model)
        examples = [(_short(e), e) for e in entry.examples]
        label = f"Input — {entry.task}" if entry.task else "Input"
        known = {DEFAULT_EXAMPLE} | {e for other in self.registry.entries.values() for e in other.examples}
        untouched = not isinstance(text, str) or not text.strip() or text in known
        swap = {"value": entry.examples[0]} if entry.examples and untouched and text != entry.examples[0] else {}
        return (plot_payload(training_curves(entry.metrics), filename=f"{entry.name}-curves"),
                card_markdown(entry), f"model **{markdown_text(entry.name)}** loaded",
                gr.Dropdown(choices=examples, value=None),
                gr.Textbox(label=label, placeholder=entry.input_hint or DEFAULT_INPUT_HINT, **swap))

    @guarded(2, status_at=1)
    def nearest_examples(self, model: Any, text: Any) -> tuple:
        """rows (score, source, target) of the nearest training pairs, status."""
        entry, text, _, _ = prepare(self.registry, model, text, {})
        if entry.train_data is None:
            return [], (f"{markdown_text(entry.name)} has no `train_data` in its config.json: "
                        "nearest training examples are not available.")
        start = time.perf_counter()
        index = self.neighbors.get(entry.train_data)
        found = index.search(text)
        rows = [[round(n.score, 2), n.src, n.tgt] for n in found]
        note = f" ({markdown_text(index.notice)})" if index.notice else ""
        what = f"{len(found)} nearest training pairs" if found else "no training pair shares a word with the input"
        return rows, f"{what} by BM25 in {1e3 * (time.perf_counter() - start):.0f} ms{note}"

    def pick_example(self, example: Any) -> Any:
        """The chosen example text into the input box (nothing when cleared)."""
        return example if isinstance(example, str) and example else gr.skip()

    # -- export --------------------------------------------------------------------------------
    @guarded(2, status_at=1)
    def export_trace(self, trace: Optional[GenerationTrace]) -> tuple:
        """trace JSON file, status."""
        if trace is None:
            raise ValueError("there is no trace to export yet: type some input first")
        path = self._export_path(trace, ".json")
        path.write_text(trace.to_json(indent=1), encoding="utf-8")
        return str(path), "trace JSON ready"

    @guarded(2, status_at=1)
    def export_report(self, trace: Optional[GenerationTrace], pinned: Any, node: Any, *view_values: Any) -> tuple:
        """standalone HTML report file of the current views, status."""
        repeat_n, show_pruned, image_format, layer, head, mask = view_values
        if trace is None:
            raise ValueError("there is no trace to report on yet: type some input first")
        options = view_options(trace, pinned, node, repeat_n, show_pruned, layer, head, mask)
        views = render_views(trace, options)
        report = standalone_report(trace, views.figures(), replace(options, node_id=None),
                                   image_format_of(image_format))
        path = self._export_path(trace, ".html")
        path.write_text(report, encoding="utf-8")
        return str(path), "HTML report ready (self-contained, works offline)"

    def _export_path(self, trace: GenerationTrace, suffix: str) -> Path:
        """A fresh file in this process's export folder; files older than an hour are removed."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self.export_dir.iterdir():
            if now - old.stat().st_mtime > EXPORT_MAX_AGE_S:
                old.unlink(missing_ok=True)
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", trace.model)[:60]
        handle = tempfile.NamedTemporaryFile(dir=self.export_dir, prefix=f"genscope-{safe_name}-", suffix=suffix,
                                             delete=False)
        handle.close()
        return Path(handle.name)


def clicked_selection(data: dict, pinned: Any, node: Any) -> tuple[Any, Any]:
    """(pinned step, node) after a plot click: rows and bars carry "step · token" labels, tree
    nodes carry their id as customdata."""
    plot = data.get("plot")
    if plot == "beam" and data.get("customdata") is not None:
        return pinned, data["customdata"]
    label = {"attention": data.get("y"), "self_attention": data.get("y"),
             "coverage": data.get("y") if data.get("yaxis") == "y" else None,
             "copy": data.get("x") if data.get("xaxis") == "x" else None}.get(plot)
    match = re.match(r"\s*(\d+) · ", str(label)) if label is not None else None
    return (int(match.group(1)) if match else pinned), node


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
