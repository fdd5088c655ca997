"""Checkpoint folders: save, load (safetensors only) and list.

A checkpoint is a folder ``checkpoints/<name>/`` with

- ``model.safetensors`` — weights (fp16 storage allowed; loaded as fp32)
- ``config.json``       — ``{"model_type": ..., "args": {constructor args}, "exhibit": ..., "examples": [...]}``
- ``vocab.txt``         — one token per line (models over words; a pointer network has none)
- ``metrics.json``      — training curves and test-set metrics
- ``README.md``         — the model card

The class comes from :data:`MODEL_TYPES` by ``model_type``; nothing is ever unpickled.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .device import resolve_device
from .models import MODEL_TYPES
from .vocab import Vocab

CHECKPOINT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
WEIGHTS, CONFIG, VOCAB, METRICS = "model.safetensors", "config.json", "vocab.txt", "metrics.json"


def save_checkpoint(model: Any, folder: Path, extra_config: dict | None = None,
                    fp16: bool = True) -> None:
    """Write weights, config and vocabulary of ``model`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if fp16 else torch.float32
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous()
               for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / WEIGHTS))
    config = {"model_type": model.model_type, "args": model.config_dict(), **(extra_config or {})}
    (folder / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if model.vocab is not None:
        model.vocab.save(folder / VOCAB)


def read_config(folder: Path) -> dict:
    """The parsed config.json of a checkpoint folder."""
    return json.loads((Path(folder) / CONFIG).read_text(encoding="utf-8"))


def load_checkpoint(folder: Path, device: Optional[str] = None) -> Any:
    """Build the model a checkpoint folder describes, in eval mode, on ``device`` (default
    ``$GENSCOPE_DEVICE``, see :mod:`gen_models.device`; ValueError if malformed).

    A Hugging Face model folder (its config.json lists ``architectures``) loads through
    :func:`gen_models.models.hf_adapter.load_hf` under the folder's name."""
    target = resolve_device(device)
    folder = Path(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ValueError(f"{folder}: no {WEIGHTS} (only safetensors checkpoints are loaded)")
    config = read_config(folder)
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES and config.get("architectures"):
        from .models.hf_adapter import load_hf  # a Hugging Face model folder (e.g. enzh-transformer)

        return load_hf(str(folder), name=folder.name, device=str(target))
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{folder}: unknown model_type {model_type!r}; known: {sorted(MODEL_TYPES)}")
    model_cls = MODEL_TYPES[model_type]
    vocab = Vocab.load(folder / VOCAB) if (folder / VOCAB).is_file() else None
    model = model_cls(model_cls.config_class(**config["args"]), vocab, name=folder.name)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    model.load_state_dict(state)
    return model.to(target).eval()


def read_metrics(folder: Path) -> dict:
    """metrics.json of a checkpoint folder, or {} if it has none."""
    path = Path(folder) / METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def check_checkpoint(folder: Path) -> None:
    """Cheap check that ``folder`` looks loadable, without building the model: its config parses and
    names a known model type (or a Hugging Face architecture) and its safetensors header reads
    (ValueError if not)."""
    folder = Path(folder)
    config = read_config(folder)
    if config.get("model_type") not in MODEL_TYPES and not config.get("architectures"):
        raise ValueError(f"{folder}: unknown model_type {config.get('model_type')!r}; known: {sorted(MODEL_TYPES)}")
    try:
        with safe_open(str(folder / WEIGHTS), framework="pt") as weights:
            weights.keys()
    except Exception as error:  # safetensors raises its own error types for a truncated or foreign file
        raise ValueError(f"{folder}: unreadable {WEIGHTS} ({type(error).__name__}: {error})") from None


def list_checkpoints(root: Path = CHECKPOINT_ROOT) -> list[Path]:
    """Checkpoint folders under ``root``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / CONFIG).is_file() and (p / WEIGHTS).is_file())
