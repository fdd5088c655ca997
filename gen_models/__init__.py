"""GenScope's engine: generators, the stepper protocol, generic traced decoding, checkpoints.

In a notebook::

    from gen_models import load_model, generate
    from visualizers import attention_heatmap
    model = load_model("debian-pointer-coverage")          # a shipped checkpoint, a folder, or hf:PATH
    trace = generate(model, "htop: interactive process viewer ...")
    attention_heatmap(trace).show()
"""
from pathlib import Path
from typing import Any

from .checkpoint import CHECKPOINT_ROOT, list_checkpoints, load_checkpoint
from .decoding import DecodeSettings, generate
from .trace import BeamNode, Candidate, GenerationTrace, Step


def load_model(name: str, allow_network: bool = False) -> Any:
    """A shipped checkpoint by name (``checkpoints/<name>``), any checkpoint folder, or ``hf:PATH``
    for a local Hugging Face model (``allow_network`` lets ``hf:ORG/NAME`` download from the Hub)."""
    if name.startswith("hf:"):
        from .models.hf_adapter import load_hf

        return load_hf(name[3:], allow_network=allow_network)
    folder = CHECKPOINT_ROOT / name if (CHECKPOINT_ROOT / name).is_dir() else Path(name)
    if not folder.is_dir():
        known = ", ".join(p.name for p in list_checkpoints()) or "none"
        raise ValueError(f"no checkpoint named {name!r} (shipped: {known})")
    return load_checkpoint(folder)


__all__ = ["BeamNode", "Candidate", "DecodeSettings", "GenerationTrace", "Step", "generate", "list_checkpoints",
           "load_checkpoint", "load_model"]
