"""A standalone HTML report of one trace: works offline (plotly.js is inlined once), every piece of
user text escaped, the trace JSON embedded for reproducibility."""
from __future__ import annotations

import html
from typing import Mapping, Optional

import plotly.graph_objects as go
import plotly.offline

from gen_models.text import detokenize, tokenize
from gen_models.trace import GenerationTrace

from .common import ViewOptions
from .output import output_html

STYLE = """
body { font-family: Inter, system-ui, sans-serif; max-width: 1200px; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table.settings td { padding: 2px 10px; border-bottom: 1px solid #eee; font-family: monospace; }
.notice { color: #b23; } .source { background: #f7f7f7; padding: .6rem; border-radius: 6px; }
"""


def script_json(text: str) -> str:
    """JSON text made safe inside a ``<script>`` element (no ``</script>`` or comment openers)."""
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def typed_source(trace: GenerationTrace, text: Optional[str]) -> Optional[str]:
    """``text`` when it is what the trace read (its tokens, lowercased, are the trace's source tokens,
    none cut off): the report then shows the input with its case and spacing, not as tokens."""
    if not isinstance(text, str) or not text.strip() or trace.truncated:
        return None
    return text.strip() if tokenize(text) == [t.lower() for t in trace.source_tokens] else None


def standalone_report(trace: GenerationTrace, figures: Mapping[str, go.Figure],
                      options: Optional[ViewOptions] = None, image_format: str = "png",
                      source_text: Optional[str] = None) -> str:
    """A complete HTML document: input, output tokens, settings, notices, then each figure. The input
    is ``source_text`` as the user typed it when given (:func:`typed_source`), else the source tokens."""
    options = options or ViewOptions()
    config = {"displaylogo": False, "toImageButtonOptions": {"format": image_format, "scale": 2}}
    sections = [
        f"<h1>GenScope report: {html.escape(trace.model)}</h1>",
        "<h2>Input</h2>",
        f"<div class='source'>{html.escape(source_text or detokenize(trace.source_tokens))}</div>",
        *[f"<p class='notice'>{html.escape(n)}</p>" for n in trace.notices],
        "<h2>Output</h2>", output_html(trace, options),
        "<h2>Settings</h2>", _settings_table(trace.settings),
    ]
    for name, figure in figures.items():
        sections.append(f"<h2>{html.escape(name)}</h2>")
        sections.append(figure.to_html(full_html=False, include_plotlyjs=False, config=config))
    sections.append(f"<script type='application/json' id='genscope-trace'>{script_json(trace.to_json())}</script>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>GenScope report: {html.escape(trace.model)}</title><style>{STYLE}</style>"
            f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head>"
            f"<body>{''.join(sections)}</body></html>")


def _settings_table(settings: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    return f"<table class='settings'>{rows}</table>"
