"""What sampling did at the pinned step: the model's most likely tokens (and the chosen one), each
with its probability under the model, after every logits processor in turn (repetition penalties,
n-gram block, min length, banned and forced tokens, temperature, top-k, top-p) and after all of
them; a token a processor removed is greyed, with that processor's name. Every point carries
``[step, token id]`` as ``customdata``: a click forces that token there and decodes the rest."""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace, ProcessorStages

from .common import (
    GENERATE_COLOR,
    MUTED_COLOR,
    PIN_COLOR,
    ViewOptions,
    base_layout,
    check_pinned,
    empty_figure,
    label,
    wrapped,
)

MODEL_COLOR = "#9ecae1"
STAGE_COLORS = ("#f5a623", "#74c476", "#9e9ac8", "#e377c2", "#17becf", "#bcbd22")  # processors before the last
ROW_PX = 28
HINT_PX = 60  # below the legend (of one item then): the no-processor hint, three lines
LEGEND_PX = 50  # below the plot: a stage per item, two rows on a desktop (more on a phone: the margin grows)
NOTE_PX = 220  # the right margin holding each row's "before → after" note
NO_PROCESSOR = ("No logits processor is on: p before = p after. Temperature, top-k and top-p "
                "apply when sampling (strategy sample or beam_sample); repetition penalties, n-gram blocking, "
                "min length and banned tokens under any strategy.")


def has_processor_stages(trace: GenerationTrace) -> bool:
    """Whether the output's steps record what the logits processors did (recorded traces do)."""
    return bool(trace.steps) and any(step.processors is not None for step in trace.steps)


def sampling_rules_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """The pinned step's candidates (rows, most likely first) with a dot per stage on a log axis:
    the model's probability, after each processor, after all of them; removed tokens greyed, named,
    and drawn on a dotted line at the axis's left edge (p = 0)."""
    options = options or ViewOptions()
    pinned = check_pinned(options.pinned_step, len(trace.steps)) or 0
    step = trace.steps[pinned]
    stages = step.processors
    if stages is None:
        return empty_figure(f"step {pinned} has no record of the logits processors", height=160)
    probs = _checked_probs(stages, pinned)
    floor = _floor(probs, any(r is not None for r in stages.removed_by))
    shown = np.where(probs > 0, probs, floor)  # (1 + R, C): removed tokens at the left edge
    rows = [f"{j} · {label(token)}" for j, token in enumerate(stages.tokens)]
    data = [_spans(shown, rows), *[_stage_trace(stages, probs, shown, rows, r, pinned) for r in range(len(probs))]]
    layout = _layout(trace, stages, probs, rows, floor, pinned)
    layout["yaxis"]["ticktext"] = [_row_label(stages, j, step.token_id) for j in range(len(rows))]
    return go.Figure(data=data, layout=layout)


def _layout(trace: GenerationTrace, stages: ProcessorStages, probs: np.ndarray, rows: list[str], floor: float,
            step: int) -> dict:
    """Axes (log probability × tokens), the legend and the no-processor hint below the plot, each
    row's note on the right, and the p = 0 line when a token was removed."""
    removed = any(r is not None for r in stages.removed_by)
    below = LEGEND_PX + (0 if stages.names else HINT_PX)
    layout = base_layout(_title(stages, step, trace.steps[step].token), 150 + ROW_PX * len(rows) + below, trace)
    layout["margin"].update(l=110, r=NOTE_PX, b=40 + below)
    plot_px = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
    title = "probability after each processor, renormalised (log scale"
    layout.update(
        xaxis=dict(type="log", title=title + ("; dotted line: p = 0, removed)" if removed else ")"), dtick=1,
                   range=[np.log10(floor) - 0.15, np.log10(max(float(probs.max()), floor)) + 0.1],
                   gridcolor="#eee", exponentformat="power"),
        yaxis=dict(type="category", autorange="reversed", tickmode="array", tickvals=rows),
        legend=dict(orientation="h", y=-52 / plot_px, yanchor="top", x=0, xanchor="left"),  # below the axis title
        shapes=[dict(type="line", xref="x", yref="paper", x0=floor, x1=floor, y0=0, y1=1,
                     line=dict(color=MUTED_COLOR, width=1, dash="dot"))] if removed else [],
        annotations=[_note(stages, probs, rows, j) for j in range(len(rows))]
        + ([] if stages.names else [_no_processor_note(-(52 + 30) / plot_px)]),
        hovermode="closest")
    return layout


def _floor(probs: np.ndarray, removed: bool) -> float:
    """The log axis's left edge: the decade of the smallest positive probability, a decade lower
    when tokens were removed (p = 0 is drawn there)."""
    positive = probs[probs > 0]
    return 10.0 ** (np.floor(np.log10(positive.min())) - removed) if positive.size else 1e-6


def _checked_probs(stages: ProcessorStages, step: int) -> np.ndarray:
    """``stages.probs`` as a (1 + R, C) array, ValueError naming the shapes otherwise."""
    probs = np.asarray(stages.probs, dtype=float)
    expected = (1 + len(stages.names), len(stages.token_ids))
    if probs.shape != expected or len(stages.tokens) != expected[1] or len(stages.removed_by) != expected[1]:
        raise ValueError(f"step {step}: processor probabilities have shape {probs.shape}, expected {expected} "
                         f"({len(stages.names)} processors, {len(stages.token_ids)} tokens)")
    return probs


def _title(stages: ProcessorStages, step: int, token: str) -> str:
    chosen = f"Sampling rules at step {step} (chose “{token}”)"
    if not stages.names:
        return f"{chosen} · no logits processor active: before = after"
    removed = sum(r is not None for r in stages.removed_by)
    return f"{chosen} · {removed} of {len(stages.tokens)} tokens removed · click a token to force it here"


def _spans(shown: np.ndarray, rows: list[str]) -> go.Scatter:
    """A grey line per token from its lowest to its highest drawn probability over the stages."""
    x, y = [], []
    for j, row in enumerate(rows):
        x += [float(shown[:, j].min()), float(shown[:, j].max()), None]
        y += [row, row, None]
    return go.Scatter(x=x, y=y, mode="lines", line=dict(color="#d0d0d0", width=2), hoverinfo="skip",
                      showlegend=False)


def _stage_trace(stages: ProcessorStages, probs: np.ndarray, shown: np.ndarray, rows: list[str], r: int,
                 step: int) -> go.Scatter:
    """The dots of stage ``r`` (0: the model; the last: after every processor) at ``shown[r]``."""
    last, n = r == len(probs) - 1, len(rows)
    name = "model" if r == 0 else f"after {stages.names[r - 1]}"
    gone = [stages.removed_by[j] is not None and stages.removed_by[j] < r for j in range(n)]
    if r == 0:
        marker = dict(color="white", size=10, line=dict(color=GENERATE_COLOR if not stages.names else MODEL_COLOR,
                                                           width=2))
        name = "model (= after: nothing ran)" if last else name
    elif last:
        marker = dict(color=[MUTED_COLOR if g else GENERATE_COLOR for g in gone], size=11,
                      symbol=["x" if g else "circle" for g in gone])
        name = f"after all {len(stages.names)} ({name})" if len(stages.names) > 1 else name
    else:
        marker = dict(color=STAGE_COLORS[(r - 1) % len(STAGE_COLORS)], size=8, symbol="diamond")
    hover = [f"{label(stages.tokens[j])}<br>{label(name)}: p = {probs[r, j]:.4g}"
             + (f" (removed by {label(stages.remover(j))})" if gone[j] else "")
             + f"<br>click: force it at step {step}" for j in range(n)]
    return go.Scatter(x=shown[r].tolist(), y=rows, mode="markers", name=name, marker=marker,
                      customdata=[[step, int(i)] for i in stages.token_ids], text=hover,
                      hovertemplate="%{text}<extra></extra>")


def _row_label(stages: ProcessorStages, j: int, chosen_id: int) -> str:
    """A token's axis label: greyed when a processor removed it, bold when it was chosen."""
    text = label(stages.tokens[j])
    if stages.token_ids[j] == chosen_id:
        return f"<b>{text} ◂</b>"
    return f"<span style='color:{MUTED_COLOR}'>{text}</span>" if stages.removed_by[j] is not None else text


def _note(stages: ProcessorStages, probs: np.ndarray, rows: list[str], j: int) -> dict:
    """The row's note right of the plot: "before → after", or the processor that removed it."""
    remover = stages.remover(j)
    text = (f"{_p(probs[0, j])} → ✖ {label(remover)}" if remover is not None  # ✖: removed, as drawn
            else f"{_p(probs[0, j])} → {_p(probs[-1, j])}")
    return dict(xref="paper", x=1.01, xanchor="left", yref="y", y=rows[j], text=text, showarrow=False,
                font=dict(size=11, color=MUTED_COLOR if remover is not None else "#333"))


def _p(value: float) -> str:
    """A probability in a few characters: 0.123, 4.5e-05, 0."""
    return f"{value:.3f}" if value >= 1e-3 else f"{value:.1e}" if value > 0 else "0"


def _no_processor_note(y: float) -> dict:
    """The hint that nothing changed the distribution, at paper height ``y`` (below the legend)."""
    return dict(xref="paper", yref="paper", x=0, y=y, xanchor="left", yanchor="top", showarrow=False, align="left",
                text=wrapped(NO_PROCESSOR, 90), font=dict(size=11, color=PIN_COLOR))
