"""Input attribution (Captum) and the logit lens on every model type: completeness, faithfulness,
contrast, the CLI and the app's on-demand endpoints."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import torch

from gen_models.attribution import attribute, explain
from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate

INPUTS = {
    "tiny-pointer-coverage": "libjson: a JSON parser library for C. This package contains the development files.",
    "tiny-seq2seq": "a game server and client written in python",
    "tiny-mta": "春风 明月 故乡",
    "tiny-hull": "random 9 seed 3",
    "tiny-hgfu": "a json parser for python",
    "tiny-seq2bf": "a json parser for python",
}


@pytest.fixture(scope="module")
def models(checkpoint_root):
    return {name: load_checkpoint(checkpoint_root / name) for name in INPUTS}


def first_trace(model, text):
    settings = DecodeSettings(strategy="greedy", max_len=6, min_len=3)
    return generate(model, text, settings), model.encode(text), settings


@pytest.mark.parametrize("name", list(INPUTS))
def test_integrated_gradients_are_complete_on_every_model_type(models, name):
    """Σ attributions = F(source) − F(zero embeddings) up to Captum's convergence delta, for every type."""
    model = models[name]
    trace, encoded, settings = first_trace(model, INPUTS[name])
    result = attribute(model, encoded, trace.output_ids(), 1, "ig", n_steps=64, settings=settings)
    assert len(result.attributions) == len(encoded.source_tokens)
    assert sum(result.attributions) == pytest.approx(result.value - result.baseline_value, abs=0.05)
    assert abs(result.convergence_delta) < 0.05
    assert result.value == pytest.approx(trace.steps[1].logprob, abs=1e-4)  # F is the traced log-probability


def test_gradient_times_input_is_the_first_order_term(models):
    """Gradient × input equals the embedding gradient · embedding summed over dimensions (checked by hand)."""
    model = models["tiny-seq2seq"]
    trace, encoded, settings = first_trace(model, INPUTS["tiny-seq2seq"])
    result = attribute(model, encoded, trace.output_ids(), 0, "grad_x_input", settings=settings)
    scale = torch.ones(1, len(encoded.source_tokens), requires_grad=True)
    with torch.enable_grad():
        out = model.step(model.encode_scaled(encoded, scale), torch.tensor([model.bos_id]), settings.controls(0))
        out.log_probs[0, trace.output_ids()[0]].backward()
    assert result.attributions == pytest.approx(scale.grad[0].tolist(), abs=1e-5)


def test_contrast_attributes_the_difference_of_log_probabilities(models):
    model = models["tiny-pointer-coverage"]
    trace, encoded, settings = first_trace(model, INPUTS["tiny-pointer-coverage"])
    other = trace.steps[2].candidates[1].token_id
    result = attribute(model, encoded, trace.output_ids(), 2, contrast=other, settings=settings)
    assert result.value == pytest.approx(trace.steps[2].logprob - trace.steps[2].candidates[1].logprob, abs=1e-4)
    assert sum(result.attributions) == pytest.approx(result.value - result.baseline_value, abs=0.05)
    with pytest.raises(ValueError, match="must differ"):
        attribute(model, encoded, trace.output_ids(), 2, contrast=trace.output_ids()[2])


def test_deleting_the_top_attributed_tokens_hurts_more_than_deleting_random_ones():
    """Faithfulness on a trained model: zeroing the 3 tokens IG ranks highest lowers log P(chosen) more
    than zeroing 3 random tokens, on average over the shipped examples."""
    model = load_checkpoint(CHECKPOINT_ROOT / "debian-pointer")
    from gen_models.checkpoint import read_config

    rng, top_drops, random_drops = random.Random(0), [], []
    for text in read_config(CHECKPOINT_ROOT / "debian-pointer")["examples"][:4]:
        trace, encoded, settings = first_trace(model, text)
        ids = trace.output_ids()
        for step in (0, 1):
            result = attribute(model, encoded, ids, step, settings=settings)
            n = len(result.attributions)
            ranked = sorted(range(n), key=lambda i: -result.attributions[i])

            def drop(removed):
                scale = torch.ones(1, n)
                scale[0, removed] = 0.0
                state, prev = model.encode_scaled(encoded, scale), torch.tensor([model.bos_id])
                for t in range(step + 1):
                    out = model.step(state, prev, settings.controls(t))
                    state, prev = out.state, torch.tensor([ids[t]])
                return result.value - float(out.log_probs[0, ids[step]])
            with torch.no_grad():
                top_drops.append(drop(ranked[:3]))
                random_drops.append(sum(drop(rng.sample(range(n), 3)) for _ in range(5)) / 5)
    assert sum(top_drops) / len(top_drops) > 2 * sum(random_drops) / len(random_drops)


def test_bad_requests_name_the_limit(models):
    model = models["tiny-seq2seq"]
    trace, encoded, _ = first_trace(model, INPUTS["tiny-seq2seq"])
    with pytest.raises(ValueError, match="step must be between 0 and"):
        attribute(model, encoded, trace.output_ids(), 99)
    with pytest.raises(ValueError, match="method must be one of"):
        attribute(model, encoded, trace.output_ids(), 0, "lime")
    with pytest.raises(ValueError, match="not in tiny-seq2seq's vocabulary"):
        explain(model, INPUTS["tiny-seq2seq"], 0, contrast="zzzunknownzzz")


def test_hugging_face_models_attribute_and_the_logit_lens_ends_at_the_model(tmp_path):
    from gen_models.models.hf_adapter import load_hf, logit_lens
    from tests.hf_tiny import save_tiny

    for family in ("bart", "gpt2"):
        model = load_hf(str(save_tiny(family, tmp_path / family)))
        text = "the cat sat on the mat"
        trace, encoded, settings = first_trace(model, text)
        result = attribute(model, encoded, trace.output_ids(), 1, "ig", n_steps=64, settings=settings)
        assert sum(result.attributions) == pytest.approx(result.value - result.baseline_value, abs=0.05)
        lens = logit_lens(model, encoded, trace.output_ids(), 1)
        assert lens["layers"][-1]["chosen_rank"] == 1  # greedy chose the last layer's argmax
        assert lens["layers"][-1]["chosen_prob"] == pytest.approx(float(torch.tensor(trace.steps[1].logprob).exp()),
                                                                  abs=1e-4)


def test_cli_explain_prints_attributions_and_delta(checkpoint_root):
    out = subprocess.run([sys.executable, "-m", "gen_models", "--root", str(checkpoint_root), "explain",
                          "--model", "tiny-seq2seq", "--text", INPUTS["tiny-seq2seq"], "--step", "0",
                          "--beam", "1"], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert len(result["attributions"]) == len(result["source_tokens"]) and "convergence_delta" in result
