"""Transformer views: the decoder's self-attention over its own output prefix, the encoder's
self-attention over the source, and the attention masks of the three Transformer layouts.

Multi-head maps are ``(L, H, …)``; ``options.layer`` / ``options.head`` pick one, None averages.
The two S×S views send float32 / uint8 arrays (plotly ships them as binary), which keeps a 180-token
input's figures at about a third of their float64 size.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.trace import GenerationTrace, Step, TopKAttention

from .attention import pinned_row_shape, span_title, step_axis
from .common import (
    MUTED_COLOR,
    PIN_COLOR,
    ViewOptions,
    base_layout,
    check_pinned,
    empty_figure,
    heatmap_height,
    label,
    path_steps,
    source_axis,
    source_labels,
    source_span,
    step_cells,
)

MASK_KINDS = {
    "bidirectional": "bidirectional — every token sees every token (BERT; an encoder over its source)",
    "causal": "causal — each token sees itself and earlier tokens (GPT-2 and other decoder-only models)",
    "seq2seq": "seq2seq (UNILM) — source tokens see the whole source; output tokens see the source and the "
               "output so far (what an encoder-decoder computes)",
}
PERMUTATION_KINDS = {
    "content": "XLNet content stream — in a factorisation order z, the token at z_t sees z_1…z_t (itself too)",
    "query": "XLNet query stream — the token at z_t sees z_1…z_(t−1) only (it predicts itself, so never sees "
             "its own content)",
}
OWN_MASK = {"encoder-decoder": "seq2seq", "decoder-only": "causal", "encoder-only": "bidirectional"}
MAX_MASK_TOKENS = 160
MAX_GRID_COLUMNS = 400  # source positions the head grid draws of compact attention (the most attended)


def is_transformer_trace(trace: GenerationTrace) -> bool:
    """Whether a trace records Transformer internals (encoder or decoder self-attention)."""
    return trace.encoder_attention is not None or trace.architecture in OWN_MASK and (
        trace.architecture != "encoder-decoder") or (bool(trace.steps) and trace.steps[0].self_attention is not None)


def select_head(values: np.ndarray, layer: Optional[int], head: Optional[int]) -> tuple[np.ndarray, bool]:
    """One layer/head of an ``(L, H, …)`` array (None averages), and whether heads were averaged
    (also when the array only kept the head mean, ``H = 1``)."""
    values = np.asarray(values, dtype=float)
    values = values[layer] if layer is not None and layer < values.shape[0] else values.mean(0)
    averaged = head is None or head >= values.shape[0]
    return (values.mean(0) if averaged else values[head]), averaged or values.shape[0] == 1


def _which(options: ViewOptions, averaged: bool) -> str:
    layer = "mean" if options.layer is None else options.layer
    return f"layer {layer}, head {'mean' if averaged else options.head}"


def self_attention_matrix(steps: list[Step], layer: Optional[int], head: Optional[int]) -> tuple[np.ndarray, int]:
    """(T, P) decoder self-attention rows, NaN where a step could not yet attend, and the offset:
    1 when position 0 is the decoder's start token (encoder-decoders), 0 for decoder-only models."""
    rows = [select_head(step.self_attention, layer, head)[0] for step in steps]
    widths = [row.shape[-1] for row in rows]
    if any(w != widths[0] + t for t, w in enumerate(widths)):
        raise ValueError(f"self-attention widths must grow by one per step, got {widths}")
    matrix = np.full((len(rows), max(widths[-1], 1)), np.nan)
    for t, row in enumerate(rows):
        matrix[t, : row.shape[-1]] = row
    return matrix, widths[0]


def decoder_self_attention_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Heatmap: output steps (rows) × the tokens the decoder had been fed (columns), lower triangle.

    Encoder-decoders attend over ``<start>`` and the output so far; decoder-only models over the
    output so far (their attention over the prompt is in the attention view)."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps or any(step.self_attention is None for step in steps):
        return empty_figure("no decoder self-attention: only Transformer decoders record it")
    matrix, offset = self_attention_matrix(steps, options.layer, options.head)
    start = next((n.token for n in trace.beam if n.parent is None), "<start>")
    fed = ([start] if offset else []) + [step.token for step in steps]
    columns = [f"{j} · {label(tok)}" for j, tok in enumerate(fed[: matrix.shape[1]])]
    pinned = check_pinned(options.pinned_step, len(steps))
    _, averaged = select_head(steps[0].self_attention, options.layer, options.head)
    finite = matrix[np.isfinite(matrix)]
    heat = go.Heatmap(z=matrix, x=columns, y=[f"{i} · {label(s.token)}" for i, s in enumerate(steps)],
                      colorscale="Oranges", zmin=0, zmax=max(float(finite.max()) if finite.size else 0.0, 1e-6),
                      colorbar=dict(title=dict(text="attention"), thickness=12), hoverongaps=False,
                      hovertemplate="step %{y}<br>attends to %{x}<br>attention %{z:.3f}<extra></extra>",
                      customdata=step_cells(*matrix.shape))
    title = f"Decoder self-attention over its own prefix · {_which(options, averaged)}"
    if pinned is not None:
        title += f" · pinned step {pinned}"
    layout = base_layout(title, heatmap_height(len(steps)), trace)
    layout.update(xaxis=dict(type="category", tickangle=-60, title="token fed to the decoder", tickfont=dict(size=10)),
                  yaxis=step_axis(steps, pinned),
                  shapes=[pinned_row_shape(pinned)] if pinned is not None else [])
    return go.Figure(data=[heat], layout=layout)


def head_grid_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Every layer's and head's attention over the source at the pinned step (first step if none):
    rows ``layer l · head h``, columns source tokens (``options.source_range`` / ``hide_sink``
    narrow them); the selected layer/head row outlined. Compact attention (long prompts) draws the
    positions some head keeps among its top ones, at most ``MAX_GRID_COLUMNS``, the most attended."""
    options = options or ViewOptions()
    steps = path_steps(trace, options.node_id)
    if not steps:
        return empty_figure("no decoding steps: an encoder-only model's attention is its encoder self-attention")
    if np.ndim(steps[0].attention) != 3:
        return empty_figure("no per-head attention: this model has a single attention distribution per step")
    step = check_pinned(options.pinned_step, len(steps)) or 0
    S = len(trace.source_tokens)
    if np.shape(steps[step].attention)[-1] != S:
        raise ValueError(f"step {step}: attention has shape {np.shape(steps[step].attention)}, expected (L, H, {S})")
    start, stop = source_span(options, S)
    if stop <= start:
        return empty_figure(f"no source position to show in {start}–{stop} (the source has {S} tokens)")
    attention, columns = grid_columns(steps[step].attention, start, stop)  # (L, H, C), (C,) positions
    L, H, _ = attention.shape
    labels = source_labels(trace.source_tokens)
    rows = [f"layer {layer} · head {head}" for layer in range(L) for head in range(H)]
    heat = go.Heatmap(z=attention.reshape(L * H, -1), x=[labels[c] for c in columns], y=rows, colorscale="Blues",
                      zmin=0, colorbar=dict(title=dict(text="attention"), thickness=12),
                      hovertemplate="%{y}<br>source %{x}<br>attention %{z:.3f}<extra></extra>")
    shapes = [dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=layer * H - 0.5, y1=layer * H - 0.5,
                   line=dict(color=MUTED_COLOR, width=1)) for layer in range(1, L)]
    if options.layer is not None and options.head is not None and options.layer < L and options.head < H:
        shapes.append(pinned_row_shape(options.layer * H + options.head))
    parts = [f"Every head's attention over the source at step {step} · {label(steps[step].token)}"]
    if isinstance(steps[step].attention, TopKAttention):
        k = steps[step].attention.weights.shape[-1]
        parts.append(f"compact: the {len(columns)} positions among some head's {k} most attended "
                     "(the rest of each head's attention is not drawn)")
    layout = base_layout(" · ".join(parts + span_title(trace, options, (start, stop))),
                         heatmap_height(L * H, per_row=18), trace)
    axis = source_axis([trace.source_tokens[c] for c in columns], options.source_window,
                       int(attention.mean((0, 1)).argmax()))
    layout.update(xaxis=dict(axis, tickvals=[labels[c] for c in columns]),
                  yaxis=dict(type="category", autorange="reversed", tickfont=dict(size=10)), shapes=shapes)
    return go.Figure(data=[heat], layout=layout)


def grid_columns(attention, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(L, H, C) attention over the source positions (C,) the head grid draws in ``[start, stop)``:
    all of them for dense attention; for compact attention those some head kept, at most
    ``MAX_GRID_COLUMNS`` (the most attended), in source order."""
    if not isinstance(attention, TopKAttention):
        return np.asarray(attention, dtype=float)[..., start:stop], np.arange(start, stop)
    dense = attention.dense(start, stop)  # (L, H, stop − start)
    kept = np.flatnonzero(dense.any(axis=(0, 1)))  # (C,) offsets from start
    if kept.size > MAX_GRID_COLUMNS:
        kept = np.sort(kept[np.argsort(-dense[..., kept].sum(axis=(0, 1)), kind="stable")[:MAX_GRID_COLUMNS]])
    return dense[..., kept], kept + start


def encoder_attention_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Heatmap of the encoder's self-attention: source queries (rows) × source keys (columns)."""
    options = options or ViewOptions()
    if trace.encoder_attention is None:
        reason = {"decoder-only": "a decoder-only model reads its prompt causally: its attention over the prompt "
                                  "is in the attention and self-attention views",
                  }.get(trace.architecture, "this model records no encoder self-attention (only Transformer "
                                            "encoders have one)")
        return empty_figure(reason)
    attention = np.asarray(trace.encoder_attention, dtype=float)
    S = len(trace.source_tokens)
    if attention.ndim != 4 or attention.shape[-2:] != (S, S):
        raise ValueError(f"encoder attention has shape {attention.shape}, expected (L, H, {S}, {S})")
    matrix, averaged = select_head(attention, options.layer, options.head)
    labels = source_labels(trace.source_tokens)
    heat = go.Heatmap(z=matrix.astype(np.float32), x=labels, y=labels, colorscale="Greens", zmin=0,
                      zmax=max(float(matrix.max()), 1e-6),
                      colorbar=dict(title=dict(text="attention"), thickness=12),
                      hovertemplate="query %{y}<br>key %{x}<br>attention %{z:.3f}<extra></extra>")
    layout = base_layout(f"Encoder self-attention over the source · {_which(options, averaged)}",
                         heatmap_height(S), trace)
    yaxis = dict(type="category", autorange="reversed", tickmode="array", tickvals=labels,
                 ticktext=[label(t) for t in trace.source_tokens], tickfont=dict(size=10), title="query token")
    layout.update(xaxis=dict(source_axis(trace.source_tokens, options.source_window), title="key token"), yaxis=yaxis)
    return go.Figure(data=[heat], layout=layout)


def parse_permutation(kind: str) -> tuple[str, str]:
    """("content" | "query", order spec) of a permutation mask written ``content``, ``query: 2 0 1``
    or ``content: shuffle 7``; ValueError for anything else."""
    name, _, spec = kind.partition(":")
    if name.strip() not in PERMUTATION_KINDS:
        raise ValueError(f"mask kind must be one of {', '.join([*MASK_KINDS, *PERMUTATION_KINDS])}, got {kind[:40]!r}")
    return name.strip(), spec.strip()


def permutation_order(spec: str, n: int) -> np.ndarray:
    """A factorisation order over ``n`` positions: the identity (empty spec), ``shuffle S`` (a seeded
    shuffle) or the positions themselves (``2 0 1``, a permutation of 0…n−1)."""
    words = spec.split()
    if not words:
        return np.arange(n)
    if words[0] == "shuffle" and len(words) <= 2 and (len(words) == 1 or words[1].isdigit()):
        return np.random.default_rng(int(words[1]) if len(words) == 2 else 0).permutation(n)
    if not all(w.isdigit() for w in words) or sorted(int(w) for w in words) != list(range(n)):
        raise ValueError(f"a factorisation order lists each position 0 to {n - 1} once (or 'shuffle S'), "
                         f"got {spec[:60]!r}")
    return np.array([int(w) for w in words])


def mask_matrix(kind: str, n_source: int, n_total: int) -> np.ndarray:
    """(N, N) 0/1 mask over ``source ‖ output`` (N = n_total): 1 where query row i may attend to key j.
    Permutation kinds (``content``/``query`` with an order, see :func:`parse_permutation`) follow
    XLNet's two streams over the factorisation order."""
    query = np.arange(n_total)[:, None]  # (N, 1)
    key = np.arange(n_total)[None, :]  # (1, N)
    if kind not in MASK_KINDS:
        name, spec = parse_permutation(kind)
        rank = np.empty(n_total, dtype=int)
        rank[permutation_order(spec, n_total)] = np.arange(n_total)  # rank[position] = its place in z
        seen = rank[key] <= rank[query] if name == "content" else rank[key] < rank[query]
        return seen.astype(float)
    if kind == "bidirectional":
        return np.ones((n_total, n_total))
    causal = key <= query
    if kind == "causal":
        return causal.astype(float)
    source_key = key < n_source
    return (source_key | ((query >= n_source) & causal)).astype(float)


def mask_tokens(trace: GenerationTrace) -> int:
    """How many tokens of source ‖ output the mask view draws."""
    return min(len(trace.source_tokens) + len(trace.output_tokens), MAX_MASK_TOKENS)


def attention_mask_figure(trace: GenerationTrace, kind: Optional[str] = None) -> go.Figure:
    """The ``kind`` mask (None: the model's own) over this input and output, as one sequence."""
    if not is_transformer_trace(trace):
        return empty_figure("attention masks belong to Transformer models; this one is recurrent")
    own = OWN_MASK.get(trace.architecture, "seq2seq")
    kind = kind or own
    tokens = list(trace.source_tokens) + list(trace.output_tokens)
    shown = tokens[:MAX_MASK_TOKENS]
    n_source = min(len(trace.source_tokens), len(shown))
    mask = mask_matrix(kind, n_source, len(shown))
    labels = [f"{i} · {label(t)}" for i, t in enumerate(shown)]
    heat = go.Heatmap(z=mask.astype(np.uint8), x=labels, y=labels, zmin=0, zmax=1, showscale=False,
                      colorscale=[[0, "#f0f0f0"], [1, "#3b6fb6"]],
                      hovertemplate="query %{y}<br>key %{x}<br>may attend: %{z}<extra></extra>")
    edge = n_source - 0.5
    shapes = [dict(type="line", xref="x", yref="paper", x0=edge, x1=edge, y0=0, y1=1, line=dict(color=PIN_COLOR)),
              dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=edge, y1=edge, line=dict(color=PIN_COLOR))]
    title = f"Attention mask: {kind}" + (" (this model's layout)" if kind == own else f" (this model uses {own})")
    if kind not in MASK_KINDS:
        order = permutation_order(parse_permutation(kind)[1], len(shown))
        title += " · order z = " + " ".join(str(i) for i in order[:24]) + (" …" if len(order) > 24 else "")
    if len(tokens) > len(shown):
        title += f" · first {MAX_MASK_TOKENS} of {len(tokens)} tokens"
    layout = base_layout(title, heatmap_height(len(shown), maximum=820), trace)
    axis = dict(type="category", tickmode="array", tickvals=labels, ticktext=[label(t) for t in shown],
                tickfont=dict(size=9, color=MUTED_COLOR))
    layout.update(xaxis=dict(axis, tickangle=-60, title="key (source ‖ output)"),
                  yaxis=dict(axis, autorange="reversed", title="query"), shapes=shapes)
    return go.Figure(data=[heat], layout=layout)
