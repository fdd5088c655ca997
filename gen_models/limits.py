"""The limits a decoding or attribution run works under, and the clock it is stopped by.

The library's defaults bound what one recorded trace may cost (the CLI and notebooks run under them);
a server narrows them per request with :func:`applied` (``ui.budget`` builds the server's from its
environment). Limits travel in a context variable, so a request's limits and deadline follow it into
the thread that runs it and never leak into another request's.

Costs (checked before the work starts, with the same formula that refuses it):

- a recorded decode: ``source tokens × beams × steps`` (:data:`Limits.traced_work`), and the values
  it records — every attention map, coverage and candidate row of every hypothesis at every step —
  estimated after its first two steps (:data:`Limits.recorded_values`; this is what bounds the size
  of a multi-head model's trace, whose steps hold layers × heads maps);
- a decode of a model that declares its size (``ModelFeatures.parameters``, e.g. a Hugging Face LLM):
  ``parameters × (source tokens + beams × steps)``, the tokens it runs through its weights
  (:data:`Limits.model_work`), and ``key/value cache bytes per token × beams × (source tokens +
  steps)``, the memory its cache grows to (:data:`Limits.cache_mb`); recorded or not;
- an attribution: ``integration steps × source tokens × output steps fed`` (:data:`Limits.attribution_work`),
  integrated ``attribution_batch`` points at a time so that memory does not grow with the steps.
"""
from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass, replace
from typing import Iterator, Optional


class TimeLimitExceeded(ValueError):
    """A request ran past its wall-time limit (a ValueError: its message is shown to the user)."""


@dataclass(frozen=True)
class Limits:
    """What one request may cost. ``deadline`` is a ``time.monotonic()`` instant (None: no clock);
    ``seconds`` and ``what`` name the limit in the message of a request stopped by it."""

    traced_work: int = 250_000  # source tokens × beams × steps of one recorded trace
    recorded_values: int = 600_000  # numbers one recorded trace keeps (≤ 14 bytes each as JSON: ≤ 8.4 MB)
    attribution_work: int = 600_000  # integration steps × source tokens × output steps fed (≈ 25 CPU-s)
    attribution_batch: int = 4  # integration points evaluated together (memory ≈ batch × steps × vocab)
    model_work: int = 2_500_000_000_000  # parameters × tokens run through them (a 0.5B model on ~5,000 tokens)
    cache_mb: int = 2048  # megabytes of key/value cache one decode may grow (bytes per token × beams × tokens)
    deadline: Optional[float] = None
    seconds: float = 0.0
    what: str = "GENSCOPE_REQUEST_SECONDS"


LIBRARY_DEFAULTS = Limits()
_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar("genscope_limits", default=LIBRARY_DEFAULTS)


def current() -> Limits:
    """The limits of the run in progress."""
    return _CURRENT.get()


@contextlib.contextmanager
def applied(limits: Limits, seconds: Optional[float] = None) -> Iterator[Limits]:
    """Run the block under ``limits``, stopped ``seconds`` from now when given."""
    if seconds is not None:
        limits = replace(limits, deadline=time.monotonic() + seconds, seconds=seconds)
    token = _CURRENT.set(limits)
    try:
        yield limits
    finally:
        _CURRENT.reset(token)


def check_time() -> None:
    """Stop the run (:class:`TimeLimitExceeded`) once its deadline has passed."""
    limits = _CURRENT.get()
    if limits.deadline is not None and time.monotonic() > limits.deadline:
        raise TimeLimitExceeded(f"stopped at the time limit of one request ({limits.seconds:g} s, "
                                f"{limits.what}): lower the beam size, the max length or the steps, "
                                "or shorten the input")


def check_cost(kind: str, cost: int, limit: int, formula: str, advice: str) -> None:
    """Refuse a run whose ``cost`` (given as ``formula``) is over ``limit``, naming both."""
    if cost > limit:
        raise ValueError(f"this {kind} would cost {formula} = {cost:,}, over the limit of {limit:,}: {advice}")
