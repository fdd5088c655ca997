"""Tokenisation of user input: any text gives clean tokens, never whitespace or control characters."""
from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from gen_models.text import cased_forms, detokenize, normalize, restore_case, tokenize


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


def test_case_is_restored_from_the_source_but_not_from_sentence_starts():
    source = "gtk4-demo: This shows GTK4 and GtkListView. Perl is not used; a Java and java mix."
    forms = cased_forms(source)
    assert forms == {"gtk4": "GTK4", "gtklistview": "GtkListView"}
    assert restore_case("gtk4 demo with gtklistview, this perl java", forms) == \
        "GTK4 demo with GtkListView, this perl java"


@given(st.text(max_size=80))
def test_restoring_case_changes_nothing_but_case(text):
    lowered = detokenize(tokenize(text))
    restored = restore_case(lowered, cased_forms(text))
    assert restored.lower() == lowered.lower() and len(restored) == len(lowered)
