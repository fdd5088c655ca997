"""Caption metrics for the show-attend-tell exhibit: batched greedy decoding, claims checked against
the scene's objects, the pointing score and the attention statistics the regulariser changes."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from gen_models.models.captioner import AttentionCaptioner
from gen_models.scenes import COLOURS, SceneObject, check_caption, word_referents


@torch.no_grad()
def greedy_captions(model: AttentionCaptioner, images: torch.Tensor, max_len: int = 30):
    """Greedy captions (word lists) and each word's attention (T_b, L) for images (B, 3, H, W)."""
    state = model.initial_state(model.encoder(images))
    B, vocab = images.size(0), model.vocab
    prev = torch.full((B,), vocab.bos_id)
    words: list[list[str]] = [[] for _ in range(B)]
    alphas: list[list[np.ndarray]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    banned = torch.tensor([vocab.pad_id, vocab.unk_id, vocab.bos_id])
    for _ in range(max_len):
        logits, state, alpha, _ = model.decode_step(state, prev)
        logits[:, banned] = float("-inf")
        prev = logits.argmax(-1)  # (B,)
        for b in torch.nonzero(~done & (prev != vocab.eos_id)).flatten().tolist():
            words[b].append(vocab.itos[int(prev[b])])
            alphas[b].append(alpha[b].numpy())
        done |= prev == vocab.eos_id
        if done.all():
            break
    return words, [np.stack(a) if a else np.zeros((0, state.regions.size(1))) for a in alphas]


def cell_centres(grid: int, canvas: int) -> np.ndarray:
    """Pixel centres (x, y) of the grid's cells, row-major: (G², 2)."""
    side = canvas / grid
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    return np.stack([(cols + 0.5) * side, (rows + 0.5) * side], 1)


def in_box(point: np.ndarray, box: list[int]) -> bool:
    """Whether a pixel point lies inside ``[x0, y0, x1, y1]``."""
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def named_regions(captions: list[list[str]], scenes: list, grid: int, canvas: int, length: int) -> torch.Tensor:
    """Attention targets for supervision (Liu et al. 2017, "Attention Correctness in Neural Image
    Captioning"): (B, length, G²), for each colour or shape word of each reference caption the cells
    whose centre lies inside a box of an object its phrase names (the cells the pointing score
    accepts; a box too small to hold a centre gives the cells it overlaps) are 1; rows of other
    words are 0."""
    centres = cell_centres(grid, canvas)
    targets = torch.zeros(len(captions), length, grid * grid)
    for b, (caption, scene) in enumerate(zip(captions, scenes)):
        for t, referents in enumerate(word_referents(" ".join(caption), scene.objects)):
            if not referents:
                continue
            boxes = [scene.objects[i].box for i in referents]
            cells = [i for i, c in enumerate(centres) if any(in_box(c, box) for box in boxes)] or \
                [i for i in range(grid * grid) if any(cell_overlaps_box(i, grid, canvas, box) for box in boxes)]
            targets[b, t, cells] = 1.0
    return targets


def pointing(caption: list[str], attention: np.ndarray, objects: list[SceneObject], grid: int,
             canvas: int) -> list[bool]:
    """For each colour or shape word: whether its attention's peak cell centre lies inside the box
    of an object its noun phrase truly names (False when the phrase names none).

    ``attention[t]`` must be the attention of the step that EMITS word t (the α_t that fed the
    context z_t from which P(y_t) was computed; the trace's ``steps[t].attention``)."""
    return pointing_checks(caption, attention, objects, grid, canvas)["emitting"]


def cell_overlaps_box(cell: int, grid: int, canvas: int, box: list[int]) -> bool:
    """Whether grid cell ``cell`` (row-major) shares any pixel with ``[x0, y0, x1, y1]``."""
    side = canvas / grid
    row, col = divmod(cell, grid)
    x0, y0 = col * side, row * side
    return not (x0 + side <= box[0] or box[2] <= x0 or y0 + side <= box[1] or box[3] <= y0)


def pointing_checks(caption: list[str], attention: np.ndarray, objects: list[SceneObject], grid: int,
                    canvas: int) -> dict[str, list[bool]]:
    """The pointing score and the variants that test the measure itself, one boolean per colour or
    shape word whose phrase names an object (``emitting`` also counts words whose phrase names none):

    - ``emitting``: the emitting step's peak cell centre lies inside a named object's box (the score);
    - ``next_step`` / ``previous_step``: the same with the attention of step t + 1 / t − 1;
    - ``xy_swapped``: the peak cell read column-major (x and y exchanged);
    - ``overlap``: the peak cell merely overlaps a named box (a laxer rule);
    - ``nearest``: the object whose box centre is nearest the peak cell's centre is a named one;
    - ``colour_words`` / ``shape_words``: ``emitting`` split by the word's kind."""
    centres = cell_centres(grid, canvas)
    out: dict[str, list[bool]] = {k: [] for k in ("emitting", "next_step", "previous_step", "xy_swapped",
                                                  "overlap", "nearest", "colour_words", "shape_words")}
    T = len(attention)

    def inside(t: int, boxes: list[list[int]], swap: bool = False) -> bool:
        peak = centres[int(np.argmax(attention[t]))]
        return any(in_box(peak[::-1] if swap else peak, box) for box in boxes)

    for t, referents in enumerate(word_referents(" ".join(caption), objects)):
        if referents is None:
            continue
        boxes = [objects[i].box for i in referents]
        out["emitting"].append(inside(t, boxes))
        out["colour_words" if caption[t] in COLOURS else "shape_words"].append(out["emitting"][-1])
        if not referents:
            continue
        if t + 1 < T:
            out["next_step"].append(inside(t + 1, boxes))
        if t >= 1:
            out["previous_step"].append(inside(t - 1, boxes))
        out["xy_swapped"].append(inside(t, boxes, swap=True))
        peak = int(np.argmax(attention[t]))
        out["overlap"].append(any(cell_overlaps_box(peak, grid, canvas, box) for box in boxes))
        distances = [np.hypot(*(np.asarray(o.centre) - centres[peak])) for o in objects]
        out["nearest"].append(int(np.argmin(distances)) in referents)
    return out


def repeated_peaks(attention: np.ndarray) -> float:
    """Share of words whose peak cell is the peak of an earlier word of the same caption."""
    peaks = attention.argmax(1).tolist()
    return float(np.mean([p in peaks[:t] for t, p in enumerate(peaks)])) if peaks else 0.0


def object_evenness(attention: np.ndarray, objects: list[SceneObject], grid: int, canvas: int) -> Optional[float]:
    """How evenly Σ_t α spreads over the objects: normalised entropy (1 = equal) of each object's
    share of the total attention falling on its cells; None for one object."""
    if len(objects) < 2:
        return None
    total = attention.sum(0)  # (L,)
    centres = cell_centres(grid, canvas)
    mass = np.array([sum(total[i] for i, c in enumerate(centres) if in_box(c, o.box)) for o in objects])
    if mass.sum() <= 0:
        return 0.0
    share = mass / mass.sum()
    return float(-(share * np.log(np.clip(share, 1e-12, None))).sum() / np.log(len(objects)))


def claims_true(caption: list[str], objects: list[SceneObject]) -> bool:
    """Whether the caption is in the grammar and every claim it makes is true of the scene."""
    claims = check_caption(" ".join(caption), objects)
    return bool(claims) and all(c.true for c in claims)
