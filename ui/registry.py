"""Loads every checkpoint once and answers "which models are there, and what do we know about them".

The checkpoint root is ``$GENSCOPE_CHECKPOINTS`` or the repository's ``checkpoints/``. A folder that
fails to load (half-written while training, malformed) is skipped and reported, never fatal.

A model name ``hf:PATH`` loads a local Hugging Face model folder on first use (safetensors only, no
remote code, no network; at most ``MAX_LOCAL_MODELS`` kept). This is on by default and off on a
Space (``$SPACE_ID`` set) unless ``$GENSCOPE_ALLOW_LOCAL_MODELS=1``; ``=0`` turns it off anywhere.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gen_models.checkpoint import CHECKPOINT_ROOT, list_checkpoints, load_checkpoint, read_config, read_metrics

LOG = logging.getLogger("genscope.registry")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXHIBIT = "other generators"
LOCAL_EXHIBIT = "your own Hugging Face model"
LOCAL_PREFIX = "hf:"
MAX_CARD_CHARS = 50_000
MAX_LOCAL_MODELS = 2


@dataclass
class ModelEntry:
    """One loaded checkpoint and its metadata."""

    name: str
    folder: Path
    model: Any
    config: dict
    metrics: dict
    card: str = ""
    exhibit: str = DEFAULT_EXHIBIT
    title: str = ""
    examples: list[str] = field(default_factory=list)
    train_data: Optional[Path] = None
    task: str = ""
    input_hint: str = ""

    @property
    def copies(self) -> bool:
        """Whether the model has a copy switch (p_gen)."""
        return bool(getattr(self.model, "copies", False))

    @property
    def has_coverage(self) -> bool:
        """Whether the model has a coverage mechanism."""
        return bool(getattr(getattr(self.model, "config", None), "coverage", False))

    @property
    def display_name(self) -> str:
        """Dropdown label: exhibit › title (name)."""
        title = self.title or self.name
        suffix = f" ({self.name})" if title != self.name else ""
        return f"{self.exhibit} › {title}{suffix}"


def checkpoint_root() -> Path:
    """``$GENSCOPE_CHECKPOINTS`` or the default checkpoint folder."""
    return Path(os.environ.get("GENSCOPE_CHECKPOINTS") or CHECKPOINT_ROOT)


def resolve_data_path(value: Any, folder: Path) -> Optional[Path]:
    """A config's ``train_data`` path: absolute, or relative to the repository (or the checkpoint)."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value)
    if path.is_absolute():
        return path
    for base in (REPO_ROOT, folder):
        if (base / path).is_file():
            return base / path
    return REPO_ROOT / path


def load_entry(folder: Path) -> ModelEntry:
    """Load one checkpoint folder with its config, metrics and model card."""
    config = read_config(folder)
    card_path = folder / "README.md"
    card = card_path.read_text(encoding="utf-8", errors="replace")[:MAX_CARD_CHARS] if card_path.is_file() else ""
    examples = [e for e in config.get("examples", []) if isinstance(e, str) and e.strip()]
    return ModelEntry(
        name=folder.name, folder=folder, model=load_checkpoint(folder), config=config,
        metrics=read_metrics(folder), card=card, exhibit=str(config.get("exhibit") or DEFAULT_EXHIBIT),
        title=str(config.get("title") or ""), examples=examples,
        train_data=resolve_data_path(config.get("train_data"), folder),
        task=str(config.get("task") or ""), input_hint=str(config.get("input_hint") or ""),
    )


def local_models_allowed() -> bool:
    """Whether ``hf:PATH`` names may load local Hugging Face folders on this server."""
    setting = os.environ.get("GENSCOPE_ALLOW_LOCAL_MODELS")
    if setting is not None:
        return setting.strip() == "1"
    return not os.environ.get("SPACE_ID")


def load_local_entry(name: str) -> ModelEntry:
    """Load ``hf:PATH`` through the engine's Hugging Face adapter (ValueError with the reason)."""
    from gen_models.hf_adapter import load_hf

    path = Path(name[len(LOCAL_PREFIX):].strip()).expanduser()
    if not path.is_dir():
        raise ValueError(f"{str(path)[:200]!r} is not a local model folder")
    try:
        model = load_hf(str(path))
    except Exception as error:  # transformers raises many kinds; the user needs the reason
        raise ValueError(f"cannot load {str(path)[:200]!r} as a Hugging Face model: {error}") from error
    return ModelEntry(name=name, folder=path, model=model, config=model.model.config.to_dict(), metrics={},
                      exhibit=LOCAL_EXHIBIT, title=path.name)


class ModelRegistry:
    """All loadable checkpoints under one root, by name."""

    def __init__(self, entries: list[ModelEntry], errors: Optional[dict[str, str]] = None):
        self.entries = {entry.name: entry for entry in entries}
        self.errors = errors or {}
        self.local: OrderedDict[str, ModelEntry] = OrderedDict()
        self._local_lock = threading.Lock()

    @classmethod
    def load(cls, root: Path) -> "ModelRegistry":
        """Load every checkpoint folder under ``root``; failures are logged and kept in ``errors``."""
        entries, errors = [], {}
        for folder in list_checkpoints(root):
            try:
                entries.append(load_entry(folder))
            except Exception as error:  # a half-written or malformed folder must not stop the app
                LOG.warning("skipping checkpoint %s: %s", folder, error)
                errors[folder.name] = str(error)
        return cls(entries, errors)

    @property
    def names(self) -> list[str]:
        """Model names, grouped by exhibit."""
        return [e.name for e in sorted(self.entries.values(), key=lambda e: (e.exhibit, e.title or e.name, e.name))]

    def choices(self) -> list[tuple[str, str]]:
        """(label, name) pairs for a dropdown, grouped by exhibit."""
        return [(self.entries[name].display_name, name) for name in self.names]

    def get(self, name: Any) -> ModelEntry:
        """The entry called ``name`` (ValueError naming the available models if absent);
        ``hf:PATH`` loads a local Hugging Face model where allowed."""
        if isinstance(name, str) and name.startswith(LOCAL_PREFIX):
            return self.get_local(name)
        if not isinstance(name, str) or name not in self.entries:
            available = ", ".join(self.names) or "none"
            shown = repr(name)[:80]
            raise ValueError(f"unknown model {shown}; available models: {available}")
        return self.entries[name]

    def get_local(self, name: str) -> ModelEntry:
        """A local Hugging Face model, loaded on first use; the least recently used is dropped."""
        if not local_models_allowed():
            raise ValueError("loading local Hugging Face models is disabled on this server "
                             "(set GENSCOPE_ALLOW_LOCAL_MODELS=1 to allow it)")
        with self._local_lock:
            if name not in self.local:
                self.local[name] = load_local_entry(name)
                while len(self.local) > MAX_LOCAL_MODELS:
                    self.local.popitem(last=False)
            self.local.move_to_end(name)
            return self.local[name]

    def default_name(self, preferred: tuple[str, ...] = ()) -> Optional[str]:
        """The first of ``preferred`` that is loaded, else the first model (None if empty)."""
        for name in preferred:
            if name in self.entries:
                return name
        return self.names[0] if self.names else None


_REGISTRIES: dict[Path, ModelRegistry] = {}
_LOCK = threading.Lock()


def get_registry(root: Optional[Path] = None) -> ModelRegistry:
    """The registry of ``root`` (default: :func:`checkpoint_root`), loaded once per process."""
    root = Path(root or checkpoint_root()).resolve()
    with _LOCK:
        if root not in _REGISTRIES:
            _REGISTRIES[root] = ModelRegistry.load(root)
        return _REGISTRIES[root]
