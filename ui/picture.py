"""The picture input of captioning models: an upload or a drawing becomes the model's text input.

A captioner reads ``'image data:image/png;base64,…'`` (:func:`gen_models.scenes.image_data_url`), so
the input box, the API and shared links carry the picture like any other input; this module turns
the app's image editor value into that text.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from gen_models.scenes import image_data_url

BRUSH_COLOURS = ["#dc2828", "#28aa3c", "#2850dc", "#ebc81e", "#000000"]  # red, green, blue, yellow, black


def picture_editor(visible: bool) -> gr.ImageEditor:
    """A white canvas to draw on (brushes in the scenes' colours) that also takes uploads."""
    return gr.ImageEditor(
        value=None, type="numpy", image_mode="RGBA", label="Picture",  # a longer label runs under the toolbar
        placeholder="Draw coloured shapes\n\nor upload a picture",
        sources=("upload", "clipboard"), canvas_size=(256, 256), layers=False, visible=visible,
        brush=gr.Brush(colors=BRUSH_COLOURS, default_color=BRUSH_COLOURS[0], default_size=12, color_mode="fixed"),
        elem_id="picture-input")


def picture_text(value: Any) -> Any:
    """The input text of an image editor value (its composite); no change while it is empty."""
    composite = value.get("composite") if isinstance(value, dict) else value
    if composite is None:
        return gr.update()
    pixels = np.asarray(composite)
    if pixels.ndim != 3 or pixels.size == 0:
        return gr.update()
    if pixels.shape[2] == 4 and not pixels[..., 3].any():
        return gr.update()  # nothing drawn yet
    return image_data_url(pixels)
