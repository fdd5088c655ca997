"""Views of a sentence VAE's latent space (the trace's per-run ``extra`` signals, see
``gen_models/models/sentence_vae.py``): where the typed sentence lands among training sentences,
the homotopy between two sentences, KL per latent dimension, and samples from the prior.

The map's training points carry their sentence as ``customdata``: clicking one puts it in the input,
which decodes from its posterior mean.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace

from .common import GENERATE_COLOR, MUTED_COLOR, PIN_COLOR, ViewOptions, base_layout, empty_figure, label


def has_latent(trace: GenerationTrace) -> bool:
    """Whether the trace records a VAE posterior."""
    return "latent_mean" in trace.extra


def has_map(trace: GenerationTrace) -> bool:
    """Whether the trace carries a latent map of training sentences."""
    return "map_xy" in trace.extra


def latent_map_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Training sentences' posterior means on two PCA axes, the typed sentence's mean with a ±1σ
    ellipse, and the homotopy path when there is one."""
    extra = trace.extra
    points = np.asarray(extra["map_xy"], dtype=float)  # (N, 2)
    texts = [str(t) for t in extra["map_text"]]
    x, y = np.asarray(extra["typed_xy"], dtype=float)
    sx, sy = np.asarray(extra["typed_spread"], dtype=float)
    angle = np.linspace(0, 2 * np.pi, 60)
    data = [
        go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name="training sentences (posterior means)",
                     marker=dict(size=5, color=MUTED_COLOR, opacity=0.55), text=[label(t) for t in texts],
                     customdata=texts, hovertemplate="%{text}<extra>click to decode from it</extra>"),
        go.Scatter(x=x + sx * np.cos(angle), y=y + sy * np.sin(angle), mode="lines", name="±1σ of q(z|x)",
                   line=dict(color=PIN_COLOR, width=1.5, dash="dot"), hoverinfo="skip"),
        go.Scatter(x=[x], y=[y], mode="markers", name="your sentence (mean)", hoverinfo="text",
                   text=[label(" ".join(trace.source_tokens))],
                   marker=dict(symbol="star", size=16, color=PIN_COLOR, line=dict(color="white", width=1))),
    ]
    if "homotopy_xy" in extra:
        path = np.asarray(extra["homotopy_xy"], dtype=float)
        outputs = [label(t) for t in extra.get("homotopy", [""] * len(path))]
        data.append(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name="homotopy",
                               line=dict(color=GENERATE_COLOR, width=2), marker=dict(size=8), text=outputs,
                               hovertemplate="%{text}<extra>homotopy point</extra>"))
    layout = base_layout(f"Latent space: {len(points)} training sentences on two PCA axes · σ of your sentence "
                         f"{sx:.2f} × {sy:.2f}", 560, trace)
    layout.update(xaxis=dict(title="PCA axis 1", zeroline=False), yaxis=dict(title="PCA axis 2", zeroline=False),
                  legend=dict(orientation="h", y=-0.15))
    return go.Figure(data=data, layout=layout)


def kl_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """KL(q(z_d|x) ‖ N(0, 1)) of each latent dimension for this sentence; dimensions that are active on
    the test set (posterior-mean variance > 0.01) in colour, collapsed ones grey."""
    kl = np.asarray(trace.extra["kl_per_dim"], dtype=float)
    active = np.asarray(trace.extra.get("active_units", np.zeros_like(kl)), dtype=float) > 0.5
    colors = [GENERATE_COLOR if a else MUTED_COLOR for a in active]
    bars = go.Bar(x=[f"z{d}" for d in range(len(kl))], y=kl, marker_color=colors,
                  hovertemplate="%{x}: KL %{y:.3f} nats<extra></extra>")
    title = (f"KL per latent dimension: {kl.sum():.2f} nats in all · {int(active.sum())} of {len(kl)} dimensions "
             "active on the test set (coloured)")
    layout = base_layout(title, 320, trace)
    layout.update(yaxis=dict(title="nats", rangemode="tozero"), xaxis=dict(title="latent dimension"))
    return go.Figure(data=[bars], layout=layout)


def homotopy_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """The sentences decoded (by the output's own search) at evenly spaced points between the two
    sentences' means; t = 0 is the output's own starting point."""
    outputs = trace.extra.get("homotopy")
    if not outputs:
        return empty_figure("Type a second line: the homotopy decodes evenly spaced points between the two "
                            "sentences' means (Bowman et al., Table 8).", height=140)
    steps = np.asarray(trace.extra.get("homotopy_t", np.linspace(0, 1, len(outputs))), dtype=float)
    distinct = len(set(outputs))
    return _table(["t", "decoded from (1 − t)·μ₁ + t·μ₂"], [[f"{t:.2f}" for t in steps], outputs],
                  f"Homotopy: {len(outputs)} points, {distinct} distinct sentence{'s' if distinct != 1 else ''}"
                  + (" — all the same: the decoder ignores z (posterior collapse)" if distinct == 1 else "")
                  + f" · each decoded by the output's {search_name(trace.settings)}, so t = 0 is the output", trace)


def search_name(settings: dict) -> str:
    """The search a trace's settings name, in words (e.g. "beam search (4 beams)")."""
    strategy = settings.get("strategy")
    if strategy == "beam":
        return f"beam search ({settings.get('beam_size')} beams)"
    return f"sampling (seed {settings.get('seed')})" if strategy == "sample" else "greedy search"


def samples_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Sentences decoded (by the output's own search) from latents drawn from the prior N(0, I)."""
    samples = list(trace.extra.get("prior_samples", []))
    distinct = len(set(samples))
    return _table(["#", "decoded from z ~ N(0, I)"], [[str(i + 1) for i in range(len(samples))], samples],
                  f"Samples from the prior: {distinct} distinct of {len(samples)} (a 'seed N' line draws others)",
                  trace)


def _table(header: list[str], columns: list[list[str]], title: str, trace: GenerationTrace) -> go.Figure:
    table = go.Table(columnwidth=[1, 9], header=dict(values=header, align="left", fill_color="#eef2f8"),
                     cells=dict(values=[[label(v) for v in column] for column in columns], align="left", height=26))
    layout = base_layout(title, 130 + 28 * len(columns[0]), trace)
    layout.update(margin=dict(layout["margin"], l=20, r=20, b=10))
    return go.Figure(data=[table], layout=layout)
