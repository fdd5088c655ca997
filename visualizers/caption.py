"""Captioning views: attention drawn on the picture itself (Xu et al. 2015, "show, attend and tell").

Reads the trace's ``extra``: ``image`` (H, W, 3) the picture the model saw, ``grid`` G (the regions
are G × G cells, row-major: a step's ``attention`` is (G²,)), and for generated scenes ``objects``
(``{shape, colour, size, box: [x0, y0, x1, y1]}`` in pixels), drawn as boxes. Each step's
``extra["beta"]`` (the gate: how much the image speaks at that word) is named when present. Every
attention cell carries its step as ``customdata``, so a click pins that word.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gen_models.trace import GenerationTrace

from .common import ViewOptions, base_layout, check_pinned, label

HEAT = [[0.0, "rgba(255, 80, 0, 0)"], [1.0, "rgba(255, 80, 0, 0.85)"]]  # alpha grows with attention
TOTAL_HEAT = [[0.0, "rgba(120, 0, 160, 0)"], [1.0, "rgba(120, 0, 160, 0.8)"]]
BOX_COLOR = "#222222"
STRIP_COLUMNS = 6


def has_image(trace: GenerationTrace) -> bool:
    """Whether the trace is over a picture's grid of regions (a captioner's input)."""
    return "image" in trace.extra and "grid" in trace.extra and bool(trace.steps)


def _image(trace: GenerationTrace) -> np.ndarray:
    image = np.asarray(trace.extra["image"], dtype=float)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"extra['image'] must be (H, W, 3), got {image.shape}")
    return np.clip(image, 0, 255).astype(np.uint8)


def _grid_cells(trace: GenerationTrace, attention) -> np.ndarray:
    """A step's (G²,) attention as a G × G array (row-major); ValueError on a shape mismatch."""
    G = int(trace.extra["grid"])
    values = np.asarray(attention, dtype=float)
    if values.shape != (G * G,):
        raise ValueError(f"attention of shape {values.shape} does not fit a {G} × {G} grid")
    return values.reshape(G, G)


def _overlay(trace: GenerationTrace, cells: np.ndarray, step: Optional[int], colorscale, zmax: float,
             name: str, show_scale: bool = True) -> go.Heatmap:
    """The grid's cells over the image (pixel coordinates), transparent where attention is low."""
    height, width = _image(trace).shape[:2]
    G = cells.shape[0]
    xs, ys = (np.arange(G) + 0.5) * width / G - 0.5, (np.arange(G) + 0.5) * height / G - 0.5
    return go.Heatmap(z=cells, x=xs, y=ys, colorscale=colorscale, zmin=0, zmax=max(zmax, 1e-6),
                      showscale=show_scale, name=name,
                      colorbar=dict(title=dict(text=name), thickness=12),
                      customdata=np.full(cells.shape, -1 if step is None else step),
                      hovertemplate="row %{y:.0f}px col %{x:.0f}px<br>" + name + " %{z:.3f}<extra></extra>")


def _boxes(trace: GenerationTrace, xref: str = "x", yref: str = "y") -> list[dict]:
    """A rectangle per known object."""
    return [dict(type="rect", xref=xref, yref=yref, x0=o["box"][0] - 0.5, y0=o["box"][1] - 0.5,
                 x1=o["box"][2] - 0.5, y1=o["box"][3] - 0.5, line=dict(color=BOX_COLOR, width=1, dash="dot"))
            for o in trace.extra.get("objects") or []]


def _image_axes(layout: dict, suffix: str = "") -> None:
    layout[f"xaxis{suffix}"] = dict(visible=False, constrain="domain")
    layout[f"yaxis{suffix}"] = dict(visible=False, autorange="reversed", scaleanchor=f"x{suffix}",
                                    constrain="domain")


def _beta(trace: GenerationTrace, step: int) -> str:
    beta = trace.steps[step].extra.get("beta")
    return "" if beta is None else f" · β = {float(np.asarray(beta).reshape(-1)[0]):.2f}"


def word_attention_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """The picture with the pinned word's attention over its grid cells (step 0 when none is
    pinned) and the objects' boxes."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    focus = pinned if pinned is not None else 0
    step = trace.steps[focus]
    cells = _grid_cells(trace, step.attention)
    title = (f"Attention on the picture at word {focus} “{label(step.token)}”{_beta(trace, focus)} · "
             f"peak cell {int(cells.argmax())} of {cells.size}")
    return _picture_figure(trace, _overlay(trace, cells, focus, HEAT, float(cells.max()), "attention"), title)


def _picture_figure(trace: GenerationTrace, overlay: go.Heatmap, title: str) -> go.Figure:
    """The picture with ``overlay`` over its grid and the objects' boxes, under ``title``."""
    figure = go.Figure([go.Image(z=_image(trace), hoverinfo="skip"), overlay])
    layout = base_layout(title, 480, trace)
    _image_axes(layout)
    layout.update(shapes=_boxes(trace), margin=dict(l=20, r=20, t=60, b=20))
    figure.update_layout(**layout)
    return figure


def caption_strip_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """One small copy of the picture per word of the caption, each with that word's attention."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    steps = trace.steps
    columns = min(STRIP_COLUMNS, len(steps))
    rows = -(-len(steps) // columns)
    titles = [f"{'▶ ' if t == pinned else ''}{t}: {label(s.token)}" for t, s in enumerate(steps)]
    figure = make_subplots(rows, columns, subplot_titles=titles, horizontal_spacing=0.01,
                           vertical_spacing=0.06 / max(rows, 1) + 0.02)
    image, zmax = _image(trace), max(float(np.max(np.asarray(s.attention, dtype=float))) for s in steps)
    shapes = []
    for t, step in enumerate(steps):
        row, col = divmod(t, columns)
        figure.add_trace(go.Image(z=image, hoverinfo="skip"), row + 1, col + 1)
        figure.add_trace(_overlay(trace, _grid_cells(trace, step.attention), t, HEAT, zmax, "attention",
                                  show_scale=t == 0), row + 1, col + 1)
        axis = "" if t == 0 else str(t + 1)
        shapes += _boxes(trace, f"x{axis}", f"y{axis}")
    layout = base_layout("Attention for every word of the caption (one colour scale; click a word to pin it)",
                         60 + 150 * rows, trace)
    for t in range(len(steps)):
        _image_axes(layout, "" if t == 0 else str(t + 1))
    layout.update(shapes=shapes, margin=dict(l=10, r=10, t=70, b=10))
    figure.update_layout(**layout)
    figure.update_annotations(font_size=11)
    return figure


def attention_total_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Σ_t α over the grid (what the doubly stochastic regulariser evens out) on the picture, with the
    share of words whose peak cell repeats an earlier word's."""
    cells = sum(_grid_cells(trace, s.attention) for s in trace.steps)  # (G, G)
    peaks = [int(np.argmax(np.asarray(s.attention, dtype=float))) for s in trace.steps]
    repeats = sum(p in peaks[:t] for t, p in enumerate(peaks))
    title = (f"Total attention Σ_t α over {len(trace.steps)} words · max cell {float(cells.max()):.2f} · "
             f"{repeats} of {len(peaks)} words peak on a cell an earlier word peaked on")
    return _picture_figure(trace, _overlay(trace, cells, None, TOTAL_HEAT, float(cells.max()), "Σ_t α"), title)
