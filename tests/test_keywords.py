"""Keyword-introduced replies: the PMI ranking, Seq2BF's backward/forward assembly through the generic
search, HGFU's gate, and the keyword intervention (API, CLI)."""
from __future__ import annotations

import math

import pytest
import torch

from gen_models.checkpoint import load_checkpoint
from gen_models.decoding import DecodeSettings, generate, teacher_forced
from gen_models.keywords import pmi_table

QUERY = "a json parser for python"


def test_pmi_ranking_matches_a_hand_computation():
    """Four pairs; PMI(w, n) = log((c(w,n) − δ)·N / (c(w)·c(n))), positive entries only."""
    pairs = [(["dogs", "bark"], ["my", "dog", "barks"]), (["dogs", "run"], ["the", "dog", "runs"]),
             (["cats", "purr"], ["a", "cat", "purrs"]), (["dogs", "and", "cats"], ["a", "cat", "and", "dog"])]
    table = pmi_table(pairs, nouns={"dog", "cat"}, min_word=1, min_noun=1, min_pair=1, discount=0.5)
    # c(dogs)=3, c(dog)=3, c(dogs, dog)=3, N=4: log(2.5·4/9); c(cats)=2, c(cat)=2, c(cats, cat)=2: log(1.5·4/4)
    assert table.entries["dogs"]["dog"] == pytest.approx(math.log(2.5 * 4 / 9))
    assert table.entries["cats"]["cat"] == pytest.approx(math.log(1.5 * 4 / 4))
    assert "cat" not in table.entries.get("dogs", {})  # log(0.5·4/6) < 0: dropped
    # PMI(bark, dog) = log(0.5·4/3) < 0 is dropped, so "dogs" alone ranks the query
    assert table.rank(["dogs", "bark"]) == [("dog", pytest.approx(math.log(10 / 9)))]
    assert table.best_in(["cats", "purr"], ["the", "cat", "and", "dog"]) == "cat"
    assert table.best_in(["cats"], ["no", "noun"]) == ""


@pytest.fixture(scope="module")
def seq2bf(checkpoint_root):
    return load_checkpoint(checkpoint_root / "tiny-seq2bf")


@pytest.fixture(scope="module")
def hgfu(checkpoint_root):
    return load_checkpoint(checkpoint_root / "tiny-hgfu")


def test_keyword_is_predicted_by_pmi_and_recorded(seq2bf):
    trace = generate(seq2bf, QUERY, DecodeSettings(strategy="greedy", max_len=8))
    assert trace.extra["keyword"] == "library" and trace.extra["keyword_source"] == "PMI"
    assert trace.extra["keyword_candidates"][:2] == [["library", 3.0], ["game", 1.5]]
    assert trace.steps[0].token == "library" and trace.steps[0].logprob == 0.0  # the hard constraint


def test_seq2bf_assembles_backward_then_forward_into_reading_order(seq2bf):
    """Forced generation order: keyword, two backward words, the switch <s>, then the forward half."""
    ids = [seq2bf.vocab.stoi[w] for w in ("library", "json", "a")] + [seq2bf.bos_id]
    trace = generate(seq2bf, QUERY, DecodeSettings(strategy="greedy", max_len=7, min_len=7, forced_prefix=ids))
    halves = [s.extra["half"] for s in trace.steps]
    assert halves[:4] == [0, 0, 0, 0] and set(halves[4:]) == {1}
    forward = [s.token for s in trace.steps[4:] if s.token != "</s>"]
    assert trace.output_text.split()[:3] == ["a", "json", "library"]
    assert trace.output_text.split()[3:] == forward
    # the first forward step is the forward decoder reading "<s> a json library" (teacher-forced)
    half = seq2bf.forward_half
    encoded = half.encode(QUERY)
    logprobs, _ = teacher_forced(half, encoded, [seq2bf.vocab.stoi[w] for w in ("a", "json", "library")]
                                 + [trace.steps[4].token_id])
    assert trace.steps[4].logprob == pytest.approx(logprobs[3], abs=1e-5)


def test_seq2bf_beam_search_keeps_the_keyword_in_every_finished_reply(seq2bf):
    trace = generate(seq2bf, QUERY, DecodeSettings(beam_size=4, max_len=10))
    finished = [n for n in trace.beam if n.status in ("finished", "chosen")]
    assert finished
    for node in finished:
        ids = [n.token_id for n in trace.path(node.id) if n.token_id != seq2bf.eos_id]
        assert "library" in seq2bf.decode_text(ids, []).split()


def test_the_keyword_intervention_changes_the_reply_and_the_new_keyword_is_in_it(seq2bf):
    settings = DecodeSettings(strategy="greedy", max_len=8)
    before = generate(seq2bf, QUERY, settings)
    after = generate(seq2bf, QUERY, settings, topics=["server"])
    assert after.extra["keyword"] == "server" and after.extra["keyword_source"] == "given"
    assert "server" in after.output_text.split() and after.output_text != before.output_text
    with pytest.raises(ValueError, match="not in tiny-seq2bf's vocabulary"):
        generate(seq2bf, QUERY, settings, topics=["zebra"])


def test_hgfu_records_a_vector_gate_between_zero_and_one(hgfu):
    trace = generate(hgfu, QUERY, DecodeSettings(strategy="greedy", max_len=5, min_len=5))
    gates = torch.tensor([list(s.extra["gate"]) for s in trace.steps])  # (T, H)
    assert gates.shape == (len(trace.steps), hgfu.config.hidden_dim)
    assert bool(((gates > 0) & (gates < 1)).all())
    other = generate(hgfu, QUERY, DecodeSettings(strategy="greedy", max_len=5, min_len=5), topics=["game"])
    assert other.extra["keyword"] == "game" and other.steps[0].candidates != trace.steps[0].candidates


def test_a_query_without_pmi_candidates_uses_the_fallback_keyword_and_says_so(seq2bf):
    trace = generate(seq2bf, "the and of", DecodeSettings(strategy="greedy", max_len=5))
    assert trace.extra["keyword"] == "game" and trace.extra["keyword_source"] == "fallback"
    assert any("most frequent training keyword" in n for n in trace.notices)


def test_stop_nouns_and_a_query_noun_before_the_fallback(checkpoint_root):
    """For queries unlike the corpus: a stop-listed generic noun is skipped for the next PMI candidate,
    and a query with no PMI candidate takes a candidate noun it contains before the fallback."""
    model = load_checkpoint(checkpoint_root / "tiny-seq2bf")
    settings = DecodeSettings(strategy="greedy", max_len=5)
    model.config.stop_nouns = ["library"]
    trace = generate(model, QUERY, settings)
    assert trace.extra["keyword"] == "game" and trace.extra["keyword_source"] == "PMI"
    assert "library" not in [w for w, _ in trace.extra["keyword_candidates"]]
    model.config.stop_nouns = []
    trace = generate(model, "the and of library", settings)  # "library" has no PMI entries as a query word
    assert trace.extra["keyword"] == "library" and trace.extra["keyword_source"] == "query noun"
    model.config.query_nouns_first = True
    trace = generate(model, "a json parser for the game", settings)
    assert trace.extra["keyword"] == "game" and trace.extra["keyword_source"] == "query noun"
