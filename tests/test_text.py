"""Tokenisation of user input: any text gives clean tokens, never whitespace or control characters."""
from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from gen_models.text import detokenize, normalize, tokenize


@given(st.text(max_size=300))
def test_any_text_gives_clean_tokens(text):
    for token in tokenize(text, lowercase=False):
        assert token and not any(ch.isspace() for ch in token)
        assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in token)


@given(st.lists(st.sampled_from(["libfoo-dev", "g++", "(", ")", ",", ".", "the", "打", "开", "「", "」", "A1"]), max_size=20))
def test_detokenize_round_trips_through_tokenize(tokens):
    assert tokenize(detokenize(tokens), lowercase=False) == tokens


def test_words_names_and_cjk():
    assert tokenize("libfoo-dev: GNU C++ (g++), python3.11!") == [
        "libfoo-dev", ":", "gnu", "c++", "(", "g++", ")", ",", "python3.11", "!"]
    assert tokenize("打开LibreOffice的「Esc」键。", lowercase=False) == [
        "打", "开", "LibreOffice", "的", "「", "Esc", "」", "键", "。"]
    assert detokenize(["打", "开", "LibreOffice", "的", "「", "Esc", "」", "键", "，"]) == "打开 LibreOffice 的「Esc」键，"


def test_control_characters_and_emoji():
    assert normalize("a\x00b\u200bc\td\n\ne") == "abc d e"
    assert tokenize("hi 😀 there") == ["hi", "😀", "there"]
