"""Long prompts on Hugging Face decoder-only models: compact attention, its views, the prompt limit,
the chunked prefill and the work budget scaled by the model's size (tiny random models, offline)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gen_models import decoding, limits
from gen_models.decoding import DecodeSettings, generate
from gen_models.models import hf_adapter
from gen_models.models.hf_adapter import load_hf
from gen_models.trace import GenerationTrace, TopKAttention
from tests.hf_tiny import save_tiny
from visualizers.attention import attention_heatmap
from visualizers.common import ViewOptions, attention_matrix, source_labels
from visualizers.transformer import head_grid_figure

TEXT = " ".join(f"w{(7 * i) % 40}" for i in range(30))  # 31 tokens with the end token
SETTINGS = DecodeSettings(beam_size=2, max_len=6, min_len=6)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return load_hf(str(save_tiny("llama", tmp_path_factory.mktemp("llama") / "model", seed=1)))


@pytest.fixture()
def compact_and_dense(llama, monkeypatch):
    """The same decode recorded densely and, with the threshold lowered, compactly."""
    dense = generate(llama, TEXT, SETTINGS)
    monkeypatch.setattr(decoding, "COMPACT_ATTENTION_VALUES", 10)
    monkeypatch.setattr(decoding, "ATTENTION_TOP_K", 3)
    return generate(llama, TEXT, SETTINGS), dense


def test_compact_attention_is_the_dense_rows_top_k(compact_and_dense):
    compact, dense = compact_and_dense
    assert compact.output_ids() == dense.output_ids()
    assert not any("kept compactly" in n for n in dense.notices)
    assert any("kept compactly" in n and "3 most attended" in n for n in compact.notices)
    for ours, full in zip(compact.steps, dense.steps):
        attention = ours.attention
        assert isinstance(attention, TopKAttention) and attention.shape == full.attention.shape
        top = torch.topk(torch.from_numpy(full.attention), 3, dim=-1)  # (L, H, 3)
        np.testing.assert_allclose(attention.weights, top.values.numpy(), atol=1e-6)
        np.testing.assert_array_equal(attention.positions, top.indices.numpy())
        np.testing.assert_allclose(attention.rest, full.attention.sum(-1) - top.values.numpy().sum(-1), atol=1e-5)
        np.testing.assert_allclose(attention.average, full.attention.mean((0, 1)), atol=1e-6)
        np.testing.assert_allclose(attention.weights.sum(-1) + attention.rest + ours.self_attention.sum(-1), 1.0,
                                   atol=1e-4)
        np.testing.assert_array_equal(ours.self_attention, full.self_attention)  # bounded by max_len: kept dense
    assert compact.heads == dense.heads


def test_compact_attention_survives_the_json_round_trip(compact_and_dense):
    compact, _ = compact_and_dense
    text = compact.to_json()
    again = GenerationTrace.from_json(text)
    restored, original = again.steps[0].attention, compact.steps[0].attention
    assert isinstance(restored, TopKAttention) and restored.positions.dtype.kind == "i"
    np.testing.assert_array_equal(restored.positions, original.positions)
    np.testing.assert_allclose(restored.weights, original.weights, atol=1e-6)
    np.testing.assert_allclose(restored.dense(), original.dense(), atol=1e-6)
    assert again.to_dict()["steps"] == json.loads(text)["steps"]  # read back, the steps serialise as they were
    assert isinstance(again.beam[again.chosen_path()[1]].internals.attention, TopKAttention)


def test_the_attention_views_draw_compact_attention_zoomed_with_the_sink_hidden(compact_and_dense):
    compact, dense = compact_and_dense
    S = len(compact.source_tokens)
    zoomed = ViewOptions(hide_sink=True, source_range=(0, 12))  # the sink hidden: positions 1–11
    figure = attention_heatmap(compact, zoomed)
    z = np.asarray(figure.data[0].z)
    labels = source_labels(compact.source_tokens)
    assert list(figure.data[0].x) == labels[1:12]
    np.testing.assert_allclose(z, attention_matrix(dense.steps, S, span=(1, 12)), atol=1e-6)  # the exact mean
    title = figure.layout.title.text.replace("<br>", " ")
    assert "sink (position 0) hidden, the rest not renormalised" in title and "source positions 1–11" in title
    assert "exact mean over layers and heads" in title
    one_head = attention_heatmap(compact, ViewOptions(layer=1, head=0, source_range=(4, 20)))
    rows = np.stack([step.attention.dense(4, 20)[1, 0] for step in compact.steps])
    np.testing.assert_allclose(np.asarray(one_head.data[0].z), rows, atol=1e-9)
    kept = (np.asarray(one_head.data[0].z) > 0).sum(1)
    assert (kept <= 3).all() and "3 most attended" in one_head.layout.title.text.replace("<br>", " ")
    grid = head_grid_figure(compact, ViewOptions(pinned_step=2, hide_sink=True))
    positions = compact.steps[2].attention.positions
    expected = sorted({int(p) for p in positions.ravel() if p != 0})
    assert list(grid.data[0].x) == [labels[p] for p in expected]
    assert np.asarray(grid.data[0].z).shape == (positions.shape[0] * positions.shape[1], len(expected))
    dense_grid = head_grid_figure(dense, ViewOptions(pinned_step=2, source_range=(3, 6)))
    np.testing.assert_allclose(np.asarray(dense_grid.data[0].z), dense.steps[2].attention[..., 3:6].reshape(-1, 3))
    beyond = attention_heatmap(dense, ViewOptions(source_range=(S + 5, S + 9)))
    assert "no source position" in beyond.layout.annotations[0].text


def test_a_chunked_prefill_gives_the_same_trace(llama, monkeypatch):
    whole = generate(llama, TEXT, SETTINGS)
    monkeypatch.setattr(hf_adapter, "PREFILL_CHUNK", 4)  # 30 prompt tokens before the last: 8 chunks
    chunked = generate(llama, TEXT, SETTINGS)
    assert chunked.output_ids() == whole.output_ids()
    for a, b in zip(chunked.steps, whole.steps):
        np.testing.assert_allclose(a.attention, b.attention, atol=1e-5)
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_a_decoder_only_prompt_over_the_limit_is_refused_by_name(llama, tmp_path):
    assert llama.max_source_len == 128  # the tiny config's positions, under GenScope's 4,096
    with pytest.raises(ValueError, match=r"the prompt is 200 tokens, over the limit of 128 tokens .*MAX_SOURCE_TOKENS "
                                         r"= 4,096 and the model's 128 positions\): shorten it"):
        llama.encode(" ".join(["w1"] * 199))
    assert len(llama.encode(" ".join(["w1"] * 127)).source_tokens) == 128
    bart = load_hf(str(save_tiny("bart", tmp_path / "bart")))  # an encoder-decoder's source is cut instead
    trace = generate(bart, " ".join(["w1"] * 99), DecodeSettings(beam_size=1, max_len=2))
    assert trace.truncated and len(trace.source_tokens) == 64 and "truncated to 64 tokens" in trace.notices[0]


def test_the_budget_scales_with_the_model_and_names_its_variables(llama, monkeypatch):
    from dataclasses import replace

    from ui import budget

    features = llama.features
    assert features.parameters == sum(p.numel() for p in llama.model.parameters())
    assert features.cache_bytes_per_token == 2 * 2 * 2 * 8 * 4  # layers × (k, v) × kv heads × head width × fp32
    S = len(llama.encode(TEXT).source_tokens)
    cost = features.parameters * (S + 2 * 6)
    with limits.applied(limits.Limits(model_work=cost - 1)):
        with pytest.raises(ValueError, match=rf"parameters × \({S} source tokens \+ 2 beams × 6 steps\).*"
                                             r"GENSCOPE_MODEL_WORK"):
            generate(llama, TEXT, SETTINGS)
    with limits.applied(limits.Limits(model_work=cost)):
        assert generate(llama, TEXT, SETTINGS).steps
    monkeypatch.setattr(llama, "features", replace(features, cache_bytes_per_token=2**20))  # 1 MB a token: 2 × 37 MB
    with limits.applied(limits.Limits(cache_mb=73)):
        with pytest.raises(ValueError, match=r"= 74, over the limit of 73: .*GENSCOPE_CACHE_MB"):
            generate(llama, TEXT, SETTINGS)
    server = budget.from_environment({"GENSCOPE_MODEL_WORK": "1000", "GENSCOPE_CACHE_MB": "5"})
    request_limits, _, _ = server.limits_for("work")
    assert (request_limits.model_work, request_limits.cache_mb) == (1000, 5)


def test_a_large_model_is_refused_by_the_default_budget_before_it_runs(monkeypatch, llama):
    """What the default budget says to a 7B-parameter model asked for beam 4 × 200 steps."""
    from dataclasses import replace

    monkeypatch.setattr(llama, "features", replace(llama.features, parameters=7_000_000_000, decoder_positions=0))
    text = " ".join(["w1"] * 120)
    with pytest.raises(ValueError, match=r"7,000,000,000 parameters × \(121 source tokens \+ 4 beams × 200 steps\) "
                                         r"= 6,447,000,000,000, over the limit of 2,500,000,000,000"):
        generate(llama, text, DecodeSettings(beam_size=4, max_len=200, min_len=200))


def test_source_range_is_parsed_and_checked():
    from ui.handlers import source_range

    assert source_range("") is None and source_range(None) is None
    assert source_range("100-400") == (100, 401) and source_range(" 3 – 3 ") == (3, 4)
    assert source_range("2:9") == (2, 10)
    for bad in ("400-100", "a-b", "5", [1, 2], "1-2-3"):
        with pytest.raises(ValueError, match="source range must be FIRST-LAST"):
            source_range(bad)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return load_hf(str(save_tiny("gpt2", tmp_path_factory.mktemp("gpt2") / "model", seed=1)))  # 64 positions


def test_a_decode_past_gpt2s_learned_positions_is_refused_up_front_naming_the_limit(gpt2):
    prompt = " ".join(f"w{i % 40}" for i in range(50))
    source = len(gpt2.encode(prompt).source_tokens)
    with pytest.raises(ValueError, match=f"64 positions and this decode would need {source + 20}") as refused:
        generate(gpt2, prompt, DecodeSettings(max_len=20))
    assert f"lower the max length to {64 - source}" in str(refused.value)
    fits = generate(gpt2, prompt, DecodeSettings(max_len=64 - source, min_len=64 - source))
    assert len(fits.output_tokens) == 64 - source  # the last position is used, none past it
