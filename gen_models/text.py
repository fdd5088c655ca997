"""Text normalisation and tokenisation shared by data preparation, training and the app.

Tokens are lowercased words (letters/digits joined by ``- _ . + '``, e.g. ``libfoo-dev``,
``python3.11``, ``g++``), single punctuation marks, and single CJK characters.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_CJK_PUNCT = r"\u3000-\u303f\uff00-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_TOKEN_RE = re.compile(
    rf"[{_CJK}]"  # one CJK character or CJK punctuation mark
    rf"|(?:(?![{_CJK}])[^\W_])+(?:[-_.+'](?:(?![{_CJK}])[^\W_])+)*\+*"  # a word, e.g. libfoo-dev, g++
    r"|[^\w\s]"  # one punctuation mark or symbol (emoji included)
    r"|_+"
)


def normalize(text: str) -> str:
    """NFC-normalise, drop control/format/unassigned characters, collapse whitespace."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r\v\f" else ch
        for ch in text
        if ch in "\t\n\r\v\f" or unicodedata.category(ch) not in _DROPPED_CATEGORIES
    )
    return " ".join(text.split())


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split text into GenScope tokens (see module docstring)."""
    text = normalize(text)
    if lowercase:
        text = text.lower()
    return _TOKEN_RE.findall(text)


_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_ROUGE_DROPPED = re.compile(rf"[^a-z0-9{_HAN}]+")


class RougeTokenizer:
    """rouge-score's default tokenizer (lowercase, letters and digits, Porter stem of words over 3
    characters) that keeps Han characters, each one token: the default drops every non-ASCII
    character, so a Chinese poem or translation scored 0 whatever it said. ASCII text tokenizes as
    the default does. Pass as ``RougeScorer(..., tokenizer=RougeTokenizer())``."""

    def __init__(self, use_stemmer: bool = True):
        from rouge_score.tokenizers import DefaultTokenizer

        self._default = DefaultTokenizer(use_stemmer=use_stemmer)

    def tokenize(self, text: str) -> list[str]:
        text = re.sub(rf"([{_HAN}])", r" \1 ", text.lower())
        tokens = []
        for part in _ROUGE_DROPPED.sub(" ", text).split():
            tokens.extend([part] if re.fullmatch(rf"[{_HAN}]", part) else self._default.tokenize(part))
        return tokens


def detokenize(tokens: list[str]) -> str:
    """Join tokens into readable text: no space before closing punctuation or between CJK chars."""
    out = ""
    for tok in tokens:
        if not out:
            out = tok
        elif tok in ",.;:!?)]}%" or out[-1] in "([{" or _joins_without_space(out[-1], tok[0]):
            out += tok
        else:
            out += " " + tok
    return out


def _joins_without_space(left: str, right: str) -> bool:
    """CJK characters join each other, and CJK punctuation joins anything."""
    both_cjk = bool(re.fullmatch(rf"[{_CJK}]", left)) and bool(re.fullmatch(rf"[{_CJK}]", right))
    return both_cjk or bool(re.fullmatch(rf"[{_CJK_PUNCT}]", left) or re.fullmatch(rf"[{_CJK_PUNCT}]", right))


def cased_forms(text: str) -> dict[str, str]:
    """How the source spells the words a lowercasing model sees in lower case: ``{word: Spelling}``
    for each word the source always writes the same non-lowercase way. A capital that only starts a
    sentence ("This", "Perl" after ". " or ": ") says nothing about the word and is not counted."""
    tokens = tokenize(text, lowercase=False)
    spellings: dict[str, Counter] = {}
    for i, tok in enumerate(tokens):
        sentence_start = i == 0 or tokens[i - 1] in ".!?:"
        if sentence_start and tok == tok.capitalize():
            continue
        spellings.setdefault(tok.lower(), Counter())[tok] += 1
    return {word: form for word, forms in spellings.items() if len(forms) == 1
            for form in forms if form != word and len(form) == len(word)}


def restore_case(text: str, forms: dict[str, str]) -> str:
    """``text`` with each token that ``forms`` knows spelled as the source spells it."""
    return _TOKEN_RE.sub(lambda m: forms.get(m.group(0), m.group(0)), text) if forms else text
