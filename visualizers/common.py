"""Shared pieces of the views: options, colours, trace-to-array extraction and shape checks.

Everything here is pure: it reads a :class:`~gen_models.trace.GenerationTrace` (or its parts) and
returns numpy arrays, label lists or plotly objects. Shape problems raise ``ValueError`` with a
message naming the step and the shapes involved.
"""
from __future__ import annotations

import hashlib
import html
import textwrap
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace, Step, TopKAttention

GENERATE_COLOR = "#3b6fb6"
COPY_COLOR = "#e8743b"
PIN_COLOR = "#d62728"
REPEAT_COLOR = "#c2185b"
MUTED_COLOR = "#9e9e9e"
STATUS_COLORS = {"alive": "#4c78a8", "pruned": "#c7c7c7", "finished": "#54a24b", "chosen": "#d62728"}
END_TOKEN = "</s>"
FONT = dict(family="Inter, system-ui, sans-serif", size=12)


TREE_FOCI = ("auto", "whole tree", "chosen path", "selected subtree")
AUTO_WHOLE_TREE = 300  # "auto" draws the whole tree up to this many nodes, else the chosen path


@dataclass(frozen=True)
class ViewOptions:
    """What a view shows besides the trace itself.

    ``pinned_step``: the output step highlighted in every view (None: none pinned).
    ``node_id``: a beam-tree node whose own hypothesis is shown (None: the chosen output).
    ``repeat_ngram``: n of the repeated output n-grams that are marked (0 turns marking off).
    ``source_window``: source positions visible before scrolling (longer sources get a range slider).
    ``show_pruned``: draw the pruned candidates in the beam tree.
    ``layer`` / ``head``: which multi-head attention map to show ((L, H, S) attention); None averages.
    ``hide_sink``: the attention views leave out source position 0, the "attention sink" where most
    heads of large language models park their attention, so that the colour scale shows the rest
    (the values are the model's own: not renormalised). ``source_range``: (start, stop), the source
    positions the attention views show (None: all of them).
    ``mask_kind``: the attention-mask layout shown (None: the model's own).
    ``tree_focus``: the part of the search tree drawn (:data:`TREE_FOCI`): "auto" (all of it up to
    :data:`AUTO_WHOLE_TREE` nodes, else the chosen path), all of it, the chosen path with the
    candidates that branched off it, or the selected node's line and subtree.
    """

    pinned_step: Optional[int] = None
    node_id: Optional[int] = None
    repeat_ngram: int = 3
    source_window: int = 60
    show_pruned: bool = True
    layer: Optional[int] = None
    head: Optional[int] = None
    mask_kind: Optional[str] = None
    tree_focus: str = "auto"
    hide_sink: bool = False
    source_range: Optional[tuple[int, int]] = None


def label(text: str) -> str:
    """Escape user text for plotly labels, which interpret a subset of HTML."""
    return html.escape(str(text), quote=False)


def path_nodes(trace: GenerationTrace, node_id: Optional[int]) -> list:
    """Beam nodes from the root's first child down to ``node_id`` (the chosen leaf when None)."""
    try:
        return trace.path(node_id)
    except KeyError as error:
        raise ValueError(f"node {node_id} is not in this trace (it has {len(trace.beam)} nodes)") from error


def path_steps(trace: GenerationTrace, node_id: Optional[int] = None) -> list[Step]:
    """The recorded steps of the chosen output, or of the hypothesis ending at ``node_id``.

    A pruned node has no internals of its own: its path stops at its parent.
    """
    if node_id is None:
        return list(trace.steps)
    return [n.internals for n in path_nodes(trace, node_id) if n.internals is not None]


def source_span(options: ViewOptions, source_len: int) -> tuple[int, int]:
    """The source positions ``[start, stop)`` the attention views show: ``options.source_range``
    inside the source, without position 0 when ``options.hide_sink`` (may be empty)."""
    start, stop = options.source_range or (0, source_len)
    start, stop = min(max(start, 0), source_len), min(max(stop, 0), source_len)
    return (max(start, 1) if options.hide_sink else start), stop


def attention_matrix(steps: Sequence[Step], source_len: int, layer: Optional[int] = None,
                     head: Optional[int] = None, span: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Attention as a (T, stop − start) array over the source positions ``span`` (all when None);
    (L, H, S) multi-head maps are averaged or indexed by layer/head. Compact attention
    (:class:`TopKAttention`) gives its exact mean when both are None, else its kept weights."""
    span = span or (0, source_len)
    rows = [_attention_row(step, index, source_len, layer, head, span) for index, step in enumerate(steps)]
    return np.stack(rows) if rows else np.zeros((0, span[1] - span[0]))


def _attention_row(step: Step, index: int, source_len: int, layer: Optional[int],
                   head: Optional[int], span: tuple[int, int]) -> np.ndarray:
    if step.attention is None:
        raise ValueError(f"step {index} has no attention")
    compact = isinstance(step.attention, TopKAttention)
    shape = step.attention.shape if compact else np.shape(step.attention)
    if shape[-1] != source_len:
        raise ValueError(f"step {index}: attention has shape {shape}, "
                         f"expected the last dimension to be the {source_len} source tokens")
    if compact and layer is None and head is None:
        return np.asarray(step.attention.average, dtype=float)[span[0]:span[1]]
    if compact:
        attention = step.attention.dense(*span)  # (L, H, stop − start)
    else:
        attention = np.asarray(step.attention, dtype=float)[..., span[0]:span[1]]
    if attention.ndim == 3:
        attention = attention[layer] if layer is not None else attention.mean(0)
        attention = attention[head] if head is not None else attention.mean(0)
    elif attention.ndim != 1:
        raise ValueError(f"step {index}: attention must be (S,) or (L, H, S), got shape {attention.shape}")
    return attention


def coverage_matrix(steps: Sequence[Step], attention: np.ndarray) -> tuple[np.ndarray, bool]:
    """Coverage before each step as (T, S), and whether it is the model's own coverage.

    Models without a coverage mechanism get the running sum of earlier attention instead.
    """
    if steps and all(step.coverage is not None for step in steps):
        coverage = np.stack([np.asarray(step.coverage, dtype=float) for step in steps])
        if coverage.shape != attention.shape:
            raise ValueError(f"coverage has shape {coverage.shape}, attention {attention.shape}")
        return coverage, True
    running = np.cumsum(attention, axis=0) - attention  # (T, S) sum over earlier steps
    return running, False


def check_pinned(pinned_step: Optional[int], n_steps: int) -> Optional[int]:
    """The pinned step, or ValueError if it is outside the trace's steps."""
    if pinned_step is None:
        return None
    if not 0 <= pinned_step < n_steps:
        raise ValueError(f"pinned step {pinned_step} is outside the {n_steps} output steps")
    return pinned_step


def step_cells(n_steps: int, n_columns: int) -> np.ndarray:
    """``customdata`` for a steps × columns heatmap: each cell carries its step index, so a click
    pins that step without parsing labels."""
    return np.repeat(np.arange(n_steps)[:, None], n_columns, axis=1)


def step_labels(steps: Sequence[Step]) -> list[str]:
    """Unique category labels for output steps: ``"3 · token"``."""
    return [f"{i} · {label(step.token)}" for i, step in enumerate(steps)]


def source_labels(tokens: Sequence[str], offset: int = 0) -> list[str]:
    """Unique category labels for source positions: ``"12 · token"`` (``tokens`` start at ``offset``)."""
    return [f"{i} · {label(tok)}" for i, tok in enumerate(tokens, start=offset)]


def repeated_ngram_steps(tokens: Sequence[str], n: int) -> set[int]:
    """Positions of tokens inside an n-gram that already occurred earlier in ``tokens``."""
    words = [t for t in tokens if t != END_TOKEN]
    if n <= 0 or len(words) < n:
        return set()
    seen: set[tuple] = set()
    marked: set[int] = set()
    for start in range(len(words) - n + 1):
        gram = tuple(words[start : start + n])
        if gram in seen:
            marked.update(range(start, start + n))
        seen.add(gram)
    return marked


MESSAGE_CHARS = 44  # a message-only figure's lines: they fit a phone's width (the figure does not scroll)


def wrapped(message: str, width: int = MESSAGE_CHARS) -> str:
    """``message`` escaped for plotly, in lines of at most ``width`` characters."""
    return "<br>".join(label(line) for line in textwrap.wrap(str(message), width, break_long_words=False)) or ""


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure carrying a centred message (used when there is nothing to draw), wrapped into
    short lines so that it reads on a phone too."""
    return go.Figure(layout=dict(
        height=height, font=FONT, xaxis=dict(visible=False), yaxis=dict(visible=False),
        plot_bgcolor="white", paper_bgcolor="white", margin=dict(l=20, r=20, t=30, b=20),
        annotations=[dict(text=wrapped(message), showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font=dict(size=14, color="#666"))],
    ))


def heatmap_height(n_rows: int, minimum: int = 340, per_row: int = 26, maximum: int = 900) -> int:
    """A figure height that keeps rows readable."""
    return int(min(maximum, max(minimum, 150 + per_row * n_rows)))


def source_axis(tokens: Sequence[str], window: int, focus: Optional[int] = None, offset: int = 0) -> dict:
    """A categorical x-axis over source tokens (the first at position ``offset``). Sources longer than
    ``window`` open on ``window`` tokens centred on the ``focus``-th (the start when None), with a
    range slider to scroll."""
    axis = dict(type="category", tickangle=-60, tickmode="array", tickvals=source_labels(tokens, offset),
                ticktext=[label(t) for t in tokens], tickfont=dict(size=10), title="source token")
    if len(tokens) > window:
        start = 0 if focus is None else min(max(focus - window // 2, 0), len(tokens) - window)
        axis.update(range=[start - 0.5, start + window - 0.5], rangeslider=dict(visible=True, thickness=0.06))
    return axis


def truncation_shapes(trace: GenerationTrace, yref: str = "paper", xref: str = "x",
                      offset: int = 0) -> tuple[list, list]:
    """A dashed line and a note after the last source token when the input was truncated (on an
    axis whose first category is source position ``offset``)."""
    if not trace.truncated:
        return [], []
    edge = len(trace.source_tokens) - offset - 0.5
    shape = dict(type="line", xref=xref, yref=yref, x0=edge, x1=edge, y0=0, y1=1,
                 line=dict(color=PIN_COLOR, width=2, dash="dash"))
    note = dict(xref=xref, yref=yref, x=edge, y=1.0, yanchor="bottom", xanchor="right", showarrow=False,
                text=f"truncated here: only the first {len(trace.source_tokens)} tokens were read",
                font=dict(color=PIN_COLOR, size=11))
    return [shape], [note]


TITLE_CHARS = 100  # a view's title wraps beyond this, so it never runs under the legend or off the plot


def base_layout(title: str, height: int, trace: Optional[GenerationTrace] = None) -> dict:
    """Layout settings shared by all views: the title at the top, wrapped into lines of at most
    ``TITLE_CHARS`` characters, with room below it for a legend above the plot. With ``trace``, zoom
    and pan survive re-renders of the same source and output (plotly's ``uirevision``), e.g. when
    another step is pinned."""
    lines = textwrap.wrap(title, TITLE_CHARS, break_long_words=False, break_on_hyphens=False) or [""]
    height += 18 * (len(lines) - 1)
    layout = dict(title=dict(text="<br>".join(lines), x=0.01, xanchor="left", y=1 - 12 / height, yref="container",
                             yanchor="top", font=dict(size=14)),
                  height=height, font=FONT,
                  margin=dict(l=70, r=30, t=60 + 18 * (len(lines) - 1), b=40), plot_bgcolor="white",
                  paper_bgcolor="white", hoverlabel=dict(font=dict(family="monospace")))
    if trace is not None:
        layout["uirevision"] = ui_revision(trace)
    return layout


def ui_revision(trace: GenerationTrace) -> str:
    """A key that changes when the source or the output changes."""
    digest = hashlib.blake2b(digest_size=8)
    for token in [trace.model, *trace.source_tokens, "\x00", *trace.output_tokens]:
        digest.update(token.encode("utf-8", "surrogatepass") + b"\x1f")
    return digest.hexdigest()
