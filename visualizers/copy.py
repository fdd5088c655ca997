"""Copy vs generate: the pointer-generator's switch p_gen per step, and at the pinned step the top
candidates' probabilities split into their generate and copy parts, with the source positions the
copy mass came from.

For a copy model ``P(w) = p_gen·P_vocab(w) + (1 − p_gen)·Σ_{i: w_i = w} a_i``; the trace's
candidates carry both parts. Models without a copy switch show plain probabilities and attention.
"""
from __future__ import annotations

from typing import Optional

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
    check_pinned,
    empty_figure,
    label,
    path_steps,
    source_axis,
    source_labels,
    step_labels,
)


def copy_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Three panels: p_gen per step (top), the pinned step's candidates split into generate/copy
    (bottom left), and the copy mass per source position at the pinned step (bottom right)."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps:
        return empty_figure("no decoding steps recorded for this hypothesis")
    attention = attention_matrix(steps, len(trace.source_tokens), options.layer, options.head)
    pinned = check_pinned(options.pinned_step, len(steps))
    focus = pinned if pinned is not None else 0
    copies = all(step.p_gen is not None for step in steps)
    data = (_switch_bars(steps, copies) + _candidate_bars(steps[focus], copies)
            + [_source_mass(trace, steps[focus], attention[focus], copies)])
    layout = base_layout(_title(copies, focus), 620, trace)
    layout.update(
        barmode="stack",
        xaxis=dict(type="category", tickmode="array", tickvals=step_labels(steps),
                   ticktext=[label(s.token) for s in steps], tickangle=-45, anchor="y"),
        yaxis=dict(domain=[0.62, 1], range=[0, 1], title="share of the step" if copies else "p(token)"),
        xaxis2=dict(domain=[0, 0.36], range=[0, 1], title=f"probability at step {focus}", anchor="y2"),
        yaxis2=dict(domain=[0, 0.42], autorange="reversed", type="category", anchor="x2"),
        xaxis3=dict(source_axis(trace.source_tokens, options.source_window, int(attention[focus].argmax())),
                    domain=[0.46, 1], anchor="y3"),
        # at least 0–0.05, in plain decimals: a step that copies almost nothing read "50µ" at the top
        yaxis3=dict(domain=[0, 0.42], anchor="x3", range=[0, mass_top(data[-1].y)], exponentformat="none",
                    title="copy mass" if copies else "attention"),
        shapes=[_pin_shape(focus)] if pinned is not None else [],
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return go.Figure(data=data, layout=layout)


def _switch_bars(steps: list[Step], copies: bool) -> list:
    """Per step: p_gen (generate share) stacked with 1 − p_gen (copy share), or p(token)."""
    x = step_labels(steps)
    if not copies:
        probs = [float(np.exp(s.logprob)) for s in steps]
        return [go.Bar(x=x, y=probs, name="p(chosen token)", marker_color=GENERATE_COLOR,
                       customdata=list(range(len(steps))), hovertemplate="%{x}<br>p = %{y:.3f}<extra></extra>")]
    p_gen = np.array([s.p_gen for s in steps], dtype=float)
    return [
        go.Bar(x=x, y=p_gen, name="generate (p_gen)", marker_color=GENERATE_COLOR, legendgroup="gen",
               customdata=list(range(len(steps))), hovertemplate="%{x}<br>p_gen = %{y:.3f}<extra></extra>"),
        go.Bar(x=x, y=1 - p_gen, name="copy (1 − p_gen)", marker_color=COPY_COLOR, legendgroup="copy",
               customdata=list(range(len(steps))), hovertemplate="%{x}<br>1 − p_gen = %{y:.3f}<extra></extra>"),
    ]


def _candidate_bars(step: Step, copies: bool) -> list:
    """Horizontal stacked bars of the step's top candidates; the chosen token is starred."""
    names = [f"{rank + 1}. {'★ ' if c.token_id == step.token_id else ''}{label(c.token)}"
             for rank, c in enumerate(step.candidates)]
    common = dict(y=names, orientation="h", xaxis="x2", yaxis="y2", showlegend=False)
    if copies and all(c.p_generate is not None and c.p_copy is not None for c in step.candidates):
        return [
            go.Bar(x=[c.p_generate for c in step.candidates], marker_color=GENERATE_COLOR, name="generate",
                   hovertemplate="%{y}<br>generate part %{x:.4f}<extra></extra>", legendgroup="gen", **common),
            go.Bar(x=[c.p_copy for c in step.candidates], marker_color=COPY_COLOR, name="copy",
                   hovertemplate="%{y}<br>copy part %{x:.4f}<extra></extra>", legendgroup="copy", **common),
        ]
    return [go.Bar(x=[float(np.exp(c.logprob)) for c in step.candidates], marker_color=GENERATE_COLOR,
                   name="probability", hovertemplate="%{y}<br>p = %{x:.4f}<extra></extra>", **common)]


def _source_mass(trace: GenerationTrace, step: Step, attention: np.ndarray, copies: bool) -> go.Bar:
    """(1 − p_gen)·attention per source position; positions holding the chosen token are darker,
    positions the encoder read as ``<unk>`` are hatched."""
    mass = (1.0 - step.p_gen) * attention if copies else attention
    chosen = set(step.copied_from)
    unknown = {int(i) for i in trace.extra.get("read_as_unknown", [])}
    positions = range(len(trace.source_tokens))
    colors = [PIN_COLOR if i in chosen else COPY_COLOR if copies else GENERATE_COLOR for i in positions]
    notes = ["<br>read as &lt;unk&gt; by the encoder" if i in unknown else "" for i in positions]
    what = "copy mass" if copies else "attention"
    return go.Bar(x=source_labels(trace.source_tokens), y=mass, customdata=notes, xaxis="x3", yaxis="y3",
                  marker=dict(color=colors, pattern_shape=["/" if i in unknown else "" for i in positions]),
                  showlegend=False, hovertemplate=f"%{{x}}<br>{what} %{{y:.4f}}%{{customdata}}<extra></extra>")


def mass_top(mass) -> float:
    """The top of the copy-mass axis: a little above the largest bar, and never below 0.05, so that a
    step copying almost nothing shows low bars on a 0–0.05 scale rather than a micro-scale."""
    values = np.asarray(mass, dtype=float)
    return max(0.05, 1.08 * float(values.max())) if values.size else 1.0


def _pin_shape(focus: int) -> dict:
    return dict(type="rect", xref="x", yref="y domain", x0=focus - 0.5, x1=focus + 0.5, y0=0, y1=1,
                line=dict(color=PIN_COLOR, width=2))


def _title(copies: bool, focus: int) -> str:
    if copies:
        return (f"Copy vs generate · p_gen per step; at step {focus}: candidates split into "
                "generate/copy parts, and where the copy mass came from (red: the chosen token)")
    return f"This model has no copy switch: every token is generated · step {focus}: candidates and attention"
