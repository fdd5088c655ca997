"""The "feed the distribution" intervention (the notes' tempting "better idea": the next input is the
whole output distribution, Σ_w P(w)·E(w), instead of the sampled word's embedding).

The invariant that makes it trustworthy: a one-hot distribution on the chosen token is that token,
so feeding it changes nothing, for every model that reads its previous token as an embedding."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models.checkpoint import load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from gen_models.protocol import StepControls, expected_embedding
from tests.test_app_api import POINTER, SEQ2SEQ, TEXT, client, plain  # noqa: F401 (client: the app's fixture)

REPO = Path(__file__).resolve().parent.parent
TINY_INPUTS = {"tiny-seq2seq": "libjson a json parser", "tiny-pointer-coverage": "libjson a json parser",
               "tiny-mta": "明 月", "tiny-hgfu": "a json parser for python",
               "tiny-seq2bf": "a json parser for python", "tiny-caption": "random scene seed 3"}


def soft_models(checkpoint_root):
    """(name, model, input) of every tiny checkpoint that reads its previous token as an embedding."""
    found = []
    for folder in sorted(p for p in checkpoint_root.iterdir() if (p / "config.json").is_file()):
        model = load_checkpoint(folder)
        if model.features.soft_inputs:
            found.append((folder.name, model, TINY_INPUTS.get(folder.name, "libjson a json parser")))
    return found


def one_hot(ids: torch.Tensor, width: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids, width).float()  # (B, width)


def assert_one_hot_changes_nothing(model, text: str) -> None:
    """Step 1 of two hypotheses (the first step's two best tokens) with and without their one-hot
    distributions as input; each run from a fresh state (a Hugging Face cache grows in place)."""
    def second_step(fed: bool) -> torch.Tensor:
        encoded = model.encode(text)
        first = model.step(encoded.state, torch.tensor([model.bos_id]), StepControls(step=0))
        prev = first.log_probs.topk(2, dim=1).indices[0]  # (2,) two live hypotheses' last tokens
        state = model.reorder(first.state, torch.zeros(2, dtype=torch.long))
        soft = one_hot(prev, first.log_probs.size(1)) if fed else None  # (2, V_ext)
        return model.step(state, prev, StepControls(step=1, input_distribution=soft)).log_probs
    torch.testing.assert_close(second_step(True), second_step(False), atol=1e-5, rtol=1e-5)


def test_a_one_hot_distribution_is_the_token_for_every_soft_input_model(checkpoint_root):
    models = soft_models(checkpoint_root)
    assert set(TINY_INPUTS) <= {n for n, _, _ in models}
    for name, model, text in models:
        assert_one_hot_changes_nothing(model, text)
    assert_one_hot_changes_nothing(load_checkpoint(REPO / "checkpoints" / "vae-plain"), "i like movies")


@pytest.mark.parametrize("family", ["bart", "t5", "gpt2", "llama"])
def test_a_one_hot_distribution_is_the_token_for_hugging_face_models(family, tmp_path):
    from gen_models.models.hf_adapter import load_hf
    from tests.hf_tiny import save_tiny

    assert_one_hot_changes_nothing(load_hf(str(save_tiny(family, tmp_path / family, seed=1))), "w1 w5 w7 w9 w2")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6).filter(lambda p: sum(p) > 1e-3))
def test_the_expected_embedding_is_linear_and_copied_mass_reads_as_unk(weights):
    """Σ_w P(w)·E(w) over 4 vocabulary rows, with 2 extended (copied) ids whose mass goes to <unk>."""
    table = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # (V, E)
    p = torch.tensor(weights)[None] / sum(weights)  # (1, 6)
    unk = 1
    folded = p[0, :4].clone()
    folded[unk] += p[0, 4:].sum()
    torch.testing.assert_close(expected_embedding(p, table, unk)[0], folded @ table)


def test_the_setting_names_the_steps_it_feeds_and_is_recorded(checkpoint_root):
    once = DecodeSettings(feed_distribution_from=2)
    onward = DecodeSettings(feed_distribution_from=2, feed_distribution_steps=0)
    assert [once.feeds_distribution(t) for t in range(5)] == [False, False, True, False, False]
    assert [onward.feeds_distribution(t) for t in range(5)] == [False, False, True, True, True]
    assert not any(DecodeSettings().feeds_distribution(t) for t in range(5))
    with pytest.raises(ValueError, match="feed_distribution_from must be between 1 and 200"):
        DecodeSettings(feed_distribution_from=0).validate()
    model = load_checkpoint(checkpoint_root / "tiny-seq2seq")
    trace = generate(model, TINY_INPUTS["tiny-seq2seq"], DecodeSettings(feed_distribution_from=1, max_len=6))
    assert trace.settings["feed_distribution_from"] == 1 and trace.settings["feed_distribution_steps"] == 1


def test_the_shipped_chat_model_goes_wrong_when_fed_its_distribution():
    """README's example: chat-seq2seq's first distribution is flat (top p < 0.2), so its blend is a
    vector shorter than any word's embedding: the decoder, never trained on such an input, loses
    the reply ('i,,' instead of a sentence)."""
    folder = REPO / "checkpoints" / "chat-seq2seq"
    if not (folder / "config.json").is_file():
        pytest.skip("chat-seq2seq is not shipped here")
    model, text = load_checkpoint(folder), "what should i pack for a picnic"
    plain = generate(model, text, DecodeSettings(strategy="greedy"))
    fed = generate(model, text, DecodeSettings(strategy="greedy", feed_distribution_from=1, feed_distribution_steps=0))
    assert plain.output_text != fed.output_text and len(fed.output_tokens) < len(plain.output_tokens)
    assert math.exp(plain.steps[0].candidates[0].logprob) < 0.2
    with torch.no_grad():
        first = model.step(model.encode(text).state, torch.tensor([model.bos_id]), StepControls(step=0))
        table = model.embedding.weight  # (V, E)
        blend = expected_embedding(first.log_probs.exp(), table, model.unk_id)[0]  # (E,)
        words = table[4:].norm(dim=1)  # every vocabulary word's (not pad, unk, bos, eos)
    assert float(blend.norm()) < 0.5 * float(words.min())


def test_feed_intervention_through_the_api(client):
    diff, _, status = client.predict(SEQ2SEQ, TEXT, step=0, onward=True, max_len=6, api_name="/intervene_feed")
    assert "step 0's distribution fed as the input from step 1 on" in plain(status)
    assert "original" in diff
    status = client.predict(POINTER, TEXT, step=0, onward=False, max_len=6, api_name="/intervene_feed")[2]
    assert "at step 1" in plain(status)
    status = client.predict("tiny-hull", "random 8 seed 1", step=0, onward=False, api_name="/intervene_feed")[2]
    assert "does not read its previous token as an embedding" in plain(status)
