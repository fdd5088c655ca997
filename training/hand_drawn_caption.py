"""Hand-drawn scenes read as a user would: pictures drawn with a brush on the app's 256 × 256 canvas
(transparent background, the brush colours and the 12-pixel default size of ``ui/picture.py``),
wobbly strokes, outlines or scribbled fills, then captioned through the same path as the app
(``image_data_url`` → the model's text input → the generic greedy search).

    python -m training.hand_drawn_caption [--models caption-attention caption-noreg caption-supervised]

Writes the pictures to ``docs/hand_drawn/`` and prints a markdown table: the intended scene, each
model's caption, whether every claim is true of the intended objects, and the pointing hits of its
colour and shape words (the emitting step's peak cell centre inside the drawn object's box).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from gen_models.scenes import CANVAS, SceneObject, caption_of, check_caption, image_data_url
from training.caption_metrics import pointing
from ui.picture import BRUSH_COLOURS

SIDE, BRUSH = 256, 12
INK = dict(zip(("red", "green", "blue", "yellow"), BRUSH_COLOURS))
OUT = Path(__file__).resolve().parents[1] / "docs" / "hand_drawn"
# (name, [(shape, colour, centre x, centre y, radius, filled)]) in canvas pixels (256 × 256)
SCENES = [
    ("red-circle", [("circle", "red", 128, 128, 60, False)]),
    ("blue-square-left-of-green-triangle", [("square", "blue", 64, 130, 38, False), ("triangle", "green", 190, 120, 44, False)]),
    ("yellow-star-above-red-square", [("star", "yellow", 120, 60, 42, True), ("square", "red", 130, 190, 30, True)]),
    ("two-green-circles", [("circle", "green", 60, 80, 30, True), ("circle", "green", 190, 180, 32, True)]),
    ("red-triangle-blue-circle-yellow-square", [("triangle", "red", 50, 60, 34, False), ("circle", "blue", 200, 70, 30, False),
                                                ("square", "yellow", 120, 190, 34, False)]),
    ("small-blue-triangle", [("triangle", "blue", 170, 90, 22, True)]),
]


def outline(shape: str, cx: float, cy: float, r: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """A closed, slightly wobbly stroke path of the shape."""
    if shape == "circle":
        corners = [(r * math.cos(a), r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 40)]
    elif shape == "square":
        corners = [(-r, -r), (r, -r), (r, r), (-r, r), (-r, -r)]
    elif shape == "triangle":
        corners = [(r * math.cos(math.radians(-90 + 120 * k)), r * math.sin(math.radians(-90 + 120 * k))) for k in range(4)]
    else:
        corners = [((r if k % 2 == 0 else 0.45 * r) * math.cos(math.radians(-90 + 36 * k)),
                    (r if k % 2 == 0 else 0.45 * r) * math.sin(math.radians(-90 + 36 * k))) for k in range(11)]
    path = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        for s in np.linspace(0, 1, 6, endpoint=False):
            path.append((cx + x0 + s * (x1 - x0) + rng.normal(0, 1.5), cy + y0 + s * (y1 - y0) + rng.normal(0, 1.5)))
    return path + [path[0]]


def draw(objects: list[tuple], seed: int) -> tuple[Image.Image, list[SceneObject]]:
    """The RGBA drawing (as the app's editor gives it) and the intended objects with boxes in model pixels."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    scene = []
    for shape, colour, cx, cy, r, filled in objects:
        path = outline(shape, cx, cy, r, rng)
        if filled:  # a scribble over the inside, then the outline
            pen.polygon(path, fill=INK[colour])
        pen.line(path, fill=INK[colour], width=BRUSH, joint="curve")
        xs, ys = [p[0] for p in path], [p[1] for p in path]
        scale = CANVAS / SIDE
        box = [int((min(xs) - BRUSH / 2) * scale), int((min(ys) - BRUSH / 2) * scale),
               math.ceil((max(xs) + BRUSH / 2) * scale), math.ceil((max(ys) + BRUSH / 2) * scale)]
        side = (box[2] - box[0] + box[3] - box[1]) / 2
        scene.append(SceneObject(shape, colour, "small" if side <= 14 else "large", box))
    return image, scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=["caption-attention", "caption-noreg", "caption-supervised"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    models = {name: load_checkpoint(CHECKPOINT_ROOT / name) for name in args.models}
    print("| drawing | intended | " + " | ".join(f"`{n}`" for n in models) + " |")
    print("|---|---|" + "---|" * len(models))
    for k, (name, objects) in enumerate(SCENES):
        image, scene = draw(objects, k)
        image.save(OUT / f"{name}.png")
        cells = []
        for model in models.values():
            trace = generate(model, image_data_url(np.asarray(image)), DecodeSettings(strategy="greedy", max_len=30))
            words = [s.token for s in trace.steps if s.token != "</s>"]
            claims = check_caption(" ".join(words), scene)
            true = bool(claims) and all(c.true for c in claims)
            attention = np.stack([s.attention for s in trace.steps[: len(words)]])
            hits = pointing(words, attention, scene, model.config.grid, CANVAS)
            cells.append(f"{'✓' if true else '✗'} {' '.join(words)} (pointing {sum(hits)}/{len(hits)})")
        print(f"| [{name}](docs/hand_drawn/{name}.png) | {caption_of(scene)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
