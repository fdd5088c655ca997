"""Exhibit 9: the bAbI-style stories against an independent reading of their text, the memory
network (position encoding, hops, knock-out, the generic decoder), the copy task's symbols, the
NTM's addressing, the views, the CLI and the app's API."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models.babi import DROPS, GRABS, MOVES, PEOPLE, TASKS, make_story, vocabulary
from gen_models.copy_task import EOS_ID, FIRST_PATTERN, bits_text, copy_batch, parse_bits, pattern_log_probs
from gen_models.decoding import DecodeSettings, generate
from gen_models.models.copy_lstm import CopyLSTM, CopyLSTMConfig
from gen_models.models.memory_network import MemoryConfig, MemoryNetwork, position_encoding
from gen_models.models.ntm import NTM, NTMConfig, address
from gen_models.trace import GenerationTrace
from gen_models.vocab import Vocab
from training.evaluate_memory import greedy_answers, score_task
from training.train_memory import story_batch
from visualizers.common import ViewOptions
from visualizers.memory import hop_figure
from visualizers.ntm import bits_figure, memory_figure, weightings_figure


def read_story(sentences: list[list[str]]) -> tuple[dict, dict, dict]:
    """Where each person is, who holds each object, where each dropped object lies — read from the
    words alone (independently of the generator's bookkeeping)."""
    place, holder, lying = {}, {}, {}
    for words in sentences:
        person, rest = words[0], " ".join(words[1:])
        if any(rest.startswith(m) for m in MOVES):
            place[person] = words[-1]
        elif any(rest.startswith(g) for g in GRABS):
            obj = words[-1] if words[-1] != "there" else words[-2]
            holder[obj] = person
            lying.pop(obj, None)
        elif any(rest.startswith(d) for d in DROPS):
            holder.pop(words[-1])
            lying[words[-1]] = place[person]
    return place, holder, lying


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TASKS), st.integers(0, 10**6))
def test_every_answer_follows_from_the_story_and_its_supporting_sentences(task, seed):
    story = make_story(task, seed)
    place, holder, lying = read_story(story.sentences)
    assert story.supporting and all(0 <= i < len(story.sentences) for i in story.supporting)
    assert set(w for s in [*story.sentences, story.question, story.answer] for w in s) <= set(vocabulary())
    if task == 1:
        assert story.answer == [place[story.question[-1]]]
        assert story.sentences[story.supporting[0]][0] == story.question[-1]
    elif task == 2:
        obj = story.question[-1]
        assert story.answer == [place[holder[obj]] if obj in holder else lying[obj]]
        assert len(story.supporting) == 2 and any(obj in story.sentences[i] for i in story.supporting)
    else:
        person = story.question[2]
        assert story.answer == (sorted(o for o, p in holder.items() if p == person) or ["nothing"])
    place_before, *_ = read_story(story.sentences[: max(story.supporting) + 1])  # nothing after matters for 1
    if task == 1:
        assert place_before[story.question[-1]] == story.answer[0]


def test_stories_are_reproducible_and_read_back_from_their_text():
    model = tiny_memory()
    story = make_story(2, 77)
    assert make_story(2, 77) == story
    typed = model.encode(story.text())
    drawn = model.encode("random story task 2 seed 77")
    assert typed.source_tokens == drawn.source_tokens == [" ".join(s) for s in story.sentences]
    assert drawn.extra["answer"] == " ".join(story.answer) and drawn.extra["supporting"].tolist() == story.supporting


@pytest.mark.parametrize("text, message", [
    ("", "no story"), ("Mary moved to the garden.", "must be a question"), ("Where is Mary?", "at least one sentence"),
    ("Mary flew to Paris. Where is Mary?", "unknown words: flew, paris"),
    ("random story task 5", "T in 1, 2, 8, got 5"), ("random story task 1 seed 99999999999", "seed must be at most"),
])
def test_malformed_stories_get_a_message_naming_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        tiny_memory().encode(text)


def tiny_memory() -> MemoryNetwork:
    torch.manual_seed(0)
    vocab = Vocab(vocabulary())
    return MemoryNetwork(MemoryConfig(len(vocab), emb_dim=12, hops=3), vocab, name="tiny").eval()


def test_position_encoding_is_the_papers_formula():
    J, d = 6, 10
    l = position_encoding(J, d)
    for j in (1, 4, 6):
        for k in (1, 7, 10):
            assert l[j - 1, k - 1].item() == pytest.approx((1 - j / J) - (k / d) * (1 - 2 * j / J))


def test_hops_attend_over_sentences_and_a_knocked_out_sentence_gets_none():
    model = tiny_memory()
    trace = generate(model, "random story task 1 seed 4", DecodeSettings.for_model(model.features))
    n = len(trace.source_tokens)
    for step in trace.steps:
        hops = step.extra["hop_attention"]
        assert hops.shape == (3, n) and np.allclose(hops.sum(1), 1, atol=1e-5)
        assert np.allclose(step.attention, hops[-1])
    gone = DecodeSettings.for_model(model.features, knock_out=[1])
    knocked = generate(model, "random story task 1 seed 4", gone)
    assert all(np.allclose(s.extra["hop_attention"][:, 1], 0) for s in knocked.steps)
    assert trace.extra["memory_size"] == n and knocked.settings["knock_out"] == [1]


def test_generic_greedy_decoding_writes_the_batched_greedy_answers():
    model = tiny_memory()
    stories = [make_story(task, seed) for task in TASKS for seed in (3, 9)]
    answers, _ = greedy_answers(model, story_batch(model, stories))
    for story, answer in zip(stories, answers):
        trace = generate(model, story.text(), DecodeSettings.for_model(model.features))
        assert trace.output_text == " ".join(model.vocab.itos[i] for i in answer)
    scores = score_task(model, stories)
    assert 0 <= scores["peak_on_support_hop1"] <= scores["peak_on_support_any_hop"] <= 100


def test_memory_network_has_tied_spaces_and_its_trace_survives_json():
    model = tiny_memory()
    assert tuple(model.spaces.shape) == (4, len(model.vocab), 12)  # K + 1 = 4 tied embedding spaces
    trace = generate(model, "random story task 8 seed 5", DecodeSettings.for_model(model.features, strategy="beam"))
    again = GenerationTrace.from_json(trace.to_json())
    assert again.steps[0].extra["hop_attention"].shape == (3, len(trace.source_tokens))
    figure = hop_figure(again, ViewOptions(pinned_step=0))
    rows = list(figure.data[0].y)
    assert [rows[i].startswith("★") for i in range(len(rows))] == [
        i in again.extra["supporting"].tolist() for i in range(len(rows))]
    assert len(figure.layout.shapes) == len(again.extra["supporting"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-8, 8), min_size=8, max_size=8))
def test_pattern_log_probs_are_a_distribution_of_independent_bits(logits):
    logits = torch.tensor([logits])
    log_probs = pattern_log_probs(logits)  # (1, 256)
    assert torch.logsumexp(log_probs, -1).item() == pytest.approx(0.0, abs=1e-4)
    best = format(int(log_probs.argmax()), "08b")
    assert best == "".join("1" if x > 0 else "0" for x in logits[0].tolist()) or min(abs(logits[0])) < 1e-6


@pytest.mark.parametrize("text, message", [
    ("", "no input"), ("1011001", "vector 1 \\('1011001'\\) is not 8 bits"), ("10110010 2222222x", "vector 2"),
    ("random copy 0", "1 <= N <= 120"), (" ".join(["00000000"] * 121), "too many vectors: 121"),
])
def test_malformed_bit_strings_get_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_bits(text)


def tiny_ntm() -> NTM:
    torch.manual_seed(0)
    return NTM(NTMConfig(controller_dim=16, memory_size=24, memory_width=6, max_len=40), name="tiny-ntm").eval()


@pytest.mark.parametrize("make", [tiny_ntm, lambda: CopyLSTM(CopyLSTMConfig(16, 2, 40), name="tiny-lstm").eval()])
def test_copy_models_write_exactly_as_many_vectors_as_they_read(make):
    model = make()
    trace = generate(model, "random copy 7 seed 2", DecodeSettings.for_model(model.features, strategy="beam"))
    assert len(trace.output_text.split()) == 7 and trace.output_tokens[-1] == "</s>"
    assert trace.extra["target"] == bits_text(parse_bits("random copy 7 seed 2"))
    assert all(len(t) == 8 and set(t) <= {"0", "1"} for t in trace.output_text.split())
    bits = torch.tensor(parse_bits("random copy 7 seed 2"))[None]
    free_running = "".join("1" if x > 0 else "0" for x in model.copy_logits(bits)[0].flatten().tolist())
    greedy = generate(model, "random copy 7 seed 2", DecodeSettings.for_model(model.features))
    assert greedy.output_text.replace(" ", "") == free_running
    assert model.reference_ids(trace.extra["target"], [])[0] == FIRST_PATTERN + int(trace.extra["target"][:8], 2)
    assert EOS_ID not in model.reference_ids(trace.extra["target"], [])


def test_ntm_addressing_shifts_a_focused_weighting_and_normalises():
    memory = torch.randn(1, 5, 3)
    w_prev = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]])
    params = torch.zeros(1, 3 + 6)
    params[0, 4] = -30.0  # gate g ≈ 0: ignore content, keep the previous weighting
    params[0, 5:8] = torch.tensor([-30.0, -30.0, 30.0])  # shift +1
    params[0, 8] = 10.0  # sharpen
    w = address(memory, w_prev, params)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-5) and int(w.argmax()) == 2 and w[0, 2] > 0.99


def test_ntm_records_weightings_and_a_knocked_out_location_reads_as_zeros():
    model = tiny_ntm()
    trace = generate(model, "random copy 5 seed 1", DecodeSettings.for_model(model.features))
    assert trace.extra["input_write_weighting"].shape == (6, 24) and trace.extra["memory_size"] == 24
    for step in trace.steps:
        assert step.extra["read_weighting"].shape == (24,) and step.extra["memory"].shape == (24, 6)
        assert step.extra["erase"].shape == (6,) and step.extra["bit_probs"].shape == (8,)
    knocked = generate(model, "random copy 5 seed 1", DecodeSettings.for_model(model.features, knock_out=[3]))
    assert all(np.allclose(s.extra["memory"][3], s.extra["write_weighting"][3] * s.extra["add"], atol=1e-5)
               for s in knocked.steps)  # zeroed before the step, only this step's add is in it
    again = GenerationTrace.from_json(knocked.to_json())
    for figure in (weightings_figure, memory_figure, bits_figure):
        figure(again, ViewOptions(pinned_step=2))
    panels = weightings_figure(again, ViewOptions())
    assert [a.text for a in panels.layout.annotations][:4] == ["Inputs", "Outputs", "Write weightings", "Read weightings"]
    wrong = bits_figure(again, ViewOptions())
    target = (trace.extra["input_bits"] > 0.5)
    output = np.array([[c == "1" for c in word] for word in knocked.output_text.split()])
    assert wrong.layout.annotations[2].text == f"Wrong bits: {int((target != output).sum())}"


def test_views_reject_traces_whose_shapes_disagree():
    model = tiny_memory()
    trace = generate(model, "random story task 1 seed 1", DecodeSettings.for_model(model.features))
    trace.steps[0].extra["hop_attention"] = np.zeros((3, len(trace.source_tokens) + 1))
    with pytest.raises(ValueError, match="hop attention has shape"):
        hop_figure(trace, ViewOptions())


def test_training_batches_mark_slots_and_answers():
    model = tiny_memory()
    stories = [make_story(8, s) for s in range(6)]
    batch = story_batch(model, stories)
    assert batch["lengths"].tolist() == [len(s.sentences) for s in stories]
    for row, story in zip(batch["answer_out"], stories):
        ids = [i for i in row.tolist() if i != model.vocab.pad_id]
        assert ids == [model.vocab.id(w) for w in story.answer] + [model.vocab.eos_id]
    out = model(**batch)
    assert out["loss"].item() > 0 and out["correct"].shape == (6,)
    assert copy_batch(4, 3, __import__("random").Random(1)).shape == (3, 4, 8)


def test_cli_traces_a_random_story_and_a_random_copy(checkpoint_root, capsys):
    from gen_models.__main__ import main

    main(["--root", str(checkpoint_root), "trace", "--model", "tiny-memory", "--text", "random story task 2 seed 3",
          "--knock-out", "0"])
    trace = json.loads(capsys.readouterr().out)
    assert trace["extra"]["supporting"] and trace["extra"]["answer"] and trace["settings"]["knock_out"] == [0]
    assert np.shape(trace["steps"][0]["extra"]["hop_attention"])[0] == 3
    main(["--root", str(checkpoint_root), "trace", "--model", "tiny-ntm", "--text", "random copy 6 seed 2"])
    trace = json.loads(capsys.readouterr().out)
    assert len(trace["output_text"].split()) == 6 and len(trace["extra"]["target"].split()) == 6


def test_app_shows_the_memory_tab_and_knocks_out_a_sentence(app_url):
    from gradio_client import Client

    from tests.test_app_api import named, plot_json, trace
    from ui.handlers import trace_outputs

    client = Client(app_url, verbose=False)
    outputs = named(client.predict("tiny-memory", "random story task 1 seed 2", api_name="/trace"), trace_outputs())
    assert outputs["hops"]["visible"] and outputs["ntm_weightings"]["visible"] is False
    assert plot_json(outputs["hops"])["layout"]["title"]["text"].replace("<br>", " ").startswith("Q: where is")
    assert "unknown words: flew" in trace(client, "Mary flew to the garden. Where is Mary?", "tiny-memory")[1]
    status = client.predict("tiny-memory", "random story task 1 seed 2", item=1, api_name="/intervene_knock_out")[2]
    assert "story sentence 1 knocked out" in str(status)
    ntm = named(client.predict("tiny-ntm", "random copy 5 seed 1", api_name="/trace"), trace_outputs())
    assert ntm["ntm_weightings"]["visible"] and ntm["copy_bits"]["visible"] and ntm["hops"]["visible"] is False


def test_shipped_memory_network_answers_and_a_knocked_out_fact_changes_the_answer():
    """memory-network on fresh task-1 stories, and the intervention a user tries first: knock out the
    sentence that says where Mary is now, and the answer falls back to where she was before."""
    from gen_models.babi import TEST_SEED, stories
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint

    model = load_checkpoint(CHECKPOINT_ROOT / "memory-network")
    scores = score_task(model, stories(1, TEST_SEED, 100))
    assert scores["accuracy"] >= 97 and scores["peak_on_support_any_hop"] >= 95
    text = "Mary moved to the bathroom. John went to the hallway. Mary travelled to the kitchen. Where is Mary?"
    settings = DecodeSettings.for_model(model.features)
    assert generate(model, text, settings).output_text == "kitchen"
    knocked = generate(model, text, DecodeSettings.for_model(model.features, knock_out=[2]))
    assert knocked.output_text == "bathroom"


def test_shipped_ntm_copies_beyond_its_training_lengths_and_the_lstm_does_not():
    import random

    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
    from gen_models.copy_task import bit_errors

    ntm, lstm = (load_checkpoint(CHECKPOINT_ROOT / name) for name in ("ntm-copy", "copy-lstm"))
    with torch.no_grad():
        for length in (20, 50):
            bits = copy_batch(length, 10, random.Random(123 + length))
            ntm_errors = bit_errors(ntm.copy_logits(bits), bits).mean().item()
            lstm_errors = bit_errors(lstm.copy_logits(bits), bits).mean().item()
            assert ntm_errors <= 1.0 and (length == 20 or lstm_errors > 10 * max(ntm_errors, 1.0)), length


def test_repeat_copy_data_repeats_the_sequence_and_ends_with_the_marker():
    import random

    from gen_models.copy_task import repeat_copy_batch

    x, target = repeat_copy_batch(4, 3, 2, random.Random(5))
    assert x.shape == (2, 5, 10) and target.shape == (2, 13, 9)
    assert torch.equal(target[:, :4, :8], x[:, :4, :8]) and torch.equal(target[:, 8:12, :8], x[:, :4, :8])
    assert x[0, 4, 9].item() == pytest.approx(0.3) and target[:, -1, 8].tolist() == [1.0, 1.0]
    assert target[:, :-1, 8].sum().item() == 0
