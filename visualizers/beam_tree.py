"""The whole search tree, and one hypothesis's own internals.

Nodes are placed in columns, x = step (the root, the start token, at −1), rows ordered by parent
then score (see :func:`tree_layout`). Each node carries its id as ``customdata`` so a click can
select it. Under diverse beam search each node is ringed in its group's colour (a legend entry per
group), its fill still its status.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

import numpy as np
import plotly.graph_objects as go

from gen_models.text import detokenize
from gen_models.trace import BeamNode, GenerationTrace

from .attention import step_axis
from .common import (
    AUTO_WHOLE_TREE,
    COPY_COLOR,
    END_TOKEN,
    GENERATE_COLOR,
    PIN_COLOR,
    STATUS_COLORS,
    ViewOptions,
    attention_matrix,
    base_layout,
    coverage_matrix,
    empty_figure,
    label,
    path_nodes,
    path_steps,
    source_axis,
    source_labels,
    step_labels,
)

LABELLED_NODES = 160  # every node is labelled up to this many
LABELLED_HYPOTHESES = 400  # alive and finished nodes are labelled up to this many
MAX_PRUNED_DRAWN = 1000  # above this, pruned candidates are collapsed even when asked for
HYPOTHESIS_GAP_PX = 190  # under the node's heatmap: its rotated source labels, axis title and the legend
HYPOTHESIS_BARS_PX = 200
HYPOTHESIS_BOTTOM_PX = 110  # the bars' rotated token labels
TREE_LABEL_PX = 1000  # the width a tree's labels are shortened for: about this many pixels shared by its columns
GROUP_COLORS = ("#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#1f77b4", "#7f7f7f")  # cycled


def tree_layout(trace: GenerationTrace, show_pruned: bool = True,
                keep: Optional[set] = None) -> dict[int, tuple[float, float]]:
    """(x, y) of every drawn node (those in ``keep`` when given): x is the step (the root, the start
    token, at −1); y is the node's row within its step, where a step's nodes are ordered by their
    parent's row, then by adjusted score (best first), so each column stays as tall as the widest
    step and children sit next to their parents: a shared prefix is one line of nodes."""
    by_step: dict[int, list[BeamNode]] = defaultdict(list)
    for node in trace.beam:
        wanted = node.parent is None or keep is None or node.id in keep
        if wanted and (node.parent is None or show_pruned or node.status != "pruned"):
            by_step[node.step].append(node)
    positions: dict[int, tuple[float, float]] = {}
    for step in sorted(by_step):
        nodes = [n for n in by_step[step] if n.parent is None or n.parent in positions]
        nodes.sort(key=lambda n: (positions[n.parent][1] if n.parent is not None else 0.0, -n.adjusted_score))
        positions.update((n.id, (float(step), float(row))) for row, n in enumerate(nodes))
    return positions


def beam_tree_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """Every hypothesis of the search, coloured by status, scores on hover; the chosen path in bold,
    the selected node ringed and the pinned step shaded."""
    options = options or ViewOptions()
    if not trace.beam:
        return empty_figure("this trace has no search tree")
    keep = focus_nodes(trace, options)
    n_pruned = sum(node.status == "pruned" and (keep is None or node.id in keep) for node in trace.beam)
    collapsed = options.show_pruned and n_pruned > MAX_PRUNED_DRAWN
    positions = tree_layout(trace, options.show_pruned and not collapsed, keep)
    drawn = [n for n in trace.beam if n.id in positions]
    chosen = set(trace.chosen_path())
    data = [_edges(drawn, positions, None, dict(color="#bbb", width=1), "edges"),
            _edges(drawn, positions, chosen, dict(color=STATUS_COLORS["chosen"], width=3), "chosen path")]
    if options.node_id is not None and options.node_id in positions:
        selected = {n.id for n in path_nodes(trace, options.node_id)} | {n.id for n in drawn if n.parent is None}
        data.append(_edges(drawn, positions, selected, dict(color="black", width=2, dash="dot"), "selected path"))
    data += _group_rings(drawn, positions)
    hypotheses = sum(n.status != "pruned" for n in drawn)
    columns = 2 + max(int(x) for x, _ in positions.values())
    chars = max(2, TREE_LABEL_PX // (7 * columns))  # a label fits its column (about 7 px a character)
    for status, color in STATUS_COLORS.items():
        group = [n for n in drawn if n.status == status]
        show_text = len(drawn) <= LABELLED_NODES or (status != "pruned" and hypotheses <= LABELLED_HYPOTHESES)
        if group:
            data.append(_node_markers(group, positions, status, color, show_text, chosen, chars))
    if options.node_id is not None and options.node_id in positions:
        x, y = positions[options.node_id]
        data.append(go.Scatter(x=[x], y=[y], mode="markers", name=f"selected node {options.node_id}",
                               marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(color="black", width=2.5)),
                               customdata=[options.node_id], hoverinfo="skip"))
    rows = max(y for _, y in positions.values()) + 1
    last_step = int(max(x for x, _ in positions.values()))
    title = _tree_title(trace, len(drawn), options)
    if collapsed:
        title += f" · {n_pruned:,} pruned candidates collapsed (over {MAX_PRUNED_DRAWN:,}; hover the kept ones)"
    layout = base_layout(title, int(min(900, max(320, 120 + 22 * rows))), trace)
    layout.update(
        xaxis=dict(title="step", tickmode="array", tickvals=list(range(-1, last_step + 1)),
                   ticktext=["start"] + [str(i) for i in range(last_step + 1)], zeroline=False, gridcolor="#eee"),
        yaxis=dict(visible=False, autorange="reversed"),
        shapes=[_pin_band(options.pinned_step)] if options.pinned_step is not None else [],
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right"),
        hovermode="closest",
    )
    return go.Figure(data=data, layout=layout)


def drawn_focus(trace: GenerationTrace, options: ViewOptions) -> str:
    """The tree focus actually drawn: "auto" resolved by the size of the tree."""
    if options.tree_focus != "auto":
        return options.tree_focus
    return "whole tree" if len(trace.beam) <= AUTO_WHOLE_TREE else "chosen path"


def focus_nodes(trace: GenerationTrace, options: ViewOptions) -> Optional[set]:
    """Ids of the nodes the tree focus keeps (None: all). "chosen path": the chosen output's nodes and
    every candidate that branched off them; "selected subtree": the selected node's ancestors and
    all of its descendants (the chosen output's last node when none is selected); "auto": the whole
    tree up to ``AUTO_WHOLE_TREE`` nodes, else the chosen path."""
    if drawn_focus(trace, options) == "chosen path":
        path = set(trace.chosen_path())
        return path | {n.id for n in trace.beam if n.parent in path}
    if options.tree_focus == "selected subtree":
        chosen = trace.chosen_path()
        root = options.node_id if options.node_id in trace.nodes_by_id else (chosen[-1] if chosen else None)
        if root is None:
            return None
        keep = {n.id for n in path_nodes(trace, root)}
        children = defaultdict(list)
        for node in trace.beam:
            children[node.parent].append(node.id)
        frontier = [root]
        while frontier:
            node_id = frontier.pop()
            keep.add(node_id)
            frontier += children[node_id]
        return keep
    return None


def _edges(nodes: list[BeamNode], positions: dict, path: Optional[set], line: dict, name: str) -> go.Scatter:
    """Parent→child segments as one line trace (None-separated): all of them, or those on ``path``."""
    xs: list = []
    ys: list = []
    for node in nodes:
        if node.parent is None or node.parent not in positions:
            continue
        if path is not None and not (node.id in path and node.parent in path):
            continue
        (x0, y0), (x1, y1) = positions[node.parent], positions[node.id]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line=line, hoverinfo="skip", name=name, showlegend=False)


def _group_rings(nodes: list[BeamNode], positions: dict) -> list[go.Scatter]:
    """Diverse beam search: a ring in its group's colour around each node of a group, one legend
    entry per group (nothing when the nodes have no group)."""
    by_group: dict[int, list[BeamNode]] = defaultdict(list)
    for node in nodes:
        if "group" in node.extra:
            by_group[node.extra["group"]].append(node)
    return [go.Scatter(x=[positions[n.id][0] for n in group], y=[positions[n.id][1] for n in group], mode="markers",
                       name=f"group {g}", customdata=[n.id for n in group], hoverinfo="skip",
                       marker=dict(size=15, color="rgba(0,0,0,0)",
                                   line=dict(color=GROUP_COLORS[g % len(GROUP_COLORS)], width=2)))
            for g, group in sorted(by_group.items())]


def short_label(token: str, chars: int) -> str:
    """A node's label cut to ``chars`` characters (… marks a cut; the hover has the whole token)."""
    return label(token if len(token) <= chars else token[: max(chars - 1, 1)] + "…")


def _node_markers(group: list[BeamNode], positions: dict, status: str, color: str, show_text: bool,
                  chosen: set, chars: int = 40) -> go.Scatter:
    """Markers of one status, labels cut to ``chars``; hover shows token, log-prob and scores;
    customdata is the node id."""
    hover = [
        f"node {n.id} · step {n.step} · {label(n.token)}<br>log p {n.logprob:.3f} · score {n.score:.3f}"
        f"<br>adjusted score {n.adjusted_score:.3f} · {n.status}{_rule_hover(n)}"
        for n in group
    ]
    text = [short_label(n.token, chars) if show_text or n.id in chosen else "" for n in group]
    return go.Scatter(
        x=[positions[n.id][0] for n in group], y=[positions[n.id][1] for n in group],
        # above and right of the node: a label beside it sat on the edge to a child in the same row,
        # struck through by the chosen path's red line
        mode="markers+text", text=text, textposition="top right", textfont=dict(size=10),
        marker=dict(size=9 if status != "pruned" else 6, color=color, line=dict(color="white", width=1)),
        name=status, customdata=[n.id for n in group], hovertext=hover, hoverinfo="text",
    )


def _rule_hover(node: BeamNode) -> str:
    """A scoring rule's numbers kept on the node: its beam group and the score before and after the
    diversity penalty (diverse beam search); the score before and after MMI."""
    extra = node.extra or {}
    text = f"<br>group {extra['group']}" if "group" in extra else ""
    if "score_after_diversity" in extra:
        text += (f" · diversity penalty: before {extra['score_before_diversity']:.3f} → after "
                 f"{extra['score_after_diversity']:.3f}")
    if "score_after_mmi" in extra:
        part = (f" · LM log p {extra['lm_logprob']:.3f}" if "lm_logprob" in extra else
                f" · log p(S|T) {extra['reverse_logprob']:.3f}" if "reverse_logprob" in extra else "")
        text += f"<br>MMI: before {extra['score_before_mmi']:.3f} → after {extra['score_after_mmi']:.3f}{part}"
    return text


def _pin_band(pinned: int) -> dict:
    return dict(type="rect", xref="x", yref="paper", x0=pinned - 0.5, x1=pinned + 0.5, y0=0, y1=1,
                fillcolor="rgba(214,39,40,0.07)", line=dict(width=0), layer="below")


def _tree_title(trace: GenerationTrace, n_drawn: int, options: ViewOptions) -> str:
    counts = defaultdict(int)
    for node in trace.beam:
        counts[node.status] += 1
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUS_COLORS if counts[s])
    strategy = trace.settings.get("strategy", "?")
    if trace.settings.get("beam_groups", 1) > 1:
        strategy += f", {trace.settings['beam_groups']} groups"
    hidden = "" if options.show_pruned else " (pruned hidden)"
    drawn = drawn_focus(trace, options)
    focus = "" if drawn == "whole tree" else f" · {drawn}: {n_drawn} drawn"
    if options.tree_focus == "auto" and drawn != "whole tree":
        focus += f" (over {AUTO_WHOLE_TREE} nodes; pick 'whole tree' to draw all)"
    return (f"Search tree ({strategy}): {len(trace.beam)} nodes — {summary}{hidden}{focus} · "
            "click a node to inspect it")


def hypothesis_text(trace: GenerationTrace, node_id: int) -> str:
    """The text of the hypothesis ending at ``node_id``."""
    return detokenize([n.token for n in path_nodes(trace, node_id) if n.token != END_TOKEN])


def hypothesis_figure(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> go.Figure:
    """One hypothesis (``options.node_id``, else the chosen one): its attention heatmap, its p_gen
    and token probability per step, and its coverage after its last step."""
    options = options or ViewOptions()
    node_id = options.node_id if options.node_id is not None else (trace.chosen_path() or [None])[-1]
    if node_id is None:
        return empty_figure("no hypothesis to show")
    steps = path_steps(trace, node_id)
    if not steps:
        return empty_figure(f"node {node_id} is the start token or a first-step candidate: no internals recorded")
    if any(s.attention is None for s in steps):
        return _hypothesis_probabilities(trace, node_id, steps)
    attention = attention_matrix(steps, len(trace.source_tokens), options.layer, options.head)
    coverage, own = coverage_matrix(steps, attention)
    after = coverage[-1] + attention[-1]
    data = [
        go.Heatmap(z=attention, x=source_labels(trace.source_tokens), y=step_labels(steps), colorscale="Blues",
                   zmin=0, showscale=False, hovertemplate="%{y}<br>%{x}<br>attention %{z:.3f}<extra></extra>"),
        go.Bar(x=step_labels(steps), y=[float(np.exp(s.logprob)) for s in steps], name="p(token)",
               marker_color="#9ecae1", xaxis="x2", yaxis="y2", hovertemplate="%{x}<br>p %{y:.3f}<extra></extra>"),
        go.Bar(x=source_labels(trace.source_tokens), y=after, xaxis="x3", yaxis="y3", showlegend=False,
               marker_color=[PIN_COLOR if v > 1 else GENERATE_COLOR for v in after],
               hovertemplate="%{x}<br>coverage %{y:.3f}<extra></extra>"),
    ]
    if all(s.p_gen is not None for s in steps):
        data.append(go.Scatter(x=step_labels(steps), y=[s.p_gen for s in steps], name="p_gen", mode="lines+markers",
                               line=dict(color=COPY_COLOR), xaxis="x2", yaxis="y2",
                               hovertemplate="%{x}<br>p_gen %{y:.3f}<extra></extra>"))
    # pixel rows, top to bottom: the heatmap, its rotated source labels and axis title, the legend, the bars
    heat, gap, bars = 40 + 16 * len(steps), HYPOTHESIS_GAP_PX, HYPOTHESIS_BARS_PX
    plot = heat + gap + bars  # the plot area; the bars' own rotated labels go in the bottom margin
    layout = base_layout(_hypothesis_title(trace, node_id, own), plot + 60 + HYPOTHESIS_BOTTOM_PX)  # 60: top margin
    layout["margin"] = dict(layout["margin"], b=HYPOTHESIS_BOTTOM_PX)
    tokens_axis = dict(type="category", tickmode="array", tickvals=step_labels(steps),
                       ticktext=[label(s.token) for s in steps], tickangle=-45)
    layout.update(
        xaxis=dict(source_axis(trace.source_tokens, options.source_window), rangeslider=dict(visible=False)),
        yaxis=dict(step_axis(steps, None), domain=[(bars + gap) / plot, 1]),
        xaxis2=dict(tokens_axis, domain=[0, 0.42], anchor="y2"),
        yaxis2=dict(domain=[0, bars / plot], range=[0, 1], anchor="x2", title="p(token), p_gen"),
        xaxis3=dict(source_axis(trace.source_tokens, options.source_window), domain=[0.56, 1], anchor="y3",
                    rangeslider=dict(visible=False), title=None),
        yaxis3=dict(domain=[0, bars / plot], anchor="x3", rangemode="tozero",
                    title="coverage after" if own else "attention sum"),
        legend=dict(orientation="h", x=0, y=(bars + 6) / plot, yanchor="bottom"),
    )
    return go.Figure(data=data, layout=layout)


def _hypothesis_probabilities(trace: GenerationTrace, node_id: int, steps: list) -> go.Figure:
    """A hypothesis of a model without attention over a source: its token probability per step."""
    bars = go.Bar(x=step_labels(steps), y=[float(np.exp(s.logprob)) for s in steps], name="p(token)",
                  marker_color="#9ecae1", hovertemplate="%{x}<br>p %{y:.3f}<extra></extra>")
    layout = base_layout(_hypothesis_title(trace, node_id, False), 320)
    layout.update(xaxis=dict(type="category", tickmode="array", tickvals=step_labels(steps),
                             ticktext=[label(s.token) for s in steps], tickangle=-45),
                  yaxis=dict(range=[0, 1], title="p(token)"))
    return go.Figure(data=[bars], layout=layout)


def _hypothesis_title(trace: GenerationTrace, node_id: int, own_coverage: bool) -> str:
    node = trace.node(node_id)
    text = hypothesis_text(trace, node_id)
    short = text if len(text) <= 70 else text[:67] + "…"
    note = " (pruned: internals up to its parent)" if node.internals is None else ""
    return (f"Node {node_id} ({node.status}{note}): “{label(short)}” · score {node.score:.2f} · "
            f"adjusted {node.adjusted_score:.2f}")
