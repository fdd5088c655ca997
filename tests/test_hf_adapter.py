"""The transformers adapter on tiny random BART, T5, Marian and GPT-2 models built offline."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from gen_models.decoding import DecodeSettings, generate
from gen_models.models.hf_adapter import load_hf
from tests.hf_tiny import save_tiny

FAMILIES = ["bart", "t5", "marian", "gpt2"]
TEXTS = ["w1 w5 w7 w9 w2", "w30 w3 w3 w12", "w8"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    folder = save_tiny(request.param, tmp_path_factory.mktemp(request.param) / "model", seed=1)
    return load_hf(str(folder))


def new_tokens(generator, ids: torch.Tensor, out: list[int]) -> list[int]:
    """The generated part of one ``generate`` output row, cut after its end token (padding dropped)."""
    new = out[1:] if generator.is_encoder_decoder else out[ids.size(1):]
    if generator.eos_id in new:
        new = new[: new.index(generator.eos_id) + 1]
    return new


def hf_beam(generator, text: str, k: int, max_new: int, **options) -> list[int]:
    """``model.generate`` with canonical beam search settings (and ``options``) on the prompt our
    encoder builds (a chat template's, when the tokenizer has one), new tokens only."""
    ids = generator.encode(text).source_ids[None]  # (1, S)
    options = {"length_penalty": 0.0, "do_sample": False, **options}
    out = generator.model.generate(ids, num_beams=k, max_new_tokens=max_new, early_stopping=True, **options)
    return new_tokens(generator, ids, out[0].tolist())


@pytest.mark.parametrize("k", [1, 2, 4])
def test_beam_search_matches_transformers_generate(tiny, k):
    for text in TEXTS:
        ours = generate(tiny, text, DecodeSettings(beam_size=k, max_len=10)).output_ids()
        assert ours == hf_beam(tiny, text, k, 10), text


def test_outputs_depend_on_the_input(tiny):
    outputs = {tuple(generate(tiny, t, DecodeSettings(beam_size=2, max_len=6)).output_ids()) for t in TEXTS}
    assert len(outputs) > 1


def test_attention_shapes_and_normalisation(tiny):
    trace = generate(tiny, TEXTS[0], DecodeSettings(beam_size=3, max_len=6, min_len=6))
    S = len(trace.source_tokens)
    layers, heads = 2, 2
    for t, step in enumerate(trace.steps):
        assert step.attention.shape == (layers, heads, S)
        prefix = t + 1 if tiny.is_encoder_decoder else t
        assert step.self_attention.shape == (layers, heads, prefix)
        total = step.attention.sum(-1) + (0 if tiny.is_encoder_decoder else step.self_attention.sum(-1))
        np.testing.assert_allclose(total, 1.0, atol=1e-4)
        if tiny.is_encoder_decoder:
            np.testing.assert_allclose(step.self_attention.sum(-1), 1.0, atol=1e-4)
    json.loads(trace.to_json())


def test_forced_prefix_and_tree_work_unchanged(tiny):
    trace = generate(tiny, TEXTS[1], DecodeSettings(beam_size=2, max_len=6))
    again = generate(tiny, TEXTS[1], DecodeSettings(beam_size=2, max_len=6, forced_prefix=trace.output_ids()))
    assert again.output_tokens == trace.output_tokens
    assert any(node.status == "pruned" for node in trace.beam)


def test_refuses_pickles_and_hub_ids_without_opt_in(tmp_path):
    with pytest.raises(ValueError, match="not a local model folder"):
        load_hf("facebook/bart-large-cnn")
    folder = save_tiny("gpt2", tmp_path / "gpt2")
    state = {k: v for k, v in load_hf(str(folder)).model.state_dict().items()}
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="only safetensors"):
        load_hf(str(folder))


def test_cli_traces_a_local_hf_folder(tmp_path, capsys):
    from gen_models.__main__ import main
    from gen_models.trace import GenerationTrace

    folder = save_tiny("bart", tmp_path / "bart")
    main(["trace", "--model", f"hf:{folder}", "--text", "w1 w2 w3", "--beam", "2", "--max-len", "4"])
    trace = GenerationTrace.from_json(capsys.readouterr().out)
    assert trace.model == "hf:bart" and trace.steps[0].attention.shape == (2, 2, 4)


def test_encoder_self_attention_is_the_models_own(tiny):
    trace = generate(tiny, TEXTS[0], DecodeSettings(beam_size=2, max_len=4))
    if not tiny.is_encoder_decoder:
        assert trace.encoder_attention is None  # the prompt's attention is the first row of the attention view
        return
    ids = torch.tensor([tiny.tokenizer(TEXTS[0])["input_ids"]])
    expected = tiny.model.get_encoder()(input_ids=ids, output_attentions=True).attentions
    S = len(trace.source_tokens)
    assert trace.encoder_attention.shape == (2, 2, S, S)
    np.testing.assert_allclose(trace.encoder_attention, torch.cat(expected).detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(trace.encoder_attention.sum(-1), 1.0, atol=1e-5)
    again = type(trace).from_json(trace.to_json())
    np.testing.assert_allclose(again.encoder_attention, trace.encoder_attention, atol=1e-6)


def test_long_inputs_keep_head_averaged_encoder_attention(tmp_path, monkeypatch):
    from gen_models.models import hf_adapter

    generator = load_hf(str(save_tiny("bart", tmp_path / "bart")))
    S = len(generator.tokenizer(TEXTS[0])["input_ids"])
    monkeypatch.setattr(hf_adapter, "MAX_ENCODER_ATTENTION_VALUES", 2 * S * S)
    trace = generate(generator, TEXTS[0], DecodeSettings(beam_size=1, max_len=2))
    assert trace.encoder_attention.shape == (2, 1, S, S)
    assert any("averaged over heads" in n for n in trace.notices)
    monkeypatch.setattr(hf_adapter, "MAX_ENCODER_ATTENTION_VALUES", S)
    trace = generate(generator, TEXTS[0], DecodeSettings(beam_size=1, max_len=2))
    assert trace.encoder_attention is None and any("not recorded" in n for n in trace.notices)


def test_bert_style_encoder_gives_an_attention_only_trace(tmp_path):
    from transformers import AutoModel

    from gen_models.models.hf_adapter import HFEncoder

    folder = save_tiny("bert", tmp_path / "bert")
    encoder = load_hf(str(folder))
    assert isinstance(encoder, HFEncoder) and not encoder.features.generates
    trace = generate(encoder, TEXTS[0], DecodeSettings(beam_size=4, max_len=8))
    assert trace.steps == [] and trace.output_tokens == [] and trace.output_text == ""
    ids = torch.tensor([encoder.tokenizer(TEXTS[0])["input_ids"]])
    reference = AutoModel.from_pretrained(folder, attn_implementation="eager")
    expected = torch.cat(reference(input_ids=ids, output_attentions=True).attentions).detach().numpy()
    np.testing.assert_allclose(trace.encoder_attention, expected, atol=1e-6)
    assert trace.encoder_attention.shape == (2, 2, len(trace.source_tokens), len(trace.source_tokens))
    with pytest.raises(ValueError, match="encoder-only"):
        encoder.step(None, torch.tensor([0]), None)


def test_half_precision_folders_load_in_float32_under_their_checkpoint_name(tmp_path):
    from gen_models.checkpoint import list_checkpoints, load_checkpoint

    folder = save_tiny("marian", tmp_path / "checkpoints" / "tiny-marian")
    model = load_hf(str(folder)).model
    model.half().save_pretrained(folder, safe_serialization=True)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["tiny-marian"]
    loaded = load_checkpoint(folder)
    assert loaded.name == "tiny-marian" and loaded.model.dtype == torch.float32
    assert generate(loaded, TEXTS[0], DecodeSettings(beam_size=2, max_len=4)).steps


def test_decoder_only_llm_families_trace_like_generate(tmp_path):
    """Llama, Qwen2 (grouped-query attention, chat template), Mistral (sliding window), Gemma, Phi-3
    and GPT-NeoX, each built tiny and random: attention (L, H_query, S) summing to 1 with the prefix,
    beam k = 1, 2, 4 ≡ ``generate``, the logit lens's top-1 per layer = the final norm and the output
    layer applied by hand to ``output_hidden_states``, and integrated gradients complete."""
    from gen_models.attribution import attribute
    from gen_models.models.hf_adapter import logit_lens
    from tests.hf_tiny import DECODER_FAMILIES

    for family in DECODER_FAMILIES:
        generator = load_hf(str(save_tiny(family, tmp_path / family, seed=1)))
        config = generator.model.config
        long_text = " ".join(f"w{(3 * i) % 40}" for i in range(9))  # longer than Mistral's window of 6
        trace = generate(generator, long_text, DecodeSettings(beam_size=2, max_len=8, min_len=8))
        S = len(trace.source_tokens)
        for t, step in enumerate(trace.steps):
            assert step.attention.shape == (2, config.num_attention_heads, S), family
            assert step.self_attention.shape == (2, config.num_attention_heads, t), family
            np.testing.assert_allclose(step.attention.sum(-1) + step.self_attention.sum(-1), 1.0, atol=1e-4)
        if family == "mistral":  # the window: the last step sees only its last 6 positions
            assert (trace.steps[-1].attention[..., : S + 7 - 6] == 0).all()
        for k in (1, 2, 4):
            for text in [TEXTS[0], TEXTS[2], long_text]:
                ours = generate(generator, text, DecodeSettings(beam_size=k, max_len=10)).output_ids()
                assert ours == hf_beam(generator, text, k, 10), (family, k, text)
        encoded = generator.encode(TEXTS[0])
        path = generate(generator, TEXTS[0], DecodeSettings(beam_size=1, max_len=4, min_len=4)).output_ids()
        ids = torch.cat([encoded.source_ids, torch.tensor(path[:2])])[None]  # prompt + 2 output tokens
        hidden = generator.model(input_ids=ids, output_hidden_states=True).hidden_states  # L + 1 × (1, T, D)
        base = generator.model.base_model
        norm = getattr(base, "norm", None) or base.final_layer_norm
        by_hand = [int(generator.model.get_output_embeddings()(norm(h[0, -1])).argmax()) for h in hidden[1:-1]]
        by_hand.append(int(generator.model(input_ids=ids).logits[0, -1].argmax()))
        lens = logit_lens(generator, encoded, path, 2)["layers"]
        assert [generator.token_to_id(row["top_tokens"][0]) for row in lens] == by_hand, family
        result = attribute(generator, encoded, path, 1, "ig", n_steps=128)
        assert len(result.attributions) == len(encoded.source_tokens)
        assert abs(result.convergence_delta) < 0.05 * max(1.0, abs(result.value - result.baseline_value)), family


# (our setting, generate's) — each must give generate's output, and change some output
GENERATE_EQUIVALENTS = [
    ({"repetition_penalty": 1.8}, {"repetition_penalty": 1.8}),
    ({"repetition_penalty": 0.6}, {"repetition_penalty": 0.6}),
    ({"encoder_repetition_penalty": 2.5}, {"encoder_repetition_penalty": 2.5}),
    ({"no_repeat_ngram": 2}, {"no_repeat_ngram_size": 2}),
    ({"no_repeat_ngram": 1}, {"no_repeat_ngram_size": 1}),
    ({"length_penalty_form": "hf", "length_penalty": 3.0}, {"length_penalty": 3.0}),
]


@pytest.fixture(scope="module")
def all_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {family: load_hf(str(save_tiny(family, root / family, seed=1))) for family in FAMILIES}


def test_decode_settings_match_generate(all_tiny):
    """Each setting, on BART, T5, Marian and GPT-2, greedy and beam 4: generate's output with the same
    setting; and each setting changes some output (else the comparison would prove nothing)."""
    texts = [TEXTS[0], TEXTS[1], "w3 w3 w3 w5 w3 w3"]
    defaults = {(family, k, text): generate(model, text, DecodeSettings(beam_size=k, max_len=12)).output_ids()
                for family, model in all_tiny.items() for k in (1, 4) for text in texts}
    for ours, theirs in GENERATE_EQUIVALENTS:
        changed = 0
        for (family, k, text), default in defaults.items():
            if k == 1 and "repetition_penalty" in str(ours):
                continue  # generate's greedy applies the penalties to raw logits, its beam search to log-probs
            model = all_tiny[family]
            output = generate(model, text, DecodeSettings(beam_size=k, max_len=12, **ours)).output_ids()
            assert output == hf_beam(model, text, k, 12, **theirs), (ours, family, k, text)
            changed += output != default
        assert changed, f"{ours} changed no output: the comparison proves nothing"


def test_several_returned_sequences_are_generates(tiny):
    for text in TEXTS:
        trace = generate(tiny, text, DecodeSettings(beam_size=4, max_len=10, num_return=3))
        ids = tiny.encode(text).source_ids[None]
        out = tiny.model.generate(ids, num_beams=4, num_return_sequences=3, max_new_tokens=10, early_stopping=True,
                                  length_penalty=0.0, do_sample=False)
        returned = trace.extra["returned"]
        assert [r["token_ids"] for r in returned] == [new_tokens(tiny, ids, row.tolist()) for row in out]
        assert returned[0]["token_ids"] == trace.output_ids()
        assert returned[0]["score"] >= returned[1]["score"] >= returned[2]["score"]
    with pytest.raises(ValueError, match="num_return"):
        DecodeSettings(beam_size=2, num_return=3).validate()


def test_beam_sampling_draws_what_generate_draws(tiny):
    outputs = set()
    for seed in range(4):
        for text in TEXTS[:2]:
            ours = generate(tiny, text, DecodeSettings(strategy="beam_sample", beam_size=3, max_len=8, seed=seed))
            ids = tiny.encode(text).source_ids[None]
            torch.manual_seed(seed)
            theirs = tiny.model.generate(ids, num_beams=3, do_sample=True, top_k=0, max_new_tokens=8,
                                         early_stopping=True, length_penalty=0.0)
            assert ours.output_ids() == new_tokens(tiny, ids, theirs[0].tolist()), (seed, text)
            outputs.add(tuple(ours.output_ids()))
    assert len(outputs) > 2


def test_logit_lens_applies_t5s_rescale_before_the_tied_output_layer(tmp_path):
    from gen_models.models.hf_adapter import logit_lens

    model = load_hf(str(save_tiny("t5", tmp_path / "t5", seed=1)))
    assert model.model.config.tie_word_embeddings
    encoded = model.encode(TEXTS[0])
    path = generate(model, TEXTS[0], DecodeSettings(beam_size=1, max_len=3, min_len=3)).output_ids()
    decoder_ids = torch.tensor([[model.bos_id, path[0]]])
    out = model.model(input_ids=encoded.source_ids[None], decoder_input_ids=decoder_ids, output_hidden_states=True)
    first = out.decoder_hidden_states[1][0, -1]  # (D,) after decoder layer 1
    d = model.model.config.d_model
    by_hand = torch.softmax(model.model.lm_head(model.model.decoder.final_layer_norm(first) * d ** -0.5), -1)
    layer = logit_lens(model, encoded, path, 1)["layers"][0]
    assert layer["chosen_prob"] == pytest.approx(float(by_hand[path[1]]), abs=1e-5)


def group_settings(run: dict, max_new_tokens: int) -> DecodeSettings:
    """Our settings for one golden run's ``generate`` arguments."""
    case = run["generate"]
    return DecodeSettings(beam_size=case["num_beams"], beam_groups=case["num_beam_groups"],
                          diversity_penalty=case["diversity_penalty"], num_return=case["num_return_sequences"],
                          length_penalty_form="hf", length_penalty=case["length_penalty"], max_len=max_new_tokens)


def returned(trace) -> tuple[list[list[int]], list[float]]:
    """The returned sequences (new tokens) of a trace and their final scores, best first."""
    rows = trace.extra.get("returned") or [{"token_ids": trace.output_ids(),
                                            "adjusted_score": trace.node(trace.chosen_path()[-1]).adjusted_score}]
    return [r["token_ids"] for r in rows], [r["adjusted_score"] for r in rows]


def test_diverse_beam_search_is_generates_group_beam_search(tmp_path):
    """Diverse (group) beam search ≡ transformers 4.x's ``generate(num_beam_groups=…,
    diversity_penalty=…)`` on tiny BART, T5, GPT-2 and Llama: the same returned sequences in the same
    order, with the same sequence scores (to 1e-5 relative: our plain beam search's scores differ
    from generate's by as much, float rounding in the two steppers).

    transformers 5 moved group beam search to a Hub repository, so it cannot run offline here: the
    expected outputs are a committed golden, ``tests/golden/group_beam_golden.json``, made by
    ``python -m tests.golden.make_group_beam_golden --tf4 /tmp/tf4`` (its docstring says how to
    install transformers 4.46.3 there). That script built these tiny seeded models under
    transformers 5, saved them, ran ``generate`` (4 or 6 beams in 2 or 3 groups, penalties 0.5 and
    1.0, length penalty 0 and 1, early stopping) on them under 4.46.3 in a subprocess, checked the
    weights it loaded against the saved ones' hash and that plain beam search agrees under both
    versions, and recorded each model's state-dict hash and each prompt's ids. Here the models are
    rebuilt and checked bit-identical to those by that hash. Some diverse output differs from plain
    beam search of as many beams, else the comparison would prove nothing."""
    from tests.golden.make_group_beam_golden import GOLDEN, state_digest

    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    max_new, changed = golden["fixed"]["max_new_tokens"], 0
    for family, spec in golden["models"].items():
        generator = load_hf(str(save_tiny(family, tmp_path / family, seed=spec["seed"])))
        assert state_digest(generator.model) == spec["state_sha256"], f"{family}: not the golden's model"
        for prompt in spec["prompts"]:
            assert generator.encode(prompt["text"]).source_ids.tolist() == prompt["input_ids"], family
            for i, run in enumerate(prompt["runs"]):
                settings = group_settings(run, max_new)
                sequences, scores = returned(generate(generator, prompt["text"], settings))
                assert sequences == run["sequences"], (family, prompt["text"], run["generate"])
                assert scores == pytest.approx(run["scores"], rel=1e-4, abs=1e-5), (family, prompt["text"])  # float32 sums: 1.6e-5 seen on T5
                if i == 0:  # against plain beam search once per prompt (the test's time)
                    plain = replace(settings, beam_groups=1, diversity_penalty=0.0)
                    changed += returned(generate(generator, prompt["text"], plain))[0] != sequences
    assert changed, "no diverse output differs from plain beam search: the comparison proves nothing"
