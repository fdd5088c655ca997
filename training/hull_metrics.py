"""Convex-hull metrics for the pointer network: batched greedy decoding, exact accuracy up to
rotation, and area coverage of simple predicted polygons (``shapely`` geometry, ``scipy`` hulls)."""
from __future__ import annotations

import numpy as np
import torch
from shapely.geometry import Polygon

from gen_models.models.pointer_network import BOS_ID, EOS_ID, FIRST_POINT, PointerNetwork, hull_order, vertex_mask


@torch.no_grad()
def greedy_hulls(model: PointerNetwork, points: torch.Tensor, end_when_complete: bool = False) -> list[list[int]]:
    """Greedy pointer outputs (0-based point indices, end excluded) for a batch (B, n, 2); with
    ``end_when_complete`` the end symbol is masked until the chosen points enclose the set."""
    state = model.initial_state(points)
    B, n = points.shape[:2]
    if end_when_complete:
        state.vertices = vertex_mask([hull_order(x) for x in points.double().numpy()], n)
    prev = torch.full((B,), BOS_ID)
    outputs: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    for _ in range(n + 1):
        log_probs, state = model.decode_step(state, prev, end_when_complete)
        prev = log_probs.argmax(-1)  # (B,)
        for b in torch.nonzero(~done & (prev >= FIRST_POINT)).flatten().tolist():
            outputs[b].append(int(prev[b]) - FIRST_POINT)
        done |= prev == EOS_ID
        if done.all():
            break
    return outputs


def same_cycle(predicted: list[int], target: list[int]) -> bool:
    """Whether ``predicted`` is ``target`` up to rotation (same direction)."""
    if len(predicted) != len(target) or not target or target[0] not in predicted:
        return False
    start = predicted.index(target[0])
    return predicted[start:] + predicted[:start] == target


def hull_accuracy(predicted: list[list[int]], points: np.ndarray) -> float:
    """Share of exact hulls (up to rotation) over a batch of point sets (B, n, 2)."""
    return float(np.mean([same_cycle(p, hull_order(x)) for p, x in zip(predicted, points)]))


def area_coverage(predicted: list[int], points: np.ndarray) -> float | None:
    """Predicted polygon area ÷ true hull area, or None when the polygon is not simple."""
    if len(predicted) < 3:
        return None
    polygon = Polygon(points[predicted])
    if not polygon.is_valid:
        return None
    return float(polygon.area / Polygon(points[hull_order(points)]).area)
