"""Views are pure functions of a trace: shapes, markers, escaping and clear errors."""
from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models.decoding import DecodeSettings, generate
from gen_models.models.pointer_generator import PointerGenerator
from gen_models.models.seq2seq import Seq2SeqAttention, Seq2SeqConfig
from gen_models.trace import BeamNode, Candidate, GenerationTrace, Step
from gen_models.vocab import Vocab
from tests.tiny_checkpoints import MAX_SOURCE_LEN, WORDS
from visualizers import (
    ViewOptions,
    attention_heatmap,
    beam_tree_figure,
    compare_figure,
    copy_figure,
    coverage_figure,
    diff_html,
    hypothesis_figure,
    output_html,
    repeated_ngram_steps,
    standalone_report,
    topic_figure,
    training_curves,
    tree_layout,
)

TEXT = "libfoo-dev: the foo library for C, with a command line tool. This package contains the development files."


def tiny(model_class, coverage: bool):
    """A random tiny model over the test vocabulary."""
    import torch

    torch.manual_seed(0)
    vocab = Vocab(WORDS)
    return model_class(Seq2SeqConfig(len(vocab), 16, 32, coverage=coverage, max_source_len=MAX_SOURCE_LEN),
                       vocab, name=f"tiny-{model_class.__name__}").eval()


@pytest.fixture(scope="module")
def pointer_trace() -> GenerationTrace:
    return generate(tiny(PointerGenerator, True), TEXT, DecodeSettings(beam_size=3, max_len=8))


@pytest.fixture(scope="module")
def seq2seq_trace() -> GenerationTrace:
    return generate(tiny(Seq2SeqAttention, False), TEXT, DecodeSettings(beam_size=2, max_len=6))


def synthetic_trace(tokens: list[str], source: list[str], attention=None, coverage=None, p_gen=0.5,
                    **step_fields) -> GenerationTrace:
    """A hand-made trace: one chosen path, one pruned sibling per step."""
    steps, beam, parent = [], [BeamNode(0, None, -1, "<s>", 2, 0.0, 0.0, 0.0, "alive")], 0
    for t, token in enumerate(tokens):
        row = attention[t] if attention is not None else np.full(len(source), 1.0 / len(source))
        step = Step(token, 4 + t, -0.5, [], np.asarray(row, dtype=float),
                    None if coverage is None else np.asarray(coverage[t], dtype=float), p_gen,
                    candidates=[Candidate(token, 4 + t, -0.5, 0.3, 0.3065), Candidate("x<y", 99, -2.0, 0.1, 0.035)],
                    **{k: v[t] for k, v in step_fields.items()})
        node_id = len(beam)
        beam.append(BeamNode(node_id, parent, t, token, 4 + t, -0.5, -0.5 * (t + 1), -0.5 * (t + 1),
                             "chosen" if t == len(tokens) - 1 else "alive", step))
        beam.append(BeamNode(node_id + 1, parent, t, "x<y", 99, -2.0, -2.0 - 0.5 * t, -2.0 - 0.5 * t, "pruned"))
        steps.append(step)
        parent = node_id
    return GenerationTrace("synthetic", list(source), list(tokens), " ".join(tokens), steps, beam,
                           {"strategy": "beam", "beam_size": 1})


def test_attention_heatmap_rows_columns_and_pinned_row(pointer_trace):
    figure = attention_heatmap(pointer_trace, ViewOptions(pinned_step=2))
    heat = figure.data[0]
    assert np.shape(heat.z) == (len(pointer_trace.steps), len(pointer_trace.source_tokens))
    pin = [s for s in figure.layout.shapes if s.type == "rect"]
    assert len(pin) == 1 and (pin[0].y0, pin[0].y1) == (1.5, 2.5)
    assert "pinned step 2" in figure.layout.title.text.replace("<br>", " ")


def test_long_source_opens_on_a_window_around_the_attention_with_a_range_slider(pointer_trace):
    figure = attention_heatmap(pointer_trace, ViewOptions(source_window=5, pinned_step=1))
    assert figure.layout.xaxis.rangeslider.visible
    low, high = figure.layout.xaxis.range
    assert high - low == 5 and low < int(np.argmax(pointer_trace.steps[1].attention)) < high
    assert "rangeslider" not in attention_heatmap(pointer_trace).to_dict()["layout"]["xaxis"]


def test_truncated_input_gets_a_visible_marker():
    model = tiny(PointerGenerator, True)
    trace = generate(model, " ".join(["library"] * (MAX_SOURCE_LEN + 10)), DecodeSettings(beam_size=1, max_len=3))
    assert trace.truncated
    figure = attention_heatmap(trace)
    assert any("truncated here" in a.text for a in figure.layout.annotations)
    assert any(s.type == "line" and s.x0 == MAX_SOURCE_LEN - 0.5 for s in figure.layout.shapes)


def test_shape_mismatch_raises_a_clear_error(pointer_trace):
    broken = GenerationTrace.from_json(pointer_trace.to_json())
    broken.steps[1].attention = np.zeros(3)
    with pytest.raises(ValueError, match="step 1: attention has shape"):
        attention_heatmap(broken)
    with pytest.raises(ValueError, match="pinned step 99"):
        coverage_figure(pointer_trace, ViewOptions(pinned_step=99))


def test_multi_head_attention_is_averaged_or_selected():
    rng = np.random.default_rng(0)
    heads = rng.random((3, 2, 4, 5))  # (T, L, H, S)
    trace = synthetic_trace(["a", "b", "c"], list("vwxyz"), attention=heads)
    assert np.allclose(attention_heatmap(trace).data[0].z, heads.mean(axis=(1, 2)))
    assert np.allclose(attention_heatmap(trace, ViewOptions(layer=1, head=3)).data[0].z, heads[:, 1, 3])


def test_coverage_is_the_models_own_or_a_labelled_running_sum(pointer_trace, seq2seq_trace):
    own = coverage_figure(pointer_trace)
    assert own.layout.title.text.replace("<br>", " ").startswith("Coverage")
    assert np.allclose(own.data[0].z, np.stack([s.coverage for s in pointer_trace.steps]))
    running = coverage_figure(seq2seq_trace)
    assert "no coverage mechanism" in running.layout.title.text.replace("<br>", " ")
    attention = np.stack([s.attention for s in seq2seq_trace.steps])
    assert np.allclose(running.data[0].z, np.cumsum(attention, 0) - attention)


def test_coverage_flags_positions_attended_more_than_once_and_repeats():
    attention = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    coverage = np.cumsum(attention, 0) - attention
    trace = synthetic_trace(["a", "b", "a", "b"], ["p", "q"], attention=attention, coverage=coverage)
    figure = coverage_figure(trace, ViewOptions(pinned_step=2, repeat_ngram=2))
    flagged = [t for t in figure.data if t.name == "covered > 1"]
    assert flagged and list(flagged[0].x) == ["0 · p"]
    assert "2 output tokens in repeated 2-grams" in figure.layout.annotations[-1].text
    assert sum("color:" in t for t in figure.layout.yaxis.ticktext) == 2


def test_repeated_ngram_steps():
    assert repeated_ngram_steps(["a", "b", "c", "a", "b", "</s>"], 2) == {3, 4}
    assert repeated_ngram_steps(["a", "b", "a"], 3) == set()
    assert repeated_ngram_steps(["a", "a"], 0) == set()


def test_copy_figure_splits_candidates_into_generate_and_copy(pointer_trace):
    figure = copy_figure(pointer_trace, ViewOptions(pinned_step=1))
    step = pointer_trace.steps[1]
    generate_part = next(t for t in figure.data if t.name == "generate" and t.orientation == "h")
    copy_part = next(t for t in figure.data if t.name == "copy" and t.orientation == "h")
    totals = np.array(generate_part.x) + np.array(copy_part.x)
    assert np.allclose(totals, [np.exp(c.logprob) for c in step.candidates], atol=1e-4)
    source_mass = figure.data[-1]
    assert np.allclose(source_mass.y, (1 - step.p_gen) * step.attention)


def test_copy_mass_axis_reads_in_plain_decimals_when_a_step_copies_almost_nothing(pointer_trace):
    """#27 item 11: at step 0 (p_gen ≈ 1) the copy-mass axis topped out at "50µ"."""
    from copy import deepcopy

    trace = deepcopy(pointer_trace)
    trace.steps[0].p_gen = 0.99995
    axis = copy_figure(trace, ViewOptions(pinned_step=0)).layout.yaxis3
    assert axis.exponentformat == "none" and tuple(axis.range) == (0, 0.05)
    trace.steps[0].p_gen = 0.0  # a step that copies: the axis follows its largest bar
    figure = copy_figure(trace, ViewOptions(pinned_step=0))
    assert figure.layout.yaxis3.range[1] == pytest.approx(1.08 * max(max(figure.data[-1].y), 0.05 / 1.08))


def test_copy_figure_hatches_the_source_words_read_as_unknown():
    trace = generate(tiny(PointerGenerator, False), "the libzorb library", DecodeSettings(beam_size=2, max_len=4))
    assert trace.extra["read_as_unknown"].tolist() == [1]
    for shown in (trace, GenerationTrace.from_json(trace.to_json())):
        source_mass = copy_figure(shown).data[-1]
        assert list(source_mass.marker.pattern.shape) == ["", "/", ""]
        assert ["unk" in note for note in source_mass.customdata] == [False, True, False]


def test_copy_figure_for_a_model_without_copy_switch(seq2seq_trace):
    figure = copy_figure(seq2seq_trace)
    assert "no copy switch" in figure.layout.title.text.replace("<br>", " ")
    assert all(t.name != "copy (1 − p_gen)" for t in figure.data)


def test_beam_tree_draws_every_node_with_its_id(pointer_trace):
    figure = beam_tree_figure(pointer_trace, ViewOptions(node_id=3, pinned_step=1))
    ids = [i for t in figure.data if t.mode == "markers+text" for i in t.customdata]
    assert sorted(ids) == sorted(n.id for n in pointer_trace.beam)
    assert {t.name for t in figure.data} >= {"alive", "pruned", "chosen", "selected node 3", "selected path"}
    hidden = beam_tree_figure(pointer_trace, ViewOptions(show_pruned=False))
    shown = [i for t in hidden.data if t.mode == "markers+text" for i in t.customdata]
    assert len(shown) == sum(n.status != "pruned" for n in pointer_trace.beam)


def test_beam_tree_rings_each_group_of_a_diverse_search(pointer_trace):
    """Diverse beam search: one legend entry a group, whose rings are exactly that group's drawn nodes;
    a node's hover names its group and its score before and after the penalty. A plain search has none."""
    trace = generate(tiny(PointerGenerator, True), TEXT, DecodeSettings(beam_size=4, beam_groups=2,
                                                                        diversity_penalty=1.0, max_len=6))
    figure = beam_tree_figure(trace, ViewOptions(tree_focus="whole tree"))
    rings = {t.name: set(t.customdata) for t in figure.data if t.name.startswith("group ")}
    assert rings == {f"group {g}": {n.id for n in trace.beam if n.extra.get("group") == g} for g in (0, 1)}
    assert "2 groups" in figure.layout.title.text
    penalised = next(n for n in trace.beam if "score_after_diversity" in n.extra)
    hovers = [h for t in figure.data if t.mode == "markers+text" for h in t.hovertext
              if h.startswith(f"node {penalised.id} ")]
    assert "group 1 · diversity penalty: before" in hovers[0]
    assert not any(t.name.startswith("group ") for t in beam_tree_figure(pointer_trace).data)


def test_tree_layout_puts_children_one_column_right_of_parents(pointer_trace):
    positions = tree_layout(pointer_trace)
    for node in pointer_trace.beam:
        if node.parent is not None:
            assert positions[node.id][0] == positions[node.parent][0] + 1


def test_hypothesis_figure_shows_a_nodes_own_internals(pointer_trace):
    alive = next(n for n in pointer_trace.beam if n.status == "alive" and n.step == 2)
    figure = hypothesis_figure(pointer_trace, ViewOptions(node_id=alive.id))
    assert np.shape(figure.data[0].z) == (3, len(pointer_trace.source_tokens))
    assert figure.layout.title.text.replace("<br>", " ").startswith(f"Node {alive.id} (alive)")
    pruned = next(n for n in pointer_trace.beam if n.status == "pruned" and n.step == 2)
    assert "pruned" in hypothesis_figure(pointer_trace, ViewOptions(node_id=pruned.id)).layout.title.text.replace("<br>", " ")
    with pytest.raises(ValueError, match="node 10000 is not in this trace"):
        hypothesis_figure(pointer_trace, ViewOptions(node_id=10_000))


def test_views_work_on_a_trace_read_back_from_json(pointer_trace):
    restored = GenerationTrace.from_json(pointer_trace.to_json())
    assert np.allclose(attention_heatmap(restored).data[0].z, attention_heatmap(pointer_trace).data[0].z, atol=1e-6)
    assert output_html(restored) == output_html(GenerationTrace.from_json(restored.to_json()))


TOKENS = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(tokens=TOKENS, source=TOKENS)
def test_output_html_escapes_any_token(tokens, source):
    trace = synthetic_trace(tokens, source)
    page = output_html(trace, ViewOptions(pinned_step=0))
    assert "<script" not in page.lower().replace("&lt;script", "")
    shown = [html.unescape(m) for m in re.findall(r"<span class='gs-tok[^>]*>(.*?)</span>", page, re.S)]
    assert shown == tokens


def test_output_html_marks_pinned_and_copy_colours(pointer_trace):
    page = output_html(pointer_trace, ViewOptions(pinned_step=1))
    assert page.count("gs-pinned") == 1 and "data-step='1'" in page
    assert "p_gen =" in page and "colour = p_gen" in page


def test_standalone_report_is_offline_escaped_and_carries_the_trace():
    evil = "</script><script>alert(1)</script>"
    trace = synthetic_trace(["ok", evil], ["<b>src</b>", "&amp;"])
    report = standalone_report(trace, {"Attention <x>": attention_heatmap(trace)})
    assert "<script>alert(1)" not in report
    assert not re.search(r"<script[^>]*\bsrc=", report), "the report must not load scripts from the network"
    assert "Attention &lt;x&gt;" in report and "Plotly.newPlot" in report
    embedded = re.search(r"<script type='application/json' id='genscope-trace'>(.*?)</script>", report, re.S)
    assert GenerationTrace.from_json(embedded.group(1)).output_tokens == ["ok", evil]


def test_diff_and_compare_highlight_differing_steps():
    first = synthetic_trace(["a", "b", "c"], ["x", "y"])
    second = synthetic_trace(["a", "q", "c", "d"], ["x", "y"])
    page = diff_html(first, second, ("one", "two"))
    assert "first difference at step 1; by text, 2 words the same, 1 replaced, 0 only in one, 1 only in two" in page
    figure = compare_figure(first, second, labels=("one", "two"))
    assert len(figure.layout.shapes) == 2 and "first difference at step 1" in figure.layout.title.text.replace("<br>", " ")
    assert "identical" in compare_figure(first, first).layout.title.text.replace("<br>", " ")


def test_text_diff_aligns_insertions_instead_of_shifting_every_step():
    from visualizers.output import aligned_words

    rows = aligned_words("free library for decoding ATSC", "library for decoding ATSC")
    assert rows[0] == ("delete", "free", "") and all(op == "equal" for op, _, _ in rows[1:])
    assert aligned_words("按 Esc 取消", "按Esc取消") == [("equal", w, w) for w in ("按", "Esc", "取", "消")]


def test_text_diff_keeps_unk_one_word_and_counts_in_the_singular():
    """#27 item 11: ``<unk>`` was split into "<", "unk", ">" (3 replaced) and the summary said "1 words"."""
    from visualizers.output import aligned_words

    rows = aligned_words("my favorite game is <unk>", "my favorite game is chess")
    assert rows[-1] == ("replace", "<unk>", "chess") and len(rows) == 5
    page = diff_html(synthetic_trace(["a", "<unk>"], ["x"]), synthetic_trace(["b", "c"], ["x"]), ("one", "two"))
    assert "1 word the same" not in page and "0 words the same, 2 replaced" in page
    page = diff_html(synthetic_trace(["a", "<unk>"], ["x"]), synthetic_trace(["a", "c"], ["x"]), ("one", "two"))
    assert "by text, 1 word the same, 1 replaced" in page


def test_training_curves_with_phases_and_missing_metrics():
    curves = [{"phase": "main", "epoch": 1, "train_loss": 5.0, "valid_nll": 4.0, "valid_p_gen": 0.3},
              {"phase": "coverage", "epoch": 1, "train_loss": 4.0, "valid_nll": 3.9, "valid_coverage": 0.2}]
    figure = training_curves({"curves": curves})
    assert {t.name for t in figure.data} == {"train loss", "validation NLL", "validation mean p_gen",
                                             "validation coverage loss"}
    assert len(figure.layout.shapes) == 1
    assert "no training curves" in training_curves({}).layout.annotations[0].text


def test_topic_view_plugs_in_a_topic_array_per_step():
    topic_attention = np.array([[0.7, 0.3], [0.2, 0.8]])
    topic_coverage = np.array([[0.6, 0.9], [0.5, 0.4]])
    trace = synthetic_trace(["春", "风"], ["明月", "故乡"], topic_attention=topic_attention,
                            topic_coverage=topic_coverage)
    figure = topic_figure(trace, ViewOptions(pinned_step=1))
    assert np.allclose(np.array(figure.data[0].z).T, topic_attention)  # heatmap: topics x steps
    lines = figure.data[1:]
    assert [line.name for line in lines] == ["0 · 明月", "1 · 故乡"]
    for k, line in enumerate(lines):  # one decay line per topic: C_0 = 1, then C after each step
        assert np.allclose(line.y, [1.0, *topic_coverage[:, k]]) and list(line.x) == [-1, 0, 1]
    assert [shape.x0 for shape in figure.layout.shapes] == [0.5, 1]  # pinned step 1 in both panels
    assert "no topic attention" in topic_figure(synthetic_trace(["a"], ["b"])).layout.annotations[0].text
    trace.steps[1].topic_coverage = np.zeros(3)
    with pytest.raises(ValueError, match="topic_coverage has shape"):
        topic_figure(trace)


def test_figures_serialise_to_json(pointer_trace, seq2seq_trace):
    for trace in (pointer_trace, seq2seq_trace):
        for view in (attention_heatmap, coverage_figure, copy_figure, beam_tree_figure, hypothesis_figure):
            json.loads(view(trace, ViewOptions(pinned_step=0)).to_json())


def test_zoom_survives_a_new_pin_but_not_a_new_source(pointer_trace, seq2seq_trace):
    revision = attention_heatmap(pointer_trace, ViewOptions(pinned_step=0)).layout.uirevision
    assert attention_heatmap(pointer_trace, ViewOptions(pinned_step=2)).layout.uirevision == revision
    assert attention_heatmap(seq2seq_trace).layout.uirevision != revision


@pytest.fixture(scope="module")
def hf_traces(tmp_path_factory):
    """Traces of tiny random BART (encoder-decoder), GPT-2 (decoder-only) and BERT (encoder-only)."""
    from gen_models.models.hf_adapter import load_hf
    from tests.hf_tiny import save_tiny

    root = tmp_path_factory.mktemp("hf")
    settings = DecodeSettings(beam_size=2, max_len=5, min_len=5)
    return {family: generate(load_hf(str(save_tiny(family, root / family))), "w1 w2 w3 w4", settings)
            for family in ("bart", "gpt2", "bert")}


def test_decoder_self_attention_is_lower_triangular_and_follows_layer_and_head(hf_traces):
    from visualizers import decoder_self_attention_figure

    bart, gpt2 = hf_traces["bart"], hf_traces["gpt2"]
    z = np.array(decoder_self_attention_figure(bart).data[0].z, dtype=float)  # (T, T): <s> + prefix
    T = len(bart.steps)
    assert z.shape == (T, T) and np.isnan(z[np.triu_indices(T, 1)]).all()
    np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, atol=1e-5)
    one = np.array(decoder_self_attention_figure(bart, ViewOptions(layer=1, head=0)).data[0].z, dtype=float)
    np.testing.assert_allclose(one[2, :3], bart.steps[2].self_attention[1, 0], atol=1e-9)
    figure = decoder_self_attention_figure(gpt2)
    assert figure.data[0].x[0].endswith(gpt2.steps[0].token)  # decoder-only: no start token column
    assert np.isnan(np.array(figure.data[0].z, dtype=float)[0]).all()  # step 0 saw only the prompt


def test_encoder_attention_view_of_an_encoder_only_model(hf_traces):
    from visualizers import encoder_attention_figure

    bert = hf_traces["bert"]
    S = len(bert.source_tokens)
    z = np.array(encoder_attention_figure(bert, ViewOptions(layer=0, head=1)).data[0].z)
    np.testing.assert_allclose(z, bert.encoder_attention[0, 1], atol=1e-6)  # float32 on the wire
    np.testing.assert_allclose(z.sum(1), np.ones(S), atol=1e-5)
    mean = np.array(encoder_attention_figure(bert).data[0].z)
    np.testing.assert_allclose(mean, bert.encoder_attention.mean((0, 1)), atol=1e-6)
    assert "decoder-only" in encoder_attention_figure(hf_traces["gpt2"]).layout.annotations[0].text
    broken = GenerationTrace(**{**bert.__dict__, "encoder_attention": np.ones((2, 2, S, S + 1))})
    with pytest.raises(ValueError, match="expected"):
        encoder_attention_figure(broken)


@given(st.sampled_from(["bidirectional", "causal", "seq2seq"]), st.integers(0, 12), st.integers(0, 12))
def test_attention_masks(kind, n_source, n_output):
    from visualizers.transformer import mask_matrix

    N = n_source + n_output
    mask = mask_matrix(kind, n_source, N)
    assert mask.shape == (N, N) and set(np.unique(mask)) <= {0.0, 1.0}
    causal = np.tril(np.ones((N, N)))
    if kind == "bidirectional":
        assert mask.all()
    elif kind == "causal":
        np.testing.assert_array_equal(mask, causal)
    else:  # UNILM: the source block is bidirectional and blind to the output; outputs see source + own prefix
        assert mask[:n_source, :n_source].all() and not mask[:n_source, n_source:].any()
        np.testing.assert_array_equal(mask[n_source:, n_source:], causal[:n_output, :n_output])
        assert mask[n_source:, :n_source].all()
    assert (mask.diagonal() == 1).all()


def test_attention_mask_view_defaults_to_the_models_layout(hf_traces):
    from visualizers import attention_mask_figure

    expected = {"bart": "seq2seq", "gpt2": "causal", "bert": "bidirectional"}
    for family, trace in hf_traces.items():
        title = attention_mask_figure(trace).layout.title.text.replace("<br>", " ")
        assert title == f"Attention mask: {expected[family]} (this model's layout)"
    bart = hf_traces["bart"]
    z = np.array(attention_mask_figure(bart, "causal").data[0].z)
    assert z.shape == (len(bart.source_tokens) + len(bart.output_tokens),) * 2
    with pytest.raises(ValueError, match="mask kind"):
        attention_mask_figure(bart, "diagonal")


def test_head_grid_shows_every_layer_and_head_at_the_pinned_step(hf_traces):
    from visualizers import head_grid_figure

    bart = hf_traces["bart"]
    figure = head_grid_figure(bart, ViewOptions(pinned_step=2, layer=1, head=1))
    z = np.array(figure.data[0].z)
    np.testing.assert_allclose(z, bart.steps[2].attention.reshape(4, -1), atol=1e-9)
    assert figure.layout.shapes[-1].y0 == 3 - 0.5  # layer 1, head 1 outlined
    assert "encoder-only" in head_grid_figure(hf_traces["bert"]).layout.annotations[0].text


def test_probability_strip_marks_the_pinned_step_and_carries_steps_for_clicks():
    from visualizers.probability import probability_figure, top_margin

    trace = synthetic_trace(["a", "b", "c"], ["x", "y"])
    figure = probability_figure(trace, ViewOptions(pinned_step=2))
    assert [list(t.customdata) for t in figure.data] == [[0, 1, 2]] * 3
    assert "pinned step 2" in figure.layout.title.text.replace("<br>", " ") and figure.layout.shapes[0].x0 == 1.5
    step = trace.steps[0]
    probs = sorted((np.exp(c.logprob) for c in step.candidates), reverse=True)
    assert top_margin(step) == pytest.approx(probs[0] - probs[1])


def test_subword_markers_are_not_shown_raw():
    from visualizers.output import display_token

    assert display_token("▁hello") == "hello" and display_token("Ġworld") == "world"
    assert display_token("▁") == "␣" and display_token("</s>") == "</s>" and display_token("ab") == "ab"


def test_xlnet_streams_follow_the_factorisation_order():
    from visualizers.transformer import mask_matrix, permutation_order

    order = "2 0 3 1"  # z = (2, 0, 3, 1): position 2 first, position 1 last
    content, query = mask_matrix(f"content: {order}", 2, 4), mask_matrix(f"query: {order}", 2, 4)
    rank = {2: 0, 0: 1, 3: 2, 1: 3}
    for i in range(4):
        for j in range(4):
            assert content[i, j] == (rank[j] <= rank[i]) and query[i, j] == (rank[j] < rank[i])
    assert query[2].sum() == 0 and content[1].sum() == 4  # the first sees nothing (query), the last sees all
    assert np.array_equal(mask_matrix("content", 2, 3), mask_matrix("causal", 2, 3))  # identity order = causal
    assert sorted(permutation_order("shuffle 7", 6)) == list(range(6))
    with pytest.raises(ValueError, match="lists each position 0 to 3 once"):
        mask_matrix("query: 0 1 1 2", 2, 4)


def test_comparing_models_without_attention_draws_the_step_probabilities():
    first = synthetic_trace(["a", "b", "c"], ["x", "y"])
    second = synthetic_trace(["a", "q"], ["x", "y"])
    for step in first.steps:
        step.attention = None
    figure = compare_figure(first, second, labels=("one", "two"))
    assert "no attention to set side by side" in figure.layout.title.text.replace("<br>", " ")
    assert {t.type for t in figure.data} == {"scatter"} and len(figure.data) >= 2


def test_a_hypothesis_without_attention_shows_its_probabilities():
    trace = synthetic_trace(["a", "b", "c"], ["x", "y"])
    for node in trace.beam:
        if node.internals is not None:
            node.internals.attention = None
    leaf = trace.chosen_path()[-1]
    figure = hypothesis_figure(trace, ViewOptions(node_id=leaf))
    assert figure.layout.title.text.replace("<br>", " ").startswith(f"Node {leaf} ") and figure.data[0].type == "bar"


def test_a_huge_tree_collapses_its_pruned_candidates_and_labels_its_hypotheses(monkeypatch):
    import visualizers.beam_tree as beam_tree

    trace = synthetic_trace(["a", "b", "c"], ["x", "y"])
    monkeypatch.setattr(beam_tree, "MAX_PRUNED_DRAWN", 1)
    monkeypatch.setattr(beam_tree, "LABELLED_NODES", 0)
    figure = beam_tree_figure(trace, ViewOptions(show_pruned=True))
    assert "pruned candidates collapsed" in figure.layout.title.text.replace("<br>", " ")
    assert "pruned" not in {t.name for t in figure.data}
    chosen = next(t for t in figure.data if t.name == "chosen")
    assert all(chosen.text)  # hypotheses keep their labels when the tree is too big to label every node


def test_auto_tree_focus_draws_a_large_tree_as_its_chosen_path_and_says_so(pointer_trace, monkeypatch):
    import visualizers.beam_tree as beam_tree

    auto, whole = ViewOptions(tree_focus="auto"), ViewOptions(tree_focus="whole tree")
    assert ViewOptions().tree_focus == "auto"
    drawn = lambda figure: sum(len(t.x) for t in figure.data if t.mode == "markers+text")  # noqa: E731
    assert drawn(beam_tree_figure(pointer_trace, auto)) == drawn(beam_tree_figure(pointer_trace, whole))
    monkeypatch.setattr(beam_tree, "AUTO_WHOLE_TREE", len(pointer_trace.beam) - 1)
    large = beam_tree_figure(pointer_trace, auto)
    path = beam_tree_figure(pointer_trace, ViewOptions(tree_focus="chosen path"))
    assert drawn(large) == drawn(path) < drawn(beam_tree_figure(pointer_trace, whole))
    title = large.layout.title.text.replace("<br>", " ")
    assert f"chosen path: {drawn(path)} drawn (over {len(pointer_trace.beam) - 1} nodes; pick 'whole tree'" in title


def test_tree_focus_draws_the_chosen_path_or_a_node_subtree(pointer_trace):
    from visualizers.beam_tree import focus_nodes

    chosen = pointer_trace.chosen_path()
    on_path = focus_nodes(pointer_trace, ViewOptions(tree_focus="chosen path"))
    assert set(chosen) <= on_path
    assert all(pointer_trace.node(i).parent in set(chosen) or i in chosen for i in on_path)
    node = pointer_trace.node(chosen[1])
    subtree = focus_nodes(pointer_trace, ViewOptions(tree_focus="selected subtree", node_id=node.id))
    ancestors = {n.id for n in pointer_trace.path(node.id)}
    assert ancestors <= subtree and chosen[-1] in subtree
    for node_id in subtree - ancestors:  # everything else descends from the selected node
        assert node.id in {n.id for n in pointer_trace.path(node_id)}
    whole = beam_tree_figure(pointer_trace)
    focused = beam_tree_figure(pointer_trace, ViewOptions(tree_focus="chosen path"))
    drawn = lambda figure: sum(len(t.x) for t in figure.data if t.mode == "markers+text")  # noqa: E731
    assert drawn(focused) == len(on_path - {n.id for n in pointer_trace.beam if n.parent is None}) + 1 < drawn(whole)
    assert "chosen path" in focused.layout.title.text.replace("<br>", " ")


def test_a_lowercasing_model_writes_and_shows_words_as_the_source_spells_them():
    model = tiny(PointerGenerator, True)
    source = "w1 W5 w2 W5 W7 w3 W7 w4 W9"  # the source always writes w5, w7 and w9 in capitals
    trace = generate(model, source, DecodeSettings(beam_size=3, max_len=8))
    assert trace.extra["cased_forms"] == {"w5": "W5", "w7": "W7", "w9": "W9"}
    words = [t for t in trace.output_tokens if t != "</s>"]
    assert trace.output_text.split() == [trace.extra["cased_forms"].get(t, t) for t in words]
    shown = re.findall(r"<span class='gs-tok[^>]*>(.*?)</span>", output_html(trace))
    assert shown[: len(words)] == trace.output_text.split()


def test_training_curves_without_mechanism_signals_give_the_losses_the_whole_plot():
    from visualizers import training_curves

    curves = [{"epoch": i, "train_loss": 3.0 / i, "valid_nll": 3.5 / i} for i in (1, 2, 3)]
    figure = training_curves({"curves": curves})
    assert [t.name for t in figure.data] == ["train loss", "validation NLL"]
    assert "yaxis2" not in figure.layout.to_plotly_json() and figure.layout.height < 480
    with_p_gen = training_curves({"curves": [dict(row, valid_p_gen=0.5) for row in curves]})
    assert with_p_gen.layout.yaxis2.domain == (0, 0.4)


def _gap_px(figure, upper: str, lower: str) -> float:
    """Pixels between the bottom of axis ``upper``'s domain and the top of ``lower``'s."""
    layout = figure.layout
    plot = layout.height - layout.margin.t - layout.margin.b
    return (layout[upper].domain[0] - layout[lower].domain[1]) * plot


def test_multi_panel_figures_leave_room_for_their_rotated_labels(pointer_trace):
    """The beam-node view and the side-by-side comparison keep ≥ 150 px between a heatmap and the
    panel below it (its rotated source labels and the legend go there); the logit lens's colour bar
    sits left of its rank panel, whose rows are the heatmap's."""
    from visualizers.attribution import logit_lens_figure
    from visualizers.compare import compare_figure

    node = pointer_trace.chosen_path()[-1]
    hypothesis = hypothesis_figure(pointer_trace, ViewOptions(node_id=node))
    assert _gap_px(hypothesis, "yaxis", "yaxis2") >= 150 and hypothesis.layout.margin.b >= 100
    compared = compare_figure(pointer_trace, pointer_trace)
    assert _gap_px(compared, "yaxis", "yaxis3") >= 150
    assert compared.layout.legend.y > compared.layout.yaxis3.domain[1]
    layers = [dict(layer=i, top_tokens=["a", "b"], top_probs=[0.6, 0.3], chosen_rank=3 - i, chosen_prob=0.3)
              for i in (1, 2, 3)]
    lens = logit_lens_figure(dict(step=0, chosen="a", layers=layers))
    colorbar = lens.data[0].colorbar
    assert lens.layout.xaxis.domain[1] <= colorbar.x < lens.layout.xaxis2.domain[0] - 0.05
    assert lens.layout.yaxis2.showticklabels is False


def test_tree_labels_are_cut_before_escaping():
    from visualizers.beam_tree import short_label

    assert short_label("</s>", 3) == "&lt;/…" and short_label("</s>", 4) == "&lt;/s&gt;"
