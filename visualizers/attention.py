"""Attention heatmap: output steps (rows) × source tokens (columns)."""
from __future__ import annotations

from typing import Optional

import plotly.graph_objects as go

from gen_models.trace import GenerationTrace, TopKAttention

from .common import (
    PIN_COLOR,
    ViewOptions,
    attention_matrix,
    base_layout,
    check_pinned,
    empty_figure,
    heatmap_height,
    label,
    path_steps,
    source_axis,
    source_labels,
    source_span,
    step_cells,
    step_labels,
    truncation_shapes,
)


def attention_heatmap(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Heatmap of each step's attention over the source, the pinned step outlined.

    Long sources open on the first ``options.source_window`` tokens with a range slider; a
    truncated input gets a "truncated here" marker after its last kept token. With
    ``options.node_id`` the rows are that beam hypothesis's steps instead of the chosen output.
    ``options.source_range`` / ``hide_sink`` narrow the columns (:func:`source_span`); compact
    attention is dense-ified for those columns only, and the title says what it shows.
    """
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps:
        return empty_figure("no decoding steps recorded for this hypothesis")
    start, stop = source_span(options, len(trace.source_tokens))
    if stop <= start:
        hidden = "; position 0 is hidden" if options.hide_sink else ""
        return empty_figure(f"no source position to show in {start}–{stop} (the source has "
                            f"{len(trace.source_tokens)} tokens{hidden})")
    matrix = attention_matrix(steps, len(trace.source_tokens), options.layer, options.head, (start, stop))
    pinned = check_pinned(options.pinned_step, len(steps))
    tokens = trace.source_tokens[start:stop]
    heat = go.Heatmap(
        z=matrix, x=source_labels(tokens, start), y=step_labels(steps), colorscale="Blues", zmin=0,
        zmax=max(float(matrix.max()), 1e-6), colorbar=dict(title=dict(text="attention"), thickness=12),
        hovertemplate="output %{y}<br>source %{x}<br>attention %{z:.3f}<extra></extra>",
        customdata=step_cells(*matrix.shape),
    )
    shapes, notes = truncation_shapes(trace, offset=start) if stop == len(trace.source_tokens) else ([], [])
    if pinned is not None:
        shapes.append(pinned_row_shape(pinned))
    layout = base_layout(_title(trace, options, pinned, steps, (start, stop)), heatmap_height(len(steps)), trace)
    focus = int(matrix[pinned if pinned is not None else 0].argmax())
    layout.update(xaxis=source_axis(tokens, options.source_window, focus, start),
                  yaxis=step_axis(steps, pinned), shapes=shapes, annotations=notes)
    return go.Figure(data=[heat], layout=layout)


def span_title(trace: GenerationTrace, options: ViewOptions, span: tuple[int, int]) -> list[str]:
    """What the source columns show: a range, a hidden sink (not renormalised)."""
    parts = []
    if span != (0, len(trace.source_tokens)) and options.source_range is not None:
        parts.append(f"source positions {span[0]}–{span[1] - 1} of {len(trace.source_tokens)}")
    if options.hide_sink:
        parts.append("attention sink (position 0) hidden, the rest not renormalised")
    return parts


def compact_title(steps: list, options: ViewOptions) -> list[str]:
    """What compact attention (:class:`TopKAttention`) shows: the exact mean, or each head's top positions."""
    first = steps[0].attention if steps else None
    if not isinstance(first, TopKAttention):
        return []
    if options.layer is None and options.head is None:
        return ["exact mean over layers and heads (the prompt is long: single heads keep their top positions)"]
    k = first.weights.shape[-1]
    return [f"from each head's {k} most attended positions (the rest of its attention is not drawn)"]


def pinned_row_shape(pinned: int, xref: str = "x domain", yref: str = "y") -> dict:
    """An outline around the pinned step's row of a heatmap."""
    return dict(type="rect", xref=xref, yref=yref, x0=0, x1=1, y0=pinned - 0.5, y1=pinned + 0.5,
                line=dict(color=PIN_COLOR, width=2))


def step_axis(steps: list, pinned: Optional[int], colors: Optional[dict] = None) -> dict:
    """A categorical y-axis over output steps, top to bottom, the pinned one in bold.

    ``colors`` maps step index to a tick colour (e.g. repeated n-grams)."""
    colors = colors or {}
    text = []
    for index, step in enumerate(steps):
        token = label(step.token)
        if index in colors:
            token = f"<span style='color:{colors[index]}'>{token}</span>"
        text.append(f"<b>▶ {token}</b>" if index == pinned else token)
    return dict(type="category", autorange="reversed", tickmode="array", tickvals=step_labels(steps),
                ticktext=text, title="output step")


def _title(trace: GenerationTrace, options: ViewOptions, pinned: Optional[int], steps: list,
           span: tuple[int, int]) -> str:
    parts = ["Pointer distribution over the input points" if "points" in trace.extra else "Attention over the source"]
    if options.node_id is not None:
        parts.append(f"hypothesis ending at node {options.node_id}")
    if pinned is not None:
        parts.append(f"pinned step {pinned}")
    if options.layer is not None or options.head is not None:
        parts.append(f"layer {options.layer if options.layer is not None else 'mean'}, "
                     f"head {options.head if options.head is not None else 'mean'}")
    if trace.truncated:
        parts.append(f"input truncated to {len(trace.source_tokens)} tokens (marker at the end)")
    return " · ".join(parts + compact_title(steps, options) + span_title(trace, options, span))
