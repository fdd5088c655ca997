"""Training curves of a checkpoint, from its metrics.json ``curves`` (one row per epoch)."""
from __future__ import annotations

from typing import Optional

import plotly.graph_objects as go

from .common import COPY_COLOR, GENERATE_COLOR, MUTED_COLOR, base_layout, empty_figure, label

LOSS_SERIES = (("train_loss", "train loss", MUTED_COLOR), ("valid_nll", "validation NLL", GENERATE_COLOR))
MECHANISM_SERIES = (("valid_coverage", "validation coverage loss", "#54a24b"),
                    ("valid_p_gen", "validation mean p_gen", COPY_COLOR))


def training_curves(metrics: dict, options: Optional[dict] = None) -> go.Figure:
    """Losses per epoch (top) and coverage loss / mean p_gen (bottom, when the curves have them: a
    Transformer's have not, and its losses take the whole height); phase changes marked."""
    curves = metrics.get("curves") or []
    if not isinstance(curves, list) or not curves:
        return empty_figure("this checkpoint has no training curves (metrics.json has no 'curves')")
    x = [f"{row.get('phase', '')} {row.get('epoch', i + 1)}".strip() + f" #{i}" for i, row in enumerate(curves)]
    ticks = [label(f"{row.get('phase', '')} {row.get('epoch', i + 1)}".strip()) for i, row in enumerate(curves)]
    mechanisms = _series(curves, x, MECHANISM_SERIES, "y2")
    axis = dict(type="category", tickmode="array", tickvals=x, ticktext=ticks)
    layout = base_layout("Training curves (per epoch)", 480 if mechanisms else 320)
    layout.update(shapes=_phase_lines(curves), legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    if mechanisms:
        layout.update(xaxis=dict(axis, anchor="y", showticklabels=False), yaxis=dict(domain=[0.5, 1], title="loss"),
                      xaxis2=dict(axis, anchor="y2", matches="x"), yaxis2=dict(domain=[0, 0.4], title="value"))
    else:
        layout.update(xaxis=dict(axis), yaxis=dict(title="loss"))
    return go.Figure(data=_series(curves, x, LOSS_SERIES, "y") + mechanisms, layout=layout)


def _series(curves: list, x: list, series: tuple, yaxis: str) -> list:
    traces = []
    for key, name, color in series:
        points = [(xi, row[key]) for xi, row in zip(x, curves) if isinstance(row.get(key), (int, float))]
        if points:
            traces.append(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                                     mode="lines+markers", line=dict(color=color), yaxis=yaxis,
                                     xaxis="x" if yaxis == "y" else "x2"))
    return traces


def _phase_lines(curves: list) -> list:
    """Dashed vertical lines where the training phase changes (e.g. main → coverage)."""
    return [dict(type="line", xref="x", yref="paper", x0=i - 0.5, x1=i - 0.5, y0=0, y1=1,
                 line=dict(color=MUTED_COLOR, dash="dash"))
            for i in range(1, len(curves)) if curves[i].get("phase") != curves[i - 1].get("phase")]
