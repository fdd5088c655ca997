"""Two traces on the same input, step-aligned: attention side by side, per-step probabilities and
p_gen below; steps whose tokens differ are outlined and their labels turned red."""
from __future__ import annotations

from itertools import zip_longest
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace, Step

from .common import (
    COPY_COLOR,
    GENERATE_COLOR,
    PIN_COLOR,
    ViewOptions,
    attention_matrix,
    base_layout,
    empty_figure,
    label,
    source_axis,
    source_labels,
    step_labels,
)


def differing_steps(steps_a: Sequence[Step], steps_b: Sequence[Step]) -> list[int]:
    """Step indices where the two outputs have different tokens (or only one has a token)."""
    pairs = zip_longest(steps_a, steps_b)
    return [i for i, (a, b) in enumerate(pairs) if (a.token if a else None) != (b.token if b else None)]


HEATMAP_GAP_PX = 170  # under the heatmaps: their rotated source labels, then the legend of the lines
LINES_PX = 190


def compare_figure(trace_a: GenerationTrace, trace_b: GenerationTrace, options: Optional[ViewOptions] = None,
                   labels: tuple[str, str] = ("A", "B")) -> go.Figure:
    """Side-by-side attention heatmaps (one colour scale) sharing the step axis, and per-step
    p(token) / p_gen lines."""
    options = options or ViewOptions()
    if not trace_a.steps or not trace_b.steps:
        return empty_figure("both runs need at least one decoding step to compare")
    differ = differing_steps(trace_a.steps, trace_b.steps)
    length = max(len(trace_a.steps), len(trace_b.steps))
    if not (trace_a.has_attention and trace_b.has_attention):
        return _lines_only(trace_a, trace_b, labels, differ, length)
    matrices = [attention_matrix(t.steps, len(t.source_tokens), options.layer, options.head)
                for t in (trace_a, trace_b)]
    top = max(1e-6, *(float(m.max()) for m in matrices))
    data = [_heatmap(trace_a, matrices[0], top, "x", "y"), _heatmap(trace_b, matrices[1], top, "x2", "y2")]
    data += _step_lines(trace_a, labels[0], "solid") + _step_lines(trace_b, labels[1], "dot")
    # pixel rows, top to bottom: the heatmaps, their rotated source labels and the legend, the lines
    heat, gap, lines = 40 + 18 * length, HEATMAP_GAP_PX, LINES_PX
    plot = heat + gap + lines
    layout = base_layout(_title(labels, differ, length), plot + 100)  # 100: the top and bottom margins
    step_range, top_of_lines = [length - 0.5, -0.5], lines / plot
    layout.update(
        xaxis=_source_axis(trace_a, options, [0, 0.46], "y"),
        yaxis=_step_axis(trace_a.steps, differ, [(lines + gap) / plot, 1], step_range, "x"),
        xaxis2=_source_axis(trace_b, options, [0.54, 1], "y2"),
        yaxis2=_step_axis(trace_b.steps, differ, [(lines + gap) / plot, 1], step_range, "x2"),
        xaxis3=dict(domain=[0, 1], anchor="y3", title="step", dtick=1, range=[-0.5, length - 0.5]),
        yaxis3=dict(domain=[0, top_of_lines], anchor="x3", range=[0, 1.02], title="p(token), p_gen"),
        shapes=[_diff_band(i) for i in differ],
        annotations=[
            dict(text=f"<b>{label(labels[0])}</b>", xref="paper", yref="paper",
                 x=0, y=1.0, yanchor="bottom", showarrow=False),
            dict(text=f"<b>{label(labels[1])}</b>", xref="paper", yref="paper",
                 x=0.54, y=1.0, yanchor="bottom", xanchor="left", showarrow=False),
        ],
        legend=dict(orientation="h", x=0, y=top_of_lines + 6 / plot, yanchor="bottom"),
    )
    return go.Figure(data=data, layout=layout)


def _lines_only(trace_a: GenerationTrace, trace_b: GenerationTrace, labels: tuple[str, str], differ: list,
                length: int) -> go.Figure:
    """The comparison for models without attention over a source: per-step p(token) (and p_gen)."""
    data = _step_lines(trace_a, labels[0], "solid") + _step_lines(trace_b, labels[1], "dot")
    layout = base_layout(_title(labels, differ, length) + " · no attention to set side by side", 340)
    layout.update(xaxis3=dict(domain=[0, 1], anchor="y3", title="step", dtick=1, range=[-0.5, length - 0.5]),
                  yaxis3=dict(domain=[0, 0.85], anchor="x3", range=[0, 1.02], title="p(token), p_gen"),
                  legend=dict(orientation="h", x=0, y=0.9, yanchor="bottom"))
    return go.Figure(data=data, layout=layout)


def _heatmap(trace: GenerationTrace, matrix: np.ndarray, top: float, xaxis: str, yaxis: str) -> go.Heatmap:
    return go.Heatmap(z=matrix, x=source_labels(trace.source_tokens), y=step_labels(trace.steps),
                      colorscale="Blues", zmin=0, zmax=top, showscale=False, xaxis=xaxis, yaxis=yaxis,
                      hovertemplate="%{y}<br>%{x}<br>attention %{z:.3f}<extra></extra>")


def _source_axis(trace: GenerationTrace, options: ViewOptions, domain: list, anchor: str) -> dict:
    axis = source_axis(trace.source_tokens, options.source_window)
    axis.update(domain=domain, anchor=anchor, rangeslider=dict(visible=False), title=None)
    return axis


def _step_axis(steps: Sequence[Step], differ: list, domain: list, step_range: list, anchor: str) -> dict:
    text = [f"<span style='color:{PIN_COLOR}'><b>{label(s.token)}</b></span>" if i in differ else label(s.token)
            for i, s in enumerate(steps)]
    return dict(type="category", tickmode="array", tickvals=step_labels(steps), ticktext=text,
                domain=domain, range=step_range, anchor=anchor)


def _step_lines(trace: GenerationTrace, name: str, dash: str) -> list:
    steps = list(range(len(trace.steps)))
    tokens = [label(s.token) for s in trace.steps]
    lines = [go.Scatter(x=steps, y=[float(np.exp(s.logprob)) for s in trace.steps], text=tokens,
                        mode="lines+markers", name=f"{label(name)}: p(token)", xaxis="x3", yaxis="y3",
                        line=dict(color=GENERATE_COLOR, dash=dash),
                        hovertemplate=f"{label(name)} step %{{x}} %{{text}}<br>p %{{y:.3f}}<extra></extra>")]
    if trace.has_copy_switch:
        lines.append(go.Scatter(x=steps, y=[s.p_gen for s in trace.steps], text=tokens, mode="lines+markers",
                                name=f"{label(name)}: p_gen", xaxis="x3", yaxis="y3",
                                line=dict(color=COPY_COLOR, dash=dash),
                                hovertemplate=f"{label(name)} step %{{x}} %{{text}}<br>p_gen %{{y:.3f}}"
                                              "<extra></extra>"))
    return lines


def _diff_band(step: int) -> dict:
    return dict(type="rect", xref="paper", yref="y", x0=0, x1=1, y0=step - 0.5, y1=step + 0.5,
                fillcolor="rgba(214,39,40,0.08)", line=dict(width=0), layer="below")


def _title(labels: tuple[str, str], differ: list, length: int) -> str:
    if not differ:
        return f"{label(labels[0])} vs {label(labels[1])}: identical outputs"
    return (f"{label(labels[0])} vs {label(labels[1])}: first difference at step {differ[0]}, "
            f"{len(differ)} of {length} steps differ (red)")
