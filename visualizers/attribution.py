"""On-demand explanations of one output step (computed by a button, never per keystroke): input
attribution beside the step's attention on the same source axis, and the logit lens of a
Transformer decoder (each layer's guess at the pinned step)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COPY_COLOR, GENERATE_COLOR, base_layout, label, source_labels

POSITIVE, NEGATIVE = "#2ca02c", "#d62728"


def attribution_figure(result: dict) -> go.Figure:
    """Attribution per source token (green raises the explained quantity, red lowers it) above the
    step's attention over the same tokens (when the model records attention)."""
    tokens = source_labels(result["source_tokens"])
    x = list(range(len(tokens)))
    values = np.asarray(result["attributions"], dtype=float)
    attention = result.get("attention")
    rows = 2 if attention is not None and len(attention) == len(tokens) else 1
    what = f"log P('{label(result['target'])}')"
    if result.get("contrast"):
        what += f" − log P('{label(result['contrast'])}')"
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=(f"{result['method']} attribution of {what}",
                                           "attention at this step")[:rows])
    figure.add_trace(go.Bar(x=x, y=values, marker_color=[POSITIVE if v >= 0 else NEGATIVE for v in values],
                            customdata=tokens, name="attribution",
                            hovertemplate="%{customdata}: %{y:.3f}<extra>attribution</extra>"), row=1, col=1)
    if rows == 2:
        figure.add_trace(go.Bar(x=x, y=attention, marker_color=COPY_COLOR, customdata=tokens, name="attention",
                                hovertemplate="%{customdata}: %{y:.3f}<extra>attention</extra>"), row=2, col=1)
    delta = result.get("convergence_delta")
    title = (f"Step {result['step']}: why '{label(result['target'])}'"
             + (f" and not '{label(result['contrast'])}'" if result.get("contrast") else "")
             + f" · F = {result['value']:.2f} (baseline {result['baseline_value']:.2f})"
             + (f" · Σ = {values.sum():.2f}, convergence δ = {delta:.1e}" if delta is not None else ""))
    layout = base_layout(title, 260 + 160 * rows)
    layout.update(showlegend=False, margin=dict(layout["margin"], t=layout["margin"]["t"] + 20, b=90))
    figure.update_layout(layout)
    figure.update_xaxes(tickmode="array", tickvals=x, ticktext=tokens, tickangle=-60, row=rows, col=1)
    return figure


def logit_lens_figure(result: dict) -> go.Figure:
    """One row per decoder layer: its top tokens (cell text) and their probabilities (colour); the
    chosen token's rank per layer on the right."""
    layers = result["layers"]
    k = len(layers[0]["top_tokens"])
    z = [row["top_probs"] for row in layers]
    text = [[label(t) for t in row["top_tokens"]] for row in layers]
    y = [f"layer {row['layer']}" for row in layers]
    figure = make_subplots(rows=1, cols=2, column_widths=[0.74, 0.26], horizontal_spacing=0.1,
                           subplot_titles=("top tokens per layer (colour: probability)",
                                           f"rank of '{label(result['chosen'])}'"))
    figure.add_trace(go.Heatmap(z=z, x=[f"#{i + 1}" for i in range(k)], y=y, text=text, texttemplate="%{text}",
                                colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="p", x=0.672, xanchor="left", thickness=12, len=0.9),
                                hovertemplate="%{y} %{x}: %{text} p = %{z:.3f}<extra></extra>"), row=1, col=1)
    figure.add_trace(go.Scatter(x=[row["chosen_rank"] for row in layers], y=y, mode="lines+markers+text",
                                text=[f"p {row['chosen_prob']:.2f}" for row in layers], textposition="top center", cliponaxis=False,
                                line=dict(color=GENERATE_COLOR),
                                hovertemplate="%{y}: rank %{x}<extra></extra>"), row=1, col=2)
    layout = base_layout(f"Logit lens at step {result['step']} (chosen '{label(result['chosen'])}')",
                         max(260, 120 + 48 * len(layers)))
    layout.update(showlegend=False, margin=dict(layout["margin"], r=50))  # room for the last point's label
    figure.update_layout(layout)
    figure.update_xaxes(type="log", title="rank (log)", row=1, col=2)
    figure.update_yaxes(showticklabels=False, row=1, col=2)  # the heatmap's rows: its labels are the layers
    return figure
