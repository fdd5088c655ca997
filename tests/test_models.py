"""Invariants of the RNN models on small random instances (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models.decoding import DecodeSettings, generate
from gen_models.protocol import StepControls
from gen_models.trace import GenerationTrace
from tests.helpers import WORDS, tiny_model
from training.train import Example, make_batch

source_words = st.lists(st.sampled_from(WORDS + ["oovalpha", "oovbeta", "ünï", "😀"]), min_size=1, max_size=25)
model_kinds = st.sampled_from([(False, False), (False, True), (True, False), (True, True)])


@settings(max_examples=30, deadline=None)
@given(words=source_words, kind=model_kinds, seed=st.integers(0, 50))
def test_trace_internals_invariants(words, kind, seed):
    pointer, coverage = kind
    model = tiny_model(pointer, coverage, seed)
    trace = generate(model, " ".join(words), DecodeSettings(strategy="greedy", max_len=8))
    running = np.zeros(len(trace.source_tokens))
    for step in trace.steps:
        assert step.attention.sum() == pytest.approx(1.0, abs=1e-5)
        assert (step.attention >= 0).all()
        if coverage:
            np.testing.assert_allclose(step.coverage, running, atol=1e-5)
        else:
            assert step.coverage is None
        running += step.attention
        if pointer:
            assert 0.0 <= step.p_gen <= 1.0
            for cand in step.candidates:
                assert cand.p_generate + cand.p_copy == pytest.approx(np.exp(cand.logprob), abs=1e-5)
        else:
            assert step.p_gen is None


@settings(max_examples=20, deadline=None)
@given(words=source_words, kind=model_kinds, seed=st.integers(0, 50), force=st.sampled_from([None, 0.0, 0.3, 1.0]))
def test_final_distribution_sums_to_one(words, kind, seed, force):
    model = tiny_model(*kind, seed=seed)
    encoded = model.encode(" ".join(words))
    out = model.step(encoded.state, torch.tensor([model.bos_id]), StepControls(p_gen=force))
    assert float(out.log_probs.exp().sum()) == pytest.approx(1.0, abs=1e-4)
    if kind[0]:
        assert out.log_probs.size(1) == model.vocab_size + len(encoded.oov_words)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 50), repeats=st.integers(1, 3))
def test_source_oov_receives_exactly_its_copy_mass(seed, repeats):
    model = tiny_model(pointer=True, seed=seed)
    encoded = model.encode("w1 zebrafish w2 " + "zebrafish " * (repeats - 1))
    oov_id = model.vocab_size + encoded.oov_words.index("zebrafish")
    out = model.step(encoded.state, torch.tensor([model.bos_id]), StepControls())
    positions = (encoded.source_ids == oov_id).nonzero().squeeze(1)
    expected = (1 - out.internals["p_gen"][0]) * out.internals["attention"][0, positions].sum()
    assert float(out.log_probs[0, oov_id].exp()) == pytest.approx(float(expected), abs=1e-6)
    forced = generate(model, "w1 zebrafish w2", DecodeSettings(strategy="greedy", max_len=3, force_p_gen=0.0))
    assert forced.output_tokens[0] in ("w1", "zebrafish", "w2")
    assert forced.steps[0].copied_from


@settings(max_examples=20, deadline=None)
@given(words=source_words, kind=model_kinds, seed=st.integers(0, 50))
def test_beam_one_equals_greedy(words, kind, seed):
    model = tiny_model(*kind, seed=seed)
    text = " ".join(words)
    greedy = generate(model, text, DecodeSettings(strategy="greedy", max_len=10))
    beam = generate(model, text, DecodeSettings(strategy="beam", beam_size=1, max_len=10))
    assert greedy.output_ids() == beam.output_ids()


@settings(max_examples=15, deadline=None)
@given(words=source_words, kind=model_kinds, seed=st.integers(0, 50), strategy=st.sampled_from(["greedy", "beam", "sample"]))
def test_forcing_own_output_reproduces_trace(words, kind, seed, strategy):
    model = tiny_model(*kind, seed=seed)
    text = " ".join(words)
    settings_ = DecodeSettings(strategy=strategy, beam_size=3, max_len=8, seed=seed)
    trace = generate(model, text, settings_)
    settings_.forced_prefix = trace.output_ids()
    again = generate(model, text, settings_)
    assert again.output_tokens == trace.output_tokens
    for a, b in zip(again.steps, trace.steps):
        np.testing.assert_allclose(a.attention, b.attention, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(words=source_words, kind=model_kinds, strategy=st.sampled_from(["greedy", "beam", "sample"]))
def test_json_round_trip_is_lossless(words, kind, strategy):
    trace = generate(tiny_model(*kind), " ".join(words), DecodeSettings(strategy=strategy, max_len=6))
    text = trace.to_json()
    back = GenerationTrace.from_json(text)
    assert back.to_json() == text
    assert back.to_dict() == trace.to_dict()


def test_json_has_the_contract_keys():
    trace = generate(tiny_model(True, True), "w1 zebrafish w3", DecodeSettings(max_len=4))
    data = trace.to_dict()
    assert {"source_tokens", "output_tokens", "steps", "beam", "settings", "timings", "oov_words",
            "extra"} <= set(data)
    assert data["oov_words"] == ["zebrafish"]
    step_keys = {"token", "token_id", "logprob", "copied_from", "attention", "coverage", "p_gen",
                 "topic_attention", "topic_coverage", "self_attention", "candidates", "extra"}
    assert step_keys <= set(data["steps"][0])
    assert {"token", "logprob", "p_generate", "p_copy"} <= set(data["steps"][0]["candidates"][0])
    assert {"id", "parent", "step", "token", "score", "status", "internals"} <= set(data["beam"][1])


def test_reset_coverage_zeroes_coverage_at_that_step():
    model = tiny_model(True, True)
    trace = generate(model, "w1 w2 w3 w4", DecodeSettings(strategy="greedy", max_len=5, min_len=5,
                                                           reset_coverage_at=[3]))
    assert trace.steps[2].coverage.sum() > 0.9
    assert trace.steps[3].coverage.sum() == pytest.approx(0.0)
    np.testing.assert_allclose(trace.steps[4].coverage, trace.steps[3].attention, atol=1e-5)


def test_truncation_is_reported():
    model = tiny_model()
    trace = generate(model, " ".join(["w1"] * 100), DecodeSettings(max_len=3))
    assert trace.truncated and len(trace.source_tokens) == model.max_source_len
    assert "truncated" in trace.notices[0]


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07\u200b"])
def test_empty_input_is_a_clear_error(text):
    with pytest.raises(ValueError, match="no tokens"):
        generate(tiny_model(), text)


def test_training_loss_is_finite_when_p_gen_saturates():
    model = tiny_model(pointer=True, coverage=True).train()
    torch.nn.init.constant_(model.p_gen_linear.bias, 80.0)  # p_gen == 1: copy mass is exactly 0
    batch = make_batch(model, [Example(["w1", "zebrafish"], ["zebrafish"]), Example(["w2"], ["w2", "w3"])])
    losses = model(**batch)
    loss = losses["nll"] + losses["coverage"]
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_padded_batch_attention_ignores_padding():
    model = tiny_model(pointer=True)
    batch = make_batch(model, [Example(["w1", "w2", "w3", "w4"], ["w1"]), Example(["w5"], ["w5"])])
    with torch.no_grad():
        state = model.initial_state(batch["src_ext"], batch["src_mask"], batch["n_oov"])
    with torch.no_grad():
        _, _, internals = model.decode_step(state, batch["dec_in"][:, 0])
    attention = internals["attention"]
    assert float(attention[1, 1:].sum()) == 0.0
    torch.testing.assert_close(attention.sum(1), torch.ones(2))


def test_a_checkpoint_carries_its_own_length_penalty(tmp_path):
    """``default_length_penalty`` in a seq2seq checkpoint's config is its default decoding (app, CLI,
    API and evaluations start from it); a value given explicitly still wins; old configs lack it."""
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint, save_checkpoint

    model = tiny_model()
    assert DecodeSettings.for_model(model.features).length_penalty == 0.0
    model.config.default_length_penalty = 2.5
    save_checkpoint(model, tmp_path / "own")
    loaded = load_checkpoint(tmp_path / "own")
    assert DecodeSettings.for_model(loaded.features).length_penalty == 2.5
    assert DecodeSettings.for_model(loaded.features, length_penalty=0.0).length_penalty == 0.0
    text = "w1 w2 w3 w4 w5 w6"
    own = generate(loaded, text, DecodeSettings.for_model(loaded.features))
    plain = generate(loaded, text, DecodeSettings.for_model(loaded.features, length_penalty=0.0))
    assert own.settings["length_penalty"] == 2.5 and plain.settings["length_penalty"] == 0.0
    for name in ("debian-pointer-coverage", "debian-pointer-scst"):
        shipped = load_checkpoint(CHECKPOINT_ROOT / name)
        assert DecodeSettings.for_model(shipped.features).length_penalty == 1.0, name
