"""The probability strip: for every output step, the chosen token's probability, the margin between
the two most likely tokens, and the entropy of the whole distribution; the pinned step marked.
Bars carry their step as ``customdata`` so a click pins it."""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .common import COPY_COLOR, GENERATE_COLOR, PIN_COLOR, ViewOptions, base_layout, check_pinned, label, step_labels


def top_margin(step) -> float:
    """p(top-1) − p(top-2) among the step's recorded candidates (the top-1 alone when only one)."""
    probs = sorted((float(np.exp(c.logprob)) for c in step.candidates), reverse=True)
    return probs[0] - (probs[1] if len(probs) > 1 else 0.0) if probs else float("nan")


def probability_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Chosen-token probability and top-1 margin (bars, left axis) and entropy (line, right axis)."""
    options = options or ViewOptions()
    steps, x = trace.steps, step_labels(trace.steps)
    pinned = check_pinned(options.pinned_step, len(steps))
    chosen = [float(np.exp(s.logprob)) for s in steps]
    entropy = [s.entropy if s.entropy is not None else float("nan") for s in steps]
    index = list(range(len(steps)))
    data = [
        go.Bar(x=x, y=chosen, name="p(chosen token)", marker_color=GENERATE_COLOR, customdata=index,
               hovertemplate="%{x}<br>p = %{y:.3f}<extra></extra>"),
        go.Bar(x=x, y=[top_margin(s) for s in steps], name="top-1 margin", marker_color="#9ecae1",
               customdata=index, hovertemplate="%{x}<br>p(top-1) − p(top-2) = %{y:.3f}<extra></extra>"),
        go.Scatter(x=x, y=entropy, name="entropy (nats)", yaxis="y2", mode="lines+markers",
                   line=dict(color=COPY_COLOR), customdata=index,
                   hovertemplate="%{x}<br>entropy %{y:.2f} nats<extra></extra>"),
    ]
    low = sum(1 for p in chosen if p < 0.5)
    title = f"Step probabilities · {low} of {len(steps)} steps chose a token with p < 0.5"
    if pinned is not None:
        title += f" · pinned step {pinned}"
    layout = base_layout(title, 360, trace)
    layout.update(barmode="group", yaxis=dict(title="probability", range=[0, 1]),
                  yaxis2=dict(title="entropy (nats)", overlaying="y", side="right", rangemode="tozero",
                              showgrid=False),
                  xaxis=dict(type="category", tickmode="array", tickvals=x, ticktext=[label(s.token) for s in steps],
                             tickangle=-45),
                  legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
                  shapes=[dict(type="rect", xref="x", yref="paper", x0=pinned - 0.5, x1=pinned + 0.5, y0=0, y1=1,
                               line=dict(color=PIN_COLOR, width=2))] if pinned is not None else [])
    return go.Figure(data=data, layout=layout)


def has_reference(trace: GenerationTrace) -> bool:
    """Whether the trace was run in reference mode."""
    return trace.reference is not None


def reference_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Reference mode: per step, the reference token's log-probability under teacher forcing beside
    the log-probability of the token the model took; the first departure marked; the verdict."""
    ref = trace.reference
    steps = list(range(max(len(ref["tokens"]), len(trace.steps))))
    output = trace.path()
    data = [
        go.Scatter(x=steps[: len(ref["tokens"])], y=ref["logprobs"], mode="lines+markers",
                   name="reference (teacher-forced)",
                   line=dict(color=COPY_COLOR), customdata=steps[: len(ref["tokens"])],
                   text=[f"{label(t)} · rank {r}" for t, r in zip(ref["tokens"], ref["ranks"])],
                   hovertemplate="step %{x}: %{text}<br>log p = %{y:.2f}<extra></extra>"),
        go.Scatter(x=steps[: len(output)], y=[n.logprob for n in output], mode="lines+markers",
                   name="the model's output", line=dict(color=GENERATE_COLOR), customdata=steps[: len(output)],
                   text=[label(n.token) for n in output],
                   hovertemplate="step %{x}: %{text}<br>log p = %{y:.2f}<extra></extra>"),
    ]
    verdict = {"search error": "search error: the model prefers the reference, the search lost it",
               "model error": "model error: the model prefers its own output",
               "match": "the output is the reference", "tie": "a tie: both score the same",
               "output cut": "the output stopped at max length without its end: raise max length to judge"
               }.get(ref["verdict"], ref["verdict"])
    title = (f"Reference mode · {verdict} · log p reference {ref['total_logprob']:.2f} vs output "
             f"{ref['output_logprob']:.2f}")
    departure = ref["first_departure"]
    layout = base_layout(title, 380, trace)
    layout.update(xaxis=dict(title="step", dtick=1), yaxis=dict(title="log-probability of the step's token"),
                  legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
                  shapes=[dict(type="line", xref="x", yref="paper", x0=departure, x1=departure, y0=0, y1=1,
                               line=dict(color=PIN_COLOR, width=2, dash="dash"))] if departure is not None else [],
                  annotations=[dict(x=departure, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                                    text="first departure", font=dict(color=PIN_COLOR, size=11))]
                  if departure is not None else [])
    return go.Figure(data=data, layout=layout)
