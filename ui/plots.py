"""Plotly figures as Gradio plot payloads carrying a plotly ``config`` (toolbar and image export).

``gr.Plot`` sends ``figure.to_json()``, which has no config; its front end does read a ``config``
key from the payload, so the figure's JSON is extended with one here.
"""
from __future__ import annotations

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
