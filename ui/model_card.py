"""The model card tab's text: what the checkpoint is, its test metrics and its README."""
from __future__ import annotations

from typing import Any

from .registry import ModelEntry


def _cell(value: Any) -> str:
    """A Markdown table cell (numbers rounded, pipes escaped)."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def test_metrics_markdown(metrics: dict) -> str:
    """The ``test`` metrics as a Markdown table (flat or one level nested), or a note."""
    test = metrics.get("test")
    if not isinstance(test, dict) or not test:
        return "_No test-set metrics recorded yet._"
    rows = []
    for key, value in test.items():
        if isinstance(value, dict):
            rows += [(f"{key} / {sub}", v) for sub, v in value.items() if not isinstance(v, (dict, list))]
        elif not isinstance(value, list):
            rows.append((key, value))
    body = "\n".join(f"| {_cell(k)} | {_cell(v)} |" for k, v in rows)
    return f"| metric | value |\n|---|---|\n{body}"


def model_size(config: dict) -> str:
    """Embedding/hidden sizes of GenScope's recurrent models, or layers/width/heads of a Transformer."""
    args = config.get("args")
    if isinstance(args, dict):
        return f"embedding {args.get('emb_dim', '?')} · hidden {args.get('hidden_dim', '?')}"
    layers = "+".join(str(config[k]) for k in ("encoder_layers", "decoder_layers") if k in config) or \
        config.get("num_hidden_layers", config.get("n_layer", "?"))
    width = config.get("d_model", config.get("hidden_size", config.get("n_embd", "?")))
    heads = config.get("encoder_attention_heads", config.get("num_attention_heads", config.get("n_head", "?")))
    return f"{layers} layers · width {width} · {heads} heads"


def card_markdown(entry: ModelEntry) -> str:
    """Header facts, test metrics and the checkpoint's README text."""
    model, features = entry.model, entry.model.features
    facts = [
        f"**{entry.title or entry.name}** — exhibit: {entry.exhibit}",
        f"type `{entry.config.get('model_type', '?')}` · {features.architecture} · input: {features.input_kind} · "
        f"copy switch: {'yes' if features.copies else 'no'} · coverage: {'yes' if features.coverage else 'no'} · "
        f"vocabulary {model.vocab_size:,} · max source length {model.max_source_len}",
        f"{model_size(entry.config)} · training data: `{entry.config.get('train_data', 'not recorded')}`",
    ]
    readme = entry.card.strip() or "_This checkpoint has no README.md._"
    return "\n\n".join(facts + ["### Test-set metrics", test_metrics_markdown(entry.metrics),
                                "### Model card (README.md)", readme])
