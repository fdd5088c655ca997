"""App-side logic between raw request values and traces: run a trace, re-run it with changes,
compare two runs. No Gradio here, so it is testable and timeable on its own."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import plotly.graph_objects as go
import torch

from gen_models.decoding import DecodeSettings, generate, trace_settings
from gen_models.text import tokenize
from gen_models.trace import GenerationTrace
from visualizers import ViewOptions, compare_figure, diff_html

from .registry import ModelEntry, ModelRegistry
from .validation import as_int, clean_keyword, clean_text, decode_settings

_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None
if _LIBC is not None and not hasattr(_LIBC, "malloc_trim"):
    _LIBC = None
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc mallopt parameters
EMPTY_HINT = "Type or paste some text (e.g. a Debian package description), or pick an example."


@dataclass
class TraceResult:
    """A decoding run for the app: the trace (None when there was nothing to decode) and notices."""

    trace: Optional[GenerationTrace]
    notices: list[str] = field(default_factory=list)
    hint: str = ""
    elapsed_ms: float = 0.0


def prepare(registry: ModelRegistry, model_name: Any, text: Any,
            settings_values: dict[str, Any], **interventions: Any) -> tuple[ModelEntry, str, DecodeSettings, list[str]]:
    """Validate a request: (model entry, capped text, settings, notices). ValueError names the problem."""
    entry = registry.get(model_name)
    text, notices = clean_text(text)
    return entry, text, decode_settings(settings_values, entry.model.features, **interventions), notices


def run_trace(registry: ModelRegistry, model_name: Any, text: Any, settings_values: dict[str, Any],
              reference: Any = None, keyword: Any = None, **interventions: Any) -> TraceResult:
    """Decode ``text`` with the named model (scoring ``reference`` too, when one is given; around
    ``keyword`` for a keyword model, when one is given); an input without tokens gives a hint instead."""
    start = time.perf_counter()
    entry, text, settings, notices = prepare(registry, model_name, text, settings_values, **interventions)
    if not tokenize(text):
        return TraceResult(None, notices, f"{entry.input_hint or entry.model.features.input_hint}, or pick an example."
                           if entry.input_hint or entry.model.features.input_hint else EMPTY_HINT)
    reference, _ = clean_text(reference)
    keyword = clean_keyword(keyword)
    if keyword and not entry.model.features.keywords:
        notices.append(f"keyword ignored: {entry.name} does not build its output around a keyword")
    topics = [keyword] if keyword and entry.model.features.keywords else None
    trace = generate(entry.model, text, settings, topics, reference=reference if reference.strip() else None)
    release_memory()
    return TraceResult(trace, notices + list(trace.notices), "", 1e3 * (time.perf_counter() - start))


def release_memory() -> None:
    """Hand freed memory back to the system (glibc keeps the arenas of large freed traces otherwise,
    so resident memory grew with every visitor); a no-op where ``malloc_trim`` does not exist or
    ``$GENSCOPE_MALLOC_TRIM=0``."""
    if _LIBC is not None and os.environ.get("GENSCOPE_MALLOC_TRIM", "1") != "0":
        _LIBC.malloc_trim(0)


def limit_allocator() -> None:
    """Make glibc give large freed blocks back at once: two malloc arenas instead of one per handler
    thread (Gradio's thread pool spreads traces over dozens, each keeping its freed memory), and
    blocks over ``$GENSCOPE_MMAP_THRESHOLD_KB`` (default 4 MB) mapped on their own rather than carved
    from the heap. A lower threshold (256 kB was the first choice) maps every step's logits afresh:
    the page faults made decoding 1.5x slower (benchmarks/bench_keystroke.py). Called once at start;
    a no-op where glibc is absent or ``$GENSCOPE_MALLOC_TRIM=0``."""
    if _LIBC is not None and os.environ.get("GENSCOPE_MALLOC_TRIM", "1") != "0":
        _LIBC.mallopt(M_ARENA_MAX, 2)
        _LIBC.mallopt(M_MMAP_THRESHOLD, 1024 * int(os.environ.get("GENSCOPE_MMAP_THRESHOLD_KB", "4096")))


def rerun(entry: ModelEntry, text: str, settings: DecodeSettings, **changes: Any) -> GenerationTrace:
    """Decode again with some settings changed (interventions)."""
    return generate(entry.model, text, replace(settings, **changes).validate())


def compare_runs(registry: ModelRegistry, text: Any, model_a: Any, values_a: dict[str, Any],
                 model_b: Any, values_b: dict[str, Any]) -> tuple[TraceResult, TraceResult]:
    """Run A and B on the same input; B's settings are A's with B's non-empty values on top."""
    merged = dict(values_a, **{k: v for k, v in values_b.items() if v is not None and v != ""})
    return run_trace(registry, model_a, text, values_a), run_trace(registry, model_b, text, merged)


def comparison_views(trace_a: GenerationTrace, trace_b: GenerationTrace, labels: tuple[str, str],
                     options: Optional[ViewOptions] = None) -> tuple[str, go.Figure]:
    """The step-aligned diff (HTML) and the side-by-side figure of two traces."""
    return diff_html(trace_a, trace_b, labels), compare_figure(trace_a, trace_b, options, labels)


def explain_step(registry: ModelRegistry, trace: Optional[GenerationTrace], text: Any, step: Any, method: Any,
                 contrast: Any, n_steps: Any) -> dict:
    """Attribute output step ``step`` of the shown trace (same model, settings and keyword) to its
    source (:func:`gen_models.attribution.explain`). ValueError names a bad request."""
    from gen_models.attribution import DEFAULT_STEPS, explain

    entry, text, step, n_steps = _explained(registry, trace, text, step, n_steps, DEFAULT_STEPS)
    contrast = contrast.strip() if isinstance(contrast, str) and contrast.strip() else None
    topics = [trace.extra["keyword"]] if "keyword" in trace.extra else None
    return explain(entry.model, text, step, str(method or "ig"), contrast, trace_settings(trace), topics, n_steps)


def lens_step(registry: ModelRegistry, trace: Optional[GenerationTrace], text: Any, step: Any) -> dict:
    """The logit lens at output step ``step`` of the shown trace (Transformer decoders only)."""
    from gen_models.models.hf_adapter import HFGenerator, logit_lens

    entry, text, step, _ = _explained(registry, trace, text, step, 2, 2)
    if not isinstance(entry.model, HFGenerator):
        raise ValueError(f"the logit lens needs a Transformer decoder; {entry.name} is a "
                         f"{entry.model.features.architecture}")
    with torch.no_grad():
        encoded = entry.model.encode(text)
    return logit_lens(entry.model, encoded, trace.output_ids(), step)


def _explained(registry: ModelRegistry, trace: Optional[GenerationTrace], text: Any, step: Any, n_steps: Any,
               default_steps: int) -> tuple[ModelEntry, str, int, int]:
    """Check an explanation request against the shown trace: (entry, text, step, integration steps)."""
    if trace is None or not trace.steps:
        raise ValueError("decode something first: there is no output step to explain")
    text, _ = clean_text(text)
    step = as_int("step", 0 if step is None else step)
    if not 0 <= step < len(trace.steps):
        raise ValueError(f"step must be between 0 and {len(trace.steps) - 1}, got {step}")
    return registry.get(trace.model), text, step, as_int("ig_steps", default_steps if n_steps is None else n_steps)
