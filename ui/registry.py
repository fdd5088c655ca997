"""Knows every checkpoint and answers "which models are there, and what do we know about them".

The checkpoint root is ``$GENSCOPE_CHECKPOINTS`` or the repository's ``checkpoints/``. At start only
each folder's config, card and weights header are read (a folder that fails that check — half-written
while training, malformed — is skipped and reported, never fatal); a model's weights load on its first
use, once per process (:attr:`ModelEntry.model`), or all of them in the background with
:meth:`ModelRegistry.warm_up`, so that ``python app.py`` answers before every model is in memory.

A model name ``hf:PATH`` loads a local Hugging Face model folder on first use (safetensors only, no
remote code, no network; at most ``MAX_LOCAL_MODELS`` kept), only from under the model roots
(``$GENSCOPE_MODEL_ROOTS``; default: the checkpoint folder and ``~/genscope-models``): a path
outside them is refused without looking at it. This is on by default and off on a
Space (``$SPACE_ID`` set) unless ``$GENSCOPE_ALLOW_LOCAL_MODELS=1``; ``=0`` turns it off anywhere.

``hf:ORG/NAME`` downloads a Hub model only where the server opts in with
``$GENSCOPE_ALLOW_HUB_MODELS=1`` (then app.py leaves ``HF_HUB_OFFLINE`` off), and only if its
safetensors weights are at most ``$GENSCOPE_MAX_HUB_MODEL_MB`` (default 1024) megabytes.
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gen_models.checkpoint import (CHECKPOINT_ROOT, check_checkpoint, list_checkpoints, load_checkpoint, read_config,
                                   read_metrics)
from gen_models.protocol import Generator

LOG = logging.getLogger("genscope.registry")
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXHIBIT = "other generators"
LOCAL_EXHIBIT = "your own Hugging Face model"
LOCAL_PREFIX = "hf:"
USER_MODELS = "~/genscope-models"
MAX_CARD_CHARS = 50_000
MAX_LOCAL_MODELS = 2
MAX_MODEL_PATH_CHARS = 1024
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
DEFAULT_MAX_HUB_MODEL_MB = 1024


@dataclass
class ModelEntry:
    """One checkpoint and its metadata; its model is built on first use of :attr:`model` (or given)."""

    name: str
    folder: Path
    loaded: Optional[Generator]
    config: dict
    metrics: dict
    card: str = ""
    exhibit: str = DEFAULT_EXHIBIT
    title: str = ""
    examples: list[str] = field(default_factory=list)
    train_data: Optional[Path] = None
    task: str = ""
    input_hint: str = ""
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _load_error: str = field(default="", repr=False, compare=False)

    @property
    def model(self) -> Generator:
        """The model, loaded from :attr:`folder` the first time it is asked for (thread-safe; a
        folder that fails to load raises ValueError naming it, then and on every later ask, without
        trying again)."""
        if self.loaded is None:
            with self._load_lock:
                if self.loaded is None and not self._load_error:
                    try:
                        self.loaded = load_checkpoint(self.folder)
                    except Exception as error:  # the visitor gets the model's name, the log the rest
                        LOG.warning("cannot load checkpoint %s: %s", self.folder, error)
                        self._load_error = (f"model {self.name!r} could not be loaded on this server "
                                            f"({type(error).__name__}; details are in the server log)")
        if self.loaded is None:  # a failed load is not retried on every request
            raise ValueError(self._load_error)
        return self.loaded

    @property
    def test_data(self) -> Optional[Path]:
        """The exhibit's held-out split beside its training data (``test.jsonl.gz``), if there is one."""
        path = self.train_data.with_name("test.jsonl.gz") if self.train_data else None
        return path if path is not None and path.is_file() else None

    @property
    def display_name(self) -> str:
        """Dropdown label: the name first (readable when the dropdown is closed), then exhibit › title."""
        title = f" › {self.title}" if self.title and self.title != self.name else ""
        return f"{self.name} — {self.exhibit}{title}"


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
    """One checkpoint folder's entry: config, metrics and model card read, the weights' header
    checked (ValueError if malformed), the model itself left to load on first use."""
    check_checkpoint(folder)
    config = read_config(folder)
    card_path = folder / "README.md"
    card = card_path.read_text(encoding="utf-8", errors="replace")[:MAX_CARD_CHARS] if card_path.is_file() else ""
    examples = [e for e in config.get("examples", []) if isinstance(e, str) and e.strip()]
    return ModelEntry(
        name=folder.name, folder=folder, loaded=None, config=config,
        metrics=read_metrics(folder), card=card, exhibit=str(config.get("exhibit") or DEFAULT_EXHIBIT),
        title=str(config.get("title") or ""), examples=examples,
        train_data=resolve_data_path(config.get("train_data"), folder),
        task=str(config.get("task") or ""), input_hint=str(config.get("input_hint") or ""),
    )


def model_roots() -> list[Path]:
    """Folders ``hf:PATH`` may load from: ``$GENSCOPE_MODEL_ROOTS`` (``os.pathsep``-separated), by
    default the checkpoint folder and ``~/genscope-models``."""
    value = os.environ.get("GENSCOPE_MODEL_ROOTS", "")
    roots = [r for r in value.split(os.pathsep) if r.strip()] or [str(checkpoint_root()), USER_MODELS]
    return [Path(r).expanduser().resolve() for r in roots]


def local_models_allowed() -> bool:
    """Whether ``hf:PATH`` names may load local Hugging Face folders on this server."""
    setting = os.environ.get("GENSCOPE_ALLOW_LOCAL_MODELS")
    if setting is not None:
        return setting.strip() == "1"
    return not os.environ.get("SPACE_ID")


def hub_models_allowed() -> bool:
    """Whether ``hf:ORG/NAME`` may download Hub models on this server (opt-in)."""
    return os.environ.get("GENSCOPE_ALLOW_HUB_MODELS", "").strip() == "1"


def max_hub_model_mb() -> float:
    """The largest Hub model (safetensors megabytes) this server downloads."""
    try:
        return float(os.environ.get("GENSCOPE_MAX_HUB_MODEL_MB", DEFAULT_MAX_HUB_MODEL_MB))
    except ValueError:
        return DEFAULT_MAX_HUB_MODEL_MB


def require_local_models() -> None:
    """ValueError unless this server loads local Hugging Face folders."""
    if not local_models_allowed():
        raise ValueError("loading local Hugging Face models is disabled on this server "
                         "(set GENSCOPE_ALLOW_LOCAL_MODELS=1 to allow it)")


def model_source(target: str) -> tuple[str, bool]:
    """(path or Hub id, whether the network is used) for ``hf:`` + ``target``, checked against this
    server's policy (ValueError with the reason)."""
    from gen_models.models import hf_adapter

    path = Path(target).expanduser().resolve()
    roots = model_roots()
    # outside the roots nothing is looked at, so the answer never tells whether a folder exists
    if any(path.is_relative_to(root) for root in roots) and path.is_dir():
        require_local_models()
        return str(path), False
    if not HUB_ID.fullmatch(target):
        require_local_models()
        raise ValueError(f"{target[:200]!r} is not a local model folder under this server's model roots "
                         f"({len(roots)} folder{'s' if len(roots) != 1 else ''}, set by the server's "
                         "GENSCOPE_MODEL_ROOTS; the operator can tell you which)")
    if not hub_models_allowed():
        raise ValueError(f"{target[:200]!r} is not a local model folder, and this server does not download Hub "
                         "models (set GENSCOPE_ALLOW_HUB_MODELS=1 to allow it)")
    size, limit = hf_adapter.hub_weights_mb(target), max_hub_model_mb()
    if size > limit:
        raise ValueError(f"{target!r} has {size:,.0f} MB of weights, over this server's {limit:,.0f} MB limit "
                         "(GENSCOPE_MAX_HUB_MODEL_MB)")
    return target, True


def load_local_entry(name: str) -> ModelEntry:
    """Load ``hf:PATH`` (or an allowed ``hf:ORG/NAME``) through the engine's Hugging Face adapter
    (ValueError with the reason)."""
    from gen_models.models import hf_adapter

    target = name[len(LOCAL_PREFIX):].strip()
    if len(target) > MAX_MODEL_PATH_CHARS:
        raise ValueError(f"a model path or Hub id has at most {MAX_MODEL_PATH_CHARS} characters, got {len(target):,}")
    source, network = model_source(target)
    try:
        model = hf_adapter.load_hf(source, allow_network=network)
    except Exception as error:  # transformers raises many kinds: the user gets their kind, the log the rest
        LOG.warning("cannot load %s: %s", target[:200], error)
        raise ValueError(f"cannot load {target[:200]!r} as a Hugging Face model ({type(error).__name__}: "
                         "no usable config, tokenizer and safetensors weights; details are in the server "
                         "log)") from None
    title = Path(source).name if not network else target
    return ModelEntry(name=name, folder=Path(source), loaded=model, config=model.model.config.to_dict(), metrics={},
                      exhibit=LOCAL_EXHIBIT, title=title)


class ModelRegistry:
    """All loadable checkpoints under one root, by name."""

    def __init__(self, entries: list[ModelEntry], errors: Optional[dict[str, str]] = None):
        self.entries = {entry.name: entry for entry in entries}
        self.errors = errors or {}
        self.local: OrderedDict[str, ModelEntry] = OrderedDict()
        self._local_lock = threading.Lock()

    @classmethod
    def load(cls, root: Path) -> "ModelRegistry":
        """Every checkpoint folder under ``root`` that passes :func:`load_entry`'s check; failures are
        logged and kept in ``errors``. Models load on first use (or :meth:`warm_up`)."""
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
        """A local (or allowed Hub) Hugging Face model, loaded on first use; the least recently used
        is dropped."""
        with self._local_lock:
            if name not in self.local:
                self.local[name] = load_local_entry(name)
                while len(self.local) > MAX_LOCAL_MODELS:
                    self.local.popitem(last=False)
            self.local.move_to_end(name)
            return self.local[name]

    def warm_up(self, first: Optional[str] = None) -> threading.Thread:
        """Load every model in a background thread (``first`` before the rest), so that a visitor's
        first keystroke on a model rarely waits for its weights; a model that fails is logged."""
        def load_all() -> None:
            names = ([first] if first in self.entries else []) + [n for n in self.names if n != first]
            for name in names:
                try:
                    self.entries[name].model
                except ValueError:
                    pass  # logged by ModelEntry.model; the visitor who picks it gets the message
        thread = threading.Thread(target=load_all, name="genscope-warm-up", daemon=True)
        thread.start()
        return thread

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
