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


def tiny(cls=MTALSTM, seed=0, **options):
    torch.manual_seed(seed)
    vocab = Vocab(CHARS + ["，", "。"])
    return cls(TopicConfig(len(vocab), 12, 16, poem_length=12, **options), vocab, "tiny-mta").eval()


ALL_PARTS = {"form_features": True, "topic_char_bias": True, "written_penalty": True, "topic_word_continuation": True}


topic_sets = st.lists(st.sampled_from(["春风", "明月", "山水", "夜雨", "秋", "江人", "归云"]), min_size=1,
                      max_size=6, unique=True)


@settings(max_examples=25, deadline=None)
@given(topics=topic_sets, seed=st.integers(0, 20), strategy=st.sampled_from(["greedy", "beam"]),
       parts=st.sampled_from([{}, ALL_PARTS]))
def test_topic_coverage_starts_at_one_and_never_rises(topics, seed, strategy, parts):
    trace = generate(tiny(seed=seed, **parts), "", DecodeSettings(strategy=strategy, beam_size=3, max_len=12, min_len=12),
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
@pytest.mark.parametrize("parts", [{}, ALL_PARTS])
def test_training_batch_gives_finite_losses(cls, parts):
    model = tiny(cls, **parts).train()
    batch = make_batch(model, [Example(list("春风"), list("春风花月，山水。"), ["春风", "花月"]),
                               Example(list("夜雨"), list("夜雨。"), ["夜雨"])])
    losses = model(**batch)
    (losses["nll"] + losses["unlikelihood"]).backward()
    assert torch.isfinite(losses["nll"]) and 0.0 <= losses["coverage"].item() <= 1.0
    assert losses["unlikelihood"].item() > 0.0


lines = st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["，", "。"])), max_size=6)


@settings(max_examples=50, deadline=None)
@given(lines=lines, tail=st.integers(0, 9), seed=st.integers(0, 5))
def test_form_counters_count_characters_lines_and_the_first_width(lines, tail, seed):
    model = tiny(seed=seed, form_features=True)
    rng = np.random.default_rng(seed)
    text = "".join("".join(rng.choice(CHARS, n)) + end for n, end in lines) + "".join(rng.choice(CHARS, tail))
    form = torch.zeros(1, 3, dtype=torch.long)
    for token in ["<s>", *text]:
        form, vector = model.advance_form(form, torch.tensor([model.vocab.stoi[token]]))
        assert vector.shape == (1, 32)
    widths = [n for n, _ in lines if n]  # the first line with characters sets the width
    assert form.tolist() == [[tail, len(lines), widths[0] if widths else 0]]


def test_reordering_hypotheses_moves_their_form_counters_with_them():
    model = tiny(seed=2, form_features=True)
    state = model.encode("", topics=["春风", "夜雨"]).state
    state = model.reorder(state, torch.zeros(3, dtype=torch.long))  # three hypotheses
    for token in ["<s>", "春", "风"]:
        ids = torch.tensor([model.vocab.stoi[token]] * 3)
        _, state, _ = model.decode_step(state, ids)
    ids = torch.tensor([model.vocab.stoi[t] for t in ["，", "花", "。"]])
    _, state, _ = model.decode_step(state, ids)
    before = state.form.tolist()
    assert before == [[0, 1, 2], [3, 0, 0], [0, 1, 2]]
    moved = model.reorder(state, torch.tensor([1, 1, 0]))
    assert moved.form.tolist() == [before[1], before[1], before[0]]


def test_unlikelihood_is_minus_log_one_minus_p_of_each_earlier_character():
    model = tiny(seed=4)
    poem = list("春风春，花风。")
    batch = make_batch(model, [Example(list("春风"), poem, ["春风"])])
    state = model.initial_state(batch["chars"], batch["topic_mask"], batch["length"])
    expected, tokens = 0.0, poem + ["</s>"]
    for t, prev in enumerate(["<s>"] + poem):
        log_probs, state, _ = model.decode_step(state, torch.tensor([model.vocab.stoi[prev]]))
        earlier = {c for c in tokens[:t] if c not in "，。"} - {tokens[t]}
        expected += sum(-np.log1p(-log_probs[0, model.vocab.stoi[c]].exp().item()) for c in earlier)
    assert model(**batch)["unlikelihood"].item() == pytest.approx(expected / len(tokens), rel=1e-4)


def test_topic_character_bonus_lands_on_the_attended_topics_characters_only():
    model = tiny(seed=5, topic_char_bias=True)
    state = model.encode("", topics=["春风", "夜雨"]).state
    bos = torch.tensor([model.vocab.bos_id])
    with torch.no_grad():
        model.bias_gate.weight.zero_()
        model.bias_gate.bias.fill_(-30.0)  # softplus ≈ 0: no bonus
        plain, _, internals = model.decode_step(state, bos)
        model.bias_gate.bias.fill_(2.0)
        boosted, _, _ = model.decode_step(state, bos)
    bonus = torch.nn.functional.softplus(torch.tensor(2.0))
    alpha = internals["topic_attention"][0]
    gap = (boosted - plain)[0] - (boosted - plain)[0, model.vocab.stoi["花"]]  # log-softmax shifts all equally
    for j, word in enumerate(["春风", "夜雨"]):
        for char in word:
            assert gap[model.vocab.stoi[char]].item() == pytest.approx((bonus * alpha[j]).item(), abs=1e-5)
    others = [i for i, tok in enumerate(model.vocab.itos) if tok not in "春风夜雨"]
    assert torch.allclose(gap[others], torch.zeros(len(others)), atol=1e-5)


def gate_gap(model, state, prev: str, gate, on: float, reference: str = "花") -> torch.Tensor:
    """(V,) how much each logit after ``prev`` rises when ``gate`` goes from softplus ≈ 0 to
    softplus(``on``), relative to ``reference``'s (log-softmax shifts all equally)."""
    token = torch.tensor([model.vocab.stoi[prev]])
    with torch.no_grad():
        gate.weight.zero_()
        gate.bias.fill_(-30.0)
        plain, _, _ = model.decode_step(state, token)
        gate.bias.fill_(on)
        boosted, _, _ = model.decode_step(state, token)
    diff = (boosted - plain)[0]
    return diff - diff[model.vocab.stoi[reference]]


def test_a_topic_character_already_written_gets_no_more_bonus():
    model = tiny(seed=7, topic_char_bias=True, written_penalty=True)
    state = model.encode("", topics=["春风"]).state
    _, state, _ = model.decode_step(state, torch.tensor([model.vocab.bos_id]))
    with torch.no_grad():
        model.written_gate.weight.zero_()
        model.written_gate.bias.fill_(-30.0)  # softplus ≈ 0: no penalty, so only the bonus differs
    gap = gate_gap(model, state, "春", model.bias_gate, 2.0)
    assert gap[model.vocab.stoi["春"]].item() == pytest.approx(0.0, abs=1e-5)  # written: no bonus
    bonus = torch.nn.functional.softplus(torch.tensor(2.0)).item()
    assert gap[model.vocab.stoi["风"]].item() == pytest.approx(bonus, abs=1e-5)  # one topic: α = 1


def test_a_topic_word_once_begun_gets_a_bonus_on_its_next_character_only():
    model = tiny(seed=9, written_penalty=True, topic_word_continuation=True)
    state = model.encode("", topics=["春风", "夜雨", "江"]).state
    _, state, _ = model.decode_step(state, torch.tensor([model.vocab.bos_id]))
    with torch.no_grad():
        model.written_gate.bias.fill_(-30.0)  # softplus ≈ 0: no penalty, so only the bonus differs
    gap = gate_gap(model, state, "夜", model.continue_gate, 2.0)
    bonus = torch.nn.functional.softplus(torch.tensor(2.0)).item()
    assert gap[model.vocab.stoi["雨"]].item() == pytest.approx(bonus, abs=1e-5)
    others = [i for i, tok in enumerate(model.vocab.itos) if tok != "雨"]
    assert torch.allclose(gap[others], torch.zeros(len(others)), atol=1e-5)


def test_spend_loss_is_the_squared_log_of_each_topics_total_attention_over_phi():
    model = tiny(seed=8)
    poem = list("春风夜，雨月。")
    batch = make_batch(model, [Example(list("春风夜雨"), poem, ["春风", "夜雨"])])
    state = model.initial_state(batch["chars"], batch["topic_mask"], batch["length"])
    total = torch.zeros(2)
    for prev in ["<s>"] + poem:
        _, next_state, internals = model.decode_step(state, torch.tensor([model.vocab.stoi[prev]]))
        total += internals["topic_attention"][0] / state.phi[0, :2]
        state = next_state
    expected = (total.log() ** 2).mean().item()
    assert model(**batch)["spend"].item() == pytest.approx(expected, rel=1e-4)


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


def test_written_penalty_lowers_exactly_the_characters_already_written():
    model = tiny(seed=6, written_penalty=True)
    state = model.encode("", topics=["春风"]).state
    for token in ["<s>", "春", "，", "花"]:
        _, state, _ = model.decode_step(state, torch.tensor([model.vocab.stoi[token]]))
    assert {model.vocab.itos[i] for i in state.written[0].nonzero().flatten().tolist()} == {"春", "花"}
    with torch.no_grad():
        model.written_gate.bias.fill_(-30.0)  # softplus ≈ 0: no penalty
        plain, _, _ = model.decode_step(state, torch.tensor([model.vocab.stoi["月"]]))
        model.written_gate.bias.fill_(3.0)
        penalised, after, _ = model.decode_step(state, torch.tensor([model.vocab.stoi["月"]]))
    gap = (penalised - plain)[0] - (penalised - plain)[0, model.vocab.stoi["水"]]  # log-softmax shifts all equally
    penalty = torch.nn.functional.softplus(torch.tensor(3.0)).item()
    for char in "春花月":
        assert gap[model.vocab.stoi[char]].item() == pytest.approx(-penalty, abs=1e-5)
    assert gap[model.vocab.stoi["，"]].item() == pytest.approx(0.0, abs=1e-5)
    assert after.written[0].sum().item() == 3
    with torch.no_grad():
        again, _, _ = model.decode_step(after, torch.tensor([model.vocab.stoi["春"]]))  # 春 written twice now
        model.written_gate.bias.fill_(-30.0)
        plain_again, _, _ = model.decode_step(after, torch.tensor([model.vocab.stoi["春"]]))
    twice = (again - plain_again)[0] - (again - plain_again)[0, model.vocab.stoi["水"]]
    assert twice[model.vocab.stoi["春"]].item() == pytest.approx(-2 * penalty, abs=1e-4)
    assert twice[model.vocab.stoi["花"]].item() == pytest.approx(-penalty, abs=1e-4)


def test_a_trained_model_gains_a_part_and_keeps_its_weights():
    from training.train import with_parts

    model = tiny(seed=7, form_features=True)
    extended = with_parts(model, {"written_penalty": True, "form_features": True})
    assert extended.config.written_penalty and extended.config.form_features
    for name, value in model.state_dict().items():
        assert torch.equal(extended.state_dict()[name], value), name
    assert with_parts(extended, {"written_penalty": True}) is extended
