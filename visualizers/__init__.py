"""Pure views of a :class:`~gen_models.trace.GenerationTrace`: ``(trace, options) -> plotly Figure``
(or HTML text for the token views and the report). No model or app imports."""
from .attention import attention_heatmap
from .beam_tree import beam_tree_figure, hypothesis_figure, hypothesis_text, tree_layout
from .common import TREE_FOCI, ViewOptions, empty_figure, repeated_ngram_steps
from .compare import compare_figure, differing_steps
from .copy import copy_figure
from .coverage import coverage_figure
from .hull import hull_figure
from .model_card import training_curves
from .output import diff_html, output_html
from .registry import VIEWS, View, register_view, render_views
from .report import standalone_report
from .topics import topic_figure
from .transformer import (
    MASK_KINDS,
    attention_mask_figure,
    decoder_self_attention_figure,
    encoder_attention_figure,
    head_grid_figure,
    is_transformer_trace,
)

__all__ = [
    "MASK_KINDS", "TREE_FOCI", "VIEWS", "View", "ViewOptions", "attention_heatmap", "attention_mask_figure", "beam_tree_figure",
    "compare_figure", "hull_figure", "register_view", "render_views",
    "copy_figure", "coverage_figure", "decoder_self_attention_figure", "diff_html", "differing_steps",
    "empty_figure", "encoder_attention_figure", "head_grid_figure", "hypothesis_figure", "hypothesis_text",
    "is_transformer_trace", "output_html", "repeated_ngram_steps", "standalone_report", "topic_figure",
    "training_curves", "tree_layout",
]
