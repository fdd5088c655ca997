"""Stories in the manner of the bAbI tasks (Weston et al. 2015), generated here from a seed.

Three tasks, each story followed by one question, with the indices (0-based) of the sentences that
support the answer:

- task 1, single supporting fact: people move between places; "Where is Mary?" → her last place;
- task 2, two supporting facts: people also pick up and drop objects; "Where is the football?" →
  where its holder last went (the pick-up and that move), or where it was dropped (the drop and the
  dropper's move before it);
- task 8, lists / sets: "What is Mary carrying?" → the objects she holds, in alphabetical order, or
  "nothing" (supporting: her pick-ups of those objects, or her last drop).

Splits are seed ranges: training seeds from 0, validation from ``VALID_SEED``, test from
``TEST_SEED``; ``random story task T seed S`` in the app draws the same generator.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

TASKS = (1, 2, 8)
PEOPLE = ("mary", "john", "daniel", "sandra")
PLACES = ("bathroom", "hallway", "kitchen", "office", "garden", "bedroom")
OBJECTS = ("apple", "football", "milk")
MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
GRABS = ("picked up", "got", "grabbed", "took")
DROPS = ("dropped", "discarded", "put down", "left")
STORY_LENGTHS = {1: (2, 10), 2: (4, 20), 8: (4, 15)}
VALID_SEED, TEST_SEED = 1_000_000, 2_000_000
QUESTION_WORDS = ("where", "is", "what", "carrying", "the", "there", "nothing")


@dataclass
class Story:
    """One example: sentences (lower-case words, no final stop), the question, the answer words and
    the supporting sentence indices."""

    task: int
    sentences: list[list[str]]
    question: list[str]
    answer: list[str]
    supporting: list[int] = field(default_factory=list)

    def text(self) -> str:
        """The story and question as a user would type them."""
        return " ".join(_sentence_text(s) + "." for s in self.sentences) + " " + _sentence_text(self.question) + "?"


def _sentence_text(words: list[str]) -> str:
    words = [w.capitalize() if w in PEOPLE else w for w in words]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def vocabulary() -> list[str]:
    """Every word a story, question or answer can hold (sorted)."""
    words = {*PEOPLE, *PLACES, *OBJECTS, *QUESTION_WORDS}
    for phrase in MOVES + GRABS + DROPS:
        words.update(phrase.split())
    return sorted(words)


class _World:
    """Where people are and who holds what, while a story is told."""

    def __init__(self, rng: random.Random):
        self.rng, self.sentences = rng, []
        self.place: dict[str, str] = {}
        self.last_move: dict[str, int] = {}
        self.holder: dict[str, str] = {}  # object → person holding it
        self.grabbed_at: dict[str, int] = {}
        self.dropped: dict[str, tuple[str, int, int]] = {}  # object → (place, drop sentence, move sentence)
        self.last_drop: dict[str, int] = {}

    def move(self) -> None:
        person = self.rng.choice(PEOPLE)
        place = self.rng.choice([p for p in PLACES if p != self.place.get(person)])
        self.place[person], self.last_move[person] = place, len(self.sentences)
        self.sentences.append([person, *self.rng.choice(MOVES).split(), "the", place])

    def grab(self) -> bool:
        free = [o for o in OBJECTS if o not in self.holder]
        people = [p for p in PEOPLE if p in self.place]
        if not free or not people:
            return False
        person, obj = self.rng.choice(people), self.rng.choice(free)
        self.holder[obj], self.grabbed_at[obj] = person, len(self.sentences)
        self.dropped.pop(obj, None)
        self.sentences.append([person, *self.rng.choice(GRABS).split(), "the", obj, *self.rng.choice([[], ["there"]])])
        return True

    def drop(self) -> bool:
        if not self.holder:
            return False
        obj = self.rng.choice(sorted(self.holder))
        person = self.holder.pop(obj)
        self.dropped[obj] = (self.place[person], len(self.sentences), self.last_move[person])
        self.last_drop[person] = len(self.sentences)
        self.sentences.append([person, *self.rng.choice(DROPS).split(), "the", obj])
        return True

    def act(self, objects: bool) -> None:
        roll = self.rng.random()
        if objects and roll < 0.25 and self.grab():
            return
        if objects and roll < 0.4 and self.drop():
            return
        self.move()


def make_story(task: int, seed: int) -> Story:
    """The story of ``task`` drawn from ``seed`` (retries inside the seed until a question has an
    answer the story supports)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(str, TASKS))}, got {task}")
    rng = random.Random(seed * 10 + task)
    while True:
        low, high = STORY_LENGTHS[task]
        world = _World(rng)
        for _ in range(rng.randint(low, high)):
            world.act(objects=task != 1)
        story = _ask(task, world, rng)
        if story is not None:
            return story


def _ask(task: int, world: _World, rng: random.Random):
    if task == 1:
        person = rng.choice(sorted(world.place))
        return Story(1, world.sentences, ["where", "is", person], [world.place[person]], [world.last_move[person]])
    if task == 2:
        known = sorted(set(world.holder) | set(world.dropped))
        if not known:
            return None
        obj = rng.choice(known)
        if obj in world.holder:
            person = world.holder[obj]
            support = sorted({world.grabbed_at[obj], world.last_move[person]})
            return Story(2, world.sentences, ["where", "is", "the", obj], [world.place[person]], support)
        place, drop, move = world.dropped[obj]
        return Story(2, world.sentences, ["where", "is", "the", obj], [place], sorted({move, drop}))
    people = sorted({p for p in world.holder.values()} | set(world.last_drop))
    if not people:
        return None
    person = rng.choice(people)
    held = sorted(o for o, p in world.holder.items() if p == person)
    support = sorted(world.grabbed_at[o] for o in held) if held else [world.last_drop[person]]
    return Story(8, world.sentences, ["what", "is", person, "carrying"], held or ["nothing"], support)


def stories(task: int, start_seed: int, count: int) -> list[Story]:
    """``count`` stories of ``task`` from seeds ``start_seed …``."""
    return [make_story(task, seed) for seed in range(start_seed, start_seed + count)]
