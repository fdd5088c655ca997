"""Seeded shape scenes and their captions, made here (the ShapeWorld / CLEVR idea).

ShapeWorld (Kuhnle & Copestake 2017) and CLEVR (Johnson et al. 2017) generate images of simple
objects together with language about them, so that every statement can be checked against the
scene. This module does the same at a small scale with Pillow: a 64 × 64 canvas (white, slightly
jittered) holds 1–4 objects, each a circle, square, triangle or star, red, green, blue or yellow,
small or large, drawn filled or as a thick outline, slightly rotated, with colour jitter and pixel
noise. Every scene records its objects (shape, colour, size, box ``[x0, y0, x1, y1]`` in pixels).

The caption is a deterministic function of the objects (so exact match means something), from a
grammar of attributes, relations and counts:

- objects are grouped by (colour, shape); groups are ordered by their leftmost object;
- a group of one is ``a SIZE COLOUR SHAPE`` ("a small red triangle"), a larger group
  ``COUNT COLOUR SHAPEs`` ("two yellow stars");
- two single objects are related: ``A left of B`` when their centres differ more in x than in y
  (A the left one), else ``A above B`` (A the upper one);
- otherwise the groups are listed: ``A and B`` / ``A , B and C``.

Splits are seed ranges: training draws seeds below ``VALID_SEED``; validation uses
``VALID_SEED + i`` and test ``TEST_SEED + i`` (never drawn in training).
"""
from __future__ import annotations

import base64
import binascii
import io
import math
import re
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 64
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
SIZES = {"small": (9, 12), "large": (17, 22)}  # side of the object's box in pixels (before rotation)
NUMBERS = ("a", "two", "three", "four")
MAX_OBJECTS = 4
TRAIN_SEEDS, VALID_SEED, TEST_SEED = 1_000_000_000, 1_000_000_000, 2_000_000_000
MAX_SEED = 2**31 - 1
VOCABULARY = (list(NUMBERS) + list(SIZES) + list(COLOURS) + list(SHAPES) + [s + "s" for s in SHAPES]
              + ["left", "of", "above", "and", ","])
_RANDOM = re.compile(r"^\s*random(?:\s+scene)?(?:\s+seed)?(?:\s+(\d+))?\s*$", re.IGNORECASE)
SCENE_HINT = "'random scene seed S' (S a whole number), or a picture (upload or draw; as text 'image data:…')"
_DATA_URL = re.compile(r"^\s*image\s+data:image/(png|jpeg|jpg|webp|gif);base64,([A-Za-z0-9+/=\s]+)$", re.IGNORECASE)
MAX_IMAGE_BYTES = 2_000_000
MAX_IMAGE_PIXELS = 4096 * 4096


@dataclass
class SceneObject:
    """One object of a scene; ``box`` is ``[x0, y0, x1, y1]`` in pixels (inclusive-exclusive)."""

    shape: str
    colour: str
    size: str
    box: list[int]

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass
class Scene:
    """A drawn scene: the RGB image (H, W, 3) uint8, its objects and its caption."""

    image: np.ndarray
    objects: list[SceneObject]
    caption: str
    seed: Optional[int] = None

    def object_dicts(self) -> list[dict]:
        """The objects as JSON values (the trace's ``extra["objects"]``)."""
        return [asdict(o) for o in self.objects]


def parse_scene_seed(text: str) -> int:
    """The seed of ``'random scene [seed] S'`` (0 if none is given); ValueError naming the form."""
    match = _RANDOM.match(text or "")
    if not match:
        raise ValueError(f"give {SCENE_HINT}; got {str(text).strip()[:40]!r}")
    seed = int(match.group(1) or 0)
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most {MAX_SEED}, got {seed}")
    return seed


def random_scene(seed: int, n_objects: Optional[int] = None) -> Scene:
    """The scene of ``seed``: 1–4 objects (or ``n_objects``), drawn with jitter; reproducible."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, MAX_OBJECTS + 1)) if n_objects is None else n_objects
    objects = _place_objects(rng, n)
    return Scene(draw_scene(objects, rng), objects, caption_of(objects), seed)


def _place_objects(rng: np.random.Generator, n: int) -> list[SceneObject]:
    """``n`` objects with boxes that do not overlap (rejection sampling; sizes shrink if crowded)."""
    for attempt in range(200):
        objects: list[SceneObject] = []
        for _ in range(n):
            size = ("small", "large")[int(rng.integers(2))] if attempt < 100 else "small"
            low, high = SIZES[size]
            side = int(rng.integers(low, high + 1))
            x0, y0 = (int(v) for v in rng.integers(2, CANVAS - side - 1, size=2))
            box = [x0, y0, x0 + side, y0 + side]
            if any(_overlap(box, o.box, margin=2) for o in objects):
                break
            objects.append(SceneObject(SHAPES[int(rng.integers(len(SHAPES)))],
                                       list(COLOURS)[int(rng.integers(len(COLOURS)))], size, box))
        if len(objects) == n and _relation_is_clear(objects):
            return objects
    raise RuntimeError("could not place the objects")  # pragma: no cover - 4 small objects always fit


def _overlap(a: list[int], b: list[int], margin: int = 0) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


def _relation_is_clear(objects: list[SceneObject]) -> bool:
    """Two objects are related only when one direction clearly dominates (no near-diagonals)."""
    if len(objects) != 2:
        return True
    (ax, ay), (bx, by) = objects[0].centre, objects[1].centre
    dx, dy = abs(ax - bx), abs(ay - by)
    return max(dx, dy) >= 1.5 * min(dx, dy) + 2


def draw_scene(objects: list[SceneObject], rng: np.random.Generator) -> np.ndarray:
    """The objects drawn on a jittered white canvas with rotation, stroke and pixel noise: (H, W, 3)."""
    background = tuple(int(v) for v in 255 - rng.integers(0, 16, size=3))
    image = Image.new("RGB", (CANVAS, CANVAS), background)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        colour = tuple(int(np.clip(c + rng.integers(-15, 16), 0, 255)) for c in COLOURS[obj.colour])
        outline_only = rng.random() < 0.25
        width = int(rng.integers(2, 4)) if outline_only else int(rng.integers(0, 2))
        polygon = _outline(obj, float(rng.uniform(-15, 15)))
        edge = tuple(int(c * 0.7) for c in colour)
        if polygon is None:
            draw.ellipse(obj.box[:2] + [obj.box[2] - 1, obj.box[3] - 1], fill=None if outline_only else colour,
                         outline=colour if outline_only else edge, width=width)
        else:
            draw.polygon(polygon, fill=None if outline_only else colour,
                         outline=colour if outline_only else edge, width=width)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 6, size=(CANVAS, CANVAS, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _outline(obj: SceneObject, degrees: float) -> Optional[list[tuple[float, float]]]:
    """Polygon vertices of a (rotated) square, triangle or star inside the box; None for a circle."""
    if obj.shape == "circle":
        return None
    cx, cy = obj.centre
    r = (obj.box[2] - obj.box[0]) / 2
    if obj.shape == "square":
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        radius, angles = r * 1.15, [math.atan2(y, x) for x, y in corners]
        points = [(radius, a) for a in angles]
    elif obj.shape == "triangle":
        points = [(r, math.radians(-90 + 120 * k)) for k in range(3)]
    else:
        points = [(r if k % 2 == 0 else r * 0.45, math.radians(-90 + 36 * k)) for k in range(10)]
    turn = math.radians(degrees)
    return [(cx + rho * math.cos(a + turn), cy + rho * math.sin(a + turn)) for rho, a in points]


# -- the caption grammar ------------------------------------------------------------------------
def groups_of(objects: list[SceneObject]) -> list[list[int]]:
    """Object indices grouped by (colour, shape), groups ordered by their leftmost object."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, obj in enumerate(objects):
        groups.setdefault((obj.colour, obj.shape), []).append(i)
    return sorted(groups.values(), key=lambda g: min(objects[i].box[0] for i in g))


def phrase(objects: list[SceneObject], group: list[int]) -> list[str]:
    """``a SIZE COLOUR SHAPE`` for one object, ``COUNT COLOUR SHAPEs`` for more."""
    first = objects[group[0]]
    if len(group) == 1:
        return ["a", first.size, first.colour, first.shape]
    return [NUMBERS[len(group) - 1], first.colour, first.shape + "s"]


def caption_with_referents(objects: list[SceneObject]) -> tuple[list[str], list[list[int]]]:
    """The caption's words and, for each word, the objects it refers to (empty for function words)."""
    groups = groups_of(objects)
    if len(groups) == 2 and all(len(g) == 1 for g in groups):
        a, b = groups[0][0], groups[1][0]
        (ax, ay), (bx, by) = objects[a].centre, objects[b].centre
        if abs(ax - bx) > abs(ay - by):
            parts, joiners = [[a], [b]], [["left", "of"]]
        else:
            parts, joiners = ([[a], [b]] if ay < by else [[b], [a]]), [["above"]]
    else:
        parts = groups
        joiners = [[","]] * (len(groups) - 2) + [["and"]] if len(groups) > 1 else []
    words: list[str] = []
    referents: list[list[int]] = []
    for k, group in enumerate(parts):
        if k:
            words += joiners[k - 1]
            referents += [[] for _ in joiners[k - 1]]
        noun = phrase(objects, group)
        words += noun
        referents += [[] if w in NUMBERS else sorted(group) for w in noun]
    return words, referents


def caption_of(objects: list[SceneObject]) -> str:
    """The scene's caption (see the module docstring)."""
    return " ".join(caption_with_referents(objects)[0])


# -- checking a caption's claims against a scene ------------------------------------------------
@dataclass
class Claim:
    """One statement a caption makes: a noun phrase exists (with its count), or a relation holds."""

    kind: str  # "object" or "relation"
    text: str
    true: bool
    referents: list[int]  # objects the claim's noun phrase(s) name (empty if none match)


_PHRASE = re.compile(r"(a (small|large) (\w+) (\w+)|(two|three|four) (\w+) (\w+)s)")


def parse_caption(caption: str) -> Optional[list]:
    """The caption as noun phrases and joiners (None if it is outside the grammar):
    ``[("object", count, size|None, colour, shape), ("join", "left of"|"above"|"and"|","), ...]``."""
    words, items, i = caption.split(), [], 0
    while i < len(words):
        if i and words[i : i + 2] == ["left", "of"]:
            items.append(("join", "left of")); i += 2; continue
        if i and words[i] in ("above", "and", ","):
            items.append(("join", words[i])); i += 1; continue
        if words[i] == "a" and i + 3 < len(words) and words[i + 1] in SIZES and words[i + 2] in COLOURS \
                and words[i + 3] in SHAPES:
            items.append(("object", 1, words[i + 1], words[i + 2], words[i + 3])); i += 4; continue
        if words[i] in NUMBERS[1:] and i + 2 < len(words) and words[i + 1] in COLOURS \
                and words[i + 2].endswith("s") and words[i + 2][:-1] in SHAPES:
            items.append(("object", NUMBERS.index(words[i]) + 1, None, words[i + 1], words[i + 2][:-1])); i += 3
            continue
        return None
    kinds = [item[0] for item in items]
    if not items or kinds[0::2] != ["object"] * len(kinds[0::2]) or kinds[1::2] != ["join"] * len(kinds[1::2]) \
            or kinds[-1] != "object":
        return None
    return items


def matching_objects(objects: list[SceneObject], item: tuple) -> list[int]:
    """Objects a parsed noun phrase names (its colour and shape, and size if singular)."""
    _, count, size, colour, shape = item
    return [i for i, o in enumerate(objects) if o.colour == colour and o.shape == shape
            and (size is None or o.size == size)]


def check_caption(caption: str, objects: list[SceneObject]) -> Optional[list[Claim]]:
    """The caption's claims, each checked against the objects (None if outside the grammar).

    A singular phrase claims such an object exists; a counted phrase that exactly that many objects
    of that colour and shape exist; ``A left of B`` / ``A above B`` that some object A names has its
    centre left of / above some object B names."""
    items = parse_caption(caption)
    if items is None:
        return None
    claims, nouns = [], items[0::2]
    for item in nouns:
        found = matching_objects(objects, item)
        count = item[1]
        same_kind = [o for o in objects if o.colour == item[3] and o.shape == item[4]]
        true = bool(found) if count == 1 else len(same_kind) == count
        claims.append(Claim("object", " ".join(str(v) for v in item[1:] if v is not None), true, found if true else []))
    for k, join in enumerate(items[1::2]):
        if join[1] in ("left of", "above"):
            a, b = matching_objects(objects, nouns[k]), matching_objects(objects, nouns[k + 1])
            axis = 0 if join[1] == "left of" else 1
            true = any(objects[i].centre[axis] < objects[j].centre[axis] for i in a for j in b if i != j)
            claims.append(Claim("relation", join[1], true, sorted(set(a + b)) if true else []))
    return claims


def word_referents(caption: str, objects: list[SceneObject]) -> list[Optional[list[int]]]:
    """For each word of a (possibly generated) caption: the objects its noun phrase truly names if the
    word is a colour or shape word (empty list when the phrase names none), else None."""
    words = caption.split()
    items = parse_caption(caption)
    if items is None:
        return [[] if w in COLOURS or w.rstrip("s") in SHAPES else None for w in words]
    out: list[Optional[list[int]]] = []
    for item in items:
        if item[0] == "join":
            out += [None] * len(item[1].split())
            continue
        found = matching_objects(objects, item)
        out += [None] * (2 if item[1] == 1 else 1) + [found, found]  # count (and size) words name no box
    return out


def image_to_array(image: Image.Image) -> np.ndarray:
    """An uploaded or drawn picture as the model's input: alpha flattened on white, padded to a
    square with white, resized to the canvas: (CANVAS, CANVAS, 3) uint8."""
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.split()[3])
    side = max(flat.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(flat, ((side - flat.size[0]) // 2, (side - flat.size[1]) // 2))
    return np.asarray(square.resize((CANVAS, CANVAS), Image.Resampling.LANCZOS), dtype=np.uint8)


def image_data_url(image) -> str:
    """A picture (PIL image or (H, W, 3|4) uint8 array) as the captioners' text input
    ``'image data:image/png;base64,…'``, scaled down to the canvas first (what the model sees)."""
    pixels = image_to_array(image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8)))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return "image data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def is_image_text(text) -> bool:
    """Whether ``text`` is a picture given as ``'image data:image/…;base64,…'``."""
    return isinstance(text, str) and text.lstrip().lower().startswith("image data:")


def read_image_text(text: str) -> np.ndarray:
    """The picture of ``'image data:image/png;base64,…'`` (PNG, JPEG, WebP or GIF) as the model's input
    (CANVAS, CANVAS, 3); ValueError naming what is wrong."""
    match = _DATA_URL.match(text)
    if not match:
        raise ValueError("a picture as text must be 'image data:image/png;base64,…' (PNG, JPEG, WebP or GIF)")
    try:
        data = base64.b64decode("".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise ValueError(f"the picture's base64 data is malformed ({err})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"the picture is {len(data):,} bytes (at most {MAX_IMAGE_BYTES:,})")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"the picture is {image.width} × {image.height} pixels (at most {MAX_IMAGE_PIXELS:,})")
            return image_to_array(image)
    except (OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"the picture could not be read ({err})") from None
