"""Every endpoint through ``gradio_client`` against the app served from tiny checkpoints
(fixtures in conftest.py), including bad inputs: errors come back as status messages naming the
limit (``/trace``, the API-only endpoint, fails with that message: ``gradio_client`` raises it)."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from gen_models.decoding import SETTING_NAMES
from gen_models.trace import GenerationTrace
from ui import budget

POINTER, SEQ2SEQ = "tiny-pointer-coverage", "tiny-seq2seq"
TEXT = "libjson: a JSON parser library for C. This package contains the development files."
ENDPOINTS = {"/trace", "/pin", "/select_node", "/views", "/pin_token", "/plot_click", "/model_card", "/pick_example",
             "/intervene_token", "/intervene_p_gen", "/intervene_coverage", "/intervene_topic", "/intervene_knock_out",
             "/intervene_feed", "/compare",
             "/neighbors", "/export_trace", "/export_report", "/explain", "/logit_lens"}
TRACE_JSON, TRACE_STATUS = 0, 1  # positions among /trace's outputs (the gr.State is not part of the API)


def api_names(names: list[str]) -> list[str]:
    """Output names as API clients see them: states, tabs, rows, boxes and buttons (layout) are not part of the API."""
    layout = ("state", "tab", "rendered_tab", "tabs")
    return [n for n in names if n not in layout and not n.startswith("tab:")
            and not n.endswith(("_row", "_tab", "_box", "_button"))]


def named(outputs, names: list[str] = None) -> dict:
    """Outputs by name (a view event's outputs unless ``names`` are given)."""
    from ui.handlers import view_outputs

    return dict(zip(api_names(names or ["status", *view_outputs()]), outputs))


@pytest.fixture(scope="module")
def client(app_url) -> Client:
    return Client(app_url, verbose=False)


def new_client(app_url) -> Client:
    """A client with its own session (its own per-user trace state)."""
    return Client(app_url, verbose=False)


def trace(client: Client, text: str = TEXT, model: str = POINTER, **settings):
    """(trace JSON text, status without Markdown escapes) of /trace; a failed request gives ("", "⚠ "
    and its error message)."""
    try:
        outputs = client.predict(model, text, api_name="/trace", **settings)
    except AppError as error:
        return "", f"⚠ {error}"
    return outputs[TRACE_JSON], plain(outputs[TRACE_STATUS])


def plain(markdown: str) -> str:
    """Status Markdown without its backslash escapes."""
    return re.sub(r"\\(.)", r"\1", markdown)


def plot_json(output: dict) -> dict:
    """The plotly figure inside a gr.Plot output (or inside an update that shows it)."""
    return json.loads(output.get("value", output)["plot"])


def test_every_event_has_an_api_name(client):
    endpoints = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert ENDPOINTS <= endpoints


def test_trace_needs_only_model_and_text_and_returns_the_trace_json(client):
    text, status = trace(client)
    restored = GenerationTrace.from_json(text)
    assert restored.model == POINTER and restored.steps and restored.beam
    assert restored.settings["beam_size"] == 4
    assert "beam search, 4 beams" in status


def test_trace_settings_change_the_search(client):
    text, status = trace(client, strategy="greedy", max_len=3)
    restored = GenerationTrace.from_json(text)
    assert restored.settings["strategy"] == "greedy" and len(restored.steps) <= 3
    sampled, _ = trace(client, strategy="sample", seed=7, temperature=0.7, top_k=5, top_p=0.9, max_len=4)
    assert GenerationTrace.from_json(sampled).settings["seed"] == 7


@pytest.mark.parametrize("settings, message", [
    ({"beam_size": 20}, "beam_size must be between 1 and 16"),
    ({"max_len": 0}, "max_len must be between 1 and 200"),
    ({"min_len": 10, "max_len": 5}, "min_len (10) must not exceed max_len (5)"),
    ({"temperature": "hot"}, "temperature must be a number between 0.05 and 10.0"),
    ({"beam_size": 2.5}, "beam_size must be a whole number between 1 and 16"),
    ({"top_p": 0}, "top_p must be between 0.01 and 1.0"),
    ({"seed": -1}, "seed must be between 0 and 2147483647"),
    ({"strategy": "nucleus"}, "strategy must be one of greedy, beam, sample"),
    ({"repeat_ngram_marks": 9}, "repeat n-gram size must be between 0 and 6"),
    ({"image_format": "gif"}, "image format must be one of png, svg"),
])
def test_trace_rejects_bad_settings_naming_the_limit(client, settings, message):
    text, status = trace(client, **settings)
    assert text == ""
    assert message in status


def test_unknown_model_is_named(client):
    _, status = trace(client, model="no-such-model")
    assert "unknown model 'no-such-model'" in status and POINTER in status


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02", "\u200b\u200b"])
def test_empty_input_shows_a_hint(client, text):
    json_text, status = trace(client, text=text)
    assert json_text == "" and "Type or paste" in status


@pytest.mark.parametrize("text", [
    "emoji 🎉🔥 and mixed scripts: ελληνικά русский 中文字符 العربية עברית",
    "control\x07chars\x1b[31m and tabs\tand\nnewlines\r\n and NUL\x00 inside",
    "<script>alert('x')</script> & \"quotes\" 'single' {{template}} ${x}",
    "a" * 5000,
])
def test_strange_input_never_crashes(client, text):
    json_text, status = trace(client, text=text, max_len=5)
    assert GenerationTrace.from_json(json_text).steps, status


def test_huge_paste_is_capped_and_truncated_with_notices(client):
    json_text, status = trace(client, text="library for the json parser " * 5000, max_len=3)
    restored = GenerationTrace.from_json(json_text)
    assert restored.truncated and len(restored.source_tokens) == 40
    assert "input cut to its first 20,000 characters" in status
    assert "truncated to 40 tokens" in status


def test_pin_select_node_and_view_options_use_the_sessions_trace(app_url):
    session = new_client(app_url)
    restored = GenerationTrace.from_json(trace(session, max_len=6)[0])
    outputs = named(session.predict(3, -1, api_name="/pin"))
    assert "gs-pinned" in outputs["output"] and "data-step='3'" in outputs["output"]
    assert "pinned step 3" in plot_json(outputs["attention"])["layout"]["title"]["text"].replace("<br>", " ")
    node = next(n for n in restored.beam if n.status == "alive" and n.step == 1)
    outputs = named(session.predict(3, node.id, api_name="/select_node"))
    assert plot_json(outputs["hypothesis"])["layout"]["title"]["text"].replace("<br>", " ").startswith(f"Node {node.id} ")
    outputs = named(session.predict(99, -1, 0, False, "svg", api_name="/views"))
    assert plot_json(outputs["attention"])["config"]["toImageButtonOptions"]["format"] == "svg"
    assert f"pinned step {len(restored.steps) - 1}" in plot_json(outputs["attention"])["layout"]["title"]["text"].replace("<br>", " ")
    status = plain(session.predict(0, 10**6, api_name="/select_node")[0])
    assert "is not in the search tree" in status


def test_model_card_has_curves_metrics_and_readme(client):
    from ui.handlers import model_outputs

    outputs = named(client.predict(POINTER, api_name="/model_card"), model_outputs())
    curves, card, status = outputs["curves"], outputs["card"], outputs["card_status"]
    assert {t["name"] for t in plot_json(curves)["data"]} >= {"train loss", "validation NLL"}
    assert "Test-set metrics" in card and "rouge1" in card and "A random model for tests" in card
    assert "loaded" in status
    unknown = named(client.predict("nope", api_name="/model_card"), model_outputs())
    assert "unknown model" in plain(unknown["card_status"])


def test_pick_example_fills_the_input(client):
    assert client.predict("hello example", api_name="/pick_example") == "hello example"


def test_neighbors_by_bm25_or_a_clear_note(client):
    rows, status = client.predict(POINTER, "JSON parser library for C", api_name="/neighbors")
    assert rows["data"][0][2] == "JSON parser library (development files)"
    assert "nearest training pairs by BM25" in status
    rows, status = client.predict(SEQ2SEQ, "JSON parser", api_name="/neighbors")
    assert "no `train_data`" in plain(status)


def test_intervene_with_an_alternative_token(client):
    original = GenerationTrace.from_json(trace(client, max_len=6)[0])
    step = original.steps[2]
    alternative = next(c for c in step.candidates if c.token_id != step.token_id)
    diff, figure, status = client.predict(POINTER, TEXT, step=2, token=alternative.token_id, max_len=6,
                                          api_name="/intervene_token")
    assert "first difference at step 2" in diff and "re-decoded with" in plain(status)
    assert plot_json(figure)["data"]
    status = client.predict(POINTER, TEXT, step=99, token=alternative.token_id, max_len=6,
                            api_name="/intervene_token")[2]
    assert "step must be a whole number between 0 and 5" in plain(status)
    status = client.predict(POINTER, TEXT, step=1, token="zzz-not-a-word", max_len=6, api_name="/intervene_token")[2]
    assert "neither in the vocabulary nor copyable" in plain(status)


def test_intervene_on_p_gen_and_coverage(client):
    diff, _, status = client.predict(POINTER, TEXT, p_gen="0", max_len=5, api_name="/intervene_p_gen")
    assert "p_gen = 0 at every step" in plain(status)  # #27 item 11: it is not the pinned step only
    status = client.predict(SEQ2SEQ, TEXT, p_gen="1", max_len=5, api_name="/intervene_p_gen")[2]
    assert "has no copy switch" in plain(status)
    status = client.predict(POINTER, TEXT, p_gen="2", api_name="/intervene_p_gen")[2]
    assert "p_gen must be one of model, 0, 1" in plain(status)
    diff, _, status = client.predict(POINTER, TEXT, step=1, max_len=5, api_name="/intervene_coverage")
    assert "coverage reset at step 1" in plain(status) and "original" in diff
    assert "no coverage mechanism" in plain(client.predict(SEQ2SEQ, TEXT, step=0, max_len=5,
                                                           api_name="/intervene_coverage")[2])
    assert "no topic coverage" in plain(client.predict(POINTER, TEXT, step=0, topic=0, value=0.5, max_len=5,
                                                       api_name="/intervene_topic")[2])


def test_compare_two_models_and_bad_settings(client):
    diff, figure, status = client.predict(POINTER, TEXT, model_b=SEQ2SEQ, max_len=5, api_name="/compare")
    assert f"A: {POINTER}" in diff and f"B: {SEQ2SEQ}" in diff
    assert len([t for t in plot_json(figure)["data"] if t["type"] == "heatmap"]) == 2
    status = client.predict(POINTER, TEXT, model_b=SEQ2SEQ, beam_size_b=0, api_name="/compare")[2]
    assert "beam_size must be between 1 and 16" in plain(status)


def test_export_trace_and_offline_report(app_url):
    session = new_client(app_url)
    assert "no trace to export" in plain(session.predict(api_name="/export_trace")[1])
    restored = GenerationTrace.from_json(trace(session, max_len=4)[0])
    path, status = session.predict(api_name="/export_trace")
    assert GenerationTrace.from_json(Path(path).read_text(encoding="utf-8")).to_json() == restored.to_json()
    path, status = session.predict(1, -1, api_name="/export_report")
    report = Path(path).read_text(encoding="utf-8")
    assert report.startswith("<!DOCTYPE html>") and "genscope-trace" in report and "works offline" in plain(status)
    assert "Hypothesis at node" not in report
    from ui.handlers import MEAN, OWN_MASK
    views = (3, True, "png", MEAN, MEAN, OWN_MASK, "auto", False, "")
    # #27 item 11: the input as typed (case, spacing), not lowercased tokens; another text: the tokens
    report = Path(session.predict(1, -1, *views, TEXT, api_name="/export_report")[0]).read_text(encoding="utf-8")
    assert f"<div class='source'>{TEXT}</div>" in report
    report = Path(session.predict(1, -1, *views, "Something else", api_name="/export_report")[0]).read_text(
        encoding="utf-8")
    assert TEXT not in report and "a json parser library" in report  # what the trace read: its tokens
    node = restored.chosen_path()[2]
    report = Path(session.predict(1, node, api_name="/export_report")[0]).read_text(encoding="utf-8")
    assert f"Hypothesis at node {node}" in report


def test_server_binding_and_queue(app_module, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert app_module.launch_kwargs()["server_name"] == "127.0.0.1"
    assert app_module.launch_kwargs()["server_port"] == 7999
    monkeypatch.setenv("SPACE_ID", "someone/genscope")
    assert app_module.launch_kwargs()["server_name"] == "0.0.0.0"
    assert app_module.demo._queue.max_size == budget.current().queue_size
    groups = {fn.concurrency_id for fn in app_module.demo.fns.values() if fn.fn is not None}
    assert groups == {"work", "heavy", "corpus"}  # every event with a server function is in a budget group


def test_local_hugging_face_model_with_layer_and_head_views(client, tmp_path):
    from tests.hf_tiny import save_tiny

    folder = save_tiny("bart", tmp_path / "bart")
    session_model = f"hf:{folder}"
    restored = GenerationTrace.from_json(trace(client, text="w1 w2 w3 w4", model=session_model, max_len=4)[0])
    assert len(restored.steps[0].attention.shape) == 3  # (layers, heads, source)
    outputs = named(client.predict(1, -1, 3, True, "png", 1, 0, api_name="/views"))
    assert "layer 1, head 0" in plot_json(outputs["attention"])["layout"]["title"]["text"].replace("<br>", " ")
    assert "layer must be 'mean' or a whole number between 0 and 1" in plain(
        client.predict(1, -1, 3, True, "png", 7, 0, api_name="/views")[0])
    assert "is not a local model folder" in trace(client, model="hf:/no/such/folder")[1]


def test_topic_model_views_and_topic_coverage_intervention(client):
    json_text, status = trace(client, text="春风 明月 故乡", model="tiny-mta", strategy="greedy", max_len=8)
    restored = GenerationTrace.from_json(json_text)
    assert restored.topics == ["春风", "明月", "故乡"] and restored.steps[0].topic_coverage is not None
    topics = named(client.predict(2, -1, api_name="/pin"))["topics"]
    kinds = [t["type"] for t in plot_json(topics)["data"]]
    assert topics["visible"] and kinds == ["heatmap"] + ["scatter"] * 3  # attention heatmap, one line per topic
    from ui.handlers import trace_outputs
    assert named(client.predict(POINTER, TEXT, api_name="/trace"), trace_outputs())["topics"]["visible"] is False
    diff, _, status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=0, topic=1,
                                     value=0.0, api_name="/intervene_topic")
    assert "coverage of “明月” set to 0 at step 0" in plain(status)
    status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=0, topic=1,
                            api_name="/intervene_topic")[2]  # #27 item 11: the default is 0 (used up), not 1
    assert "set to 0 at step 0" in plain(status)
    status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=0, topic=1,
                            value=1.0, api_name="/intervene_topic")[2]  # where topics start: nothing changes
    assert "the output did not change" in plain(status) and "topics start at 1" in plain(status)
    coverage = restored.steps[1].topic_coverage[1]
    status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=2, topic=1,
                            value=round(coverage, 3), api_name="/intervene_topic")[2]
    assert f"already had coverage {coverage:.2f} before step 2" in plain(status)
    status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=0, topic=3,
                            value=0.0, api_name="/intervene_topic")[2]
    assert "topic must be a whole number between 0 and 2" in plain(status)
    status = client.predict("tiny-mta", "春风 明月 故乡", strategy="greedy", max_len=8, step=0, topic=0,
                            value=11, api_name="/intervene_topic")[2]
    assert "topic_coverage values must be between 0 and 10" in plain(status)


def test_switching_model_swaps_an_untouched_example_but_keeps_typed_text(client):
    from tests.tiny_checkpoints import EXAMPLES
    from ui.handlers import model_outputs

    swapped = named(client.predict("tiny-mta", EXAMPLES[0], api_name="/model_card"), model_outputs())
    assert swapped["text"]["value"] == "春风 明月 故乡"
    assert swapped["max_len"] == 70  # the poem model's own default length fits an eight-line poem
    kept = named(client.predict("tiny-mta", "山 水 夜", api_name="/model_card"), model_outputs())["text"]
    assert "value" not in kept
    prose = named(client.predict("tiny-hull", "my own text", api_name="/model_card"), model_outputs())["text"]
    assert prose["value"] == "random 8 seed 1"  # a point-set model cannot read prose: its example replaces it


def test_a_model_switch_does_not_flash_the_new_models_error_over_the_old_example(app_module):
    """#27 screenshot pass: picking a point-set model while another model's example was in the box
    showed its "cannot read this" error for a moment (the settings' change events decoded the old
    example before the new one arrived); that live run now changes nothing; typed text still errs."""
    from tests.tiny_checkpoints import EXAMPLES
    from ui.handlers import MEAN, OWN_MASK

    values = [None] * len(SETTING_NAMES) + [0, 3, True, "png", MEAN, MEAN, OWN_MASK, "auto", False, "", "", "", None, None, None, ""]
    assert app_module.handlers.trace_live("tiny-hull", EXAMPLES[0], *values) == {}
    assert "⚠" in app_module.handlers.trace_live("tiny-hull", "my own text", *values)["status"]
    assert app_module.handlers.trace_live(POINTER, EXAMPLES[0], *values)["status"].startswith("✓")


def test_controls_a_model_cannot_use_are_hidden(app_module):
    topic = app_module.handlers.model_card("tiny-mta")
    assert topic["p_gen_row"]["visible"] is False and topic["topic_row"]["visible"] is True
    pointer = app_module.handlers.model_card(POINTER)
    assert pointer["p_gen_row"]["visible"] and pointer["coverage_button"]["visible"]
    assert pointer["topic_row"]["visible"] is False
    assert topic["poem_form_box"]["visible"] is True and pointer["poem_form_box"]["visible"] is False  # poems only


def test_half_written_checkpoint_is_skipped_not_fatal(checkpoint_root, tmp_path):
    import shutil

    from ui.registry import ModelRegistry

    shutil.copytree(checkpoint_root / POINTER, tmp_path / POINTER)
    broken = tmp_path / "half-written"
    shutil.copytree(checkpoint_root / POINTER, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    registry = ModelRegistry.load(tmp_path)
    assert registry.names == [POINTER] and "half-written" in registry.errors


def test_local_models_are_off_on_a_space_unless_allowed(monkeypatch, app_module):
    monkeypatch.setenv("SPACE_ID", "someone/genscope")
    monkeypatch.delenv("GENSCOPE_ALLOW_LOCAL_MODELS", raising=False)
    with pytest.raises(ValueError, match="disabled on this server"):
        app_module.registry.get("hf:/tmp")
    monkeypatch.setenv("GENSCOPE_ALLOW_LOCAL_MODELS", "1")
    with pytest.raises(ValueError, match="is not a local model folder"):
        app_module.registry.get("hf:/no/such/folder")


def test_hub_models_only_with_the_servers_opt_in_and_under_the_size_limit(monkeypatch, tmp_path):
    """Tested offline: the Hub size lookup and download are stubbed with a tiny local folder."""
    from gen_models.models import hf_adapter
    from tests.hf_tiny import save_tiny
    from ui.registry import ModelRegistry

    registry = ModelRegistry([])
    monkeypatch.delenv("GENSCOPE_ALLOW_HUB_MODELS", raising=False)
    with pytest.raises(ValueError, match="does not download Hub models .*GENSCOPE_ALLOW_HUB_MODELS=1"):
        registry.get("hf:someone/tiny-bart")
    folder = save_tiny("bart", tmp_path / "bart")
    loads = []
    real_load = hf_adapter.load_hf
    monkeypatch.setattr(hf_adapter, "load_hf", lambda source, allow_network=False: loads.append(
        (source, allow_network)) or real_load(str(folder)))
    monkeypatch.setenv("GENSCOPE_ALLOW_HUB_MODELS", "1")
    monkeypatch.setattr(hf_adapter, "hub_weights_mb", lambda repo: 5000.0)
    with pytest.raises(ValueError, match="5,000 MB of weights, over this server's 1,024 MB limit"):
        registry.get("hf:someone/huge-model")
    monkeypatch.setattr(hf_adapter, "hub_weights_mb", lambda repo: 0.1)
    entry = registry.get("hf:someone/tiny-bart")
    assert loads == [("someone/tiny-bart", True)] and entry.title == "someone/tiny-bart"
    with pytest.raises(ValueError, match="is not a local model folder"):
        registry.get("hf:no/such/folder")


@pytest.mark.parametrize("click, expected", [
    ({"view": "attention", "customdata": 3}, (3, -1)),
    ({"view": "coverage", "customdata": 2}, (2, -1)),
    ({"view": "copy", "customdata": 4}, (4, -1)),
    ({"view": "probability", "customdata": 2}, (2, -1)),
    ({"view": "hull", "customdata": None}, (0, -1)),
    ({"view": "beam", "customdata": 17}, (0, 17)),
    ({"view": "heads", "customdata": 5}, (0, -1)),
    ({"view": "attention", "customdata": "3 · viewer"}, (0, -1)),
    ({"view": "nope", "customdata": 1}, (0, -1)),
    ({}, (0, -1)),
])
def test_plot_clicks_map_to_a_pinned_step_or_a_node(click, expected):
    from ui.handlers import clicked_selection

    assert clicked_selection(click, 0, -1) == expected


def test_transformer_tab_for_encoder_decoder_and_encoder_only_models(client, tmp_path):
    from tests.hf_tiny import save_tiny

    title = lambda output: plain(plot_json(output)["layout"]["title"]["text"].replace("<br>", " "))  # noqa: E731
    bart = save_tiny("bart", tmp_path / "bart")
    trace(client, text="w1 w2 w3 w4", model=f"hf:{bart}", max_len=4, min_len=4)
    outputs = named(client.predict(1, -1, 3, True, "png", 1, 0, "own", api_name="/views"))
    grid = plot_json(outputs["heads"])
    assert title(outputs["heads"]).startswith("Every head's attention over the source at step 1")
    assert grid["data"][0]["y"] == [f"layer {l} · head {h}" for l in range(2) for h in range(2)]
    assert title(outputs["self_attention"]).startswith("Decoder self-attention")
    assert "layer 1, head 0" in title(outputs["self_attention"])
    assert title(outputs["encoder_attention"]).startswith("Encoder self-attention")
    assert "layer 1, head 0" in title(outputs["encoder_attention"])
    assert title(outputs["mask"]) == "Attention mask: seq2seq (this model's layout)"
    outputs = named(client.predict(1, -1, 3, True, "png", "mean", "mean", "causal", api_name="/views"))
    assert title(outputs["mask"]) == "Attention mask: causal (this model uses seq2seq)"
    outputs = named(client.predict(1, -1, 3, True, "png", "mean", "mean", "query: shuffle 3", api_name="/views"))
    assert title(outputs["mask"]).startswith("Attention mask: query: shuffle 3 (this model uses seq2seq) · order z =")
    assert "lists each position 0 to" in plain(
        client.predict(1, -1, 3, True, "png", "mean", "mean", "content: 0 0", api_name="/views")[0])
    assert "mask kind must be one of own, bidirectional, causal, seq2seq" in plain(
        client.predict(1, -1, 3, True, "png", "mean", "mean", "diagonal", api_name="/views")[0])

    changed = client.predict(f"hf:{bart}", "w1 w2 w3 w4", step=1, token="w7", api_name="/intervene_token")
    assert "“w7” at step 1" in plain(changed[2])  # a tokenizer piece typed as text
    assert "tokenizer's pieces" in plain(
        client.predict(f"hf:{bart}", "w1 w2 w3 w4", step=1, token="zzz", api_name="/intervene_token")[2])

    bert = save_tiny("bert", tmp_path / "bert")
    json_text, status = trace(client, text="w1 w2 w3", model=f"hf:{bert}")
    restored = GenerationTrace.from_json(json_text)
    assert "encoder-only model" in status and restored.steps == []
    assert restored.encoder_attention.shape == (2, 2, 4, 4)
    outputs = named(client.predict(0, -1, 3, True, "png", 0, 1, "own", api_name="/views"))
    assert "layer 0, head 1" in title(outputs["encoder_attention"])
    assert title(outputs["mask"]) == "Attention mask: bidirectional (this model's layout)"
    assert "does not generate" in outputs["output"]
    assert outputs["attention"]["visible"] is False and outputs["beam"]["visible"] is False


def test_views_that_do_not_apply_are_hidden_not_drawn_empty(client):
    trace(client)
    outputs = named(client.predict(1, -1, 3, True, "png", "mean", "mean", "own", api_name="/views"))
    for name in ("heads", "self_attention", "encoder_attention", "mask", "topics", "hull", "pointer"):
        assert outputs[name] == {"__type__": "update", "visible": False}, name
    assert outputs["attention"]["visible"] and outputs["copy"]["visible"]


def test_live_updates_do_not_ship_the_trace_json(app_module):
    """The browser's per-keystroke event gets the status and views but not the 100–300 kB JSON."""
    from gen_models.decoding import SETTING_NAMES

    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None)
    api = app_module.handlers.trace(POINTER, TEXT, *values)
    live = app_module.handlers.trace_live(POINTER, TEXT, *values, "Attention", None, None, "")
    assert GenerationTrace.from_json(api["trace_json"]).steps and live["trace_json"] == ""
    assert plain(live["status"]).startswith("✓ decoded") and live["state"] is not None
    assert "coverage" not in live and "coverage" in api  # closed tabs render when opened
    assert not any(isinstance(v, str) and v.startswith('{"model"') for v in live.values())


def test_hostile_values_get_messages_not_internal_errors(client, app_module):
    assert "got a number too large for a float" in trace(client, beam_size=10**400)[1]
    assert "at most 1024 characters, got 5,000" in trace(client, model="hf:" + "x" * 5000)[1]
    assert "show_pruned must be true or false, got 'maybe'" in trace(client, show_pruned="maybe")[1]
    assert GenerationTrace.from_json(trace(client, show_pruned="false")[0]).steps
    status = client.predict(POINTER, TEXT, p_gen="1 extra", api_name="/intervene_p_gen")[2]
    assert "p_gen must be one of model, 0, 1, got '1 extra'" in plain(status)
    from gen_models.decoding import SETTING_NAMES

    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None)
    result = app_module.handlers.trace(POINTER, "libjson \ud800 parser", *values)
    assert result["trace_json"] and "lone surrogate code points" in result["status"]


def test_no_rest_route_skips_the_queue(app_url):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{app_url}gradio_api/run/trace", data=json.dumps(
        {"data": [POINTER, TEXT]}).encode(), headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code in (403, 404, 405)


def test_reference_mode_through_the_api(client):
    from ui.handlers import trace_outputs

    outputs = named(client.predict(POINTER, TEXT, reference="JSON parser library", api_name="/trace"),
                    trace_outputs())
    reference = GenerationTrace.from_json(outputs["trace_json"]).reference
    assert reference["tokens"][-1] == "</s>" and len(reference["logprobs"]) == len(reference["tokens"])
    assert reference["verdict"] in ("search error", "model error", "output cut") and \
        f"reference: **{reference['verdict']}**" in \
        outputs["status"]
    assert outputs["reference"]["visible"]
    assert "Reference mode" in plot_json(outputs["reference"])["layout"]["title"]["text"].replace("<br>", " ")
    plain_run = named(client.predict(POINTER, TEXT, api_name="/trace"), trace_outputs())
    assert GenerationTrace.from_json(plain_run["trace_json"]).reference is None
    assert plain_run["reference"] == {"__type__": "update", "visible": False}


def test_exports_and_uploads_are_bounded(app_module, tmp_path):
    from ui.handlers import MAX_EXPORT_FILES, Handlers

    handlers = Handlers(app_module.registry)
    handlers.export_dir = tmp_path / "exports"
    from gen_models.decoding import SETTING_NAMES

    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None)
    trace_ = GenerationTrace.from_json(app_module.handlers.trace(POINTER, TEXT, *values)["trace_json"])
    for _ in range(MAX_EXPORT_FILES + 10):
        handlers.export_trace(trace_)
    assert len(list(handlers.export_dir.iterdir())) == MAX_EXPORT_FILES
    assert app_module.launch_kwargs()["max_file_size"] == "1mb"


def test_foreign_host_headers_are_refused_and_security_headers_sent(app_url):
    import http.client
    from urllib.parse import urlparse

    port = urlparse(app_url).port
    for host, expected in ((f"127.0.0.1:{port}", 200), ("evil.example", 400), (f"localhost:{port}", 200)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        assert response.status == expected, host
        if expected == 200:
            assert response.getheader("X-Content-Type-Options") == "nosniff"
            assert response.getheader("Content-Security-Policy") == "frame-ancestors 'self'"
            assert response.getheader("Referrer-Policy") == "no-referrer"
        connection.close()


def test_a_tab_opened_while_a_trace_runs_is_drawn_from_the_new_trace(app_module):
    from gen_models.decoding import SETTING_NAMES

    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None)
    live = app_module.handlers.trace_live(POINTER, TEXT, *values, "Attention", None, None, "")
    assert live["rendered_tab"] == "Attention" and set(live["figures"]["views"]) == {"attention"}
    options = (3, True, "png", "mean", "mean", "own", "whole tree", False, "")
    settled = app_module.handlers.settle(live["state"], "Attention", "Attention", 0, -1, *options)
    assert "rendered_tab" not in settled and "figures" not in settled  # the tab drawn is still the open one
    assert settled["tab:Coverage"]["visible"] is True and settled["layer"].visible is False
    refreshed = app_module.handlers.settle(live["state"], "Coverage", "Attention", 0, -1, *options)
    assert refreshed["rendered_tab"] == "Coverage" and {"coverage", "topics"} >= set(refreshed["figures"]["views"])
    assert "coverage" in refreshed["figures"]["views"] and refreshed["tabs"]["selected"] == "Coverage"


def test_the_page_gets_compact_figures_without_the_template_and_in_single_precision(app_module):
    from gen_models.decoding import SETTING_NAMES

    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None)
    live = app_module.handlers.trace_live(POINTER, TEXT, *values, "Attention", None, None, "")
    api = app_module.handlers.trace(POINTER, TEXT, *values)
    heatmap = live["figures"]["views"]["attention"]
    assert "template" not in heatmap["layout"] and heatmap["data"][0]["z"]["dtype"] == "f4"
    assert heatmap["config"]["toImageButtonOptions"]["filename"] == "attention"
    full = json.loads(api["attention"]["value"].plot)
    assert full["layout"]["template"] and full["data"][0]["x"] == heatmap["data"][0]["x"]
    assert len(json.dumps(heatmap)) < 0.6 * len(api["attention"]["value"].plot)
    assert live["node"] == {"__type__": "update", "value": -1}  # the node picker's choices wait for its tab
    assert "attention" not in live and "tab:Coverage" not in live  # the page shows and hides the views itself


def test_keyword_models_take_a_keyword_through_the_api_and_others_say_they_ignore_it(client):
    json_text, status = trace(client, "a json parser for python", model="tiny-seq2bf", keyword="server")
    result = GenerationTrace.from_json(json_text)
    assert result.extra["keyword"] == "server" and "server" in result.output_text.split()
    assert "keyword: **server** (given" in status
    assert "keyword ignored: tiny-seq2seq does not build its output around a keyword" in \
        trace(client, model=SEQ2SEQ, keyword="server")[1]
    assert "the keyword must be one word" in trace(client, "a json parser", model="tiny-hgfu", keyword="two words")[1]


def test_explain_attributes_the_pinned_step_on_demand_and_the_lens_needs_a_transformer(app_url):
    session = new_client(app_url)
    trace(session, TEXT, model=POINTER, strategy="greedy", max_len=5, min_len=5)
    plot, status = session.predict(TEXT, 2, "ig", "", 16, api_name="/explain")
    assert plain(status).startswith("✓ ig for step 2") and "convergence δ" in plain(status)
    assert "attribution" in json.dumps(plot)
    status = session.predict(TEXT, 9, "ig", "", 16, api_name="/explain")[1]
    assert "step must be between 0 and 4, got 9" in plain(status)
    status = session.predict(TEXT, 1, api_name="/logit_lens")[1]
    assert "the logit lens needs a Transformer decoder; tiny-pointer-coverage is a" in plain(status)
    assert "decode something first" in plain(new_client(app_url).predict(TEXT, 0, "ig", "", 16,
                                                                        api_name="/explain")[1])


def test_only_the_tabs_a_model_can_use_are_shown(app_module):
    """Corpus needs a test split, Nearest examples training data, Copy / generate a model that
    generates (a pointer network only points: its pointers are in the Convex hull tab)."""
    from ui.handlers import tab_key

    handlers, hidden = app_module.handlers, {"__type__": "update", "visible": "hidden"}
    pointer, seq2seq = handlers.model_card(POINTER), handlers.model_card(SEQ2SEQ)
    assert pointer["corpus_tab"]["visible"] is True and pointer["neighbors_tab"]["visible"] is True
    assert seq2seq["corpus_tab"] == hidden and seq2seq["neighbors_tab"] == hidden
    values = (None,) * len(SETTING_NAMES) + (0, 3, True, "png", None, None, None, None, None, None, "", "")
    hull = handlers.trace("tiny-hull", "random 8 seed 1", *values)
    assert hull[tab_key("Copy / generate")] == hidden and hull[tab_key("Convex hull")]["visible"] is True
    assert handlers.trace(POINTER, TEXT, *values)[tab_key("Copy / generate")]["visible"] is True
    for model, text in (("tiny-memory", "random story task 1 seed 2"), ("tiny-ntm", "random copy 5 seed 1"),
                        ("tiny-caption", "random scene seed 3")):  # they copy nothing: no Copy / generate tab
        shown = handlers.trace(model, text, *values)
        assert shown[tab_key("Copy / generate")] == hidden, model
        assert (shown[tab_key("Coverage")] == hidden) == (model != "tiny-caption"), model  # regions: Σ_t α


def test_explain_offers_the_top_tokens_other_than_the_chosen_one_as_typed(app_module):
    """When beam search did not take a step's top-1, that top-1 heads the contrast choices and the
    chosen token is not among them; tokens are shown as typed (``</s>``, not ``\\</s\\>``)."""
    from gen_models.decoding import DecodeSettings, generate

    handlers = app_module.handlers
    shown = generate(handlers.registry.get(POINTER).model, TEXT, DecodeSettings(strategy="greedy", max_len=4,
                                                                               min_len=4))
    step = shown.steps[1]
    top, second = sorted(step.candidates, key=lambda c: -c.logprob)[:2]
    step.token, step.token_id = second.token, second.token_id  # as if the search kept the runner-up
    top.token = "</s>"
    status = handlers.explain(shown, TEXT, 1, "grad_x_input", "", 4)["explain_status"]
    offered = re.findall(r"`([^`]*)`", status.split("other candidates to contrast:")[1])
    assert offered[0] == "</s>" and second.token not in offered, status
    assert len(offered) == min(5, len(step.candidates) - 1)


def test_corpus_explorer_traces_the_test_split_and_a_row_opens_its_example(client, app_module):
    from gen_models.decoding import SETTING_NAMES

    rows, table, status, plot = app_module.handlers.corpus(POINTER, 3, "attention_entropy", "rouge_l",
                                                           *(None,) * len(SETTING_NAMES)).values()
    assert len(rows) == 3 and len(table) == 3 and plain(status).startswith("✓ 3 test examples")
    assert all(isinstance(r["attention_entropy"], float) and r["verdict"] for r in rows)
    assert "verdicts:" in status and plot is not None
    too_many = app_module.handlers.corpus(POINTER, 5000, "chrf", "unk_count", *(None,) * len(SETTING_NAMES))
    assert "examples must be between 1 and 500, got 5000" in too_many["corpus_status"]
    no_split = app_module.handlers.corpus(SEQ2SEQ, 3, "chrf", "unk_count", *(None,) * len(SETTING_NAMES))
    assert "has no test split" in no_split["corpus_status"]

    import gradio as gr

    opened = app_module.handlers.open_example(rows, gr.EventData(None, {"index": [1, 2], "value": "x"}))
    assert opened["text"] == rows[1]["src"] and opened["reference_text"] == rows[1]["tgt"]
    # a sorted table: the clicked cell is on screen row 0, and its row's "#" says example 2
    opened = app_module.handlers.open_example(rows, gr.EventData(None, {"index": [0, 2], "value": "x",
                                                                        "row_value": [2, "…", "…"]}))
    assert opened["text"] == rows[2]["src"] and "opened test example #2" in opened["corpus_status"]
    from app import CORPUS_COLUMNS, CORPUS_TYPES, CORPUS_WIDTHS
    assert len(CORPUS_TYPES) == len(CORPUS_WIDTHS) == len(CORPUS_COLUMNS)
    assert sum(float(w.rstrip("%")) for w in CORPUS_WIDTHS) == 100
    assert [t for t, name in zip(CORPUS_TYPES, CORPUS_COLUMNS) if name in ("ROUGE-L", "chrF", "UNK")] == ["number"] * 3
    from ui.handlers import chat_failures, corpus_table

    assert all(len(row) == len(CORPUS_COLUMNS) for row in corpus_table(rows))
    assert chat_failures({"question_reply": 1, "negative_reply": 0, "contradiction": 1, "keyword_used": 0,
                          "safe_reply": 1}) == "question, contradiction, no keyword, safe"
    assert chat_failures({"question_reply": 0, "keyword_used": None}) == ""  # no keyword model: not a failure


def test_local_models_load_only_from_under_the_model_roots(monkeypatch, app_module, tmp_path):
    """A path outside GENSCOPE_MODEL_ROOTS gets the same answer whether or not it exists."""
    monkeypatch.setenv("GENSCOPE_MODEL_ROOTS", str(tmp_path / "models"))
    answers = []
    for target in ("/etc", "~", "/no/such/folder", "../.."):
        with pytest.raises(ValueError) as error:
            app_module.registry.get(f"hf:{target}")
        answers.append(str(error.value).replace(repr(target), "X"))
    assert len(set(answers)) == 1 and "under this server's model roots" in answers[0]
    from tests.hf_tiny import save_tiny

    folder = save_tiny("bart", tmp_path / "models" / "bart")
    assert app_module.registry.get(f"hf:{folder}").model.features.architecture == "encoder-decoder"


def test_trace_fails_the_request_with_the_limit_when_a_setting_is_out_of_range(client):
    with pytest.raises(AppError, match="beam"):
        client.predict(POINTER, TEXT, beam_size=10**400, api_name="/trace")
    with pytest.raises(AppError, match="max"):
        client.predict(POINTER, TEXT, min_len=50, max_len=30, api_name="/trace")
    assert client.predict(POINTER, TEXT, api_name="/trace")[TRACE_JSON]  # the session goes on


def test_sessions_keep_no_copy_of_the_outputs_and_deep_links_are_refused(app_module, app_url):
    client = new_client(app_url)
    trace(client)
    sessions = app_module.demo.state_holder.session_data
    values = [config.get("props", {}).get("value") for session in sessions.values() for config in session.components]
    assert max(len(json.dumps(value, default=str)) for value in values) < 5_000  # a trace JSON is ~100 kB
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{app_url}gradio_api/deep_link?session_hash={client.session_hash}")
    assert refused.value.code == 404


def test_a_session_without_a_trace_keeps_its_views_and_is_told_to_decode_again(app_url):
    """Before any trace, or after the server dropped this visitor's trace, a pin or a view option
    changes nothing on screen and says how to get a trace again."""
    for api_name, values in (("/pin", (0, -1)), ("/views", (1, -1, 3, True, "png", "mean", "mean", "own", "whole tree"))):
        outputs = named(new_client(app_url).predict(*values, api_name=api_name))
        assert "No trace to show" in plain(outputs["status"]) and "most recent visitors" in plain(outputs["status"])


def test_diverse_beam_search_through_the_api(client):
    """beam_groups and diversity_penalty by name on /trace: the status line says so, every node of
    the tree but the root has its group; a bad combination is refused naming the limit."""
    text, status = trace(client, model=SEQ2SEQ, beam_size=4, beam_groups=2, diversity_penalty=1.0, max_len=6)
    assert status.startswith("✓") and "4 beams in 2 groups (diversity penalty 1.0)" in status, status
    decoded = GenerationTrace.from_json(text)
    assert (decoded.settings["beam_groups"], decoded.settings["diversity_penalty"]) == (2, 1.0)
    assert {node.extra.get("group") for node in decoded.beam if node.parent is not None} == {0, 1}
    _, status = trace(client, model=SEQ2SEQ, beam_size=4, beam_groups=3)
    assert "beam_size (4) must be a multiple of beam_groups (3)" in status, status


def test_mmi_controls_show_only_for_a_model_with_mmi_companions(app_module):
    """#33: the MMI rule, λ and γ are shown for the chat models (whose config names a reply LM and a
    reverse model), not for a summariser that cannot use them."""
    from gen_models import mmi
    from ui.handlers import setting_box

    boxes = [setting_box(name) for name in ("mmi", "mmi_lambda", "mmi_gamma")]
    card = app_module.handlers.model_card(POINTER)
    assert [card[box]["visible"] for box in boxes] == [False, False, False]
    mmi.register(POINTER)
    try:
        card = app_module.handlers.model_card(POINTER)
        assert [card[box]["visible"] for box in boxes] == [True, True, True]
    finally:
        mmi._OVERRIDES.pop(POINTER)


def test_mmi_through_the_api(client, checkpoint_root):
    """MMI-antiLM and MMI-bidi picked by name on /trace: every node of the chosen path carries its
    score before and after the rule, consistent with the rule's arithmetic; refusals name the cause."""
    import torch

    from gen_models import mmi
    from gen_models.checkpoint import load_checkpoint
    from gen_models.mmi import ReplyLM, ReplyLMConfig
    from gen_models.vocab import Vocab

    torch.manual_seed(0)
    vocab = Vocab.load(checkpoint_root / SEQ2SEQ / "vocab.txt")
    reverse = load_checkpoint(checkpoint_root / SEQ2SEQ)
    mmi.register(SEQ2SEQ, lm=ReplyLM(ReplyLMConfig(len(vocab), 8, 8), vocab).eval(), reverse=reverse)
    text, status = trace(client, model=SEQ2SEQ, mmi="antilm", mmi_lambda=0.5, mmi_gamma=3, max_len=6)
    assert status.startswith("✓"), status
    decoded = GenerationTrace.from_json(text)
    assert decoded.settings["mmi"] == "antilm" and decoded.settings["mmi_gamma"] == 3
    penalised = 0.0
    for k, node in enumerate(decoded.path()):
        assert node.extra["score_before_mmi"] == pytest.approx(node.score, abs=1e-3)
        penalised += node.extra["lm_logprob"]
        if k >= 3 or node.token == "</s>":
            assert node.extra["lm_logprob"] == 0.0
        assert node.extra["score_after_mmi"] == pytest.approx(node.score - 0.5 * penalised, abs=1e-3)
    text, status = trace(client, model=SEQ2SEQ, mmi="bidi", mmi_lambda=0.5, max_len=6)
    leaf = GenerationTrace.from_json(text).path()[-1]
    assert leaf.extra["reverse_logprob"] < 0
    assert leaf.adjusted_score == pytest.approx(leaf.extra["score_before_mmi"] + 0.5 * leaf.extra["reverse_logprob"],
                                                abs=1e-3)
    assert "reply language model" in trace(client, model=POINTER, mmi="antilm")[1]
    assert "beam search rule" in trace(client, model=SEQ2SEQ, mmi="antilm", strategy="greedy")[1]


def test_nearest_example_indexes_are_bounded_the_least_recently_used_freed(tmp_path):
    """#27 item 11: one BM25 index per exhibit stayed for good (RSS 0.9 → 1.65 GB after opening
    Nearest examples on each); at most ``kept`` stay, the least recently used is rebuilt when asked."""
    import gzip
    import json

    from ui.neighbors import NeighborIndex

    paths = []
    for name in "abc":
        path = tmp_path / f"{name}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(json.dumps({"src": f"{name} source words", "tgt": f"{name} target"}) + "\n")
        paths.append(path)
    index = NeighborIndex(kept=2)
    first = index.get(paths[0])
    index.get(paths[1])
    assert index.get(paths[0]) is first and len(index) == 2  # used again: it stays
    index.get(paths[2])  # the least recently used (b) is freed
    assert len(index) == 2 and index.get(paths[0]) is first
    assert list(index.get(paths[1]).targets) == ["b target"] and len(index) == 2  # rebuilt on demand


def test_a_live_run_of_what_the_page_already_shows_changes_nothing(app_module):
    """#27 item 3: one edit fires several change events (and a model switch's card sets every setting);
    a late run of the inputs the page already shows decoded them again and reset the search-tree node
    the user had selected since. Such a run now changes nothing; any other input decodes."""
    from ui.handlers import MEAN, OWN_MASK

    handlers = app_module.handlers
    values = [None] * len(SETTING_NAMES) + [0, 3, True, "png", MEAN, MEAN, OWN_MASK, "auto", False, "", "", ""]
    first = handlers.trace_live(POINTER, TEXT, *values, "Attention", None, None, "")
    assert first["state"] is not None and first["decoded_from"]
    assert handlers.trace_live(POINTER, TEXT, *values, "Attention", None, first["state"], first["decoded_from"]) == {}
    beam = SETTING_NAMES.index("beam_size")
    four, four_point_oh = list(values), list(values)
    four[beam], four_point_oh[beam] = 4, "4.0"
    assert handlers.decode_inputs(POINTER, TEXT, four) == handlers.decode_inputs(POINTER, TEXT, four_point_oh)
    again = handlers.trace_live(POINTER, TEXT + " more", *values, "Attention", None, first["state"],
                                first["decoded_from"])
    assert again["state"] is not None and again["decoded_from"] != first["decoded_from"]
    dropped = handlers.trace_live(POINTER, TEXT, *values, "Attention", None, None, first["decoded_from"])
    assert dropped["state"] is not None  # the page's trace was dropped from the store: decode again


def test_a_duplicate_live_run_sent_before_the_first_replied_keeps_the_pin_made_meanwhile(app_module):
    """A model switch's card sets the input and every setting; each change event sends a live run
    carrying the page's values from before the first reply (no trace yet, the old pinned step). The
    first decodes; the rest change nothing, so the step the user pinned meanwhile stays."""
    from types import SimpleNamespace

    from ui.handlers import MEAN, OWN_MASK

    handlers = app_module.handlers
    visitor, other = SimpleNamespace(session_hash="visitor-1"), SimpleNamespace(session_hash="visitor-2")
    values = [None] * len(SETTING_NAMES) + [2, 3, True, "png", MEAN, MEAN, OWN_MASK, "auto", False, "", "", ""]
    first = handlers.trace_live(POINTER, TEXT + " pinned", *values, "Attention", None, None, "", request=visitor)
    assert first["state"] is not None and first["pinned"].value == 2
    late = handlers.trace_live(POINTER, TEXT + " pinned", *values, "Attention", None, None, "", request=visitor)
    assert late == {}
    theirs = handlers.trace_live(POINTER, TEXT + " pinned", *values, "Attention", None, None, "", request=other)
    assert theirs["state"] is not None


def test_models_load_on_first_use_and_the_index_finds_the_pair_that_shares_rare_words(checkpoint_root, tmp_path):
    """#33: the registry reads configs at start and builds a model when it is first asked for; the
    nearest-example index (bm25s) ranks the training pair that shares the query's rare words first."""
    import gzip
    import json

    from ui.neighbors import build_index
    from ui.registry import ModelRegistry

    registry = ModelRegistry.load(checkpoint_root)
    entry = registry.get(POINTER)
    assert entry.loaded is None
    assert entry.model is entry.model and entry.loaded is not None  # built once, then kept
    path = tmp_path / "train.jsonl.gz"
    rows = [("a tool for the terminal", "terminal tool"), ("library to parse xml files", "xml parser"),
            ("a game with cards", "card game")]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"src": s, "tgt": t}) + "\n" for s, t in rows)
    hits = build_index(path).search("parse my xml please")
    assert hits and hits[0].tgt == "xml parser" and all(h.score > 0 for h in hits)


def test_the_queue_keeps_no_event_history_and_summarises_none(app_module, app_url, monkeypatch):
    """Gradio's queue would keep the last 10,000 events and rebuild a pandas summary of them after
    every event (for a monitoring dashboard the app does not enable): CPU per event that grows with
    the server's history. The app starts it with a one-event history that is never summarised."""
    queue = app_module.demo._queue
    summaries = []
    monkeypatch.setattr(queue, "_get_df", lambda records: summaries.append(len(records)))
    client = new_client(app_url)
    for text in ("libfoo: a library", "libbar: a tool", TEXT):
        trace(client, text)
    assert len(queue.event_analytics) <= 1
    assert summaries == []
