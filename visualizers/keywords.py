"""Keyword-introduced replies (Seq2BF, HGFU): the query's candidate keywords by PMI (click one to
re-decode around it), the reply in reading order with the keyword and the backward half marked, and
HGFU's fusion gate across steps."""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gen_models.trace import GenerationTrace

from .common import COPY_COLOR, GENERATE_COLOR, PIN_COLOR, ViewOptions, base_layout, check_pinned, label, step_labels

BACKWARD_COLOR, KEYWORD_COLOR = "#9467bd", "#d62728"


def has_keyword(trace: GenerationTrace) -> bool:
    """Whether the model chose a keyword for this query."""
    return "keyword" in trace.extra


def has_gate(trace: GenerationTrace) -> bool:
    """Whether every step records a fusion gate."""
    return bool(trace.steps) and all("gate" in s.extra for s in trace.steps)


def keyword_candidates_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Top candidate keywords with their summed PMI; the one used is highlighted. Each bar carries
    its word as ``customdata``: a click decodes again around it."""
    candidates = trace.extra.get("keyword_candidates") or []
    keyword = trace.extra["keyword"]
    words = [str(w) for w, _ in candidates]
    scores = [float(s) for _, s in candidates]
    source = trace.extra.get("keyword_source", "PMI")
    title = f"Keyword: '{keyword}' ({'given by you' if source == 'given' else source})"
    title += " · click a bar to decode around another keyword" if words else " · no query word has a PMI candidate"
    figure = go.Figure(go.Bar(
        x=scores[::-1], y=words[::-1], orientation="h", customdata=words[::-1],
        marker_color=[KEYWORD_COLOR if w == keyword else GENERATE_COLOR for w in words[::-1]],
        hovertemplate="%{y}: Σ PMI = %{x:.2f}<extra>click to use</extra>"))
    layout = base_layout(title, max(220, 60 + 26 * len(words)), trace)
    layout.update(xaxis=dict(title="Σ PMI(query word, noun)"), yaxis=dict(type="category", automargin=True),
                  margin=dict(layout["margin"], l=110))
    figure.update_layout(layout)
    return figure


def reading_order(trace: GenerationTrace) -> list[tuple[int, str, str]]:
    """(step, token, role) of the output as it reads: role "keyword", "backward" or "forward".
    A model without halves (HGFU) reads in generation order; its keyword is marked where it occurs."""
    keyword = trace.extra["keyword"]
    steps = [(i, s) for i, s in enumerate(trace.steps) if s.token != "</s>"]
    halves = [s.extra.get("half") for _, s in steps]
    if not steps or any(h is None for h in halves):
        return [(i, s.token, "keyword" if s.token == keyword else "forward") for i, s in steps]
    switch = next((j for j, (_, s) in enumerate(steps) if j > 0 and s.token == "<s>" and halves[j] == 0), None)
    backward = steps[1:switch] if switch is not None else steps[1:]
    forward = steps[switch + 1:] if switch is not None else []
    first = steps[0]
    return ([(i, s.token, "backward") for i, s in reversed(backward)] + [(first[0], first[1].token, "keyword")]
            + [(i, s.token, "forward") for i, s in forward])


def reading_order_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """The reply laid out in reading order; each token labelled with the step that generated it
    (Seq2BF writes the keyword first, then backward to the start, then forward). Click a token to pin."""
    options = options or ViewOptions()
    tokens = reading_order(trace)
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    colors = {"keyword": KEYWORD_COLOR, "backward": BACKWARD_COLOR, "forward": GENERATE_COLOR}
    names = {"keyword": "keyword", "backward": "backward half (written right to left)", "forward": "forward half"}
    figure = go.Figure()
    for role in ("backward", "keyword", "forward"):
        xs = [x for x, (_, _, r) in enumerate(tokens) if r == role]
        if not xs:
            continue
        figure.add_trace(go.Scatter(
            x=xs, y=[0] * len(xs), mode="text+markers", name=names[role],
            text=[label(tokens[x][1]) for x in xs], textposition="top center",
            marker=dict(size=[16 if tokens[x][0] == pinned else 10 for x in xs], color=colors[role], symbol="square"),
            customdata=[tokens[x][0] for x in xs],
            hovertemplate="%{text}<br>generated at step %{customdata}<extra>" + names[role] + "</extra>"))
    contained = any(role == "keyword" for _, _, role in tokens)
    title = f"Reply in reading order · keyword '{trace.extra['keyword']}' " + ("in the reply" if contained else
                                                                              "not in the reply")
    layout = base_layout(title, 220, trace)
    layout.update(xaxis=dict(visible=False, range=[-1, max(len(tokens), 1)]),
                  yaxis=dict(visible=False, range=[-0.5, 1]),
                  legend=dict(orientation="h", y=-0.05, x=0), margin=dict(layout["margin"], l=20, r=20, b=30))
    figure.update_layout(layout)
    return figure


def gate_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """HGFU's fusion gate k: its mean over dimensions at every step (1 = the query's decoder alone,
    0 = the cue word's), and each dimension at the pinned step."""
    options = options or ViewOptions()
    steps = trace.steps
    pinned = check_pinned(options.pinned_step, len(steps)) or 0
    gates = np.array([np.asarray(s.extra["gate"], dtype=float).reshape(-1) for s in steps])  # (T, H)
    x = step_labels(steps)
    figure = make_subplots(rows=2, cols=1, vertical_spacing=0.22, subplot_titles=(
        "mean gate k per step (1: standard decoder, 0: cue-word decoder)",
        f"gate per dimension at pinned step {pinned} ({label(steps[pinned].token)}), sorted"))
    figure.add_trace(go.Scatter(x=x, y=gates.mean(1), mode="lines+markers", name="mean k",
                                line=dict(color=GENERATE_COLOR), customdata=list(range(len(steps))),
                                hovertemplate="%{x}<br>mean k = %{y:.3f}<extra></extra>"), row=1, col=1)
    figure.add_trace(go.Scatter(x=[x[pinned]], y=[gates[pinned].mean()], mode="markers", name="pinned",
                                marker=dict(color=PIN_COLOR, size=12), customdata=[pinned],
                                hoverinfo="skip"), row=1, col=1)
    order = np.sort(gates[pinned])
    figure.add_trace(go.Bar(y=order, marker_color=COPY_COLOR, name="k per dimension",
                            hovertemplate="k = %{y:.3f}<extra></extra>"), row=2, col=1)
    layout = base_layout(f"Fusion gate · mean k over the reply {gates.mean():.2f}", 520, trace)
    layout.update(showlegend=False)
    figure.update_layout(layout)
    figure.update_xaxes(type="category", tickmode="array", tickvals=x, ticktext=[label(s.token) for s in steps],
                        row=1, col=1)
    figure.update_yaxes(range=[0, 1], row=1, col=1)
    figure.update_yaxes(range=[0, 1], row=2, col=1)
    figure.update_xaxes(title="dimension (sorted by k)", row=2, col=1)
    return figure
