"""The page draws the trace views itself, in place.

Gradio's ``gr.Plot`` rebuilds its plot element on every new value (its front end wraps the plot in a
keyed block, so each update is a fresh ``Plotly.newPlot``, ~120 ms for a 100-token heatmap, and
the old element draws once more before it goes: two full draws a keystroke). So the browser's own
events send the open tab's figures in one hidden JSON output (``figures``: ``{"revision": n,
"views": {view name: plotly JSON without its template}, "hidden": [views that do not apply]}``, :func:`ui.plots.page_figure`) and this
script draws each into its view's box with ``Plotly.react`` (and hides the boxes of the others), which updates the existing plot (about
a third of the time) and keeps its zoom (``uirevision``) and click handlers. ``visualizers/`` still
decides what every figure shows; API clients still get ``gr.Plot`` payloads.

The script uses the Plotly that Gradio's front end loads (``window.Plotly``): ``plotly_loader``
gives the page one tiny plot at start, so it is loaded before the first trace arrives.
"""
from __future__ import annotations

import json

from .plots import page_template

DRAW_FIGURES_JS = "(figures) => { window.gsDraw(figures); }"

_SCRIPT = """
window.GS_TEMPLATE = %(template)s;
window.gsPending = [];
window.gsDraw = (figures) => {
  if (!figures || !figures.views || figures.revision === window.gsDrawn) return;
  if (!window.Plotly) {  // Gradio's plot code is still loading: draw in order once it is there
    window.gsPending.push(figures);
    if (window.gsPending.length === 1) {
      const wait = (tries) => {
        if (!window.Plotly && tries < 400) { setTimeout(() => wait(tries + 1), 25); return; }
        const pending = window.gsPending.splice(0);
        if (window.Plotly) pending.forEach((f) => window.gsDraw(f));
      };
      wait(0);
    }
    return;
  }
  window.gsDrawn = figures.revision;
  for (const name of figures.hidden || []) {  // a view that does not apply to this trace
    const box = document.getElementById('view-' + name);
    if (box) box.dataset.gsHidden = '1';
  }
  for (const [name, spec] of Object.entries(figures.views)) {
    const box = document.getElementById('view-' + name);
    if (!box) continue;
    delete box.dataset.gsHidden;
    let graph = box.querySelector(':scope > .gs-plot');
    if (!graph) {
      graph = document.createElement('div');
      graph.className = 'gs-plot';
      box.appendChild(graph);
    }
    const layout = Object.assign({template: window.GS_TEMPLATE}, spec.layout, {autosize: true});
    layout.margin = Object.assign({}, layout.margin, {autoexpand: true});
    window.Plotly.react(graph, spec.data, layout, Object.assign({responsive: true}, spec.config));
    requestAnimationFrame(() => {  // drawn while its box was still hidden: fit it to the box now shown
      const shown = graph._fullLayout && graph.clientWidth > 0 && Math.abs(graph._fullLayout.width - graph.clientWidth) > 1;
      if (shown) window.Plotly.Plots.resize(graph);
    });
  }
};
"""

CSS = """
[id^="view-"]:has(> .gs-plot) > :not(.gs-plot) { display: none !important; }  /* Gradio's empty plot */
[id^="view-"][data-gs-hidden] { display: none !important; }
#plotly-loader { display: none !important; }
"""


def head_script() -> str:
    """The ``<script>`` for the page's head: the shared layout template and ``window.gsDraw``."""
    template = json.dumps(page_template(), separators=(",", ":")).replace("</", "<\\/")
    return "<script>" + _SCRIPT % {"template": template} + "</script>"
