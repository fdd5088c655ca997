"""Topic attention and topic coverage per step (MTA-LSTM style models): (K,) arrays per step.

Models without topics record ``None`` and get a short explanatory figure instead.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .attention import pinned_row_shape, step_axis
from .common import ViewOptions, base_layout, check_pinned, empty_figure, heatmap_height, label, path_steps, step_labels


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
    """Topic attention (left) and topic coverage after each step (right), steps as rows."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps or any(s.topic_attention is None for s in steps):
        return empty_figure("this model has no topic attention")
    topics = trace.topics or [f"topic {k}" for k in range(np.asarray(steps[0].topic_attention).shape[0])]
    attention = topic_matrix(steps, "topic_attention", len(topics))
    has_coverage = all(s.topic_coverage is not None for s in steps)
    pinned = check_pinned(options.pinned_step, len(steps))
    x = [f"{k} · {label(t)}" for k, t in enumerate(topics)]
    data = [go.Heatmap(z=attention, x=x, y=step_labels(steps), colorscale="Purples", zmin=0, showscale=False,
                       hovertemplate="%{y}<br>%{x}<br>topic attention %{z:.3f}<extra></extra>")]
    if has_coverage:
        data.append(go.Heatmap(z=topic_matrix(steps, "topic_coverage", len(topics)), x=x, y=step_labels(steps),
                               colorscale="Greens", xaxis="x2", yaxis="y", colorbar=dict(title=dict(text="coverage")),
                               hovertemplate="%{y}<br>%{x}<br>topic coverage %{z:.3f}<extra></extra>"))
    layout = base_layout("Topic attention (left) and topic coverage after each step (right)",
                         heatmap_height(len(steps)))
    layout.update(xaxis=dict(domain=[0, 0.47] if has_coverage else [0, 1], type="category"),
                  xaxis2=dict(domain=[0.53, 1], type="category"), yaxis=step_axis(steps, pinned),
                  shapes=[pinned_row_shape(pinned, xref="paper")] if pinned is not None else [])
    return go.Figure(data=data, layout=layout)
