"""Coverage view: coverage over all steps, and the coverage vector at the pinned step.

Coverage at step t is the sum of the attention of all earlier steps (the model's own coverage
vector when it has a coverage mechanism, otherwise the same running sum computed from attention and
labelled as such). Source positions whose coverage exceeds 1 were attended more than once in total:
the heatmap turns them orange/red and the bar chart flags them. Output steps inside a repeated
n-gram are marked in colour on the step axis.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .attention import pinned_row_shape, step_axis
from .common import (
    COPY_COLOR,
    GENERATE_COLOR,
    PIN_COLOR,
    REPEAT_COLOR,
    ViewOptions,
    attention_matrix,
    base_layout,
    check_pinned,
    coverage_matrix,
    empty_figure,
    heatmap_height,
    path_steps,
    repeated_ngram_steps,
    source_axis,
    source_labels,
    step_cells,
    step_labels,
    truncation_shapes,
)

OVER_COVERED = 1.0


def coverage_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Coverage heatmap (steps × source) above a bar chart of coverage before the pinned step plus
    its attention (the coverage after the last step when nothing is pinned)."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps:
        return empty_figure("no decoding steps recorded for this hypothesis")
    attention = attention_matrix(steps, len(trace.source_tokens), options.layer, options.head)
    coverage, own = coverage_matrix(steps, attention)
    pinned = check_pinned(options.pinned_step, len(steps))
    focus = pinned if pinned is not None else len(steps) - 1
    repeated = repeated_ngram_steps([s.token for s in steps], options.repeat_ngram)
    top_height = heatmap_height(len(steps), minimum=240, per_row=22, maximum=700)
    height = top_height + 300
    split = 300 / height
    traces = [_coverage_heatmap(trace, steps, coverage, own)] + _focus_bars(trace, coverage[focus],
                                                                             attention[focus], focus)
    shapes, notes = truncation_shapes(trace, yref="paper", xref="x2")
    if pinned is not None:
        shapes.append(pinned_row_shape(pinned))
    notes += _notes(coverage[focus] + attention[focus], repeated, options.repeat_ngram, focus, split)
    layout = base_layout(_title(own, pinned), height, trace)
    bottom_axis = source_axis(trace.source_tokens, options.source_window, int(attention[focus].argmax()))
    top_axis = {k: v for k, v in bottom_axis.items() if k not in ("rangeslider", "title")}
    layout.update(
        xaxis=dict(top_axis, matches="x2", anchor="y", showticklabels=False),
        yaxis=dict(step_axis(steps, pinned, {i: REPEAT_COLOR for i in repeated}), domain=[split + 0.06, 1]),
        xaxis2=dict(bottom_axis, anchor="y2"),
        yaxis2=dict(domain=[0, split - 0.12], title="coverage", rangemode="tozero"),
        barmode="stack", shapes=shapes, annotations=notes,
        legend=dict(orientation="h", y=split - 0.02, yanchor="bottom", x=0.5, xanchor="center"),
    )
    return go.Figure(data=traces, layout=layout)


def _coverage_heatmap(trace: GenerationTrace, steps: list, coverage: np.ndarray, own: bool) -> go.Heatmap:
    """Heatmap whose colours turn orange/red above 1 (positions covered more than once)."""
    top = max(float(coverage.max()), OVER_COVERED)
    edge = OVER_COVERED / top
    if top > OVER_COVERED:
        colorscale = [[0, "#ffffff"], [edge * 0.999, GENERATE_COLOR], [edge, "#fdae61"], [1, "#b2182b"]]
    else:
        colorscale = [[0, "#ffffff"], [1, GENERATE_COLOR]]
    name = "coverage" if own else "attention so far"
    return go.Heatmap(z=coverage, x=source_labels(trace.source_tokens), y=step_labels(steps),
                      colorscale=colorscale, zmin=0, zmax=top, showlegend=False,
                      colorbar=dict(title=dict(text=name), thickness=12, len=0.5, y=1, yanchor="top"),
                      hovertemplate=f"before %{{y}}<br>source %{{x}}<br>{name} %{{z:.3f}}<extra></extra>",
                      customdata=step_cells(*coverage.shape))


def _focus_bars(trace: GenerationTrace, before: np.ndarray, attention: np.ndarray, focus: int) -> list:
    """Stacked bars: coverage before step ``focus`` and the attention it adds; flags over 1."""
    x = source_labels(trace.source_tokens)
    after = before + attention
    over = np.flatnonzero(after > OVER_COVERED)
    bars = [
        go.Bar(x=x, y=before, name=f"coverage before step {focus}", marker_color=GENERATE_COLOR,
               xaxis="x2", yaxis="y2", hovertemplate="%{x}<br>before: %{y:.3f}<extra></extra>"),
        go.Bar(x=x, y=attention, name=f"attention at step {focus}", marker_color=COPY_COLOR,
               xaxis="x2", yaxis="y2", hovertemplate="%{x}<br>attention: %{y:.3f}<extra></extra>"),
    ]
    if len(over):
        bars.append(go.Scatter(
            x=[x[i] for i in over], y=after[over] + 0.05, mode="markers", xaxis="x2", yaxis="y2",
            marker=dict(symbol="triangle-down", color=PIN_COLOR, size=9), name="covered > 1",
            hovertemplate="%{x}<br>coverage after the step %{text} > 1<extra></extra>",
            text=[f"{v:.3f}" for v in after[over]],
        ))
    return bars


def _notes(after: np.ndarray, repeated: set, n: int, focus: int, split: float) -> list:
    """Text annotations: how many positions are over-covered, which steps repeat an n-gram."""
    over = int((after > OVER_COVERED).sum())
    text = f"after step {focus}: {over} source position{'s' if over != 1 else ''} covered more than once"
    if n > 0:
        text += f" · {len(repeated)} output token{'s' if len(repeated) != 1 else ''} in repeated {n}-grams"
    return [dict(text=text, xref="paper", yref="paper", x=0, y=split - 0.08, xanchor="left",
                 yanchor="bottom", showarrow=False,
                 font=dict(size=11, color=REPEAT_COLOR if over or repeated else "#555"))]


def _title(own: bool, pinned: Optional[int]) -> str:
    what = "Coverage (sum of earlier attention)" if own else \
        "Running sum of attention (this model has no coverage mechanism)"
    return what + (f" · pinned step {pinned}" if pinned is not None else "")
