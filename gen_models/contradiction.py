"""Contradiction in a chat reply, one of the seq2seq chat failure modes, by two small documented rules.

1. **Self-contradiction**: the reply both affirms and negates one content word ("i don't like, i
   like"; "yes, i am a student. i'm not a student"). A word is negated when one of
   :data:`NEGATIONS` stands at most :data:`NEGATION_REACH` tokens before it within its clause
   (punctuation ends a clause).
2. **Feeling clash with the query**: the query and the reply carry opposite feelings, each strongly
   ("i failed my exam" → "that's great! good for you"), by VADER's compound score (Hutto & Gilbert
   2014, the ``vaderSentiment`` wheel's own lexicon, MIT): opposite signs, both at least
   :data:`CLASH` in size.

Measured on the 50 hand-labelled (query, reply) pairs of ``data/chitchat/contradiction_labels.tsv``
(written here, not training data; ``tests/test_chat_eval.py`` keeps the figure): see
:func:`labelled_accuracy`.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .text import tokenize

NEGATIONS = frozenset("no not never nothing nobody none nope nah neither nor cannot can't don't doesn't didn't "
                      "isn't aren't wasn't weren't won't wouldn't couldn't shouldn't haven't hasn't hadn't "
                      "ain't dont cant didnt doesnt isnt wont".split())
NEGATION_REACH = 3  # tokens between a negation word and the word it negates, at most
CLASH = 0.4  # |VADER compound| of both sides for a feeling clash
CLAUSE_ENDS = frozenset(",.;!?")
FUNCTION_WORDS = frozenset("i you he she it we they me my your a an the to of and or but so is am are was were be "
                           "been do does did have has had that this there just really very too also what how "
                           "yes yeah oh well".split())
LABELS = Path(__file__).resolve().parent.parent / "data" / "chitchat" / "contradiction_labels.tsv"


def polarity_words(words: list[str]) -> tuple[set[str], set[str]]:
    """(affirmed, negated) content words of a tokenised reply."""
    affirmed, negated, since_negation = set(), set(), None
    for word in words:
        if word in CLAUSE_ENDS:
            since_negation = None
            continue
        if word in NEGATIONS:
            since_negation = 0
            continue
        since_negation = None if since_negation is None else since_negation + 1
        if word in FUNCTION_WORDS or not word.isalpha():
            continue
        (negated if since_negation is not None and since_negation <= NEGATION_REACH else affirmed).add(word)
    return affirmed, negated


def self_contradiction(reply: str) -> bool:
    """The reply affirms and negates the same content word."""
    affirmed, negated = polarity_words(tokenize(reply))
    return bool(affirmed & negated)


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def feeling(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1]."""
    return float(_analyzer().polarity_scores(text)["compound"])


def feeling_clash(query: str, reply: str) -> bool:
    """The query and the reply carry strongly opposite feelings."""
    q, r = feeling(query), feeling(reply)
    return q * r < 0 and min(abs(q), abs(r)) >= CLASH


def contradicts(query: str, reply: str) -> bool:
    """Either rule: the reply contradicts itself, or its feeling clashes with the query's."""
    return self_contradiction(reply) or feeling_clash(query, reply)


def labelled_accuracy(path: Path = LABELS) -> dict[str, float]:
    """Accuracy, precision and recall of :func:`contradicts` on the hand-labelled pairs of ``path``."""
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    found = [(contradicts(q, r), label.strip() == "1") for q, r, label in rows]
    hits = sum(p and t for p, t in found)
    return {"pairs": len(found), "accuracy": sum(p == t for p, t in found) / len(found),
            "precision": hits / max(sum(p for p, _ in found), 1), "recall": hits / max(sum(t for _, t in found), 1)}
