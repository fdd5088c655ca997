"""What sampling did (#29 item 5): each output step keeps the model's top tokens with their
probability after every logits processor, checked here against a hand computation in numpy; the
Sampling rules view draws it; a click on one of its tokens forces that token and decodes the rest."""
from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
import torch

from gen_models.decoding import STAGE_CANDIDATES, DecodeSettings, decoder_context, generate
from gen_models.trace import GenerationTrace
from tests.helpers import tiny_model
from tests.raw_client import call, texts
from visualizers.common import ViewOptions
from visualizers.registry import view_named
from visualizers.sampling import sampling_rules_figure

TEXT = "w1 w2 w3 w4 w5 w1 w2"
APP_TEXT = "libjson: a JSON parser library for C. This package contains the development files."


def model_distributions(model, trace: GenerationTrace) -> list[np.ndarray]:
    """The model's own log-probabilities (V,) at each output step, fed the output before it."""
    encoded = model.encode(TEXT)
    state, prev, rows = encoded.state, torch.tensor([model.bos_id]), []
    settings = DecodeSettings(**trace.settings)
    with torch.no_grad():
        for step, token in enumerate(trace.output_ids()):
            out = model.step(state, prev, settings.controls(step))
            rows.append(out.log_probs[0].double().numpy())
            state, prev = out.state, torch.tensor([token])
    return rows


def renormalised(log_p: np.ndarray) -> np.ndarray:
    """Probabilities from scores where −inf marks a removed token."""
    p = np.exp(log_p - log_p[np.isfinite(log_p)].max())
    return p / p.sum()


def hand_stages(log_p: np.ndarray, history: list[int], settings: DecodeSettings) -> list[tuple[str, np.ndarray]]:
    """(processor name, scores (V,)) after each processor the settings turn on, in decoding's order,
    computed from their definitions (not from gen_models.scoring)."""
    stages, scores = [], log_p.copy()
    if settings.repetition_penalty != 1.0:
        seen = sorted(set(history))
        scores[seen] = np.where(scores[seen] < 0, scores[seen] * settings.repetition_penalty,
                                scores[seen] / settings.repetition_penalty)
        stages.append((f"repetition penalty {settings.repetition_penalty:g}", scores.copy()))
    if settings.no_repeat_ngram:
        n = settings.no_repeat_ngram
        last = tuple(history[len(history) - n + 1:])
        banned = {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == last}
        scores[sorted(banned)] = -np.inf
        stages.append((f"no repeated {n}-gram", scores.copy()))
    if settings.strategy == "sample" and settings.temperature != 1.0:
        with np.errstate(divide="ignore"):  # removed tokens stay −inf
            scores = np.log(renormalised(scores / settings.temperature))
        stages.append((f"temperature {settings.temperature:g}", scores.copy()))
    if settings.strategy == "sample" and settings.top_k:
        kth = np.sort(scores)[::-1][settings.top_k - 1]
        scores = np.where(scores < kth, -np.inf, scores)
        stages.append((f"top-k {settings.top_k}", scores.copy()))
    if settings.strategy == "sample" and settings.top_p < 1.0:
        p = renormalised(scores)
        order = np.argsort(-scores, kind="stable")
        before = np.cumsum(p[order]) - p[order]  # the mass of the tokens ranked above each one
        drop = order[before >= settings.top_p]
        scores[drop] = -np.inf
        stages.append((f"top-p {settings.top_p:g}", scores.copy()))
    return stages


def check_against_hand(model, settings: DecodeSettings) -> tuple[GenerationTrace, set[str]]:
    """Decode and compare every step's recorded stages with :func:`hand_stages`; the names of the
    processors seen removing a recorded token."""
    trace = generate(model, TEXT, settings)
    context = decoder_context(model, model.encode(TEXT))
    removers = set()
    for t, (step, log_p) in enumerate(zip(trace.steps, model_distributions(model, trace))):
        history = context + trace.output_ids()[:t]
        stages = hand_stages(log_p, history, settings)
        recorded = step.processors
        ids = recorded.token_ids
        assert recorded.names == [name for name, _ in stages]
        assert np.allclose(log_p[ids[:STAGE_CANDIDATES]], np.sort(log_p)[::-1][:STAGE_CANDIDATES], atol=1e-6)
        assert np.allclose(recorded.probs[0], np.exp(log_p[ids]), atol=1e-6)
        for r, (name, scores) in enumerate(stages, start=1):
            assert np.allclose(recorded.probs[r], renormalised(scores)[ids], atol=2e-5), (t, name)
        for j, token_id in enumerate(ids):
            first = next((name for name, scores in stages if scores[token_id] == -np.inf), None)
            assert recorded.remover(j) == first, (t, j, token_id)
            removers.add(first)
    return trace, removers - {None}


def test_sampling_stages_match_a_hand_computation_and_name_the_rule_that_removed_each_token():
    settings = DecodeSettings(strategy="sample", seed=3, max_len=8, repetition_penalty=1.6, temperature=0.7,
                              top_k=6, top_p=0.6)
    trace, removers = check_against_hand(tiny_model(pointer=False), settings)
    assert removers == {"top-k 6", "top-p 0.6"}  # the 12 recorded tokens reach past both cut-offs
    step = trace.steps[0].processors
    assert step.names == ["repetition penalty 1.6", "temperature 0.7", "top-k 6", "top-p 0.6"]
    assert step.probs.shape == (5, len(step.token_ids))


def test_n_gram_blocking_and_repetition_penalty_in_greedy_and_beam_search_match_a_hand_computation():
    model = tiny_model(pointer=False, seed=1)
    _, removers = check_against_hand(model, DecodeSettings(strategy="greedy", max_len=10, no_repeat_ngram=1))
    assert removers == {"no repeated 1-gram"}
    trace, _ = check_against_hand(model, DecodeSettings(beam_size=3, max_len=8, repetition_penalty=2.0,
                                                        no_repeat_ngram=2))
    on_path = {node.id for node in trace.path()}
    off_path = [n for n in trace.beam if n.internals is not None and n.id not in on_path]
    assert off_path and all(n.internals.processors is None for n in off_path)  # the chosen output's steps only


def test_without_processors_before_equals_after_and_a_forced_token_outside_the_top_is_appended():
    model = tiny_model(pointer=False)
    plain = generate(model, TEXT, DecodeSettings(strategy="greedy", max_len=4))
    stages = plain.steps[0].processors
    assert stages.names == [] and stages.probs.shape == (1, STAGE_CANDIDATES)
    assert stages.removed_by == [None] * STAGE_CANDIDATES
    assert np.allclose(stages.probs[0, :5], [np.exp(c.logprob) for c in plain.steps[0].candidates], atol=1e-6)
    unlikely = next(i for i in range(model.vocab_size) if i not in stages.token_ids and i != model.eos_id)
    forced = generate(model, TEXT, DecodeSettings(strategy="greedy", max_len=4, forced_prefix=[unlikely]))
    first = forced.steps[0].processors
    assert first.token_ids[-1] == unlikely and len(first.token_ids) == STAGE_CANDIDATES + 1
    assert first.remover(len(first.token_ids) - 1) is None and first.probs[1, -1] == pytest.approx(1.0)
    assert {first.remover(j) for j in range(STAGE_CANDIDATES)} == {"forced prefix"}


def test_processor_stages_survive_the_json_round_trip():
    trace = generate(tiny_model(), TEXT, DecodeSettings(strategy="sample", top_k=3, max_len=5, no_repeat_ngram=2))
    text = trace.to_json()
    again = GenerationTrace.from_json(text)
    assert again.to_json() == text
    for before, after in zip(trace.steps, again.steps):
        a, b = before.processors, after.processors
        assert (a.names, a.token_ids, a.tokens, a.removed_by) == (b.names, b.token_ids, b.tokens, b.removed_by)
        assert isinstance(b.probs, np.ndarray) and np.allclose(a.probs, b.probs, atol=1e-6)
    assert "processors" in json.loads(text)["steps"][0]


def test_the_view_draws_stages_greys_removed_tokens_and_says_when_no_processor_ran():
    model = tiny_model(pointer=False)
    sampled = generate(model, TEXT, DecodeSettings(strategy="sample", top_k=4, temperature=0.5, max_len=5))
    figure = sampling_rules_figure(sampled, ViewOptions(pinned_step=1))
    assert f"{STAGE_CANDIDATES - 4} of {STAGE_CANDIDATES} tokens removed" in figure.layout.title.text
    assert [t.name for t in figure.data[1:]] == ["model", "after temperature 0.5", "after all 2 (after top-k 4)"]
    notes = [a.text for a in figure.layout.annotations]
    assert sum("✖ top-k 4" in n for n in notes) == STAGE_CANDIDATES - 4
    token_ids = sampled.steps[1].processors.token_ids
    assert [list(c) for c in figure.data[-1].customdata] == [[1, i] for i in token_ids]
    assert figure.data[-1].marker.symbol.count("x") == STAGE_CANDIDATES - 4

    greedy = generate(model, TEXT, DecodeSettings(strategy="greedy", max_len=3))
    figure = sampling_rules_figure(greedy, ViewOptions())
    assert "no logits processor active: before = after" in figure.layout.title.text
    assert any("p before = p after" in (a.text or "").replace("<br>", " ") for a in figure.layout.annotations)
    assert [t.name for t in figure.data[1:]] == ["model (= after: nothing ran)"]

    view = view_named("sampling")
    assert view.applies(greedy) and view.click == "token"
    assert not view.applies(generate(model, TEXT, DecodeSettings(max_len=3, record=False)))
    greedy.steps[0].processors.probs = np.zeros((2, 3))
    with pytest.raises(ValueError, match="processor probabilities have shape"):
        sampling_rules_figure(greedy, ViewOptions(pinned_step=0))


def test_a_click_on_a_token_of_the_view_forces_it_and_decodes_the_rest(app_module):
    from gen_models.decoding import SETTING_NAMES

    settings = (None,) * len(SETTING_NAMES)
    live = app_module.handlers.trace("tiny-pointer-coverage", APP_TEXT, *settings, 1, 3, True, "png", "mean", "mean",
                                     "own", "whole tree", False, "", None, None)
    step = live["state"].steps[1].processors
    token = next(i for i in step.token_ids if i != live["state"].steps[1].token_id)
    click = gr.EventData(None, {"view": "sampling", "customdata": [1, token]})
    shown = app_module.handlers.force_click("tiny-pointer-coverage", APP_TEXT, *settings, click)
    assert "re-decoded with" in shown["intervention_status"] and "at step 1" in shown["intervention_status"]
    assert "first difference at step 1" in shown["intervention_diff"] and shown["tabs"]["selected"] == "Interventions"
    other = gr.EventData(None, {"view": "attention", "customdata": 1})
    assert app_module.handlers.force_click("tiny-pointer-coverage", APP_TEXT, *settings, other) == {}
    bad = gr.EventData(None, {"view": "sampling", "customdata": "1 · w3"})
    status = app_module.handlers.force_click("tiny-pointer-coverage", APP_TEXT, *settings, bad)["intervention_status"]
    assert "a token click carries \\[step, token id\\]" in status


def test_the_served_page_forces_a_clicked_token(app_url, app_module):
    from gen_models.decoding import SETTING_NAMES

    inputs = ["tiny-pointer-coverage", APP_TEXT, *(None,) * len(SETTING_NAMES)]
    reply = call(app_url, app_module.demo, "force_click", inputs, event_data={"view": "sampling",
                                                                           "customdata": [0, 5]})
    assert reply["success"] and "re-decoded with" in texts(reply) and "at step 0" in texts(reply)
