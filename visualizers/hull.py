"""The pointer network's plane: the input points, the predicted polygon and the true convex hull,
with the pointer distribution of the pinned step drawn on the points.

Reads the per-run signals ``points`` (n, 2) and ``true_hull`` (1-based indices) of the trace's
``extra``, and each step's ``attention`` (n,) — for a pointer network, the output distribution
over the points. Each point carries as ``customdata`` the step at which the output chose it
(None if it was never chosen), so a click pins that step.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .common import GENERATE_COLOR, MUTED_COLOR, PIN_COLOR, ViewOptions, base_layout, check_pinned, label


def has_points(trace: GenerationTrace) -> bool:
    """Whether the trace is over a point set (a pointer network's input)."""
    return "points" in trace.extra and bool(trace.steps)


def chosen_points(trace: GenerationTrace) -> list[int]:
    """0-based indices of the points the output chose, in order (the end symbol dropped)."""
    labels = {tok: i for i, tok in enumerate(trace.source_tokens)}
    return [labels[step.token] for step in trace.steps if step.token in labels]


def hull_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Points, true hull (dashed), predicted polygon (solid, in output order) and, at the pinned
    step, the pointer probability of each point as marker size and colour."""
    options = options or ViewOptions()
    points = np.asarray(trace.extra["points"], dtype=float)  # (n, 2)
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    focus = pinned if pinned is not None else 0
    pointer = np.asarray(trace.steps[focus].attention, dtype=float)  # (n,)
    true_hull = [int(i) - 1 for i in np.asarray(trace.extra.get("true_hull", []), dtype=float)]
    predicted = chosen_points(trace)
    chosen_at = {point: step for step, point in enumerate(predicted)}
    data = [
        _polygon(points, true_hull, "true hull (scipy)", dict(color=MUTED_COLOR, width=2, dash="dash")),
        _polygon(points, predicted, "predicted polygon", dict(color=GENERATE_COLOR, width=2)),
        go.Scatter(
            x=points[:, 0], y=points[:, 1], mode="markers+text", name=f"p(point) at step {focus}",
            text=[label(t) for t in trace.source_tokens], textposition="top center", textfont=dict(size=9),
            marker=dict(size=7 + 30 * np.sqrt(pointer), color=pointer, colorscale="Oranges", cmin=0, cmax=1,
                        line=dict(color="#555", width=0.5), colorbar=dict(title=dict(text="p"), thickness=12)),
            customdata=[chosen_at.get(i) for i in range(len(points))],
            hovertemplate="point %{text} (%{x:.3f}, %{y:.3f})<br>p = %{marker.color:.3f}<extra></extra>",
        ),
    ]
    if focus < len(predicted):
        point = points[predicted[focus]]
        data.append(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name=f"chosen at step {focus}",
                               marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color=PIN_COLOR, width=3)),
                               hoverinfo="skip"))
    layout = base_layout(_title(trace, predicted, true_hull, focus), 560, trace)
    layout.update(xaxis=dict(title="x", zeroline=False), yaxis=dict(title="y", scaleanchor="x", zeroline=False),
                  legend=dict(orientation="h", x=0, xanchor="left", y=0.01, yanchor="bottom", yref="container"))
    layout["margin"] = {**layout["margin"], "b": 110}  # the legend's own rows below the x axis (3 on a phone)
    return go.Figure(data=data, layout=layout)


def _polygon(points: np.ndarray, order: list[int], name: str, line: dict) -> go.Scatter:
    closed = order + order[:1]
    return go.Scatter(x=points[closed, 0] if order else [], y=points[closed, 1] if order else [], mode="lines",
                      name=name, line=line, hoverinfo="skip")


def _title(trace: GenerationTrace, predicted: list[int], true_hull: list[int], focus: int) -> str:
    exact = len(predicted) == len(true_hull) and any(
        predicted[i:] + predicted[:i] == true_hull for i in range(len(predicted)))
    verdict = "exact hull" if exact else f"{len(set(predicted) & set(true_hull))} of {len(true_hull)} hull points"
    return (f"Convex hull of {len(trace.source_tokens)} points · predicted {len(predicted)} ({verdict}) · "
            f"pointer distribution at step {focus}")
