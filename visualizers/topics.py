"""Topic attention and topic coverage per step (MTA-LSTM style models): (K,) arrays per step.

Models without topics record ``None`` and get a short explanatory figure instead.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .common import (
    PIN_COLOR,
    ViewOptions,
    base_layout,
    check_pinned,
    empty_figure,
    heatmap_height,
    label,
    path_steps,
)


def topic_matrix(steps: list, name: str, n_topics: int) -> np.ndarray:
    """(T, K) stack of a per-step topic array, ValueError on a shape mismatch."""
    rows = []
    for index, step in enumerate(steps):
        values = np.asarray(getattr(step, name), dtype=float)
        if values.shape != (n_topics,):
            raise ValueError(f"step {index}: {name} has shape {values.shape}, expected ({n_topics},)")
        rows.append(values)
    return np.stack(rows)


def topic_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Topic-coverage decay (top: one line per topic, from C_0 = 1 before the first step to C_t after
    each step) above the topic-attention heatmap (topics × steps); the pinned step is marked in both."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps or any(s.topic_attention is None for s in steps):
        return empty_figure("this model has no topic attention")
    n_topics = np.asarray(steps[0].topic_attention).shape[0]
    topics = trace.topics or (trace.source_tokens if len(trace.source_tokens) == n_topics else
                              [f"topic {k}" for k in range(n_topics)])
    attention = topic_matrix(steps, "topic_attention", len(topics))  # (T, K)
    has_coverage = all(s.topic_coverage is not None for s in steps)
    pinned = check_pinned(options.pinned_step, len(steps))
    x = list(range(len(steps)))  # numeric step positions shared by both panels; -1 is "before step 0"
    names = [f"{k} · {label(t)}" for k, t in enumerate(topics)]
    data = [go.Heatmap(z=attention.T, x=x, y=names, colorscale="Purples", zmin=0, xaxis="x", yaxis="y",
                       customdata=[list(range(len(steps)))] * len(topics),
                       colorbar=dict(title=dict(text="topic attention"), thickness=12, len=0.45, y=0.22),
                       hovertemplate="step %{x}<br>topic %{y}<br>topic attention %{z:.3f}<extra></extra>")]
    if has_coverage:
        coverage = topic_matrix(steps, "topic_coverage", len(topics))  # (T, K) after each step
        for k, name in enumerate(names):
            data.append(go.Scatter(x=[-1, *x], y=[1.0, *coverage[:, k]], name=name, mode="lines+markers",
                                   marker=dict(size=4), xaxis="x2", yaxis="y2",
                                   hovertemplate=f"topic {name}<br>after step %{{x}}<br>coverage %{{y:.3f}}"
                                                 "<extra></extra>"))
    layout = base_layout("Topic coverage decay (top: C₀ = 1, then C after each step, one line per topic) and "
                         "topic attention (bottom)" if has_coverage else
                         "Topic attention (no topic coverage in this model)",
                         560 if has_coverage else heatmap_height(len(topics)), trace)
    steps_range = [-1.5, len(steps) - 0.5]
    layout.update(
        xaxis=dict(anchor="y", range=steps_range, tickmode="array", tickvals=[-1, *x],
                   ticktext=["C₀", *[label(s.token) for s in steps]], tickfont=dict(size=10), title="output step"),
        yaxis=dict(domain=[0, 0.42] if has_coverage else [0, 1], autorange="reversed", type="category"),
        xaxis2=dict(anchor="y2", matches="x", showticklabels=False),
        yaxis2=dict(domain=[0.55, 1], title="topic coverage C", rangemode="tozero"),
        legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
        shapes=_pinned_shapes(pinned, has_coverage) if pinned is not None else [],
    )
    return go.Figure(data=data, layout=layout)


def _pinned_shapes(pinned: int, has_coverage: bool) -> list[dict]:
    """An outline around the pinned step's column of the heatmap and a line at it in the decay chart."""
    shapes = [dict(type="rect", xref="x", yref="y domain", x0=pinned - 0.5, x1=pinned + 0.5, y0=0, y1=1,
                   line=dict(color=PIN_COLOR, width=2))]
    if has_coverage:
        shapes.append(dict(type="line", xref="x2", yref="y2 domain", x0=pinned, x1=pinned, y0=0, y1=1,
                           line=dict(color=PIN_COLOR, width=2, dash="dot")))
    return shapes
