"""Plotly figures as Gradio plot payloads carrying a plotly ``config`` (toolbar and image export).

``gr.Plot`` sends ``figure.to_json()``, which has no config; its front end does read a ``config``
key from the payload, so the figure's JSON is extended with one here.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from gradio.components.plot import PlotData

IMAGE_FORMATS = ("png", "svg")


def plot_config(image_format: str = "png", filename: str = "genscope") -> dict:
    """Toolbar settings: download as PNG or SVG, no plotly logo, no selection tools."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {str(image_format)[:20]!r}")
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": image_format, "filename": filename, "scale": 2},
        "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
        "displayModeBar": True,
    }


def plot_payload(figure: go.Figure, image_format: str = "png", filename: str = "genscope") -> PlotData:
    """``figure`` with its plotly config, ready to return to a ``gr.Plot``."""
    spec = figure.to_dict()
    spec["config"] = plot_config(image_format, filename)
    return PlotData(type="plotly", plot=pio.json.to_json_plotly(spec))


def page_figure(figure: go.Figure, image_format: str = "png", filename: str = "genscope") -> dict:
    """``figure`` as the page's own plot code draws it in place (``PAGE_PLOTS_JS`` in ``app.py``):
    plotly's JSON without the layout template (the page holds it once: :func:`page_template`) and
    with float arrays sent as float32 (base64 typed arrays), with its config. About half the bytes
    of :func:`plot_payload`, and no rebuilt plot element per update."""
    spec = figure.to_plotly_json()
    spec["layout"].pop("template", None)
    spec["data"] = [_single_precision(trace) for trace in spec["data"]]
    spec["config"] = plot_config(image_format, filename)
    return json.loads(pio.json.to_json_plotly(spec))


def page_template() -> dict:
    """The layout template every figure has by default (sent with the page, not with each figure)."""
    return json.loads(pio.json.to_json_plotly(go.Figure().layout.template))


def _single_precision(value: Any) -> Any:
    """float64 arrays (at any depth of a trace: plotly's base64 typed arrays) as float32."""
    if isinstance(value, dict) and value.get("dtype") == "f8" and isinstance(value.get("bdata"), str):
        single = np.frombuffer(base64.b64decode(value["bdata"]), dtype="<f8").astype("<f4")
        return {**value, "dtype": "f4", "bdata": base64.b64encode(single.tobytes()).decode("ascii")}
    if isinstance(value, dict):
        return {k: _single_precision(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
        return [_single_precision(v) for v in value]
    return value
