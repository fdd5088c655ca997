"""Views of the copy models: the NTM's write and read weightings over memory locations × time (the
layout of Graves et al. 2014, Figure 6), its memory around the pinned step, and the copied bits.

Signals read: the trace's ``extra["input_bits"]`` (n, 8), ``extra["target"]`` (bit strings),
``extra["input_write_weighting"]`` / ``extra["input_read_weighting"]`` (n+1, N) of the input phase
and ``extra["input_memory_after"]`` (N, M); each output step's ``extra["read_weighting"]`` /
``extra["write_weighting"]`` (N,), ``extra["erase"]`` / ``extra["add"]`` (M,), ``extra["memory"]``
(N, M) after the step and ``extra["bit_probs"]`` (8,). Output panels carry the step as
``customdata`` so a click pins it.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gen_models.trace import GenerationTrace

from .common import ViewOptions, base_layout, check_pinned, label

SHOWN_WEIGHT = 0.02  # locations whose weighting never reaches this are left out of the weighting panels


def has_weightings(trace: GenerationTrace) -> bool:
    """Whether the trace is an NTM's (read/write weightings recorded)."""
    return "input_write_weighting" in trace.extra and bool(trace.steps) and all(
        "read_weighting" in step.extra for step in trace.steps)


def has_copy_target(trace: GenerationTrace) -> bool:
    """Whether the trace is a copy model's (input bits and bit probabilities recorded)."""
    return "input_bits" in trace.extra and bool(trace.steps) and all("bit_probs" in s.extra for s in trace.steps)


def _vectors(trace: GenerationTrace) -> list:
    """The steps that wrote an output vector (the end step dropped)."""
    return [s for s in trace.steps if s.token != "</s>"]


def _stack(trace: GenerationTrace, name: str) -> np.ndarray:
    return np.stack([np.asarray(s.extra[name], dtype=float) for s in _vectors(trace)]) if _vectors(trace) \
        else np.zeros((0, 0))


def _location_range(*weightings: np.ndarray) -> np.ndarray:
    """Locations from the first to the last any weighting uses (all when none stands out)."""
    used = np.flatnonzero(np.max(np.concatenate([w for w in weightings if w.size]), 0) >= SHOWN_WEIGHT)
    size = weightings[0].shape[1]
    if not used.size:
        return np.arange(size)
    return np.arange(max(0, used[0] - 2), min(size, used[-1] + 3))


def weightings_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Inputs and outputs (top), write weightings during the input phase and read weightings during
    the output phase (bottom), locations × time, as in Graves et al. (2014), Figure 6."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    inputs = np.asarray(trace.extra["input_bits"], dtype=float)  # (n, 8)
    writes = np.asarray(trace.extra["input_write_weighting"], dtype=float)  # (n+1, N)
    reads = _stack(trace, "read_weighting")  # (T, N)
    outputs = _stack(trace, "bit_probs")  # (T, 8)
    if writes.ndim != 2 or (reads.size and reads.shape[1] != writes.shape[1]):
        raise ValueError(f"weightings disagree: input phase {writes.shape}, output phase {reads.shape}")
    rows = _location_range(writes, reads)
    fig = make_subplots(2, 2, shared_xaxes=False, vertical_spacing=0.08, horizontal_spacing=0.06,
                        row_heights=[0.25, 0.75], subplot_titles=("Inputs", "Outputs", "Write weightings",
                                                                  "Read weightings"))
    delimited = np.vstack([np.hstack([inputs, np.zeros((len(inputs), 1))]), np.r_[np.zeros(8), 1.0]])  # (n+1, 9)
    fig.add_trace(_grid(delimited.T, "input", "Greys", None), 1, 1)
    steps = np.arange(len(outputs))
    fig.add_trace(_grid(outputs.T, "p(bit = 1)", "Greys", steps), 1, 2)
    fig.add_trace(_grid(writes[:, rows].T, "write weight", "Greys", None, y=rows), 2, 1)
    fig.add_trace(_grid(reads[:, rows].T if reads.size else reads, "read weight", "Greys", steps, y=rows), 2, 2)
    if pinned is not None and pinned < len(outputs):
        for row in (1, 2):
            fig.add_vline(x=pinned, line=dict(color="#d62728", width=2), row=row, col=2)
    for col in (1, 2):
        fig.update_yaxes(autorange="reversed", row=1, col=col, showticklabels=False)
        fig.update_yaxes(autorange="reversed", title="location" if col == 1 else None, row=2, col=col)
    fig.update_xaxes(title="time (input phase)", row=2, col=1)
    fig.update_xaxes(title="time (output step)", row=2, col=2)
    layout = base_layout(f"Neural Turing machine: writes while reading the {len(inputs)} inputs, reads while "
                         f"writing them back (locations {rows[0]}–{rows[-1]} of {writes.shape[1]})", 640, trace)
    fig.update_layout(**layout, showlegend=False)
    return fig


def _grid(z: np.ndarray, name: str, scale: str, steps: Optional[np.ndarray], y=None) -> go.Heatmap:
    """A heatmap panel; ``steps`` (columns' output steps) become ``customdata`` for clicks."""
    custom = None if steps is None or not z.size else np.repeat(steps[None], z.shape[0], 0)
    return go.Heatmap(z=z, y=y, colorscale=scale, zmin=0, zmax=1, showscale=False, customdata=custom,
                      hovertemplate=f"t = %{{x}}, row %{{y}}: {name} %{{z:.3f}}<extra></extra>")


def memory_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """The memory matrix before and after the pinned output step (the first when none is pinned), and
    the erase and add vectors that step wrote with."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps))
    focus = pinned if pinned is not None else 0
    step = trace.steps[focus]
    before = np.asarray(trace.extra["input_memory_after"] if focus == 0 else trace.steps[focus - 1].extra["memory"],
                        dtype=float)  # (N, M)
    after = np.asarray(step.extra["memory"], dtype=float)  # (N, M)
    if before.shape != after.shape:
        raise ValueError(f"step {focus}: memory before {before.shape} and after {after.shape} differ in shape")
    fig = make_subplots(2, 2, row_heights=[0.8, 0.2], vertical_spacing=0.1,
                        subplot_titles=(f"Memory before step {focus}", f"Memory after step {focus}",
                                        "Erase vector e", "Add vector a"))
    limit = float(max(np.abs(before).max(), np.abs(after).max(), 1e-6))
    for col, matrix in ((1, before), (2, after)):
        fig.add_trace(go.Heatmap(z=matrix, colorscale="RdBu", zmid=0, zmin=-limit, zmax=limit, showscale=col == 2,
                                 hovertemplate="location %{y}, column %{x}: %{z:.3f}<extra></extra>"), 1, col)
        fig.update_yaxes(autorange="reversed", title="location" if col == 1 else None, row=1, col=col)
    for col, name in ((1, "erase"), (2, "add")):
        values = np.asarray(step.extra[name], dtype=float)  # (M,)
        fig.add_trace(go.Bar(x=np.arange(len(values)), y=values, marker_color="#3b6fb6",
                             hovertemplate=f"{name}[%{{x}}] = %{{y:.3f}}<extra></extra>"), 2, col)
    peak_w, peak_r = int(np.argmax(step.extra["write_weighting"])), int(np.argmax(step.extra["read_weighting"]))
    layout = base_layout(f"Step {focus} ({label(step.token)}): read location {peak_r}, write location {peak_w}; "
                         "memory before and after the step's erase and add", 720, trace)
    fig.update_layout(**layout, showlegend=False)
    return fig


def bits_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Target bits, the model's p(bit = 1) per output vector and the wrong bits (thresholded at ½)."""
    target = np.asarray(trace.extra["input_bits"], dtype=float)  # (n, 8)
    probs = _stack(trace, "bit_probs")  # (T, 8)
    T = min(len(target), len(probs))
    wrong = (probs[:T] > 0.5) != (target[:T] > 0.5)  # (T, 8)
    steps = np.arange(len(probs))
    fig = make_subplots(3, 1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Target", "Output p(bit = 1)", f"Wrong bits: {int(wrong.sum())}"))
    fig.add_trace(_grid(target.T, "target", "Greys", None), 1, 1)
    fig.add_trace(_grid(probs.T, "p(bit = 1)", "Greys", steps), 2, 1)
    fig.add_trace(_grid(wrong.T.astype(float), "wrong", "Reds", steps[:T]), 3, 1)
    for row in (1, 2, 3):
        fig.update_yaxes(autorange="reversed", title="bit", row=row, col=1)
    fig.update_xaxes(title="time (vector)", row=3, col=1)
    layout = base_layout(f"{label(trace.model)}: copying {len(target)} vectors · {int(wrong.sum())} wrong bits",
                         520, trace)
    fig.update_layout(**layout, showlegend=False)
    return fig
