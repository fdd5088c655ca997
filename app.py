"""GenScope: a visual debugger for neural text generators (Gradio app; Hugging Face Spaces entry).

This file only lays out the interface and wires events; the logic lives in ``ui/`` (handlers,
validation, model registry) and ``visualizers/`` (pure trace → figure functions). Events take their
inputs unprocessed (``preprocess=False``): ``ui.validation`` checks every value itself and names the
limit in its message, for browser and API clients alike.

    python app.py     # http://127.0.0.1:7860 (0.0.0.0 when $SPACE_ID is set; port: $GRADIO_SERVER_PORT)

Environment: ``GENSCOPE_CHECKPOINTS`` (checkpoint root, default ``checkpoints/``),
``GENSCOPE_ALLOW_LOCAL_MODELS`` (``hf:PATH`` models; on by default, off on a Space),
``GENSCOPE_ALLOW_HUB_MODELS`` / ``GENSCOPE_MAX_HUB_MODEL_MB`` (``hf:ORG/NAME`` downloads; off by default),
``GENSCOPE_TORCH_THREADS`` (intra-op threads per request, default 1), ``GRADIO_SERVER_PORT``, ``SPACE_ID``.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "0" if os.environ.get("GENSCOPE_ALLOW_HUB_MODELS") == "1" else "1")

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from gen_models.decoding import LIMITS, STRATEGIES  # noqa: E402
from ui.handlers import CHOSEN_NODE, DEFAULT_EXAMPLE, DEFAULT_INPUT_HINT, MEAN, OWN_MASK, Handlers  # noqa: E402
from ui.plots import IMAGE_FORMATS  # noqa: E402
from ui.registry import ModelRegistry, get_registry, hub_models_allowed, local_models_allowed  # noqa: E402
from ui.validation import DEFAULTS, MAX_INPUT_CHARS  # noqa: E402
from visualizers import MASK_KINDS  # noqa: E402

PREFERRED_MODELS = ("debian-pointer-coverage", "debian-pointer", "debian-seq2seq")
QUEUE_CONCURRENCY = 2
QUEUE_MAX_SIZE = 64
SESSION_CAPACITY = 200  # per-user traces kept in memory (oldest sessions dropped first)

TOKEN_CLICK_JS = """
element.addEventListener('click', (event) => {
  const token = event.target.closest('[data-step]');
  if (token) trigger('click', {step: Number(token.dataset.step)});
});
"""

PLOT_CLICK_BRIDGE_JS = """
const plots = {attention: 'attention-plot', coverage: 'coverage-plot', copy: 'copy-plot', beam: 'beam-plot',
               self_attention: 'self-attention-plot'};
const bind = () => {
  for (const [name, id] of Object.entries(plots)) {
    const graph = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!graph || typeof graph.on !== 'function' || graph.dataset.genscopeBound) continue;
    graph.dataset.genscopeBound = '1';
    graph.on('plotly_click', (data) => {
      const point = data.points && data.points[0];
      if (!point) return;
      trigger('click', {plot: name, x: String(point.x), y: String(point.y),
                        customdata: point.customdata ?? null,
                        xaxis: point.xaxis ? point.xaxis._id : null, yaxis: point.yaxis ? point.yaxis._id : null});
    });
  }
};
new MutationObserver(bind).observe(document.body, {childList: true, subtree: true});
bind();
"""

CSS = """
#output-tokens { min-height: 3.2em; padding: 6px 2px; }
#output-tokens .gs-tok:hover { filter: brightness(0.88); }
#plot-bridge { font-size: 0.85rem; color: var(--body-text-color-subdued); }
.gs-status { font-size: 0.9rem; }
"""

INTRO = """# GenScope
A visual debugger for neural text generators: type and watch every decoding step — attention, coverage,
the pointer-generator's copy/generate switch (p_gen) and the whole beam-search tree."""


def settings_panel() -> list[gr.components.Component]:
    """The decoding controls, in ``ui.validation.SETTING_NAMES`` order."""
    strategy = gr.Radio(list(STRATEGIES), value=DEFAULTS.strategy, label="Strategy")
    beam_size = gr.Slider(*LIMITS["beam_size"], step=1, value=DEFAULTS.beam_size, label="Beam size")
    with gr.Row():
        max_len = gr.Slider(*LIMITS["max_len"], step=1, value=DEFAULTS.max_len, label="Max length")
        min_len = gr.Slider(*LIMITS["min_len"], step=1, value=DEFAULTS.min_len, label="Min length")
    with gr.Row():
        length_penalty = gr.Slider(*LIMITS["length_penalty"], step=0.1, value=DEFAULTS.length_penalty,
                                   label="Length penalty α")
        coverage_penalty = gr.Slider(*LIMITS["coverage_penalty"], step=0.1, value=DEFAULTS.coverage_penalty,
                                     label="Coverage penalty β")
    no_repeat_ngram = gr.Slider(*LIMITS["no_repeat_ngram"], step=1, value=DEFAULTS.no_repeat_ngram,
                                label="Block repeated n-grams of size (0 = off)")
    with gr.Accordion("Sampling", open=False):
        temperature = gr.Slider(*LIMITS["temperature"], step=0.05, value=DEFAULTS.temperature, label="Temperature")
        top_k = gr.Slider(*LIMITS["top_k"], step=1, value=DEFAULTS.top_k, label="Top-k (0 = off)")
        top_p = gr.Slider(*LIMITS["top_p"], step=0.01, value=DEFAULTS.top_p, label="Top-p")
        seed = gr.Number(value=DEFAULTS.seed, precision=0, minimum=LIMITS["seed"][0], maximum=LIMITS["seed"][1],
                         label="Seed")
    return [strategy, beam_size, max_len, min_len, length_penalty, coverage_penalty, no_repeat_ngram,
            temperature, top_k, top_p, seed]


def build_demo(registry: ModelRegistry, handlers: Handlers) -> gr.Blocks:
    """Lay out the interface and wire every event (each with an ``api_name``)."""
    with gr.Blocks(title="GenScope", fill_width=True, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        c = SimpleNamespace(state=gr.State(None, time_to_live=3600))
        with gr.Row():
            with gr.Column(scale=1, min_width=340):
                input_column(c, registry)
            with gr.Column(scale=3):
                view_column(c)
                with gr.Tabs():
                    view_tabs(c)
                    intervention_tab(c)
                    compare_tab(c, registry)
                    side_tabs(c)
        c.trace_json = gr.Textbox(visible=False, label="trace JSON")  # filled for API clients only
        c.trace_api = gr.Button(visible=False)  # carries the /trace endpoint
        wire_live_views(demo, c, handlers)
        wire_actions(c, handlers)
    demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


def input_column(c: SimpleNamespace, registry: ModelRegistry) -> None:
    """Model, examples, input text, decoding settings and the status line."""
    default_model = registry.default_name(PREFERRED_MODELS)
    entry = registry.entries.get(default_model)
    hints = (["hf:/path/to/a/local/model"] if local_models_allowed() else []) + (
        ["hf:org/name from the Hub"] if hub_models_allowed() else [])
    c.model = gr.Dropdown(registry.choices(), value=default_model, label="Model (exhibit › model)",
                          allow_custom_value=bool(hints), info=f"or type {' or '.join(hints)}" if hints else None)
    c.examples = gr.Dropdown([], value=None, label="Examples", info="pick one to fill the input")
    c.text = gr.Textbox(value=entry.examples[0] if entry and entry.examples else DEFAULT_EXAMPLE, lines=7,
                        max_lines=16, label="Input", placeholder=DEFAULT_INPUT_HINT,
                        max_length=MAX_INPUT_CHARS * 5, elem_id="input-text")
    with gr.Accordion("Decoding settings", open=True):
        c.settings = settings_panel()
    c.status = gr.Markdown(elem_classes="gs-status", elem_id="status")


def view_column(c: SimpleNamespace) -> None:
    """The output tokens, the pinned step, layer/head pickers and the click bridge."""
    c.output_tokens = gr.HTML(js_on_load=TOKEN_CLICK_JS, elem_id="output-tokens", label="Output")
    c.pinned = gr.Slider(0, 1, step=1, value=0, label="Pinned step (or click a token / heatmap row)",
                         elem_id="pinned-step")
    with gr.Row():
        c.layer = gr.Dropdown([MEAN], value=MEAN, label="Attention layer", visible=False)
        c.head = gr.Dropdown([MEAN], value=MEAN, label="Attention head", visible=False)
    c.bridge = gr.HTML("Tip: click an output token, a heatmap row or a search-tree node to select it.",
                       js_on_load=PLOT_CLICK_BRIDGE_JS, elem_id="plot-bridge")


def view_tabs(c: SimpleNamespace) -> None:
    """One tab per view of the trace."""
    with gr.Tab("Attention"):
        c.attention_plot = gr.Plot(show_label=False, elem_id="attention-plot")
    with gr.Tab("Coverage"):
        c.repeat_n = gr.Slider(0, 6, step=1, value=3, label="Mark repeated output n-grams of size")
        c.topics_plot = gr.Plot(show_label=False, elem_id="topics-plot", visible=False)
        c.coverage_plot = gr.Plot(show_label=False, elem_id="coverage-plot")
    with gr.Tab("Copy / generate"):
        c.copy_plot = gr.Plot(show_label=False, elem_id="copy-plot")
    with gr.Tab("Beam tree"):
        with gr.Row():
            c.node = gr.Dropdown([("chosen output", CHOSEN_NODE)], value=CHOSEN_NODE, allow_custom_value=True,
                                 label="Inspect hypothesis (node)", elem_id="node-select", scale=3)
            c.show_pruned = gr.Checkbox(value=True, label="Show pruned candidates", scale=1)
        c.beam_plot = gr.Plot(show_label=False, elem_id="beam-plot")
        c.hypothesis_plot = gr.Plot(show_label=False, elem_id="hypothesis-plot")
    with gr.Tab("Transformer"):
        gr.Markdown("Transformer models only (pick the layer and head above): every head's attention at the "
                    "pinned step, the decoder's attention over its own output prefix, the encoder's attention "
                    "over the source, and the attention mask.")
        c.heads_plot = gr.Plot(show_label=False, elem_id="heads-plot")
        c.self_attention_plot = gr.Plot(show_label=False, elem_id="self-attention-plot")
        c.encoder_attention_plot = gr.Plot(show_label=False, elem_id="encoder-attention-plot")
        c.mask_kind = gr.Radio([("this model's", OWN_MASK), *[(k, k) for k in MASK_KINDS]], value=OWN_MASK,
                               label="Attention mask over source ‖ output",
                               info=" · ".join(MASK_KINDS.values()))
        c.mask_plot = gr.Plot(show_label=False, elem_id="mask-plot")


def intervention_tab(c: SimpleNamespace) -> None:
    """Alternative token, forced p_gen, coverage reset and topic coverage at the pinned step."""
    with gr.Tab("Interventions"):
        gr.Markdown("Change one thing at the **pinned step** and decode again; the new output is shown beside "
                    "the original, step by step.")
        with gr.Row():
            c.alternative = gr.Dropdown([], value=None, label="Alternative token at the pinned step",
                                        allow_custom_value=True, scale=3)
            c.take_button = gr.Button("Take it and re-decode", scale=1)
        with gr.Row():
            c.p_gen_choice = gr.Radio([("model's own", "model"), ("0 — always copy", "0"),
                                       ("1 — always generate", "1")], value="0", label="Force p_gen", scale=3)
            c.p_gen_button = gr.Button("Force p_gen and re-decode", scale=1)
        c.coverage_button = gr.Button("Reset coverage at the pinned step and re-decode")
        with gr.Row():
            c.topic = gr.Dropdown([], value=None, label="Topic (topic-to-text models)", scale=2)
            c.topic_value = gr.Slider(0, 10, step=0.05, value=1.0, label="Set its coverage to", scale=2)
            c.topic_button = gr.Button("Set topic coverage at the pinned step and re-decode", scale=1)
        c.intervention_status = gr.Markdown()
        c.intervention_diff = gr.HTML()
        c.intervention_plot = gr.Plot(show_label=False)


def compare_tab(c: SimpleNamespace, registry: ModelRegistry) -> None:
    """Run B: another model and/or other search settings on the same input."""
    others = [n for n in registry.names if n != c.model.value]
    with gr.Tab("Compare"):
        gr.Markdown("Run **B** on the same input: another model and/or other search settings (B inherits A's "
                    "other settings). Differing steps are highlighted.")
        with gr.Row():
            c.model_b = gr.Dropdown(registry.choices(), value=others[0] if others else c.model.value,
                                    label="Model B")
            c.strategy_b = gr.Radio(list(STRATEGIES), value=DEFAULTS.strategy, label="Strategy B")
        with gr.Row():
            c.beam_b = gr.Slider(*LIMITS["beam_size"], step=1, value=DEFAULTS.beam_size, label="Beam B")
            c.length_penalty_b = gr.Slider(*LIMITS["length_penalty"], step=0.1, value=0.0, label="Length penalty B")
            c.coverage_penalty_b = gr.Slider(*LIMITS["coverage_penalty"], step=0.1, value=0.0,
                                             label="Coverage penalty B")
            c.no_repeat_b = gr.Slider(*LIMITS["no_repeat_ngram"], step=1, value=0, label="Block n-grams B")
        c.compare_button = gr.Button("Compare A and B", variant="primary")
        c.compare_status = gr.Markdown()
        c.compare_diff = gr.HTML()
        c.compare_plot = gr.Plot(show_label=False)


def side_tabs(c: SimpleNamespace) -> None:
    """Model card, nearest training examples and export."""
    with gr.Tab("Model card"):
        c.card_status = gr.Markdown()
        c.curves_plot = gr.Plot(show_label=False)
        c.card = gr.Markdown()
    with gr.Tab("Nearest examples") as c.neighbors_tab:
        c.neighbors_button = gr.Button("Find the training pairs closest to the input (BM25)")
        c.neighbors_status = gr.Markdown()
        c.neighbors_table = gr.Dataframe(headers=["BM25 score", "training source", "training target"],
                                         datatype=["number", "str", "str"], interactive=False, wrap=True)
    with gr.Tab("Export"):
        c.image_format = gr.Radio(list(IMAGE_FORMATS), value="png", label="Plot toolbar camera button saves as")
        with gr.Row():
            c.trace_button = gr.Button("Trace JSON")
            c.report_button = gr.Button("Standalone HTML report of the current views")
        c.export_status = gr.Markdown()
        c.export_file = gr.File(label="Download", interactive=False)


def wire_live_views(demo: gr.Blocks, c: SimpleNamespace, handlers: Handlers) -> None:
    """Typing, settings and model changes re-decode; pins, nodes, clicks and view options re-render."""
    views = [c.output_tokens, c.attention_plot, c.coverage_plot, c.copy_plot, c.topics_plot, c.beam_plot,
             c.hypothesis_plot, c.alternative,
             c.heads_plot, c.self_attention_plot, c.encoder_attention_plot, c.mask_plot]
    options = [c.repeat_n, c.show_pruned, c.image_format, c.layer, c.head, c.mask_kind]
    trace_inputs = [c.model, c.text, *c.settings, c.pinned, *options]
    trace_outputs = [c.state, c.trace_json, c.status, c.pinned, c.node, c.layer, c.head, c.topic, *views]
    live = dict(trigger_mode="always_last", show_progress="minimal", preprocess=False)
    quiet = dict(show_progress="hidden", preprocess=False)
    live_outputs = [o for o in trace_outputs if o is not c.trace_json]
    c.trace_api.click(handlers.trace, trace_inputs, trace_outputs, api_name="trace", preprocess=False)
    gr.on([c.text.change, *[s.change for s in c.settings]], handlers.trace_live, trace_inputs, live_outputs,
          api_name="trace_live", api_visibility="undocumented", **live)
    gr.on([demo.load, c.model.change], handlers.model_card, [c.model, c.text],
          [c.curves_plot, c.card, c.card_status, c.examples, c.text], api_name="model_card", preprocess=False,
          ).then(handlers.trace_live, trace_inputs, live_outputs, api_name="trace_for_model",
                 api_visibility="undocumented", **live)
    view_inputs = [c.state, c.pinned, c.node, *options]
    c.pinned.input(handlers.views, view_inputs, [c.status, *views], trigger_mode="always_last", api_name="pin",
                   **quiet)
    c.node.input(handlers.views, view_inputs, [c.status, *views], trigger_mode="always_last",
                 api_name="select_node", **quiet)
    gr.on([o.input for o in options], handlers.views, view_inputs, [c.status, *views], trigger_mode="always_last",
          api_name="views", **quiet)
    c.output_tokens.click(handlers.token_click, [c.state, c.node, *options], [c.status, c.pinned, *views],
                          api_name="pin_token", **quiet)
    c.bridge.click(handlers.plot_click, view_inputs, [c.status, c.pinned, c.node, *views], api_name="plot_click",
                   **quiet)
    c.examples.input(handlers.pick_example, [c.examples], [c.text], api_name="pick_example", preprocess=False)


def wire_actions(c: SimpleNamespace, handlers: Handlers) -> None:
    """Interventions, comparison, nearest examples and export."""
    base = [c.model, c.text, *c.settings]
    shown = [c.intervention_diff, c.intervention_plot, c.intervention_status]
    raw = dict(preprocess=False)
    c.take_button.click(handlers.intervene_token, [*base, c.pinned, c.alternative], shown,
                        api_name="intervene_token", **raw)
    c.p_gen_button.click(handlers.intervene_p_gen, [*base, c.p_gen_choice], shown, api_name="intervene_p_gen", **raw)
    c.coverage_button.click(handlers.intervene_coverage, [*base, c.pinned], shown, api_name="intervene_coverage",
                            **raw)
    c.topic_button.click(handlers.intervene_topic, [*base, c.pinned, c.topic, c.topic_value], shown,
                         api_name="intervene_topic", **raw)
    b_controls = [c.model_b, c.strategy_b, c.beam_b, c.length_penalty_b, c.coverage_penalty_b, c.no_repeat_b]
    gr.on([c.compare_button.click, c.model_b.change, c.strategy_b.change,
           *[s.release for s in (c.beam_b, c.length_penalty_b, c.coverage_penalty_b, c.no_repeat_b)]],
          handlers.compare, [*base, *b_controls], [c.compare_diff, c.compare_plot, c.compare_status],
          trigger_mode="always_last", api_name="compare", **raw)
    gr.on([c.neighbors_button.click, c.neighbors_tab.select], handlers.nearest_examples, [c.model, c.text],
          [c.neighbors_table, c.neighbors_status], trigger_mode="always_last", api_name="neighbors", **raw)
    c.trace_button.click(handlers.export_trace, [c.state], [c.export_file, c.export_status], api_name="export_trace",
                         **raw)
    c.report_button.click(handlers.export_report, [c.state, c.pinned, c.node, c.repeat_n, c.show_pruned,
                                                   c.image_format, c.layer, c.head, c.mask_kind],
                          [c.export_file, c.export_status], api_name="export_report", **raw)


def launch_kwargs() -> dict:
    """Server settings: localhost unless on a Space, ``$GRADIO_SERVER_PORT`` honoured, theme and CSS."""
    return dict(
        server_name="0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1",
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        theme=gr.themes.Soft(primary_hue="blue", font=["Inter", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"]),
        css=CSS, ssr_mode=False, show_error=False, state_session_capacity=SESSION_CAPACITY,
        run_history=False,  # the browser would store every keystroke's outputs (~0.3 MB) in sessionStorage
    )


torch.set_num_threads(int(os.environ.get("GENSCOPE_TORCH_THREADS", "1")))
registry = get_registry()
handlers = Handlers(registry)
demo = build_demo(registry, handlers)

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
