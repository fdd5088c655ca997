"""The corpus explorer's scatter: any two per-example statistics of a corpus run, one point per
example (its row number as ``customdata``: a click opens that example)."""
from __future__ import annotations

import plotly.graph_objects as go

from .common import GENERATE_COLOR, base_layout, empty_figure

NUMERIC = ("rouge_l", "chrf", "unk_count", "repeated_ngrams", "mean_p_gen", "attention_entropy", "coverage_loss",
           "output_tokens", "logprob_per_token", "question_reply", "negative_reply", "keyword_used", "safe_reply")
VERDICT_COLORS = {"search error": "#d62728", "model error": "#1f77b4", "match": "#2ca02c", "tie": "#7f7f7f",
                  "output cut": "#ff7f0e"}


def corpus_scatter(rows: list[dict], x: str, y: str) -> go.Figure:
    """``y`` against ``x`` over the examples that have both; coloured by reference verdict when known."""
    if x not in NUMERIC or y not in NUMERIC:
        return empty_figure(f"pick two of: {', '.join(NUMERIC)}")
    points = [(i, r) for i, r in enumerate(rows) if isinstance(r.get(x), (int, float)) and
              isinstance(r.get(y), (int, float))]
    if not points:
        return empty_figure(f"no example has both {x} and {y} (this model has no such signal, or no reference)")
    figure = go.Figure()
    groups: dict[str, list] = {}
    for i, row in points:
        groups.setdefault(row.get("verdict") or "examples", []).append((i, row))
    for name, members in groups.items():
        figure.add_trace(go.Scatter(
            x=[r[x] for _, r in members], y=[r[y] for _, r in members], mode="markers", name=name,
            marker=dict(color=VERDICT_COLORS.get(name, GENERATE_COLOR), size=8, opacity=0.75),
            customdata=[i for i, _ in members], text=[str(r.get("output", ""))[:80] for _, r in members],
            hovertemplate=f"#%{{customdata}}: %{{text}}<br>{x} %{{x:.3g}} · {y} %{{y:.3g}}<extra>%{{fullData.name}}"
                          "</extra>"))
    layout = base_layout(f"{y} against {x} · {len(points)} examples · click a point to open it", 420)
    layout.update(xaxis=dict(title=x), yaxis=dict(title=y))
    figure.update_layout(layout)
    return figure
