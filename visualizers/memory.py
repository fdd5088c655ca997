"""The memory network's hops: attention over the story's sentences at each hop of the pinned step.

Reads each step's ``extra["hop_attention"]`` (hops × sentences) and, for generated stories, the
trace's ``extra["supporting"]`` (0-based sentence indices) and ``extra["answer"]``; the question
is ``extra["question"]``. Sentences are rows (the story read top to bottom), hops are columns;
supporting sentences are starred and outlined.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .common import PIN_COLOR, ViewOptions, base_layout, check_pinned, heatmap_height, label


def has_hops(trace: GenerationTrace) -> bool:
    """Whether the steps record attention per hop over a memory of sentences."""
    return bool(trace.steps) and all("hop_attention" in step.extra for step in trace.steps)


def supporting(trace: GenerationTrace) -> list[int]:
    """The supporting sentence indices the trace knows (generated stories), else []."""
    return [int(i) for i in np.atleast_1d(np.asarray(trace.extra.get("supporting", []), dtype=float))]


def hop_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Sentences × hops heatmap of the pinned step's attention (the first step when none is pinned)."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    focus = pinned if pinned is not None else 0
    hops = np.asarray(trace.steps[focus].extra["hop_attention"], dtype=float)  # (K, S)
    S = len(trace.source_tokens)
    if hops.ndim != 2 or hops.shape[1] != S:
        raise ValueError(f"step {focus}: hop attention has shape {hops.shape}, expected (hops, {S})")
    support = set(supporting(trace))
    rows = [f"{'★ ' if i in support else ''}{i} · {label(s)}" for i, s in enumerate(trace.source_tokens)]
    columns = [f"hop {k + 1}" for k in range(hops.shape[0])]
    heat = go.Heatmap(z=hops.T, x=columns, y=rows, colorscale="Blues", zmin=0, zmax=1,
                      colorbar=dict(title=dict(text="p"), thickness=12),
                      text=np.round(hops.T, 2), texttemplate="%{text}", textfont=dict(size=10),
                      hovertemplate="%{y}<br>%{x}: p = %{z:.3f}<extra></extra>")
    shapes = [dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=i - 0.5, y1=i + 0.5,
                   line=dict(color=PIN_COLOR, width=2)) for i in sorted(support) if i < S]
    layout = base_layout(_title(trace, focus, hops, support), heatmap_height(S, minimum=260, per_row=24), trace)
    layout.update(shapes=shapes, yaxis=dict(autorange="reversed", type="category", tickfont=dict(size=11)),
                  xaxis=dict(side="top", type="category"), margin=dict(l=320, r=30, t=90, b=20))
    return go.Figure(data=[heat], layout=layout)


def _title(trace: GenerationTrace, focus: int, hops: np.ndarray, support: set[int]) -> str:
    question = trace.extra.get("question", "")
    answer = trace.extra.get("answer")
    truth = f" (true answer: {answer})" if answer is not None else ""
    peaks = [int(np.argmax(row)) for row in hops]
    on_support = f" · peak on a supporting fact in hops {', '.join(str(k + 1) for k, p in enumerate(peaks) if p in support) or 'none'}" \
        if support else ""
    return (f"Q: {label(question)}? → {label(trace.output_text)}{truth} · attention per hop at step {focus} "
            f"({label(trace.steps[focus].token)}){on_support}; ★ = supporting sentence")
