"""Training objectives: scheduled sampling, attention regularisation, loss masks, copy-only words,
topic subsets and the topic-model options."""
from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gen_models.models.pointer_generator import PointerGenerator
from gen_models.models.seq2seq import Seq2SeqConfig
from gen_models.vocab import Vocab
from tests.helpers import WORDS, tiny_model
from training.objectives import (
    LATIN,
    copy_only_words,
    loss_mask,
    scramble_names,
    set_copy_only,
    set_source_unknown,
    teacher_forcing_probability,
    topic_subset,
)
from training.train import Example, check_options, make_batch


@given(st.sampled_from(["linear", "exponential", "inverse_sigmoid"]), st.integers(0, 10**6),
       st.floats(0.0, 0.9))
def test_teacher_forcing_decays_from_one_and_stays_above_its_floor(schedule, step, floor):
    k = 0.999 if schedule == "exponential" else 500.0
    first = teacher_forcing_probability(schedule, 0, k, 1e-4, floor)
    now = teacher_forcing_probability(schedule, step, k, 1e-4, floor)
    later = teacher_forcing_probability(schedule, step + 1000, k, 1e-4, floor)
    assert floor <= later <= now <= first <= 1.0
    assert teacher_forcing_probability("none", step, k, 1e-4, floor) == 1.0


def test_the_three_schedules_follow_their_formulas():
    assert teacher_forcing_probability("linear", 2000, 0, 1e-4, 0.0) == 1.0 - 0.2
    assert math.isclose(teacher_forcing_probability("exponential", 100, 0.99, 0, 0.0), 0.99**100)
    assert math.isclose(teacher_forcing_probability("inverse_sigmoid", 500, 100, 0, 0.0), 100 / (100 + math.exp(5)))
    assert teacher_forcing_probability("linear", 10**6, 0, 1e-4, 0.3) == 0.3


def batch_of(model, pairs):
    return make_batch(model, [Example(src.split(), tgt.split()) for src, tgt in pairs])


def test_full_teacher_forcing_is_the_plain_loss_and_none_samples_differently():
    model = tiny_model(seed=1)
    batch = batch_of(model, [("w1 w2 w3 w4", "w2 w3 w5 w6 w7"), ("w4 w5", "w9 w8 w7 w6 w5 w4")])
    plain = model(**batch)["nll"]
    assert torch.equal(model(**batch, teacher_forcing=1.0)["nll"], plain)
    torch.manual_seed(0)
    assert not torch.equal(model(**batch, teacher_forcing=0.0)["nll"], plain)


def test_scheduled_input_mixes_reference_and_samples_per_token():
    model = tiny_model(seed=2)
    reference = torch.full((4000,), 7)
    log_probs = torch.log_softmax(torch.zeros(4000, 40).index_fill_(1, torch.tensor([3]), 50.0), -1)
    torch.manual_seed(0)
    mixed = model.scheduled_input(reference, log_probs, 0.25)
    share = (mixed == 7).float().mean().item()
    assert set(mixed.tolist()) == {3, 7} and abs(share - 0.25) < 0.03


def test_attention_regulariser_is_the_squared_gap_per_target_token():
    model = tiny_model(seed=3)
    batch = batch_of(model, [("w1 w2 w3", "w4 w5")])
    attention = []
    original = model.attend
    model.attend = lambda s, state: attention.append(original(s, state)) or attention[-1]
    out = model(**batch, attention_target=0.5)
    totals = torch.stack(attention).sum(0)[0]  # (S,)
    expected = ((0.5 - totals) ** 2).sum() / 3  # three target tokens: w4 w5 </s>
    assert torch.allclose(out["attention_reg"], expected)


def test_unk_targets_leave_the_loss_only_when_asked():
    model = tiny_model(seed=4)
    examples = [Example(["w1", "w2"], ["w3", "zzz", "w4"])]  # zzz: unknown, not in the source
    plain = make_batch(model, examples)
    masked = make_batch(model, examples, mask_unk=True)
    assert plain["target_mask"].sum() == 4 and masked["target_mask"].sum() == 3
    assert not masked["target_mask"][0, 1]


def copy_only_model():
    torch.manual_seed(5)
    vocab = Vocab(WORDS + ["Gtk", "Qt"])
    config = Seq2SeqConfig(len(vocab), 12, 16, max_source_len=40, lowercase=False, copy_only=True)
    model = PointerGenerator(config, vocab, "copy-only").eval()
    set_copy_only(model, copy_only_words([["w1", "Gtk"], ["Qt"], ["Qt"]], below=2))
    return model


def test_copy_only_words_are_the_rare_latin_ones():
    assert copy_only_words([["Gtk", "的"], ["Qt", "Qt"], ["Qt"]], below=2) == {"Gtk"}


def test_a_copy_only_word_is_copied_never_generated_and_unreachable_targets_leave_the_loss():
    model = copy_only_model()
    gtk = model.vocab.stoi["Gtk"]
    for source, copyable in (("w1 w2 w3", False), ("w1 Gtk w3", True)):
        encoded = model.encode(source)
        log_probs, _, internals = model.decode_step(encoded.state, torch.tensor([model.vocab.bos_id]))
        assert internals["generate_probs"][0, gtk] == 0
        assert (log_probs[0, gtk].exp() > 1e-6) == copyable
    batch = make_batch(model, [Example(["w1", "w2"], ["Gtk", "w3"]), Example(["Gtk", "w2"], ["Gtk", "w3"])])
    assert batch["target_mask"][:, 0].tolist() == [False, True]
    assert loss_mask(model, batch, mask_unk=False).equal(batch["target_mask"])


def test_a_rare_source_word_reads_as_unk_and_is_still_copied():
    torch.manual_seed(5)
    vocab = Vocab(WORDS + ["PAM", "Qt"])
    config = Seq2SeqConfig(len(vocab), 12, 16, max_source_len=40, lowercase=False, rare_source_unk=True)
    model = PointerGenerator(config, vocab, "rare-unk").eval()
    assert set_source_unknown(model, [WORDS + ["Qt", "PAM"], WORDS + ["Qt"]], below=2) == 1
    as_unknown = model.encode("w1 NEVERSEEN w3").state.enc_out
    assert model.encode("w1 PAM w3").state.enc_out.equal(as_unknown)
    assert not model.encode("w1 Qt w3").state.enc_out.equal(as_unknown)
    encoded = model.encode("w1 PAM w3")
    _, _, internals = model.decode_step(encoded.state, torch.tensor([model.vocab.bos_id]))
    assert internals["copy_probs"][0, vocab.stoi["PAM"]] > 0


@given(st.lists(st.text("春风明月故乡秋雨", min_size=1, max_size=3), min_size=1, max_size=5, unique=True),
       st.integers(0, 10**6))
def test_a_topic_subset_is_non_empty_and_every_topic_still_occurs_in_the_poem(topics, seed):
    poem = "，".join(topics) + "。"
    subset = topic_subset(topics, random.Random(seed))
    assert 1 <= len(subset) <= len(topics)
    assert all(word in poem for word in subset)
    assert all(any(word in topic for topic in topics) for word in subset)


def test_topic_options_are_refused_for_models_without_topics():
    args = type("Args", (), {"scheduled_sampling": "none", "attention_reg": 0.0, "unlikelihood": 1.0,
                             "topic_coverage_loss": 0.0, "topic_subsets": False, "form_features": False,
                             "topic_char_bias": False, "written_penalty": False, "copy_only_latin_below": 0,
                             "scramble_names": 0.0, "unk_rare_source_below": 0})()
    with pytest.raises(SystemExit, match="topic model"):
        check_options(tiny_model(), args)


words = st.sampled_from(["GTK4", "Qt", "LibreOffice", "Calc", "的", "打开", "file", "the", "x86_64", "C++"])


@given(st.lists(words, max_size=8), st.lists(words, max_size=8), st.integers(0, 10**6), st.floats(0.0, 1.0))
def test_scrambling_replaces_shared_names_consistently_and_nothing_else(src, tgt, seed, p):
    new_src, new_tgt = scramble_names(src, tgt, random.Random(seed), p)
    assert len(new_src) == len(src) and len(new_tgt) == len(tgt)
    mapping = {}
    for old, new in [*zip(src, new_src), *zip(tgt, new_tgt)]:
        assert mapping.setdefault(old, new) == new  # the same made-up word everywhere in the pair
        if old != new:
            assert old in src and old in tgt and LATIN.fullmatch(old) and LATIN.fullmatch(new)
            assert [c.isupper() for c in old] == [c.isupper() for c in new[: len(old)]]
    assert scramble_names(src, tgt, random.Random(seed), 0.0) == (src, tgt)
