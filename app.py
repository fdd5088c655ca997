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

import inspect
import os
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "0" if os.environ.get("GENSCOPE_ALLOW_HUB_MODELS") == "1" else "1")
# Gradio's queue recomputes a pandas summary of its last 10,000 events after every event, for a
# monitoring dashboard this app does not enable: 1-7 ms of CPU per event, growing with the history.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(10**12))
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1")

from ui.gradio_import import skip_stub_writing  # noqa: E402

skip_stub_writing()  # Gradio's import would parse every component's source to rewrite its type stubs
import gradio as gr  # noqa: E402
from gradio.context import LocalContext  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import torch  # noqa: E402

from gen_models.decoding import COMPARE_NAMES, SETTING_FIELDS, SETTING_NAMES  # noqa: E402
from ui import budget, page_plots, security  # noqa: E402
from ui.handlers import (  # noqa: E402
    CHOSEN_NODE,
    CORPUS_COLUMNS,
    CORPUS_TYPES,
    CORPUS_WIDTHS,
    CORPUS_VIEW,
    DEFAULT_EXAMPLE,
    DEFAULT_INPUT_HINT,
    INTERVENTIONS_TAB,
    MAX_CORPUS_EXAMPLES,
    MEAN,
    OWN_MASK,
    SESSION_TRACES,
    TRACE_CONTROLS,
    Handlers,
    model_outputs,
    setting_box,
    tab_key,
    trace_outputs,
    view_outputs,
)
from ui.picture import picture_editor, picture_text  # noqa: E402
from gen_models.attribution import MAX_STEPS as MAX_IG_STEPS  # noqa: E402
from ui.plots import IMAGE_FORMATS  # noqa: E402
from ui.registry import ModelRegistry, get_registry, hub_models_allowed, local_models_allowed  # noqa: E402
from ui.service import limit_allocator  # noqa: E402
from ui.sessions import TraceRef, keep_no_output_copies  # noqa: E402
from ui.validation import MAX_INPUT_CHARS  # noqa: E402
from visualizers import MASK_KINDS, TREE_FOCI, VIEWS  # noqa: E402
from visualizers.corpus import NUMERIC  # noqa: E402
from visualizers.registry import tabs  # noqa: E402
from visualizers.transformer import PERMUTATION_KINDS  # noqa: E402

PREFERRED_MODELS = ("debian-pointer-coverage", "debian-pointer", "debian-seq2seq")
# requests at once (ui/budget.py): decodes and renders share WORK's slots, attribution and reports HEAVY's,
# corpus runs CORPUS's; every event below is in one of them
DECODE = WORK = budget.concurrency("work")
HEAVY, CORPUS = budget.concurrency("heavy"), budget.concurrency("corpus")
SESSION_CAPACITY = SESSION_TRACES  # visitors' sessions kept (their traces are in handlers.traces, bounded in bytes)

TOKEN_CLICK_JS = """
element.addEventListener('click', (event) => {
  const token = event.target.closest('[data-step]');
  if (token) trigger('click', {step: Number(token.dataset.step)});
});
"""

PLOT_CLICK_BRIDGE_JS = """
// a click on a corpus column's name sorts by it (ascending, then descending), through the column's
// own menu (Gradio's header click only focuses it): the menu's first two items sort
document.addEventListener('click', (event) => {
  const name = event.target.closest('#corpus-table th .header-content');
  const header = name && name.closest('th'), menu = header && header.querySelector('.cell-menu-button');
  if (!menu) return;
  event.stopPropagation();  // Gradio's own header click would close the menu opened below
  const descending = header.dataset.gsSort === 'ascending';
  setTimeout(() => menu.click(), 0);
  let tries = 0;
  const pick = () => {
    const items = [...document.querySelectorAll('[role=menuitem]')];
    if (items.length < 2) { if (tries++ < 20) setTimeout(pick, 25); return; }
    items[descending ? 1 : 0].click();
    for (const other of document.querySelectorAll('#corpus-table th')) delete other.dataset.gsSort;
    header.dataset.gsSort = descending ? 'descending' : 'ascending';
  };
  setTimeout(pick, 30);
}, true);
const bind = () => {
  for (const box of document.querySelectorAll('[id^="view-"]')) {
    const graph = box.querySelector('.js-plotly-plot');
    if (!graph || typeof graph.on !== 'function' || graph.dataset.genscopeBound) continue;
    graph.dataset.genscopeBound = '1';
    graph.on('plotly_click', (data) => {
      const point = data.points && data.points[0];
      if (!point) return;
      trigger('click', {view: box.id.slice(5), customdata: point.customdata ?? null});
    });
  }
};
new MutationObserver(bind).observe(document.body, {childList: true, subtree: true});
bind();
"""

CSS = page_plots.CSS + """
#output-tokens { min-height: 3.2em; padding: 6px 2px; }
#output-tokens .gs-tok:hover { filter: brightness(0.88); }
#plot-bridge { font-size: 0.85rem; color: var(--body-text-color-subdued); }
.gs-status { font-size: 0.9rem; }
/* phones: the input, then the output and its views, then the decoding settings */
@media (max-width: 720px) {
  #main-row { flex-direction: column; }
  #input-column { display: contents; }
  #input-column > .form { display: contents; }
  #input-column > *, #input-column > .form > * { order: 1; }  /* a picture editor is not in a .form */
  #output-column { order: 2; }
  #input-column > .form > #reference-text, #settings-panel { order: 3; }
  #input-text textarea { max-height: 8em; }
  #intro p { display: none; }
  /* a plot keeps a readable width (source labels, tree nodes) and scrolls sideways in its own box */
  #output-column, #output-column .tabs, #output-column .tabitem { min-width: 0 !important; max-width: 100%; }
  [id^="view-"].block, #explain-plot, #lens-plot, #intervention-plot, #compare-plot, #curves-plot {
    overflow-x: auto; max-width: 100%; }
  [id^="view-"] .js-plotly-plot:has(.xtick), #explain-plot .js-plotly-plot:has(.xtick),
  #lens-plot .js-plotly-plot:has(.xtick), #intervention-plot .js-plotly-plot:has(.xtick),
  #compare-plot .js-plotly-plot:has(.xtick) {
    min-width: 680px; }  /* not a message-only figure (no axes): it stays the screen's width */
  #view-beam .js-plotly-plot:has(.xtick) { min-width: 1000px !important; }  /* beam_tree.TREE_LABEL_PX */
  #view-hull .js-plotly-plot, #view-latent_map .js-plotly-plot, #view-picture .js-plotly-plot {
    min-width: 0 !important; }  /* maps of points and pictures: they shrink to the screen as a whole */
  #output-column .row { flex-wrap: wrap; }  /* controls side by side on a desktop: one a line */
  #output-column .row > *, #output-column .form > * { flex: 1 1 100% !important; min-width: 100% !important; }
  /* the plot toolbar above the figure, never over its title */
  .js-plotly-plot .plot-container .svg-container { margin-top: 30px; }
  .js-plotly-plot .modebar-container { top: -30px !important; }
}
"""

# page-level rules outside the app's own box (Gradio scopes ``css`` to elements inside it)
HEAD = """<style>
@media (max-width: 720px) { .gradio-container .main.fillable { padding: 8px 6px; } }
</style>""" + page_plots.head_script()

INTRO = """# GenScope
A visual debugger for neural text generators: type and watch every decoding step — attention, coverage,
the pointer-generator's copy/generate switch (p_gen) and the whole beam-search tree."""


def setting_control(name: str, value=None, label: str = "") -> gr.components.Component:
    """The control of one decoding setting, built from its field's metadata (label, limits, step);
    the model card event sets it to the chosen model's default."""
    f = SETTING_FIELDS[name]
    meta, value = f.metadata, f.default if value is None else value
    label = label or meta["label"]
    if meta["choices"]:
        return gr.Radio(list(meta["choices"]), value=value, label=label)
    if isinstance(f.default, bool):
        return gr.Checkbox(value=value, label=label, info=meta["help"])
    if meta["high"] - meta["low"] > 10_000:
        return gr.Number(value=value, precision=0, minimum=meta["low"], maximum=meta["high"], label=label)
    return gr.Slider(meta["low"], meta["high"], step=meta["step"], value=value, label=label)


def settings_panel() -> tuple[dict[str, gr.components.Component], dict[str, gr.Group]]:
    """The decoding controls by setting name, in ``SETTING_NAMES`` order, grouped by panel; and the
    box around each control that only some models can use (``feature``), by ``setting_box(name)``."""
    controls, boxes = {}, {}

    def add(name: str) -> None:
        if not SETTING_FIELDS[name].metadata["feature"]:
            controls[name] = setting_control(name)
            return
        with gr.Group() as boxes[setting_box(name)]:
            controls[name] = setting_control(name)

    for name in SETTING_NAMES:
        if SETTING_FIELDS[name].metadata["panel"] == "search":
            add(name)
    with gr.Accordion("Sampling", open=False):
        for name in SETTING_NAMES:
            if SETTING_FIELDS[name].metadata["panel"] == "sampling":
                add(name)
    return {name: controls[name] for name in SETTING_NAMES}, boxes


def build_demo(registry: ModelRegistry, handlers: Handlers) -> gr.Blocks:
    """Lay out the interface and wire every event (each with an ``api_name``)."""
    with gr.Blocks(title="GenScope", fill_width=True, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        c = SimpleNamespace(state=gr.State(None, time_to_live=3600), tab=gr.State(None),
                            rendered_tab=gr.State(None),  # the open tab, and the tab the views were drawn for
                            shared=gr.State(None),  # the shared view being opened (ui.handlers.restore_model)
                            decoded_from=gr.State(""))  # what the page's trace was decoded from (trace_live)
        with gr.Row(elem_id="main-row"):
            with gr.Column(scale=1, min_width=340, elem_id="input-column"):
                input_column(c, registry)
            with gr.Column(scale=3, elem_id="output-column"):
                view_column(c)
                # every tab's name stays in view (wrapped), none behind an unlabelled "⋯" menu
                # (its id is not "view-…": the plot click bridge binds every element whose id starts so)
                with gr.Tabs(overflow_behavior="wrap", elem_id="output-tabs") as c.tabs:
                    view_tabs(c)
                    intervention_tab(c)
                    explain_tab(c)
                    corpus_tab(c)
                    compare_tab(c, registry)
                    side_tabs(c)
        c.trace_json = gr.Textbox(visible=False, label="trace JSON")  # filled for API clients only
        c.trace_api = gr.Button(visible=False)  # carries the /trace endpoint
        c.views_api = gr.Button(visible=False)  # carries /pin, /select_node and /views (gr.Plot payloads)
        c.figures = gr.JSON(visible=False)  # the open tab's figures, drawn by the page (ui/page_plots.py)
        c.plotly_loader = gr.Plot(go.Figure(layout_template="none"), show_label=False,
                                  elem_id="plotly-loader")  # makes Gradio load Plotly at start
        # /trace's settings: empty by default, so an API client that leaves one out gets the model's default
        c.api_settings = [gr.Textbox(None, visible=False, label=name) for name in SETTING_NAMES]
        c.by_name, c.traces = named_components(c), handlers.traces
        wire_live_views(demo, c, handlers)
        wire_actions(c, handlers)
    # api_open=False: no REST route skips the queue; every event has a concurrency group of ui/budget.py
    demo.queue(default_concurrency_limit=1, max_size=budget.current().queue_size, api_open=False)
    budget.guard_queue(demo)  # what one session or client may queue
    return demo


def input_column(c: SimpleNamespace, registry: ModelRegistry) -> None:
    """Model, examples, input text, the optional reference output and the decoding settings."""
    default_model = registry.default_name(PREFERRED_MODELS)
    entry = registry.entries.get(default_model)
    hints = (["hf:/path/to/a/local/model"] if local_models_allowed() else []) + (
        ["hf:org/name from the Hub"] if hub_models_allowed() else [])
    c.model = gr.Dropdown(registry.choices(), value=default_model, label="Model (name — exhibit › model)",
                          allow_custom_value=bool(hints), info=f"or type {' or '.join(hints)}" if hints else None)
    c.examples = gr.Dropdown([], value=None, label="Examples", info="pick one to fill the input")
    c.text = gr.Textbox(value=entry.examples[0] if entry and entry.examples else DEFAULT_EXAMPLE, lines=7,
                        max_lines=16, label="Input", placeholder=DEFAULT_INPUT_HINT,
                        max_length=MAX_INPUT_CHARS * 5, elem_id="input-text")
    c.picture = picture_editor(visible=bool(entry and entry.model.features.input_kind == "image"))
    c.reference = gr.Textbox(lines=1, max_lines=4, label="Reference output (optional)", elem_id="reference-text",
                             info="the output you expected: did the search lose it, or does the model prefer its own?",
                             max_length=MAX_INPUT_CHARS)
    c.keyword = gr.Textbox("", lines=1, max_lines=1, label="Keyword (empty: predicted from the input by PMI)",
                           elem_id="keyword-text", visible=bool(entry and entry.model.features.keywords),
                           info="the reply is built around it; or click a candidate in the Keyword tab")
    with gr.Accordion("Decoding settings", open=True, elem_id="settings-panel"):
        c.settings, c.setting_boxes = settings_panel()


def view_column(c: SimpleNamespace) -> None:
    """The output tokens, the status line, the pinned step, layer/head pickers and the click bridge."""
    c.output_tokens = gr.HTML(js_on_load=TOKEN_CLICK_JS, elem_id="output-tokens", label="Output")
    c.status = gr.Markdown(elem_classes="gs-status", elem_id="status")  # next to the output it describes
    c.pinned = gr.Slider(0, 1, step=1, value=0, label="Pinned step (or click a token / heatmap row)",
                         elem_id="pinned-step")
    with gr.Row():
        c.layer = gr.Dropdown([MEAN], value=MEAN, label="Attention layer", visible=False)
        c.head = gr.Dropdown([MEAN], value=MEAN, label="Attention head", visible=False)
    with gr.Row():  # the attention views of multi-head models: shown with the layer / head pickers
        c.hide_sink = gr.Checkbox(False, label="Hide the attention sink (position 0; not renormalised)",
                                  visible=False, elem_id="hide-sink")
        c.source_range = gr.Textbox("", label="Source positions shown", placeholder="FIRST-LAST, e.g. 100-400",
                                    max_lines=1, visible=False, elem_id="source-range")
    with gr.Row():
        c.link_button = gr.Button("Copy a link to this view", size="sm", scale=1, elem_id="share-link")
        c.link = gr.Textbox(show_label=False, max_lines=1, scale=3, elem_id="share-link-text",
                            placeholder="a link that reopens this model, input, settings, step, node and tab")
    c.link_status = gr.Markdown(elem_id="link-status")
    c.bridge = gr.HTML("Tip: click an output token, a heatmap row or a search-tree node to select it.",
                       js_on_load=PLOT_CLICK_BRIDGE_JS, elem_id="plot-bridge")


def view_tabs(c: SimpleNamespace) -> None:
    """One tab per registry tab (``visualizers.registry.VIEWS``), each view a hidden-until-it-applies
    plot; tab-specific controls sit above their tab's views."""
    c.views, c.tabs_by_name = {}, {}
    for tab in tabs():
        with gr.Tab(tab, id=tab) as c.tabs_by_name[tab]:
            TAB_CONTROLS.get(tab, lambda c: None)(c)
            for view in (v for v in VIEWS if v.tab == tab):
                kind = gr.HTML if view.html else gr.Plot
                c.views[view.name] = kind(show_label=False, elem_id=f"view-{view.name}")


def coverage_controls(c: SimpleNamespace) -> None:
    c.repeat_n = gr.Slider(0, 6, step=1, value=3, label="Mark repeated output n-grams of size")


def beam_controls(c: SimpleNamespace) -> None:
    with gr.Row():
        c.node = gr.Dropdown([("chosen output", CHOSEN_NODE)], value=CHOSEN_NODE, allow_custom_value=True,
                             label="Inspect hypothesis (node)", elem_id="node-select", scale=3)
        c.show_pruned = gr.Checkbox(value=True, label="Show pruned candidates", scale=1)
        c.tree_focus = gr.Radio(list(TREE_FOCI), value=TREE_FOCI[0], label="Draw", elem_id="tree-focus", scale=2)


def transformer_controls(c: SimpleNamespace) -> None:
    gr.Markdown("Transformer models only (pick the layer and head above): every head's attention at the "
                "pinned step, the decoder's attention over its own output prefix, the encoder's attention "
                "over the source, and the attention mask.")
    c.mask_kind = gr.Dropdown([("this model's", OWN_MASK), *[(k, k) for k in MASK_KINDS],
                               ("XLNet content stream (shuffled order)", "content: shuffle 0"),
                               ("XLNet query stream (shuffled order)", "query: shuffle 0")], value=OWN_MASK,
                              allow_custom_value=True, label="Attention mask over source ‖ output",
                              info=" · ".join([*MASK_KINDS.values(), *PERMUTATION_KINDS.values()])
                              + " · type e.g. 'query: 2 0 1 3' or 'content: shuffle 7' for another order")


TAB_CONTROLS = {"Coverage": coverage_controls, "Beam tree": beam_controls, "Transformer": transformer_controls}


def intervention_tab(c: SimpleNamespace) -> None:
    """Alternative token, forced p_gen, coverage reset, topic coverage, knock-out and fed distribution."""
    with gr.Tab(INTERVENTIONS_TAB, id=INTERVENTIONS_TAB):
        gr.Markdown("Change one thing and decode again: a token, the coverage, a topic's coverage or the next "
                    "input (the whole distribution instead of the chosen token) at the **pinned step**, p_gen at "
                    "**every step**, or a memory item; the new output is shown beside the original, step by step.")
        with gr.Row():
            c.alternative = gr.Dropdown([], value=None, label="Alternative token at the pinned step",
                                        allow_custom_value=True, scale=3)
            c.take_button = gr.Button("Take it and re-decode", scale=1)
        with gr.Row() as c.p_gen_row:
            c.p_gen_choice = gr.Radio([("model's own", "model"), ("0 — always copy", "0"),
                                       ("1 — always generate", "1")], value="0",
                                      label="Force p_gen at every step (not only the pinned one)", scale=3)
            c.p_gen_button = gr.Button("Force p_gen and re-decode", scale=1)
        c.coverage_button = gr.Button("Reset coverage at the pinned step and re-decode")
        with gr.Row() as c.topic_row:
            c.topic = gr.Dropdown([], value=None, label="Topic (topic-to-text models)", scale=2)
            c.topic_value = gr.Slider(0, 10, step=0.05, value=0.0, scale=2,
                                      label="Set its coverage to (0: used up; topics start at 1)")
            c.topic_button = gr.Button("Set topic coverage at the pinned step and re-decode", scale=1)
        with gr.Row() as c.knock_row:
            c.knock_item = gr.Number(value=0, precision=0, minimum=0, label="Memory item (0-based: a story sentence, "
                                     "an NTM memory location)", scale=3)
            c.knock_button = gr.Button("Knock it out and re-decode", scale=1)
        with gr.Row() as c.feed_row:
            c.feed_onward = gr.Checkbox(False, label="and every later step's distribution too", scale=2)
            c.feed_button = gr.Button("Feed the pinned step's whole distribution (not its token) as the next input "
                                      "and re-decode", scale=2)
        c.intervention_status = gr.Markdown()
        c.intervention_diff = gr.HTML()
        c.intervention_plot = gr.Plot(show_label=False, elem_id="intervention-plot")


def explain_tab(c: SimpleNamespace) -> None:
    """On-demand attribution (and the logit lens) of the pinned step: computed by a button only."""
    with gr.Tab("Why this token?"):
        gr.Markdown("Which source tokens made the model choose the **pinned step**'s token (Captum: integrated "
                    "gradients or gradient × input over the source embeddings, baseline: zero embeddings), "
                    "or that token *rather than* another one. Computed when you press the button.")
        with gr.Row():
            c.explain_method = gr.Radio([("integrated gradients", "ig"), ("gradient × input", "grad_x_input")],
                                        value="ig", label="Method", scale=2)
            c.contrast = gr.Textbox(label="…and not this token (optional)", max_lines=1, scale=2,
                                    max_length=MAX_INPUT_CHARS)
            c.ig_steps = gr.Slider(4, MAX_IG_STEPS, step=4, value=32, label="Integration steps", scale=1)
        c.explain_button = gr.Button("Explain the pinned step", variant="primary")
        c.explain_status = gr.Markdown()
        c.explain_plot = gr.Plot(show_label=False, elem_id="explain-plot")
        c.lens_button = gr.Button("Logit lens at the pinned step (Transformer decoders)")
        c.lens_status = gr.Markdown()
        c.lens_plot = gr.Plot(show_label=False, elem_id="lens-plot")


def corpus_tab(c: SimpleNamespace) -> None:
    """The corpus explorer over the model's own test split."""
    with gr.Tab("Corpus") as c.corpus_tab:
        gr.Markdown("Trace the first examples of this exhibit's **test split** (with the settings above) and look "
                    "for failures across them: click a column's name to sort by it (again: the other way), ⋮ "
                    "beside it to filter; plot any two statistics; click a row to open that example. Files of your own: `python -m gen_models corpus --input FILE.jsonl`.")
        with gr.Row():
            c.corpus_count = gr.Slider(1, MAX_CORPUS_EXAMPLES, step=1, value=50, label="Test examples", scale=2,
                                       elem_id="corpus-count")
            c.corpus_x = gr.Dropdown(list(NUMERIC), value="attention_entropy", label="Scatter x", scale=1)
            c.corpus_y = gr.Dropdown(list(NUMERIC), value="rouge_l", label="Scatter y", scale=1)
        with gr.Row():
            c.corpus_button = gr.Button("Trace the test examples", variant="primary", scale=3)
            c.corpus_stop = gr.Button("Stop", scale=1)
        c.corpus_status = gr.Markdown(elem_id="corpus-status")
        c.corpus_rows = gr.State(None)
        # every column in view at 1600 px: texts cut short and wrapped in fixed shares, numbers narrow
        c.corpus_table = gr.Dataframe(headers=CORPUS_COLUMNS, interactive=False, wrap=True, show_search="filter",
                                      max_height=420, elem_id="corpus-table", datatype=list(CORPUS_TYPES),
                                      column_widths=list(CORPUS_WIDTHS))
        c.corpus_plot = gr.Plot(show_label=False, elem_id=f"view-{CORPUS_VIEW}")  # clicks: the plot bridge


def compare_tab(c: SimpleNamespace, registry: ModelRegistry) -> None:
    """Run B: another model and/or other search settings on the same input."""
    others = [n for n in registry.names if n != c.model.value]
    with gr.Tab("Compare"):
        gr.Markdown("Run **B** on the same input: another model and/or other search settings (B inherits A's "
                    "other settings). Differing steps are highlighted.")
        c.model_b = gr.Dropdown(registry.choices(), value=others[0] if others else c.model.value, label="Model B")
        with gr.Row():
            c.settings_b = {name: setting_control(name, label=f"{SETTING_FIELDS[name].metadata['label']} (B)")
                            for name in COMPARE_NAMES}
        c.compare_button = gr.Button("Compare A and B", variant="primary")
        c.compare_status = gr.Markdown()
        c.compare_diff = gr.HTML()
        c.compare_plot = gr.Plot(show_label=False, elem_id="compare-plot")


def side_tabs(c: SimpleNamespace) -> None:
    """Model card, nearest training examples and export."""
    with gr.Tab("Model card"):
        c.card_status = gr.Markdown()
        c.curves_plot = gr.Plot(show_label=False, elem_id="curves-plot")
        c.card = gr.Markdown()
    with gr.Tab("Nearest examples") as c.neighbors_tab:
        c.neighbors_button = gr.Button("Find the training pairs closest to the input (BM25)")
        c.neighbors_status = gr.Markdown()
        c.neighbors_table = gr.Dataframe(headers=["BM25 score", "training source", "training target"],
                                         datatype=["number", "str", "str"], interactive=False, wrap=True,
                                         column_widths=["10%", "55%", "35%"], max_height=520,
                                         elem_id="neighbors-table")
    with gr.Tab("Export"):
        c.image_format = gr.Radio(list(IMAGE_FORMATS), value="png", label="Plot toolbar camera button saves as")
        with gr.Row():
            c.trace_button = gr.Button("Trace JSON")
            c.report_button = gr.Button("Standalone HTML report of the current views")
        c.export_status = gr.Markdown()
        c.export_file = gr.File(label="Download", interactive=False)


def named_components(c: SimpleNamespace) -> dict[str, gr.components.Component]:
    """Every component a handler may update, by the output name the handlers use."""
    names = dict(state=c.state, tab=c.tab, shared=c.shared, decoded_from=c.decoded_from,
                 rendered_tab=c.rendered_tab,
                 trace_json=c.trace_json, status=c.status, pinned=c.pinned, node=c.node,
                 layer=c.layer, head=c.head, hide_sink=c.hide_sink, source_range=c.source_range, topic=c.topic,
                 alternative=c.alternative, output=c.output_tokens,
                 tabs=c.tabs, text=c.text, picture_input=c.picture, keyword=c.keyword, examples=c.examples,
                 curves=c.curves_plot, card=c.card, card_status=c.card_status, model_b=c.model_b, p_gen_row=c.p_gen_row, coverage_button=c.coverage_button,
                 topic_row=c.topic_row, knock_row=c.knock_row, feed_row=c.feed_row,
                 intervention_diff=c.intervention_diff, intervention_plot=c.intervention_plot,
                 intervention_status=c.intervention_status, compare_diff=c.compare_diff,
                 compare_plot=c.compare_plot, compare_status=c.compare_status, neighbors_table=c.neighbors_table,
                 neighbors_status=c.neighbors_status, explain_plot=c.explain_plot, explain_status=c.explain_status,
                 lens_plot=c.lens_plot, lens_status=c.lens_status, corpus_rows=c.corpus_rows,
                 corpus_table=c.corpus_table, corpus_status=c.corpus_status, corpus_plot=c.corpus_plot,
                 corpus_tab=c.corpus_tab, neighbors_tab=c.neighbors_tab, reference_text=c.reference, model=c.model, link=c.link, link_status=c.link_status,
                 export_file=c.export_file, export_status=c.export_status, figures=c.figures)
    for group in (c.settings, c.setting_boxes, c.views,
                  {tab_key(tab): component for tab, component in c.tabs_by_name.items()}):
        taken = names.keys() & group.keys()
        if taken:  # one name, one component: a view named like a control would receive its values
            raise ValueError(f"output names used twice: {', '.join(sorted(taken))}")
        names.update(group)
    return names


CONTEXT_REQUEST = {"trace_live"}


def by_name(c: SimpleNamespace, handler, outputs: list[str]):
    """``handler`` (returning {output name: value}) as a Gradio function returning {component: value},
    with the components of ``outputs``."""
    components = [c.by_name[name] for name in outputs]
    # Gradio injects gr.Request only into positional parameters; the live trace's keyword-only
    # ``request`` (after ``*values``: its duplicate guard needs the visitor) is filled from the event.
    # Not the corpus run's: its Stop / left-page check reads the queue's active jobs, which stay
    # empty here (README, known gaps), and would stop every served run after its first example
    keyword_request = handler.__name__ in CONTEXT_REQUEST

    def run(*args, **kwargs):  # a visitor's state holds a TraceRef; handlers see the trace (None if dropped)
        if keyword_request and kwargs.get("request") is None:
            kwargs["request"] = LocalContext.request.get(None)
        current = next((a for a in args if isinstance(a, TraceRef)), None)  # the visitor's trace, if an input
        args = [c.traces.get(a) if isinstance(a, TraceRef) else a for a in args]
        values = handler(*args, **kwargs)
        if values.get("state") is not None and not isinstance(values["state"], TraceRef):
            values = {**values, "state": c.traces.put(values["state"], replaces=current)}
        updates = {c.by_name[name]: value for name, value in values.items() if name in outputs}
        return updates or {components[0]: gr.update()}  # nothing to change (Gradio rejects an empty dict)

    run.__name__, run.__doc__ = handler.__name__, handler.__doc__
    run.__signature__ = inspect.signature(handler)  # API parameter names (bound: without self)
    run.__annotations__ = dict(getattr(handler, "__annotations__", {}))
    run.__wrapped__ = handler
    return run, components


def page_view_outputs() -> list[str]:
    """What the page's own re-renders update: the output, the alternatives and ``figures`` (the
    open tab's views, which the page draws and shows or hides itself: :mod:`ui.page_plots`)."""
    return ["output", "alternative", "figures"]


# a keystroke's outputs: few, since Gradio's front end spends time on each output of an event; the
# controls that follow the trace come from ``settle`` once its figures are drawn
LIVE_OUTPUTS = ["state", "decoded_from", "rendered_tab", "shared", "status", "pinned", "node", *page_view_outputs()]


def drawn(c: SimpleNamespace, event):
    """``event``, then the page draws the figures it sent (:mod:`ui.page_plots`; no request)."""
    return event.then(None, [c.figures], None, js=page_plots.DRAW_FIGURES_JS, api_visibility="private",
                      queue=False, show_progress="hidden")


def wire_live_views(demo: gr.Blocks, c: SimpleNamespace, handlers: Handlers) -> None:
    """Typing, settings and model changes re-decode; pins, nodes, clicks, view options and opening a
    tab re-render the open tab's views."""
    options = [c.repeat_n, c.show_pruned, c.image_format, c.layer, c.head, c.mask_kind, c.tree_focus, c.hide_sink,
               c.source_range]  # VIEW_OPTION_NAMES order
    settings = list(c.settings.values())
    trace_inputs = [c.model, c.text, *settings, c.pinned, *options, c.reference, c.keyword]
    live = dict(trigger_mode="always_last", show_progress="minimal", preprocess=False, **DECODE)
    quiet = dict(show_progress="hidden", preprocess=False, **WORK)
    api_fn, api_out = by_name(c, handlers.trace, trace_outputs())
    c.trace_api.click(api_fn, [c.model, c.text, *c.api_settings, c.pinned, *options, c.reference, c.keyword], api_out,
                      api_name="trace",
                      preprocess=False, **DECODE)
    live_fn, live_out = by_name(c, handlers.trace_live, LIVE_OUTPUTS)
    refresh_fn, refresh_out = by_name(c, handlers.settle, ["rendered_tab", "tabs", "status", "node", *TRACE_CONTROLS,
                                                           *[tab_key(t) for t in tabs()], *page_view_outputs()])
    refresh_inputs = [c.state, c.tab, c.rendered_tab, c.pinned, c.node, *options]
    live_inputs = [*trace_inputs, c.tab, c.shared, c.state, c.decoded_from]

    def settled(event) -> None:
        """``event`` (a live trace) drawn, then settle()'s controls and any tab opened meanwhile, drawn."""
        drawn(c, drawn(c, event).then(refresh_fn, refresh_inputs, refresh_out, api_visibility="private", **quiet))

    settled(gr.on([c.text.change, c.reference.change, c.keyword.change, *[s.change for s in settings]],
                  live_fn, live_inputs, live_out, api_name="trace_live", api_visibility="undocumented", **live))
    card_fn, card_out = by_name(c, handlers.model_picked, [*model_outputs(), "shared"])
    settled(c.model.change(card_fn, [c.model, c.text, c.shared], card_out, api_name="model_card", preprocess=False,
                           **WORK).then(live_fn, live_inputs, live_out, api_name="trace_for_model",
                                        api_visibility="undocumented", **live))
    # page load: the model card, or a shared view from the address (?view=…) with its trace and node
    first_fn, first_out = by_name(c, handlers.restore_model, ["pinned", "tab", "tabs", "shared"])
    restore_names = dict.fromkeys([*model_outputs(), "model", "reference_text", "keyword", "link_status", "tab",
                                   "tabs", *[tab_key(t) for t in tabs()], *LIVE_OUTPUTS])
    restore_fn, restore_out = by_name(c, handlers.restore_view, list(restore_names))
    settled(demo.load(first_fn, None, first_out, api_visibility="private", preprocess=False, **WORK).then(
        restore_fn, [c.model, c.text, c.pinned, c.tab, *options], restore_out, api_visibility="private", **live))
    link_fn, link_out = by_name(c, handlers.share_link, ["link", "link_status"])
    c.link_button.click(link_fn, [c.model, c.text, c.reference, c.keyword, c.pinned, c.node, c.tab, c.link,
                                  *settings], link_out, js=PAGE_ADDRESS_JS, api_visibility="private",
                        preprocess=False, **WORK).then(None, [c.link], None, js=COPY_LINK_JS)
    view_inputs = [c.state, c.tab, c.pinned, c.node, *options]
    views_fn, views_out = by_name(c, handlers.views, ["status", *view_outputs()])
    for api_name in ("pin", "select_node", "views"):  # API clients: the views as gr.Plot payloads
        c.views_api.click(views_fn, view_inputs, views_out, api_name=api_name, **quiet)
    page_fn, page_out = by_name(c, handlers.page_views, ["status", *page_view_outputs()])
    typed = [c.source_range.submit, c.source_range.blur]  # a range is drawn once typed, not at every keystroke
    for trigger in (c.pinned.input, c.node.input, *[o.input for o in options if o is not c.source_range], *typed):
        drawn(c, trigger(page_fn, view_inputs, page_out, trigger_mode="always_last", api_visibility="private",
                         **quiet))
    for tab, component in c.tabs_by_name.items():
        tab_fn, tab_out = by_name(c, handlers.open_tab(tab), ["tab", "rendered_tab", "status", "node",
                                                              *page_view_outputs()])
        drawn(c, component.select(tab_fn, [c.state, c.rendered_tab, c.pinned, c.node, *options], tab_out,
                                  api_visibility="private", **quiet))
    token_fn, token_out = by_name(c, handlers.token_click, ["status", "pinned", *page_view_outputs()])
    drawn(c, c.output_tokens.click(token_fn, [c.state, c.tab, c.node, *options], token_out, api_name="pin_token",
                                   **quiet))
    click_fn, click_out = by_name(c, handlers.plot_click, ["status", "pinned", "node", "text", "keyword",
                                                           *page_view_outputs()])
    drawn(c, c.bridge.click(click_fn, view_inputs, click_out, api_name="plot_click", **quiet))
    point_fn, point_out = by_name(c, handlers.open_point, ["text", "reference_text", "corpus_status"])
    c.bridge.click(point_fn, [c.corpus_rows], point_out, api_visibility="private", **quiet)
    c.examples.input(handlers.pick_example, [c.examples], [c.text], api_name="pick_example", preprocess=False,
                     **WORK)
    c.picture.change(picture_text, [c.picture], [c.text], api_name="picture_text", trigger_mode="always_last",
                     **WORK)


def wire_actions(c: SimpleNamespace, handlers: Handlers) -> None:
    """Interventions, comparison, nearest examples and export."""
    base = [c.model, c.text, *c.settings.values()]
    shown = ["intervention_diff", "intervention_plot", "intervention_status"]
    raw, heavy = dict(preprocess=False, **WORK), dict(preprocess=False, **HEAVY)
    for button, handler, extra, api_name in (
            (c.take_button, handlers.intervene_token, [c.pinned, c.alternative], "intervene_token"),
            (c.p_gen_button, handlers.intervene_p_gen, [c.p_gen_choice], "intervene_p_gen"),
            (c.coverage_button, handlers.intervene_coverage, [c.pinned], "intervene_coverage"),
            (c.topic_button, handlers.intervene_topic, [c.pinned, c.topic, c.topic_value], "intervene_topic"),
            (c.knock_button, handlers.intervene_knock_out, [c.knock_item], "intervene_knock_out"),
            (c.feed_button, handlers.intervene_feed, [c.pinned, c.feed_onward], "intervene_feed")):
        fn, out = by_name(c, handler, shown)
        button.click(fn, [*base, *extra], out, api_name=api_name, **raw)
    fn, out = by_name(c, handlers.force_click, [*shown, "tabs"])  # a click on a token to force (a "token" view)
    c.bridge.click(fn, base, out, api_visibility="private", **raw)
    b_controls = [c.model_b, *c.settings_b.values()]
    fn, out = by_name(c, handlers.compare, ["compare_diff", "compare_plot", "compare_status"])
    gr.on([c.compare_button.click, c.model_b.input, *[s.input if isinstance(s, (gr.Radio, gr.Checkbox)) else s.release
                                                       for s in c.settings_b.values()]],
          fn, [*base, *b_controls], out, trigger_mode="always_last", api_name="compare", **raw)
    fn, out = by_name(c, handlers.nearest_examples, ["neighbors_table", "neighbors_status"])
    gr.on([c.neighbors_button.click, c.neighbors_tab.select], fn, [c.model, c.text], out,
          trigger_mode="always_last", api_name="neighbors", **raw)
    fn, out = by_name(c, handlers.explain, ["explain_plot", "explain_status"])
    c.explain_button.click(fn, [c.state, c.text, c.pinned, c.explain_method, c.contrast, c.ig_steps], out,
                           api_name="explain", **heavy)
    fn, out = by_name(c, handlers.logit_lens, ["lens_plot", "lens_status"])
    c.lens_button.click(fn, [c.state, c.text, c.pinned], out, api_name="logit_lens", **heavy)
    fn, out = by_name(c, handlers.corpus, ["corpus_rows", "corpus_table", "corpus_status", "corpus_plot"])
    run = c.corpus_button.click(fn, [c.model, c.corpus_count, c.corpus_x, c.corpus_y, *c.settings.values()], out,
                                api_name="corpus", preprocess=False, **CORPUS)
    c.corpus_stop.click(None, None, None, cancels=[run], api_visibility="private")
    fn, out = by_name(c, handlers.corpus_plot, ["corpus_plot", "corpus_status"])
    gr.on([c.corpus_x.input, c.corpus_y.input], fn, [c.corpus_rows, c.corpus_x, c.corpus_y], out,
          api_visibility="private", preprocess=False, **WORK)
    fn, out = by_name(c, handlers.open_example, ["text", "reference_text", "corpus_status"])
    c.corpus_table.select(fn, [c.corpus_rows], out, api_visibility="private", **WORK)
    fn, out = by_name(c, handlers.export_trace, ["export_file", "export_status"])
    c.trace_button.click(fn, [c.state], out, api_name="export_trace", **raw)
    fn, out = by_name(c, handlers.export_report, ["export_file", "export_status"])
    c.report_button.click(fn, [c.state, c.pinned, c.node, c.repeat_n, c.show_pruned, c.image_format, c.layer,
                               c.head, c.mask_kind, c.tree_focus, c.hide_sink, c.source_range, c.text], out,
                          api_name="export_report", **heavy)


# the share button's inputs, with the page's own address in place of the link box's value (8th input)
PAGE_ADDRESS_JS = "(...args) => { args[7] = window.location.href; return args; }"
COPY_LINK_JS = """(link) => {
  if (link && link.startsWith("http")) {
    window.history.replaceState(null, "", link);
    if (navigator.clipboard) { navigator.clipboard.writeText(link).catch(() => {}); }
  }
}"""


def launch_kwargs() -> dict:
    """Server settings: localhost unless on a Space, ``$GRADIO_SERVER_PORT`` honoured, theme and CSS."""
    return dict(
        server_name="0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1",
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        theme=gr.themes.Soft(primary_hue="blue", font=["Inter", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"]),
        css=CSS, head=HEAD, ssr_mode=False, show_error=False, state_session_capacity=SESSION_CAPACITY,
        max_file_size="1mb",  # per file; ui/security.py bounds the files per request and every body
        enable_monitoring=budget.current().monitoring,  # /monitoring only where GENSCOPE_MONITORING=1
        app_kwargs=security.app_kwargs(),  # Host allow list, security headers (ui/security.py)
        run_history=False,  # the browser would store every keystroke's outputs (~0.3 MB) in sessionStorage
    )


torch.set_num_threads(int(os.environ.get("GENSCOPE_TORCH_THREADS", "1")))
limit_allocator()
keep_no_output_copies()
registry = get_registry()
handlers = Handlers(registry)
demo = build_demo(registry, handlers)

if __name__ == "__main__":
    registry.warm_up(first=registry.default_name(PREFERRED_MODELS))  # weights load while the page is served
    demo.launch(**launch_kwargs())
