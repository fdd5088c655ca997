"""The sentence VAE: reparameterisation, the KL term against torch.distributions, the annealing
schedule and word dropout, the latent signals of the trace, and the homotopy's endpoints."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from gen_models.decoding import DecodeSettings, decode_companion, generate
from gen_models.models.sentence_vae import (
    HOMOTOPY_POINTS,
    PRIOR_SAMPLES,
    SentenceVAE,
    VAEConfig,
    gaussian_kl,
    reparameterise,
    word_dropout,
)
from gen_models.trace import GenerationTrace
from gen_models.vocab import Vocab
from training.train_vae import kl_weight, sentence_batch

WORDS = "i like the beach a lot do you have any pets at home what music".split()


def tiny_vae(map_sentences=()) -> SentenceVAE:
    torch.manual_seed(0)
    vocab = Vocab(WORDS)
    return SentenceVAE(VAEConfig(len(vocab), 8, 16, 4, map_sentences=list(map_sentences)), vocab).eval()


def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(6, 4), torch.randn(6, 4)
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mean, logvar), expected, atol=1e-5)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))


def test_reparameterised_samples_have_the_posterior_moments_and_gradients():
    torch.manual_seed(1)
    mean = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_()
    logvar = torch.tensor([[0.0, math.log(0.25)]]).repeat(20000, 1).requires_grad_()
    z = reparameterise(mean, logvar)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 0.5]), atol=0.03)
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0


def test_logistic_annealing_schedule():
    k, x0 = 0.0025, 2500
    assert kl_weight(0, "none", k, x0) == 1.0
    assert kl_weight(x0, "logistic", k, x0) == pytest.approx(0.5)
    assert kl_weight(0, "logistic", k, x0) == pytest.approx(1 / (1 + math.exp(k * x0)))
    weights = [kl_weight(t, "logistic", k, x0) for t in range(0, 10000, 500)]
    assert weights == sorted(weights) and weights[-1] > 0.999


def test_word_dropout_rate_and_start_token_kept():
    ids = torch.full((200, 50), 7)
    ids[:, 0] = 2  # <s>
    torch.manual_seed(0)
    dropped = word_dropout(ids, 0.25, unk_id=1, keep=ids == 2)
    assert (dropped[:, 0] == 2).all()
    assert (dropped[:, 1:] == 1).float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(word_dropout(ids, 0.0, 1, ids == 2), ids)


def test_training_loss_is_reconstruction_plus_weighted_kl():
    model = tiny_vae().train()
    batch = sentence_batch(model, [["i", "like", "the", "beach"], ["do", "you", "have", "any", "pets"]])
    torch.manual_seed(3)
    out = model(**batch, kl_weight=0.3)
    assert out["loss"].item() == pytest.approx(out["nll"].item() + 0.3 * out["kl"].item(), rel=1e-5)


def test_trace_carries_the_posterior_map_homotopy_and_prior_samples():
    model = tiny_vae(["i like the beach", "do you have any pets", "what music"])
    trace = generate(model, "i like the beach\ndo you have any pets\nseed 5", DecodeSettings(max_len=6))
    extra = GenerationTrace.from_json(trace.to_json()).extra
    assert extra["latent_mean"].shape == extra["latent_logvar"].shape == extra["kl_per_dim"].shape == (4,)
    assert extra["map_xy"].shape == (3, 2) and extra["map_text"][2] == "what music"
    assert len(extra["homotopy"]) == HOMOTOPY_POINTS and extra["homotopy_xy"].shape == (HOMOTOPY_POINTS, 2)
    assert len(extra["prior_samples"]) == PRIOR_SAMPLES
    assert trace.source_tokens == ["i", "like", "the", "beach"]  # the first line is the traced sentence
    other_seed = generate(model, "i like the beach\nseed 6", DecodeSettings(max_len=6)).extra["prior_samples"]
    assert generate(model, "i like the beach\nseed 5", DecodeSettings(max_len=6)).extra["prior_samples"] == \
        extra["prior_samples"] and "homotopy" not in generate(model, "i like the beach").extra
    assert isinstance(other_seed, list)


def test_homotopy_endpoints_decode_like_each_sentences_mean():
    model = tiny_vae()
    settings = DecodeSettings(max_len=8)
    trace = generate(model, "i like the beach\nwhat music do you like", settings)
    first = decode_companion(model, model.encode("i like the beach"), settings)
    last = decode_companion(model, model.encode("what music do you like"), settings)
    assert trace.extra["homotopy"][0] == first and trace.extra["homotopy"][-1] == last


@pytest.mark.parametrize("settings", [DecodeSettings(max_len=8), DecodeSettings(strategy="greedy", max_len=8),
                                      DecodeSettings(strategy="sample", seed=3, max_len=8)])
def test_the_homotopy_starts_at_the_output_whatever_the_search(settings):
    """t = 0 is where the output starts, decoded by the same search: the same sentence, and the
    view says which search it was."""
    from visualizers.latent import homotopy_figure, search_name

    model = tiny_vae()
    trace = generate(model, "i like the beach\nwhat music do you like", settings)
    assert trace.extra["homotopy"][0] == trace.output_text
    title = homotopy_figure(trace).layout.title.text.replace("<br>", " ")
    assert f"each decoded by the output's {search_name(trace.settings)}, so t = 0 is the output" in title
    assert search_name(trace.settings).startswith({"beam": "beam search (4", "greedy": "greedy",
                                                   "sample": "sampling (seed 3"}[settings.strategy])


def test_a_latent_of_the_wrong_size_is_named():
    with pytest.raises(ValueError, match="a latent needs 4 values, got 3"):
        tiny_vae().encode_latent(torch.zeros(3))


def test_latent_views_show_collapse_and_carry_map_sentences_for_clicks():
    from visualizers.common import ViewOptions
    from visualizers.registry import render_views

    model = tiny_vae(["i like the beach", "do you have any pets", "what music"])
    trace = generate(model, "i like the beach\ndo you have any pets", DecodeSettings(max_len=6))
    views = render_views(trace, ViewOptions(pinned_step=0), tab="Latent space")
    assert set(views) == {"latent_map", "homotopy", "kl_dims", "prior_samples"} and all(views.values())
    assert list(views["latent_map"].data[0].customdata) == ["i like the beach", "do you have any pets", "what music"]
    trace.extra["homotopy"] = ["same"] * HOMOTOPY_POINTS
    collapsed = render_views(trace, ViewOptions(), tab="Latent space")["homotopy"]
    assert "posterior collapse" in collapsed.layout.title.text.replace("<br>", " ")
    assert render_views(generate(tiny_vae(), "i like"), ViewOptions(), tab="Latent space")["latent_map"] is None


@pytest.mark.parametrize("name", ["vae-plain", "vae-annealed"])
def test_shipped_vaes_show_collapse_or_its_absence(name):
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint

    model = load_checkpoint(CHECKPOINT_ROOT / name)
    first, second = "i love going to the beach in the summer", "what kind of music do you like?"
    settings = DecodeSettings(max_len=30)
    trace = generate(model, f"{first}\n{second}", settings)
    ends = [decode_companion(model, model.encode(s), settings) for s in (first, second)]
    assert [trace.extra["homotopy"][0], trace.extra["homotopy"][-1]] == ends
    distinct_path, distinct_prior = len(set(trace.extra["homotopy"])), len(set(trace.extra["prior_samples"]))
    if name == "vae-plain":  # posterior collapse: the decoder ignores z (beam search tells a far prior draw apart)
        assert distinct_path == 1 and distinct_prior <= 2 and trace.extra["kl_per_dim"].sum() < 0.5
    else:
        assert distinct_path >= 3 and distinct_prior == PRIOR_SAMPLES and trace.extra["kl_per_dim"].sum() > 2
    assert trace.extra["map_xy"].shape == (1000, 2) and len(trace.extra["map_text"]) == 1000


def test_the_vaes_decode_without_unk_by_default():
    from gen_models.decoding import DecodeSettings as Settings

    model = tiny_vae()
    assert Settings.for_model(model.features).ban_unk
    trace = generate(model, "i like the beach", Settings.for_model(model.features, max_len=6))
    assert "<unk>" not in trace.output_tokens and all("<unk>" not in s for s in trace.extra["prior_samples"])
