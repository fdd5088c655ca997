"""Attention heatmap: output steps (rows) × source tokens (columns)."""
from __future__ import annotations

from typing import Optional

import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

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
    step_cells,
    step_labels,
    truncation_shapes,
)


def attention_heatmap(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Heatmap of each step's attention over the source, the pinned step outlined.

    Long sources open on the first ``options.source_window`` tokens with a range slider; a
    truncated input gets a "truncated here" marker after its last kept token. With
    ``options.node_id`` the rows are that beam hypothesis's steps instead of the chosen output.
    """
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps:
        return empty_figure("no decoding steps recorded for this hypothesis")
    matrix = attention_matrix(steps, len(trace.source_tokens), options.layer, options.head)
    pinned = check_pinned(options.pinned_step, len(steps))
    rows = step_labels(steps)
    heat = go.Heatmap(
        z=matrix, x=source_labels(trace.source_tokens), y=rows, colorscale="Blues", zmin=0,
        zmax=max(float(matrix.max()), 1e-6), colorbar=dict(title=dict(text="attention"), thickness=12),
        hovertemplate="output %{y}<br>source %{x}<br>attention %{z:.3f}<extra></extra>",
        customdata=step_cells(*matrix.shape),
    )
    shapes, notes = truncation_shapes(trace)
    if pinned is not None:
        shapes.append(pinned_row_shape(pinned))
    layout = base_layout(_title(trace, options, pinned), heatmap_height(len(steps)), trace)
    focus = int(matrix[pinned if pinned is not None else 0].argmax())
    layout.update(xaxis=source_axis(trace.source_tokens, options.source_window, focus),
                  yaxis=step_axis(steps, pinned), shapes=shapes, annotations=notes)
    return go.Figure(data=[heat], layout=layout)


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


def _title(trace: GenerationTrace, options: ViewOptions, pinned: Optional[int]) -> str:
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
    return " · ".join(parts)
