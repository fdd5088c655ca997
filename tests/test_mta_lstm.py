"""MTA-LSTM and its TAV baseline: topic coverage starts at 1, never rises, and can be intervened on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models.decoding import DecodeSettings, generate
from gen_models.models.mta_lstm import MTALSTM, TopicAveragedLSTM, TopicConfig
from gen_models.vocab import Vocab
from training.train import Example, make_batch

CHARS = list("春风花月山水夜雨秋江人归天云")


def tiny(cls=MTALSTM, seed=0):
    torch.manual_seed(seed)
    vocab = Vocab(CHARS + ["，", "。"])
    return cls(TopicConfig(len(vocab), 12, 16, poem_length=12), vocab, "tiny-mta").eval()


topic_sets = st.lists(st.sampled_from(["春风", "明月", "山水", "夜雨", "秋", "江人", "归云"]), min_size=1,
                      max_size=6, unique=True)


@settings(max_examples=25, deadline=None)
@given(topics=topic_sets, seed=st.integers(0, 20), strategy=st.sampled_from(["greedy", "beam"]))
def test_topic_coverage_starts_at_one_and_never_rises(topics, seed, strategy):
    trace = generate(tiny(seed=seed), "", DecodeSettings(strategy=strategy, beam_size=3, max_len=12, min_len=12),
                     topics=topics)
    assert trace.topics == topics[:5] and trace.source_tokens == topics[:5]
    previous = np.ones(len(trace.topics))
    for step in trace.steps:
        assert step.topic_attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert (step.topic_coverage >= 0).all()
        assert (step.topic_coverage <= previous + 1e-6).all()
        previous = step.topic_coverage
    assert previous.sum() < len(trace.topics)


def test_topics_come_from_the_text_when_not_given():
    trace = generate(tiny(), "春风，明月 山水", DecodeSettings(max_len=4))
    assert trace.topics == ["春风", "明月", "山水"]
    with pytest.raises(ValueError, match="topic words"):
        generate(tiny(), "xyz 😀", DecodeSettings(max_len=4))


def test_resetting_a_topic_coverage_changes_its_attention():
    model = tiny(seed=3)
    base = generate(model, "", DecodeSettings(strategy="greedy", max_len=10, min_len=10), topics=["春风", "明月"])
    spent = DecodeSettings(strategy="greedy", max_len=10, min_len=10, topic_coverage={0: 0.0}, topic_coverage_step=2)
    changed = generate(model, "", spent, topics=["春风", "明月"])
    assert all(step.topic_coverage[0] == 0.0 for step in changed.steps[2:])  # spent, and stays spent
    assert base.steps[2].topic_coverage[0] > 0.0
    assert not np.allclose(changed.steps[2].topic_attention, base.steps[2].topic_attention)


def test_tav_has_no_topic_attention_signals():
    trace = generate(tiny(TopicAveragedLSTM), "", DecodeSettings(max_len=5), topics=["春风", "明月"])
    assert all(s.topic_attention is None and s.topic_coverage is None and s.attention is None for s in trace.steps)


@pytest.mark.parametrize("cls", [MTALSTM, TopicAveragedLSTM])
def test_training_batch_gives_finite_losses(cls):
    model = tiny(cls).train()
    batch = make_batch(model, [Example(list("春风"), list("春风花月，山水。"), ["春风", "花月"]),
                               Example(list("夜雨"), list("夜雨。"), ["夜雨"])])
    losses = model(**batch)
    losses["nll"].backward()
    assert torch.isfinite(losses["nll"]) and 0.0 <= losses["coverage"].item() <= 1.0


def test_topic_input_says_which_words_were_used_and_which_ignored():
    from gen_models.models.mta_lstm import MTALSTM, TopicConfig
    from gen_models.vocab import Vocab
    from tests.tiny_checkpoints import POEM_CHARS

    vocab = Vocab(POEM_CHARS)
    model = MTALSTM(TopicConfig(len(vocab), 8, 16, poem_length=12), vocab).eval()
    encoded = model.encode("春风 hello 明月故乡山水 xyz")
    notices = encoded.notices
    assert encoded.topics == ["春风", "明月故乡山水"]  # the status line names them (ui.handlers.status_markdown)
    assert "2 words ignored (no character the model knows): hello xyz" in notices
    assert "“明月故乡山水” was read as one topic: separate topic words with spaces" in notices
