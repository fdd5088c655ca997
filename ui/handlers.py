"""Gradio event handlers: raw component values in, component values out.

Every handler validates its inputs server-side and never lets an exception reach the user: a bad
parameter becomes a warning toast plus a status message naming the limit; anything unexpected is
logged and reported as an internal error. Handlers return dicts keyed by output *name* (the view
names of ``visualizers.registry.VIEWS``, ``"status"``, ``"pinned"``, …); app.py maps names to
components, and a name left out keeps its component as it is. Inputs arrive positionally in the
orders ``SETTING_NAMES`` (decoding settings) and ``VIEW_OPTION_NAMES`` (view options).
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Optional

import gradio as gr
import numpy as np

from gen_models import mmi
from gen_models.corpus import mark_safe_replies, read_examples, reference_of, source_of, summary, trace_row
from gen_models.decoding import BEAM_STRATEGIES, COMPARE_NAMES, SETTING_FIELDS, SETTING_NAMES
from gen_models.limits import TimeLimitExceeded
from gen_models.trace import GenerationTrace
from visualizers import MASK_KINDS, TREE_FOCI, ViewOptions, empty_figure, output_html, standalone_report, training_curves
from visualizers.report import typed_source
from visualizers.attribution import attribution_figure, logit_lens_figure
from visualizers.corpus import corpus_scatter
from visualizers.registry import VIEWS, render_views, report_figures, tabs, view_named
from visualizers.transformer import mask_tokens, parse_permutation, permutation_order

from . import budget, links, timing
from .interventions import (
    Intervention,
    feed_distribution,
    force_p_gen,
    knock_out,
    reset_coverage,
    set_topic_coverage,
    take_alternative,
)
from .model_card import card_markdown
from .neighbors import NeighborIndex
from .plots import IMAGE_FORMATS, page_figure, plot_payload
from .registry import ModelRegistry
from .sessions import LiveRuns, TraceStore
from .service import (
    TraceResult,
    compare_runs,
    comparison_views,
    explain_step,
    lens_step,
    prepare,
    release_memory,
    run_trace,
)
from .validation import (
    MAX_INPUT_CHARS,
    MAX_KEYWORD_CHARS,
    as_bool,
    as_float,
    as_int,
    clean_keyword,
    clean_text,
    optional_node,
    p_gen_choice,
    settings_dict,
    step_index,
)

LOG = logging.getLogger("genscope.app")
_FIGURE_REVISIONS = itertools.count(1)  # each set of figures the page draws (it skips one it has drawn)
BEAM_TAB = "Beam tree"  # the tab of the search-tree node picker, whose choices are sent when it is open
INTERVENTIONS_TAB = "Interventions"  # where a forced token's re-decoded output is shown
MAX_NODE_CHOICES = 1500
MAX_REPEAT_NGRAM = 6
EXPORT_MAX_AGE_S = 3600
MAX_EXPORT_FILES = 64  # newest kept; older exports are removed
CHOSEN_NODE = -1
MEAN = "mean"
N_SETTINGS = len(SETTING_NAMES)
VIEW_OPTION_NAMES = ("repeat_ngram_marks", "show_pruned", "image_format", "layer", "head", "mask_kind", "tree_focus",
                     "hide_sink", "source_range")
MAX_RANGE_CHARS = 40
OWN_MASK = "own"
MAX_MASK_SPEC_CHARS = 2000
SESSION_TRACES = 1000  # visitors whose traces the server keeps (Gradio state_session_capacity; oldest dropped)
NO_TRACE = ("✎ No trace to show: type an input. (The server keeps the traces of the "
            f"{SESSION_TRACES:,} most recent visitors; a page left open longer decodes again when its input changes.)")
STALE = "\n\n_The output and views below are still those of the last run that succeeded._"
ENCODER_ONLY_HINT = "an encoder-only model does not generate: its self-attention is in the Transformer tab"
DEFAULT_INPUT_HINT = "Type or paste text; the output updates as you type."
DEFAULT_EXAMPLE = ("libjson-c5: JSON manipulation library for C. This library allows you to easily construct "
                   "JSON objects in C, output them as JSON formatted strings and parse JSON formatted strings "
                   "back into the C representation of JSON objects.")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
_AUTOLINK = re.compile(r"(://|www\.|@)", re.IGNORECASE)  # what Markdown renderers turn into links
WORD_JOINER = "\u2060"


def markdown_text(text: str) -> str:
    """Plain text made inert inside Markdown: no formatting, and no address or e-mail that the
    renderer would make a link of (a word joiner splits them; the text reads the same)."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return _AUTOLINK.sub(lambda m: m.group(1)[0] + WORD_JOINER + m.group(1)[1:], escaped)


def code_span(text: str) -> str:
    """Text as an inline code span (shown as typed: no Markdown escapes inside it)."""
    text = str(text).replace("`", "'").replace("\n", " ")
    return f"`{text}`" if text.strip() else "` `"


def contrast_candidates(step: Any, count: int = 5) -> list[str]:
    """The ``count`` most likely tokens of a step other than the one chosen (beam search may have
    chosen one that was not the step's top-1: that top-1 is then the first to contrast with)."""
    ranked = sorted(step.candidates, key=lambda c: -c.logprob)
    return [c.token for c in ranked if c.token_id != step.token_id and c.logprob > -1e29][:count]


def notices_markdown(notices: list[str]) -> str:
    """Notices as warning paragraphs."""
    return "".join(f"\n\n⚠ {markdown_text(n)}" for n in notices)


def guarded(status: str = "status", cleared: Optional[dict[str, Any]] = None, toast: bool = True,
            stale: Any = "", api_error: bool = False, kind: str = "work") -> Callable:
    """Run a handler under the work budget of its ``kind`` (:func:`ui.budget.limited`: its compute
    limits and wall time) and turn its errors into a message in its ``status`` output (and a warning
    toast unless ``toast`` is off, as for the live trace, which would raise one per keystroke); other
    outputs keep their values except ``cleared`` ones, which get the given value; ``stale`` is
    appended to the message to say what the kept outputs still show (or a function of the handler's
    arguments that returns it). With ``api_error`` (API-only
    events) the message is raised as ``gr.Error`` instead: the request fails and ``gradio_client``
    raises it."""
    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                with budget.limited(kind), timing.logged(handler.__name__):
                    return handler(*args, **kwargs)
            except (ValueError, FileNotFoundError) as error:
                message = str(error)
                if toast and not api_error:
                    gr.Warning(message)
            except Exception:  # the user must never see a traceback
                LOG.exception("handler %s failed", handler.__name__)
                message = "internal error while handling this request (details are in the server log)"
            if api_error:
                raise gr.Error(message, print_exception=False)
            kept = stale(*args, **kwargs) if callable(stale) else stale
            return {status: f"⚠ {markdown_text(message)}{kept}", **(cleared or {})}
        return run
    return wrap


def api_parameters(*extra: str, event: bool = False) -> Callable:
    """Name the parameters of a ``(self, model, text, *values)`` handler for the API docs and
    clients: model, text, the decode settings (``SETTING_NAMES``), then ``extra``. Settings default
    to None, which means the model's own default (``features.settings``), else the dataclass's.
    With ``event``, a last ``event`` parameter that Gradio fills with the event's data."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    required = [inspect.Parameter(name, kind) for name in ("self", "model", "text")]
    optional = [inspect.Parameter(name, kind, default=None) for name in (*SETTING_NAMES, *extra)]
    data = [inspect.Parameter("event", kind, default=None, annotation=gr.EventData)] if event else []

    def wrap(handler: Callable) -> Callable:
        handler.__signature__ = inspect.Signature(required + optional + data)
        if event:
            handler.__annotations__ = {**handler.__annotations__, "event": gr.EventData}
        return handler
    return wrap


def clamp_step(value: Any, n_steps: int) -> int:
    """The pinned step kept inside the output (0 when unset); ValueError naming the problem for a
    value that is no finite number."""
    if value is None or value == "":
        return 0
    step = as_float("pinned step", value)
    return int(min(max(step, 0), max(n_steps - 1, 0)))


def head_index(name: str, value: Any, count: Optional[int]) -> Optional[int]:
    """A layer/head index within ``count``, or None for the mean (ValueError naming the range)."""
    if value is None or value == "" or value == MEAN or count is None:
        return None
    index = as_float(name, value)
    if not index.is_integer() or not 0 <= index < count:
        raise ValueError(f"{name} must be '{MEAN}' or a whole number between 0 and {count - 1}, got {value!r}")
    return int(index)


def mask_kind(value: Any, n_tokens: int) -> Optional[str]:
    """The attention-mask layout to show: None for the model's own; an XLNet stream's order must fit the
    ``n_tokens`` drawn (ValueError naming the choices or the order's rule)."""
    if value is None or value == "" or value == OWN_MASK:
        return None
    if not isinstance(value, str):
        raise ValueError(f"mask kind must be one of {', '.join([OWN_MASK, *MASK_KINDS])} or an XLNet stream, "
                         f"got a {type(value).__name__}")
    if value not in MASK_KINDS:
        message = (f"mask kind must be one of {', '.join([OWN_MASK, *MASK_KINDS])} or an XLNet stream "
                   f"('content' / 'query', optionally ': ORDER'), got {str(value)[:40]!r}")
        if not isinstance(value, str) or len(value) > MAX_MASK_SPEC_CHARS:
            raise ValueError(message)
        try:
            name, spec = parse_permutation(value)
        except ValueError:
            raise ValueError(message) from None
        permutation_order(spec, n_tokens)
    return value


def named_options(values: tuple) -> dict[str, Any]:
    """View option values in ``VIEW_OPTION_NAMES`` order, by name."""
    if len(values) != len(VIEW_OPTION_NAMES):
        raise ValueError(f"expected the {len(VIEW_OPTION_NAMES)} view options ({', '.join(VIEW_OPTION_NAMES)}), "
                         f"got {len(values)} values")
    return dict(zip(VIEW_OPTION_NAMES, values))


def view_options(trace: GenerationTrace, pinned: Any, node: Any, values: dict[str, Any]) -> ViewOptions:
    """Validated view options for ``trace`` from their raw ``values`` by name (:func:`named_options`;
    the pinned step is clamped into the output)."""
    repeat_n = values["repeat_ngram_marks"]
    repeat = as_int("repeat n-gram size", 3 if repeat_n is None else repeat_n)
    if not 0 <= repeat <= MAX_REPEAT_NGRAM:
        raise ValueError(f"repeat n-gram size must be between 0 and {MAX_REPEAT_NGRAM}, got {repeat_n!r}")
    heads = trace.heads
    return ViewOptions(pinned_step=clamp_step(pinned, len(trace.steps)) if trace.steps else None,
                       node_id=optional_node(node, {n.id for n in trace.beam}), repeat_ngram=repeat,
                       show_pruned=as_bool("show_pruned", values["show_pruned"], True),
                       layer=head_index("layer", values["layer"], heads[0] if heads else None),
                       head=head_index("head", values["head"], heads[1] if heads else None),
                       mask_kind=mask_kind(values["mask_kind"], mask_tokens(trace)),
                       tree_focus=tree_focus(values["tree_focus"]),
                       hide_sink=as_bool("hide_sink", values["hide_sink"], False),
                       source_range=source_range(values["source_range"]))


def source_range(value: Any) -> Optional[tuple[int, int]]:
    """The source positions the attention views show, typed ``FIRST-LAST`` (both shown; ``100-400``,
    ``100–400`` or ``100:400``), as ``(first, last + 1)``; None when empty (all of them). Positions past
    the source's end are clipped by the views. ValueError naming the form otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    message = ("source range must be FIRST-LAST, two whole positions with FIRST ≤ LAST (e.g. 100-400), "
               f"got {str(value)[:MAX_RANGE_CHARS]!r}")
    match = re.fullmatch(r"\s*(\d{1,7})\s*[-–:]\s*(\d{1,7})\s*", value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > int(match.group(2)):
        raise ValueError(message)
    return int(match.group(1)), int(match.group(2)) + 1


def tree_focus(value: Any) -> str:
    """The part of the search tree to draw (ValueError naming the choices otherwise)."""
    value = value or TREE_FOCI[0]
    if value not in TREE_FOCI:
        raise ValueError(f"tree focus must be one of {', '.join(TREE_FOCI)}, got {str(value)[:40]!r}")
    return value


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


def tabs_shown(trace: Optional[GenerationTrace]) -> dict[str, bool]:
    """{tab: whether one of its views applies to ``trace``} (every tab when there is none)."""
    return {t: trace is None or any(v.applies(trace) for v in VIEWS if v.tab == t) for t in tabs()}


def stale_if_page_has_trace(*args: Any, **kwargs: Any) -> str:
    """:data:`STALE` for a failed live trace when the page shows an earlier trace (its page-trace
    input, next to last); nothing when the page has none yet."""
    return STALE if args[-2] is not None else ""


def trace_controls(trace: Optional[GenerationTrace], layer: Any, head: Any, tab: Optional[str]) -> dict[str, Any]:
    """The controls that follow a trace: the layer / head pickers (a choice that no longer exists
    falls back to the mean), the topic picker and, for a trace, which tabs are shown (the open
    ``tab`` kept selected while it is)."""
    multi_head = {name: gr.update(visible=trace is not None and trace.heads is not None)
                  for name in ("hide_sink", "source_range")}  # the attention views' sink and range controls
    if trace is None:
        layer_dropdown, head_dropdown = head_controls(None, layer, head)
        return {"layer": layer_dropdown, "head": head_dropdown, "topic": topic_choices(None), **multi_head}
    heads = trace.heads or (0, 0)
    layer_dropdown, head_dropdown = head_controls(trace, _kept(layer, heads[0]), _kept(head, heads[1]))
    return {"layer": layer_dropdown, "head": head_dropdown, "topic": topic_choices(trace), **multi_head,
            **Handlers.tab_visibility(trace, tab)}


def node_picker(trace: GenerationTrace, node: Optional[int], all_choices: bool) -> Any:
    """The node picker showing ``node`` (the chosen output when None), with every node as a choice
    when ``all_choices`` (its tab is open, or an API client asks); otherwise only its value, which
    keeps a live trace's reply small (a tree of 500 nodes is ~30 kB of choices)."""
    value = CHOSEN_NODE if node is None else node
    return gr.Dropdown(choices=node_choices(trace), value=value) if all_choices else gr.update(value=value)


def alternative_choices(trace: GenerationTrace, step: Optional[int]) -> list[tuple[str, int]]:
    """The pinned step's candidates other than the chosen token, with their probabilities."""
    if step is None or not trace.steps:
        return []
    chosen = trace.steps[step]
    possible = [c for c in chosen.candidates if np.isfinite(c.logprob) and c.logprob > -1e29]  # JSON: -inf → -1e30
    return [(f"{c.token}  (p={float(np.exp(c.logprob)):.3f})", c.token_id)
            for c in possible if c.token_id != chosen.token_id]


def head_controls(trace: Optional[GenerationTrace], layer: Any, head: Any) -> tuple:
    """Layer and head dropdowns: shown (with their choices) only for multi-head attention."""
    heads = trace.heads if trace is not None else None
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
    if trace is None or not trace.has_topics:
        return gr.Dropdown(choices=[], value=None)
    topics = trace.topics or trace.source_tokens
    return gr.Dropdown(choices=[(t, i) for i, t in enumerate(topics)], value=0)


MAX_CORPUS_EXAMPLES = 500
CORPUS_VIEW = "corpus"  # the click bridge's name for the corpus scatter (elem_id view-corpus, not a trace view)
CORPUS_KEPT = ("src", "topics", "reference", "tgt", "poem", "output", "error", "rouge_l", "chrf", "unk_count",
               "repeated_ngrams", "mean_p_gen", "attention_entropy", "coverage_loss", "verdict",
               "question_reply", "negative_reply", "keyword_used", "safe_reply")
CORPUS_COLUMNS = ["#", "input", "output", "reference", "ROUGE-L", "chrF", "UNK", "repeats", "p_gen",
                  "attention entropy", "coverage loss", "verdict", "chat failures"]
CORPUS_TYPES = ("number", "str", "str", "str", *["number"] * 7, "str", "str")  # numbers sort as numbers
CORPUS_WIDTHS = ("3%", "18%", "14%", "12%", "6%", "5%", "4%", "6%", "5%", "7%", "7%", "6%", "7%")  # of the table
CHAT_FAILURES = (("question_reply", 1, "question"), ("negative_reply", 1, "negative"),
                 ("contradiction", 1, "contradiction"), ("keyword_used", 0, "no keyword"),
                 ("safe_reply", 1, "safe"))  # (statistic, the value that is a failure, its name in the table)


def setting_box(name: str) -> str:
    """The output name of the box around a setting that only models with its ``feature`` can use."""
    return f"{name}_box"


FEATURE_SETTINGS = {name: SETTING_FIELDS[name].metadata["feature"] for name in SETTING_NAMES
                    if SETTING_FIELDS[name].metadata["feature"]}


def offers(entry: Any, feature: str) -> bool:
    """Whether the settings of ``feature`` apply to the registry ``entry``: its model's
    :class:`ModelFeatures` flag, or for "mmi" a config that names the MMI companions."""
    if feature == "mmi":
        return mmi.offered(entry.name, entry.config)
    return bool(getattr(entry.model.features, feature))


def corpus_table(rows: list[dict]) -> list[list]:
    """One table row per example (short texts, rounded numbers, blanks where a signal is missing)."""
    def number(value: Any) -> Any:
        return round(value, 3) if isinstance(value, float) else value if isinstance(value, int) else None
    return [[i, _short(source_of(r) or "", 80), r.get("error") or _short(r.get("output", ""), 80),
             _short(reference_of(r) or "", 60), number(r.get("rouge_l")),
             round(r["chrf"], 1) if isinstance(r.get("chrf"), float) else None, r.get("unk_count"),
             r.get("repeated_ngrams"), number(r.get("mean_p_gen")), number(r.get("attention_entropy")),
             number(r.get("coverage_loss")), r.get("verdict") or "", chat_failures(r)] for i, r in enumerate(rows)]


def chat_failures(row: dict) -> str:
    """The seq2seq chat failure modes of one corpus row, by name ("question, safe"; "" for none or
    for rows of models that do not chat)."""
    return ", ".join(name for statistic, failing, name in CHAT_FAILURES if row.get(statistic) == failing)


def status_markdown(result: TraceResult) -> str:
    """One line of facts about a run plus its notices."""
    trace = result.trace
    if trace.architecture == "encoder-only":
        return (f"✓ encoded in **{result.elapsed_ms:.0f} ms** by {markdown_text(trace.model)} · encoder-only "
                "model: it does not generate; its "
                f"self-attention over the {len(trace.source_tokens)} source tokens is in the Transformer tab"
                + notices_markdown(result.notices))
    settings = trace.settings
    groups = settings.get("beam_groups", 1)
    diverse = f" in {groups} groups (diversity penalty {settings.get('diversity_penalty')})" if groups > 1 else ""
    search = {"beam": f"beam search, {settings.get('beam_size')} beams{diverse}", "greedy": "greedy",
              "sample": f"sampling (seed {settings.get('seed')})",
              "beam_sample": f"beam sampling, {settings.get('beam_size')} beams (seed {settings.get('seed')})"}.get(settings.get("strategy"), "?")
    line = (f"✓ decoded in **{result.elapsed_ms:.0f} ms** by {markdown_text(trace.model)} · {search} · "
            f"{len(trace.steps)} output tokens · "
            f"{len(trace.source_tokens)} source tokens · {len(trace.beam)} search-tree nodes")
    if "keyword" in trace.extra:
        line += f" · keyword: **{markdown_text(trace.extra['keyword'])}** ({trace.extra.get('keyword_source')}; " \
                "Keyword tab)"
    elif trace.topics:
        line += f" · topics used: {markdown_text(' '.join(trace.topics))}"
    if trace.reference is not None:
        line += f" · reference: **{trace.reference['verdict']}** (Probabilities tab)"
    return line + notices_markdown(result.notices)


def accepts(entry: Any, text: str) -> bool:
    """Whether a model can read ``text`` at all (typed text stays when a text model takes over, but a
    point-set or topic model given prose starts from its own example instead)."""
    if entry.model.features.input_kind == "text":
        return True
    try:
        entry.model.encode(text[:MAX_INPUT_CHARS])
    except ValueError:
        return False
    return True


def tab_name(tab: Any) -> str:
    """``tab`` if it is a view tab, else the first view tab."""
    return tab if tab in tabs() else tabs()[0]


def tab_key(tab: str) -> str:
    """The output name of a tab's visibility."""
    return f"tab:{tab}"


def view_outputs() -> list[str]:
    """Names of everything a re-render may update: the output, the alternatives, each view."""
    return ["output", "alternative", *[view.name for view in VIEWS]]


def trace_outputs() -> list[str]:
    """Names of everything a new trace may update."""
    return ["state", "rendered_tab", "trace_json", "status", "pinned", "node", *TRACE_CONTROLS,
            *view_outputs(), *[tab_key(t) for t in tabs()], "tabs"]


TRACE_CONTROLS = ("layer", "head", "hide_sink", "source_range", "topic")  # what trace_controls() updates
DATA_TABS = {"corpus_tab": "test_data", "neighbors_tab": "train_data"}  # tabs shown only for a model with that split


def model_outputs() -> list[str]:
    """Names of everything a model change updates (the card, the input, the settings, the controls)."""
    return ["curves", "card", "card_status", "examples", "text", *SETTING_NAMES,
            *[setting_box(name) for name in FEATURE_SETTINGS], "p_gen_row", "coverage_button", "topic_row",
            "knock_row", "feed_row", "keyword", "picture_input", "model_b", *DATA_TABS]


class Handlers:
    """The app's event handlers over one model registry."""

    def __init__(self, registry: ModelRegistry, neighbors: Optional[NeighborIndex] = None):
        self.registry = registry
        self.neighbors = neighbors or NeighborIndex()
        self.export_dir = Path(tempfile.gettempdir()) / f"genscope-exports-{os.getpid()}"
        spent = budget.current()
        self.traces = TraceStore(int(spent.trace_store_mb * budget.MB), spent.trace_idle_s)  # every visitor's
        self.live_runs = LiveRuns()
        self.example_tabs: dict[str, dict[str, bool]] = {}  # model → which tabs its first example's trace uses

    # -- the live trace and its views --------------------------------------------------------
    def render(self, trace: Optional[GenerationTrace], options: ViewOptions, image_format: str,
               tab: Optional[str], in_page: bool = False) -> dict[str, Any]:
        """The output tokens, the alternatives at the pinned step and the views of ``tab`` (every
        tab when None) by name; views that do not apply are hidden, those of other tabs untouched.

        ``in_page`` (the browser's own events): the views go to the ``figures`` output, which the
        page draws in place and whose boxes it shows or hides (:mod:`ui.page_plots`); otherwise (API
        clients) each view is a ``gr.Plot`` payload with its visibility."""
        if trace is None:
            blank = empty_figure("no output yet")
            return {"output": "<div class='gs-output gs-empty'>No output yet.</div>",
                    "alternative": gr.Dropdown(choices=[], value=None),
                    **self._view_values({v.name: blank for v in VIEWS if tab is None or v.tab == tab},
                                        image_format, in_page)}
        if not trace.steps:
            hint = ENCODER_ONLY_HINT if trace.architecture == "encoder-only" else "no output steps"
            values = {"output": f"<div class='gs-output gs-empty'>{hint}.</div>"}
        else:
            values = {"output": output_html(trace, replace(options, node_id=None))}
        alternatives = alternative_choices(trace, options.pinned_step)
        values["alternative"] = gr.Dropdown(choices=alternatives, value=alternatives[0][1] if alternatives else None)
        return {**values, **self._view_values(render_views(trace, options, tab), image_format, in_page)}

    @staticmethod
    def _view_values(figures: dict[str, Any], image_format: str, in_page: bool) -> dict[str, Any]:
        """Each view's output value (see :meth:`render`); with ``in_page``, only ``figures``: the
        views to draw and those to hide (the page shows and hides the view boxes itself, so a page
        event has a handful of outputs, not one per view: Gradio's front end spends time on each)."""
        if in_page:
            drawn = {name: page_figure(figure, image_format, filename=name)
                     for name, figure in figures.items() if figure is not None}
            hidden = [name for name, figure in figures.items() if figure is None]
            return {"figures": {"revision": next(_FIGURE_REVISIONS), "views": drawn, "hidden": hidden}}
        values = {}
        for name, figure in figures.items():
            view = view_named(name)
            if figure is None:
                values[name] = gr.update(visible=False)
            elif view.html:
                values[name] = gr.update(value=figure, visible=True)
            else:
                values[name] = gr.update(value=plot_payload(figure, image_format, filename=name), visible=True)
        return values

    @staticmethod
    def tab_visibility(trace: Optional[GenerationTrace], tab: Optional[str]) -> dict[str, Any]:
        """Each tab shown when one of its views applies; the current tab stays selected when it is
        still shown, else the first shown tab is selected."""
        return Handlers.tab_updates(tabs_shown(trace), tab)

    @staticmethod
    def tab_updates(shown: dict[str, bool], tab: Optional[str]) -> dict[str, Any]:
        """The tab buttons for ``shown`` ({tab: whether it is shown}), the current tab kept selected
        while it is shown, else the first shown tab selected."""
        # visible="hidden" removes the tab's button (visible=False does not, for tabs, in Gradio 6)
        values: dict[str, Any] = {tab_key(t): gr.update(visible=True if visible else "hidden")
                                  for t, visible in shown.items()}
        if tab is not None and not shown.get(tab, True):
            values["tabs"] = gr.update(selected=next((t for t, visible in shown.items() if visible), None))
        return values

    @api_parameters("pinned_step", *VIEW_OPTION_NAMES, "reference", "keyword")
    @guarded(api_error=True)
    def trace(self, model: Any, text: Any, *values: Any) -> dict:
        """The trace JSON, status, controls and every view that applies (all tabs). With a
        ``reference`` output, the trace also scores it (reference mode: search or model error); a
        ``keyword`` replaces the one a keyword model (Seq2BF, HGFU) would predict. An input or
        setting outside its limits fails the request with a message naming the limit."""
        return self._trace(model, text, values, tab=None, with_json=True)

    @guarded(toast=False, stale=stale_if_page_has_trace)
    def trace_live(self, model: Any, text: Any, *values: Any, request: gr.Request = None) -> dict:
        """:meth:`trace` for the browser's live updates: no trace JSON (only API clients read it,
        and it is 100–300 kB per keystroke), and only the open tab's views. The last four inputs:
        the open tab; the shared view being opened (:meth:`restore_model`), if any: while the run is
        still that view, its search-tree node is selected, and once the input or a setting differs
        it is dropped; the page's trace and what it was decoded from (``decoded_from``). A run whose
        model, input, settings, reference and keyword are those of the page's trace changes nothing
        (the change events of one edit, or a model switch's card, would decode it again, and a late
        one would reset the search-tree node the user has selected since); nor does one the visitor's
        latest live run, still running or just finished, decoded from the same (:class:`LiveRuns`:
        those were sent before that run's reply, and would put back the pinned step they carry)."""
        *values, tab, shared, shown, shown_from = values
        tab = tab if tab in tabs() else None
        if self.left_behind(model, text):
            return {}  # a model switch's settings fired before its example arrived: that run follows
        inputs = self.decode_inputs(model, text, values)
        if shown is not None and shown_from == inputs:
            return {}
        session = getattr(request, "session_hash", None)
        if self.live_runs.is_duplicate(session, inputs):
            return {}
        try:
            if not isinstance(shared, dict) or not shows_shared(shared, model, text, values):
                live = {"shared": None, **self._trace(model, text, values, tab=tab, with_json=False, in_page=True)}
            else:
                live = self._trace(model, text, values, tab=tab, with_json=False, node=shared.get("node"),
                                   in_page=True)
        finally:
            self.live_runs.finished(session, inputs)
        return {"rendered_tab": tab, "decoded_from": inputs if live.get("state") is not None else "", **live}

    def decode_inputs(self, model: Any, text: Any, values: Any) -> str:
        """A digest of what a live trace decodes from, as validated (``4`` and ``4.0`` are one beam
        size): the model, the input, the settings (the first ``N_SETTINGS`` of ``values``), the
        reference and the keyword (its last two). Invalid values are digested as they are."""
        settings, reference, keyword = values[:N_SETTINGS], values[-2], values[-1]
        try:
            _, text, decode, _ = prepare(self.registry, model, text, settings_dict(*settings))
            key = [model, text, asdict(decode), clean_text(reference)[0], clean_keyword(keyword)]
        except (ValueError, TypeError):
            key = [model, text, list(settings), reference, keyword]
        digest = hashlib.blake2b(json.dumps(key, default=str).encode("utf-8", "surrogatepass"), digest_size=12)
        return digest.hexdigest()

    def left_behind(self, model: Any, text: Any) -> bool:
        """Whether ``text`` is another model's example that ``model`` cannot read: the input a model
        switch is about to replace with the new model's example (:meth:`model_card`). Decoding it
        would flash that model's error for a moment on every such switch."""
        entry = self.registry.entries.get(model) if isinstance(model, str) else None
        if entry is None or not isinstance(text, str) or text in entry.examples:
            return False
        others = {e for other in self.registry.entries.values() if other is not entry for e in other.examples}
        return text in others and bool(entry.examples) and not accepts(entry, text)

    @guarded()
    def settle(self, trace: Optional[GenerationTrace], tab: Any, rendered_tab: Any, pinned: Any, node: Any,
               *view_values: Any) -> dict:
        """After a live trace is drawn: the controls that follow the trace (which tabs are shown, the
        layer / head / topic / node pickers; the live trace leaves them out to keep a keystroke's
        reply and its page update small), and, if another tab was opened while it ran, that tab's
        views (the live trace rendered the tab open when it started), keeping it selected."""
        layer, head = (named_options(view_values)[name] for name in ("layer", "head"))
        if trace is None:  # an input that gave a hint, not a trace
            return {**trace_controls(None, layer, head, None), "node": gr.Dropdown(choices=[], value=None)}
        open_tab = tab if tab in tabs() else None
        node = node if node in trace.nodes_by_id else None
        values = {**trace_controls(trace, layer, head, open_tab),  # a selected node's label needs the choices
                  "node": node_picker(trace, node, all_choices=open_tab in (None, BEAM_TAB) or node is not None)}
        if tab == rendered_tab or open_tab is None:
            return values
        values.update(rendered_tab=tab, **self._views(trace, tab, pinned, node, view_values, in_page=True))
        if any(v.applies(trace) for v in VIEWS if v.tab == tab):
            values["tabs"] = gr.update(selected=tab)  # the trace may have selected another tab when it started
        return values

    def _trace(self, model: Any, text: Any, values: Any, tab: Optional[str], with_json: bool,
               node: Optional[int] = None, in_page: bool = False) -> dict:
        settings, (pinned, *option_values, reference, keyword) = values[:N_SETTINGS], values[N_SETTINGS:]
        named = named_options(tuple(option_values))
        image_format, layer, head = image_format_of(named["image_format"]), named["layer"], named["head"]
        result = run_trace(self.registry, model, text, settings_dict(*settings), reference, keyword)
        if result.trace is None:
            hint = "✎ " + markdown_text(result.hint) + notices_markdown(result.notices)  # "<package name>: …" is text
            return {"state": None, "trace_json": "", "status": hint, "pinned": gr.Slider(value=0, maximum=1),
                    "node": gr.Dropdown(choices=[], value=None), **trace_controls(None, layer, head, None),
                    **self.render(None, ViewOptions(), image_format, tab, in_page)}
        trace = result.trace
        heads = trace.heads or (0, 0)
        layer, head = _kept(layer, heads[0]), _kept(head, heads[1])
        node = node if node in trace.nodes_by_id else None  # a shared view's node, when it exists
        options = view_options(trace, pinned, node, {**named, "layer": layer, "head": head})
        values = {"state": trace, "trace_json": budget.check_reply(trace.to_json()) if with_json else "",
                  "status": status_markdown(result),
                  "pinned": gr.Slider(value=options.pinned_step or 0, maximum=max(len(trace.steps) - 1, 1)),
                  "node": node_picker(trace, node, all_choices=not in_page),
                  **self.render(trace, options, image_format, tab, in_page)}
        if in_page:  # the page's live trace: the other controls come from settle() once it is drawn
            return values
        return {**values, **trace_controls(trace, layer, head, tab)}

    @guarded()
    def views(self, trace: Optional[GenerationTrace], tab: Any, pinned: Any, node: Any, *view_values: Any) -> dict:
        """The open tab's views (every tab's for API clients, which have none open) re-rendered for
        a new pin / node / view option."""
        return self._views(trace, tab, pinned, node, view_values)

    @guarded()
    def page_views(self, trace: Optional[GenerationTrace], tab: Any, pinned: Any, node: Any, *view_values: Any) -> dict:
        """:meth:`views` for the page's own events: its figures drawn in place (``render(in_page=True)``)."""
        return self._views(trace, tab, pinned, node, view_values, in_page=True)

    def _views(self, trace: Optional[GenerationTrace], tab: Any, pinned: Any, node: Any, view_values: tuple,
               in_page: bool = False) -> dict:
        named = named_options(view_values)
        tab = tab if tab in tabs() else None
        if trace is None:  # nothing decoded yet, or this page's trace was dropped: keep what is drawn
            return {"status": NO_TRACE}
        options = view_options(trace, pinned, node, named)
        values = self.render(trace, options, image_format_of(named["image_format"]), tab, in_page)
        if in_page and tab == BEAM_TAB:  # the node picker's choices, left out of live traces on other tabs
            values["node"] = node_picker(trace, options.node_id, all_choices=True)
        return values

    def open_tab(self, tab: str) -> Callable:
        """A handler that records ``tab`` as the open one and renders its views (closed tabs are
        rendered when opened, never on every keystroke), unless they are drawn for the page's trace
        already (``rendered_tab``): a shared link's page selects its tab while its trace, with the
        link's node, is drawn, and a second render from the inputs of that moment would replace it."""
        @guarded()
        def opened(trace: Optional[GenerationTrace], rendered_tab: Any, pinned: Any, node: Any,
                   *view_values: Any) -> dict:
            if trace is not None and rendered_tab == tab:
                return {"tab": tab}
            return {"tab": tab, "rendered_tab": tab, **self._views(trace, tab, pinned, node, view_values, in_page=True)}
        opened.__name__ = f"open_{tab}"
        return opened

    @guarded()
    def plot_click(self, trace: Optional[GenerationTrace], tab: Any, pinned: Any, node: Any, repeat_n: Any,
                   show_pruned: Any, image_format: Any, layer: Any, head: Any, mask: Any, focus: Any, sink: Any,
                   span: Any, event: gr.EventData) -> dict:
        """A click on a view: its ``customdata`` pins a step or selects a search-tree node (the view
        declares which); every view of the open tab is re-rendered."""
        if trace is None:
            return {}
        data = event_object(event)
        clicked = view_named(data.get("view"))
        if clicked is None:  # not a trace view (the corpus scatter has its own handler)
            return {}
        if clicked.click == "input" and isinstance(data.get("customdata"), str):
            return {"text": data["customdata"][:MAX_INPUT_CHARS]}  # the input's change event decodes it
        if clicked.click == "keyword" and isinstance(data.get("customdata"), str):
            return {"keyword": data["customdata"][:MAX_KEYWORD_CHARS]}  # so does the keyword's
        if clicked.click == "token":  # force_click re-decodes; the view already shows the pinned step
            return {}
        pinned, node = clicked_selection(data, pinned, node)
        values = (repeat_n, show_pruned, image_format, layer, head, mask, focus, sink, span)
        options = view_options(trace, pinned, node, named_options(values))
        node_value = CHOSEN_NODE if options.node_id is None else options.node_id
        return {"pinned": options.pinned_step, "node": node_value,
                **self._views(trace, tab, options.pinned_step, node_value, values, in_page=True)}

    @guarded()
    def token_click(self, trace: Optional[GenerationTrace], tab: Any, node: Any, repeat_n: Any, show_pruned: Any,
                    image_format: Any, layer: Any, head: Any, mask: Any, focus: Any, sink: Any, span: Any,
                    event: gr.EventData) -> dict:
        """A click on an output token pins its step."""
        data = event_object(event)
        if trace is None or "step" not in data:
            return {}
        step = step_index(data["step"], len(trace.steps))
        values = (repeat_n, show_pruned, image_format, layer, head, mask, focus, sink, span)
        return {"pinned": step, **self._views(trace, tab, step, node, values, in_page=True)}

    # -- interventions and comparison ----------------------------------------------------------
    def _intervene(self, model: Any, text: Any, settings: tuple, run: Callable) -> dict:
        """Decode the original, apply ``run(entry, text, original, settings)``, show both."""
        entry, text, decode, notices = prepare(self.registry, model, text, settings_dict(*settings))
        original = run_trace(self.registry, model, text, settings_dict(*settings)).trace
        if original is None or not original.steps:
            raise ValueError("there is no output to intervene on: type an input (or edit it to decode again)")
        outcome: Intervention = run(entry, text, original, decode)
        diff, figure = comparison_views(outcome.original, outcome.changed, ("original", outcome.label))
        status = f"✓ re-decoded with {markdown_text(outcome.label)}" + notices_markdown(notices + outcome.notices)
        return {"intervention_diff": diff, "intervention_plot": plot_payload(figure, filename="intervention"),
                "intervention_status": status}

    @api_parameters("step", "token")
    @guarded("intervention_status")
    def intervene_token(self, model: Any, text: Any, *values: Any) -> dict:
        """Take ``token`` (an id or a token text) at ``step`` and decode the rest."""
        settings, (step, token) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        return self._intervene(model, text, settings, lambda e, t, o, s: take_alternative(e, t, o, s, step, token))

    @api_parameters(event=True)
    @guarded("intervention_status")
    def force_click(self, model: Any, text: Any, *values: Any) -> dict:
        """A click on a view whose points are tokens to force (``click="token"``, the Sampling rules
        view; ``customdata`` ``[step, token id]``): take that token at that step and decode the rest
        (the alternative-token intervention), shown in the Interventions tab. Other clicks change nothing."""
        *settings, event = values
        data = event_object(event)
        view, value = view_named(data.get("view")), data.get("customdata")
        if view is None or view.click != "token":
            return {}
        step, token = clicked_token(value)
        shown = self._intervene(model, text, settings, lambda e, t, o, s: take_alternative(e, t, o, s, step, token))
        return {**shown, "tabs": gr.update(selected=INTERVENTIONS_TAB)}

    @api_parameters("p_gen")
    @guarded("intervention_status")
    def intervene_p_gen(self, model: Any, text: Any, *values: Any) -> dict:
        """Decode with p_gen forced ("0", "1" or "model")."""
        settings, (choice,) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        value = p_gen_choice(choice)
        return self._intervene(model, text, settings, lambda e, t, o, s: force_p_gen(e, t, o, s, value))

    @api_parameters("step")
    @guarded("intervention_status")
    def intervene_coverage(self, model: Any, text: Any, *values: Any) -> dict:
        """Decode with coverage zeroed before ``step``."""
        settings, (step,) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        return self._intervene(model, text, settings, lambda e, t, o, s: reset_coverage(e, t, o, s, step))

    @api_parameters("step", "topic", "value")
    @guarded("intervention_status")
    def intervene_topic(self, model: Any, text: Any, *values: Any) -> dict:
        """Overwrite topic ``topic``'s coverage with ``value`` before ``step`` (topic-to-text models)."""
        settings, (step, topic, value) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        return self._intervene(model, text, settings,
                               lambda e, t, o, s: set_topic_coverage(e, t, o, s, step, topic, value))

    @api_parameters("item")
    @guarded("intervention_status")
    def intervene_knock_out(self, model: Any, text: Any, *values: Any) -> dict:
        """Decode with memory item ``item`` knocked out (memory network sentence, NTM location)."""
        settings, (item,) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        return self._intervene(model, text, settings, lambda e, t, o, s: knock_out(e, t, o, s, item))

    @api_parameters("step", "onward")
    @guarded("intervention_status")
    def intervene_feed(self, model: Any, text: Any, *values: Any) -> dict:
        """Decode with step ``step``'s whole distribution as the next input (``onward``: every later
        step's too) instead of the chosen tokens' embeddings."""
        settings, (step, onward) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        return self._intervene(model, text, settings, lambda e, t, o, s: feed_distribution(e, t, o, s, step, onward))

    @api_parameters("model_b", *[f"{name}_b" for name in COMPARE_NAMES])
    @guarded("compare_status")
    def compare(self, model: Any, text: Any, *values: Any) -> dict:
        """Run A (the main settings) vs run B (another model and/or search settings; empty values
        inherit A's): the diff, the side-by-side plot and a status line."""
        settings, (model_b, *b_values) = values[:len(SETTING_NAMES)], values[len(SETTING_NAMES):]
        model_b = model_b or model
        run_a, run_b = compare_runs(self.registry, text, model, settings_dict(*settings), model_b,
                                    dict(zip(COMPARE_NAMES, b_values)))
        if run_a.trace is None or run_b.trace is None:
            raise ValueError(run_a.hint or run_b.hint or "nothing to compare")
        diff, figure = comparison_views(run_a.trace, run_b.trace, (f"A: {model}", f"B: {model_b}"))
        status = f"✓ A {run_a.elapsed_ms:.0f} ms · B {run_b.elapsed_ms:.0f} ms" + notices_markdown(
            run_a.notices + run_b.notices)
        return {"compare_diff": diff, "compare_plot": plot_payload(figure, filename="compare"),
                "compare_status": status}

    # -- explanations (on demand) -------------------------------------------------------------
    @guarded("explain_status", kind="heavy")
    def explain(self, trace: Optional[GenerationTrace], text: Any, pinned: Any, method: Any, contrast: Any,
                ig_steps: Any) -> dict:
        """Input attribution (Captum) of the pinned step's token, or of it against a ``contrast``
        token, beside that step's attention; the status gives the convergence delta and the time."""
        result = explain_step(self.registry, trace, text, pinned, method, contrast, ig_steps)
        delta = result["convergence_delta"]
        alternatives = ", ".join(code_span(token) for token in contrast_candidates(trace.steps[result["step"]]))
        status = (f"✓ {markdown_text(result['method'])} for step {result['step']} in **{result['elapsed_ms']:.0f} ms**"
                  + (f" · convergence δ {delta:.1e}" if delta is not None else "")
                  + (f" · other candidates to contrast: {alternatives}" if alternatives else ""))
        return {"explain_plot": plot_payload(attribution_figure(result), filename="attribution"),
                "explain_status": status}

    @guarded("lens_status", kind="heavy")
    def logit_lens(self, trace: Optional[GenerationTrace], text: Any, pinned: Any) -> dict:
        """The logit lens at the pinned step (Transformer decoders)."""
        result = lens_step(self.registry, trace, text, pinned)
        final = result["layers"][-1]
        first = next(row["layer"] for row in result["layers"] if row["chosen_rank"] == 1) \
            if any(row["chosen_rank"] == 1 for row in result["layers"]) else None
        status = (f"✓ logit lens at step {result['step']}: '{markdown_text(result['chosen'])}' has rank "
                  f"{final['chosen_rank']} at the last layer"
                  + (f"; it is first ranked from layer {first}" if first else ""))
        return {"lens_plot": plot_payload(logit_lens_figure(result), filename="logit-lens"), "lens_status": status}

    # -- shareable links ----------------------------------------------------------------------
    @guarded("link_status")
    def share_link(self, model: Any, text: Any, reference: Any, keyword: Any, pinned: Any, node: Any, tab: Any,
                   page: Any, *settings: Any) -> dict:
        """A link to this view (model, input, reference, keyword, settings, pinned step, node, tab) on
        the page's own address; the browser copies it and shows it in the address bar."""
        state = {"model": model, "text": text, "reference": reference, "keyword": keyword, "tab": tab,
                 "pinned": as_int("pinned", pinned) if pinned not in (None, "") else None,
                 "node": None if node in (None, "", -1, "-1") else as_int("node", node),
                 "settings": dict(zip(SETTING_NAMES, settings))}
        base = str(page or "").split("?", 1)[0].split("#", 1)[0]
        link = f"{base}?{links.PARAMETER}={links.encode_view(state, self.own_defaults(model))}"
        return {"link": link, "link_status": "✓ link copied: it opens this model, input, settings, pinned step, "
                                             "selected node and tab"}

    def own_defaults(self, model: Any) -> dict[str, Any]:
        """The decode settings ``model`` sets itself (``features.settings``; none for an unknown model)."""
        return dict(self.registry.get(model).model.features.settings) if model in self.registry.names else {}

    def model_tabs(self, model: Any, tab: Optional[str]) -> dict[str, Any]:
        """The tabs ``model``'s views use, from a trace of its first example (decoded once per model):
        for a page with no trace of its own, which would otherwise show every tab (a shared view whose
        input fails or gives a hint). Nothing for a model without examples."""
        entry = self.registry.entries.get(model) if isinstance(model, str) else None
        if entry is None or not entry.examples:
            return {}
        if model not in self.example_tabs:
            try:
                with budget.limited("work"):
                    trace = run_trace(self.registry, model, entry.examples[0], {}).trace
            except Exception:  # the page loads without it (every tab shown), as before
                LOG.exception("tabs of %s from its first example", model)
                return {}
            self.example_tabs[model] = tabs_shown(trace)
        return self.tab_updates(self.example_tabs[model], tab)

    def shared_view(self, request: Optional[gr.Request]) -> tuple[Optional[dict], str]:
        """The view state in the page address (None when there is none), every setting it leaves
        out at its model's own default (:func:`links.settings_with_defaults`), and a message about it."""
        try:
            state = links.decode_view(request.query_params.get(links.PARAMETER) if request else None)
        except ValueError as error:
            return None, f"⚠ {markdown_text(str(error))}"
        if state:
            state["settings"] = links.settings_with_defaults(state["settings"], self.own_defaults(state.get("model")))
        return state, ""

    def model_picked(self, model: Any, text: Any = None, shared: Any = None) -> dict:
        """:meth:`model_card` when the user picks a model; nothing when the pick is the one a shared
        view being opened just made (that view sets the model together with its own settings)."""
        if isinstance(shared, dict) and shared.get("card_shown") is False and shared.get("model") == model:
            return {"shared": {**shared, "card_shown": True}}
        return {**self.model_card(model, text), "shared": None}

    def restore_model(self, request: gr.Request) -> dict:
        """On page load, first: the shared view's pinned step and tab (set before anything that could
        start a decode reads them), and the shared view itself (``shared``), which keeps the model
        card from resetting the view's settings and selects its node in every trace of that view."""
        state, _ = self.shared_view(request)
        if not state:
            return {"tab": tabs()[0], "shared": None}
        values = {"tab": tab_name(state.get("tab")), "pinned": state.get("pinned", 0), "shared": state}
        if state.get("tab") in tabs():
            values["tabs"] = gr.update(selected=state["tab"])
        return values

    def restore_view(self, model: Any, text: Any, pinned: Any, tab: Any, repeat_n: Any, show_pruned: Any,
                     image_format: Any, layer: Any, head: Any, mask: Any, focus: Any, sink: Any, span: Any,
                     request: gr.Request) -> dict:
        """On page load, then: the model card (as when a model is picked) and, for a shared view, its
        model, input, reference, keyword and settings; and the trace (with the view's node), rendered
        for the open tab. The shared view records whether the model changed (its change event must
        not show the card again: ``card_shown``)."""
        state, message = self.shared_view(request)
        link = state or {"settings": {}}
        shown = link["model"] if link.get("model") in self.registry.names else model
        values = {**self.model_card(shown, link.get("text", text)), "model": shown}
        if "model" in link:
            message = "✓ opened a shared view" if shown == link["model"] else \
                f"⚠ the shared model {markdown_text(str(link['model'])[:80])} is not available here"
        for name, output in (("text", "text"), ("reference", "reference_text"), ("keyword", "keyword")):
            if name in link:  # keep the card's label / visibility, with the view's value
                values[output] = {**values.get(output, gr.update()), "value": link[name]}
        if state:  # every setting (those the link leaves out at the model's own defaults: shared_view)
            values.update(state["settings"])
        text = link["text"] if isinstance(link.get("text"), str) else text
        if link.get("unrestored"):
            message = (message or "⚠ opened the default view") + " · could not restore: " + markdown_text(
                ", ".join(link["unrestored"]))
        settings = [values.get(n) for n in SETTING_NAMES]
        shared = {**state, "card_shown": shown == model} if state else None
        if state and state.get("tab") in tabs():  # the page may record another tab opening while it loads
            tab = state["tab"]
        live = self.trace_live(shown, text, *settings, pinned, repeat_n, show_pruned, image_format, layer, head,
                               mask, focus, sink, span, link.get("reference", ""), link.get("keyword", ""), tab,
                               shared, None, "", request=request)
        if state and live and live.get("state") is None:  # nothing decoded: its input failed or gave a hint
            live = {**live, **self.model_tabs(shown, tab)}
            if "decoded_from" not in live:  # failed (a hint's reply says what it was decoded from)
                failed = "its input could not be decoded (the status line says why)"
                message = message.replace("✓ opened a shared view", f"⚠ opened a shared view, but {failed}") \
                    if message.startswith("✓") else f"{message or '⚠ opened a shared view'} · {failed}"
        return {**values, **live, "shared": shared if live.get("shared", shared) else None, "link_status": message,
                **({"tab": tab} if state and tab in tabs() else {})}  # a tab select while loading set another

    # -- corpus explorer ----------------------------------------------------------------------
    @guarded("corpus_status", kind="corpus")
    def corpus(self, model: Any, examples: Any, x: Any, y: Any, *settings: Any,
               progress: gr.Progress = gr.Progress(), request: gr.Request = None) -> dict:
        """Trace the first ``examples`` pairs of the model's own test split with the settings panel's
        settings; a sortable, filterable table of per-example statistics and a scatter of two of them.
        Bounded by the work budget (examples × beams × steps, and its wall time: what was traced by
        then is shown); stopped by the Stop button or when the visitor leaves; progress is shown."""
        entry, _, decode, _ = prepare(self.registry, model, "", settings_dict(*settings))
        if entry.test_data is None:
            raise ValueError(f"{entry.name} has no test split beside its train_data (config.json): use the CLI "
                             f"`python -m gen_models corpus --input FILE.jsonl` for a file of your own")
        count = as_int("examples", examples)
        if not 1 <= count <= MAX_CORPUS_EXAMPLES:
            raise ValueError(f"examples must be between 1 and {MAX_CORPUS_EXAMPLES}, got {count}")
        budget.check_corpus(count, decode.beam_size if decode.strategy in BEAM_STRATEGIES else 1, decode.max_len)
        start, rows, stopped = time.perf_counter(), [], ""
        for row in progress.tqdm(read_examples(entry.test_data, count), desc=f"{entry.name}: tracing"):
            if not budget.still_wanted(request, "corpus"):
                return {}  # Stop pressed or the page closed: nobody reads the result
            try:
                rows.append({k: v for k, v in trace_row(row, entry.model, decode).items() if k in CORPUS_KEPT})
            except TimeLimitExceeded:
                stopped = (f" · stopped at the {budget.current().corpus_seconds:g} s limit of a corpus run "
                           f"(GENSCOPE_CORPUS_SECONDS) after {len(rows)} of {count} examples")
                break
        release_memory()
        mark_safe_replies(rows)
        means = summary(rows)
        facts = " · ".join(f"{k.removeprefix('mean_')} {v:.3g}" for k, v in means.items()
                           if k.startswith("mean_") and isinstance(v, float))
        verdicts = ", ".join(f"{v}: {n}" for v, n in means.get("verdicts", {}).items())
        status = (f"✓ {len(rows)} test examples of **{markdown_text(entry.name)}** in "
                  f"{time.perf_counter() - start:.1f} s · means: {facts}"
                  + (f" · verdicts: {verdicts}" if verdicts else "") + markdown_text(stopped)
                  + " · click a row to open that example")
        return {"corpus_rows": rows, "corpus_table": corpus_table(rows), "corpus_status": status,
                "corpus_plot": plot_payload(corpus_scatter(rows, str(x), str(y)), filename="corpus")}

    @guarded("corpus_status")
    def corpus_plot(self, rows: Optional[list], x: Any, y: Any) -> dict:
        """The scatter for two other statistics."""
        return {"corpus_plot": plot_payload(corpus_scatter(rows or [], str(x), str(y)), filename="corpus")}

    @guarded("corpus_status")
    def open_example(self, rows: Optional[list], event: gr.EventData) -> dict:
        """A table row opens that example: its input and reference replace the current ones. The
        example is the row's "#" cell (``row_value[0]``): once the table is sorted, the cell's row
        ``index`` is its place on screen, not the example's."""
        data = event_object(event)
        shown = data.get("row_value")
        number = shown[0] if isinstance(shown, (list, tuple)) and shown else None
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, int) and not isinstance(number, bool):
            return self._open_example(rows, number)
        index = data.get("index")  # a table cell's (row, column)
        index = index[0] if isinstance(index, (list, tuple)) and index else index
        return self._open_example(rows, index)

    @guarded("corpus_status")
    def open_point(self, rows: Optional[list], event: gr.EventData) -> dict:
        """A click on a point of the corpus scatter (its ``customdata``: the row) opens that example."""
        data = event_object(event)
        if data.get("view") != CORPUS_VIEW:
            return {}
        index = data.get("customdata")
        return self._open_example(rows, index if isinstance(index, int) and not isinstance(index, bool) else None)

    @staticmethod
    def _open_example(rows: Optional[list], index: Any) -> dict:
        """Row ``index``'s input and reference into the input column (nothing for a bad index)."""
        if not rows or not isinstance(index, int) or not 0 <= index < len(rows):
            return {}
        row = rows[index]
        return {"text": source_of(row) or "", "reference_text": reference_of(row) or "",
                "corpus_status": f"opened test example #{index}: its views are in the other tabs"}

    # -- side panels ---------------------------------------------------------------------------
    @guarded("card_status")
    def model_card(self, model: Any, text: Any = None) -> dict:
        """The model's card and curves; its examples and input hint; the settings panel at the
        model's own defaults; only the intervention controls the model can use. An input that is
        empty, still some model's example, or unreadable by this model becomes its first example."""
        entry = self.registry.get(model)
        features = entry.model.features
        examples = [(_short(e), e) for e in entry.examples]
        task = entry.task or features.task
        label = f"Input — {task}" if task else "Input"
        known = {DEFAULT_EXAMPLE} | {e for other in self.registry.entries.values() for e in other.examples}
        untouched = not isinstance(text, str) or not text.strip() or text in known or not accepts(entry, text)
        swap = {"value": entry.examples[0]} if entry.examples and untouched and text != entry.examples[0] else {}

        return {"curves": plot_payload(training_curves(entry.metrics), filename=f"{entry.name}-curves"),
                "card": card_markdown(entry), "card_status": f"model **{markdown_text(entry.name)}** loaded",
                "examples": gr.Dropdown(choices=examples, value=None),
                "text": gr.update(label=label, placeholder=entry.input_hint or features.input_hint
                                  or DEFAULT_INPUT_HINT, **swap),
                **links.settings_with_defaults({}, dict(features.settings)),
                **{setting_box(name): gr.update(visible=offers(entry, feature))
                   for name, feature in FEATURE_SETTINGS.items()},
                "p_gen_row": gr.update(visible=features.copies),
                "coverage_button": gr.update(visible=features.coverage),
                "topic_row": gr.update(visible=features.topic_coverage),
                "knock_row": gr.update(visible=bool(features.memory)),
                "feed_row": gr.update(visible=features.soft_inputs),
                "keyword": gr.update(visible=features.keywords, value=""),
                **{tab: gr.update(visible=True if getattr(entry, split) is not None else "hidden")
                   for tab, split in DATA_TABS.items()},
                "picture_input": gr.update(visible=features.input_kind == "image"),
                "model_b": entry.name}  # run B starts as A's model (compare settings, or pick another)

    @guarded("neighbors_status")
    def nearest_examples(self, model: Any, text: Any, progress: gr.Progress = gr.Progress()) -> dict:
        """The nearest training pairs (score, source, target) and a status line; the first query of a
        model builds its index, with progress shown."""
        entry, text, _, _ = prepare(self.registry, model, text, {})
        if entry.train_data is None:
            return {"neighbors_table": [], "neighbors_status": (
                f"{markdown_text(entry.name)} has no `train_data` in its config.json: "
                "nearest training examples are not available.")}
        start = time.perf_counter()
        index = self.neighbors.get(entry.train_data, lambda done, what: progress(done, desc=what))
        found = index.search(text)
        rows = [[round(n.score, 2), n.src, n.tgt] for n in found]
        note = f" ({markdown_text(index.notice)})" if index.notice else ""
        what = f"{len(found)} nearest training pairs" if found else "no training pair shares a word with the input"
        return {"neighbors_table": rows,
                "neighbors_status": f"{what} by BM25 in {1e3 * (time.perf_counter() - start):.0f} ms{note}"}

    def pick_example(self, example: Any) -> Any:
        """The chosen example text into the input box (nothing when cleared)."""
        return example if isinstance(example, str) and example else gr.skip()

    # -- export --------------------------------------------------------------------------------
    @guarded("export_status")
    def export_trace(self, trace: Optional[GenerationTrace]) -> dict:
        """The trace as a JSON file."""
        if trace is None:
            raise ValueError("there is no trace to export: type an input (or edit it to decode again)")
        path = self._export_path(trace, ".json")
        path.write_text(trace.to_json(indent=1), encoding="utf-8")
        return {"export_file": str(path), "export_status": "trace JSON ready"}

    @guarded("export_status", kind="heavy")
    def export_report(self, trace: Optional[GenerationTrace], pinned: Any, node: Any, *view_values: Any) -> dict:
        """A standalone HTML report of every view that applies (``text``, the input box, after the
        view options: shown as typed when it is what the trace read)."""
        named = named_options(view_values[:len(VIEW_OPTION_NAMES)])
        text = view_values[len(VIEW_OPTION_NAMES)] if len(view_values) > len(VIEW_OPTION_NAMES) else None
        if trace is None:
            raise ValueError("there is no trace to report on: type an input (or edit it to decode again)")
        options = view_options(trace, pinned, node, named)
        report = standalone_report(trace, report_figures(trace, options), replace(options, node_id=None),
                                   image_format_of(named["image_format"]), typed_source(trace, text))
        path = self._export_path(trace, ".html")
        path.write_text(report, encoding="utf-8")
        return {"export_file": str(path), "export_status": "HTML report ready (self-contained, works offline)"}

    def _export_path(self, trace: GenerationTrace, suffix: str) -> Path:
        """A fresh file in this process's export folder; files older than an hour, and all but the
        newest ``MAX_EXPORT_FILES``, are removed."""
        self.export_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        files = sorted(self.export_dir.iterdir(), key=lambda f: f.stat().st_mtime, reverse=True)
        for index, old in enumerate(files):
            if index >= MAX_EXPORT_FILES - 1 or now - old.stat().st_mtime > EXPORT_MAX_AGE_S:
                old.unlink(missing_ok=True)
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", trace.model)[:60]
        handle = tempfile.NamedTemporaryFile(dir=self.export_dir, prefix=f"genscope-{safe_name}-", suffix=suffix,
                                             delete=False)
        handle.close()
        return Path(handle.name)


def event_object(event: Any) -> dict:
    """A click event's data: an object (ValueError naming what came instead)."""
    data = getattr(event, "_data", None)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"a click's event data must be an object, got {type(data).__name__}")
    return data


def shared_setting(value: Any) -> Any:
    """A setting's value as links and controls may both hold it (4 and 4.0 and "4" alike)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def shows_shared(shared: dict, model: Any, text: Any, values: Any) -> bool:
    """Whether a run of ``model`` on ``text`` with ``values`` (the live trace's: settings in
    ``SETTING_NAMES`` order, the pinned step and view options, reference, keyword) is the shared view
    ``shared`` (:meth:`Handlers.shared_view`'s state, which holds every setting)."""
    settings, reference, keyword = values[:N_SETTINGS], values[-2], values[-1]
    wanted = [shared["settings"][name] for name in SETTING_NAMES]
    return (model == shared.get("model") and (text or "") == shared.get("text", "")
            and (reference or "") == shared.get("reference", "") and (keyword or "") == shared.get("keyword", "")
            and [shared_setting(v) for v in settings] == [shared_setting(v) for v in wanted])


def clicked_selection(data: dict, pinned: Any, node: Any) -> tuple[Any, Any]:
    """(pinned step, node) after a click on a view: the view's declared ``click`` kind says whether
    the clicked point's ``customdata`` is a step or a node id; anything else changes nothing."""
    view, value = view_named(data.get("view")), data.get("customdata")
    if view is None or isinstance(value, (bool, list, dict)) or not isinstance(value, (int, float)):
        return pinned, node
    if view.click == "step":
        return int(value), node
    if view.click == "node":
        return pinned, int(value)
    return pinned, node


def clicked_token(value: Any) -> tuple[Any, Any]:
    """(step, token id) of a "token" click's ``customdata`` (ValueError naming what came instead;
    :func:`take_alternative` checks both are in range)."""
    numbers = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not numbers:
        raise ValueError(f"a token click carries [step, token id], got {str(value)[:40]!r}")
    return value[0], value[1]


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
