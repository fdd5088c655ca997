"""One work budget for a public server: every endpoint draws on it, and it is all in this module.

What a request may cost is estimated before it runs, from the formula that refuses it, and every
refusal names the limit and the value asked for:

- **compute per request**: a recorded decode (source tokens × beams × steps, and the numbers it would
  record: every attention map of every hypothesis at every step; for a model that declares its size,
  parameters × tokens run and the key/value cache's megabytes), an attribution (integration steps ×
  source tokens × output steps fed), a corpus run (examples × beams × steps) — the decode and
  attribution limits are :class:`gen_models.limits.Limits`, applied to each request here;
- **wall time per request**: a request past its time is stopped at its next step and answered with
  a message naming the limit;
- **requests at once, across every endpoint** (renders included): decodes and renders share
  ``GENSCOPE_CONCURRENCY`` slots; attributions, the logit lens and reports one ``heavy`` slot; corpus
  runs one ``corpus`` slot, so that neither can hold the slots other visitors' typing needs;
- **what one visitor may queue**: per session and per client address;
- **bytes**: request bodies, uploads, the reply of ``/trace``, and the traces kept for visitors
  (:class:`ui.sessions.TraceStore`).

Every limit is an environment variable (``ENVIRONMENT`` lists them with their defaults) that a Space
operator can tune.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass, fields
from typing import Any, Iterator, Optional

from gen_models import limits

MB = 1024 * 1024


@dataclass(frozen=True)
class Budget:
    """The server's limits (defaults in the field declarations; each one's variable in ``ENVIRONMENT``)."""

    traced_work: int = limits.LIBRARY_DEFAULTS.traced_work
    recorded_values: int = limits.LIBRARY_DEFAULTS.recorded_values
    attribution_work: int = limits.LIBRARY_DEFAULTS.attribution_work
    attribution_batch: int = limits.LIBRARY_DEFAULTS.attribution_batch
    model_work: int = limits.LIBRARY_DEFAULTS.model_work
    cache_mb: int = limits.LIBRARY_DEFAULTS.cache_mb
    request_seconds: float = 15.0
    heavy_seconds: float = 30.0
    corpus_seconds: float = 120.0
    corpus_work: int = 120_000
    concurrency: int = 2
    heavy_concurrency: int = 1
    queue_size: int = 64
    queued_per_session: int = 16  # a page's own live events (model change, settings, tabs) queue several at once
    queued_per_client: int = 32
    body_kb: int = 1024
    upload_files: int = 4
    reply_mb: float = 10.0
    trace_store_mb: float = 96.0
    trace_idle_s: float = 1800.0
    monitoring: bool = False

    def limits_for(self, kind: str) -> tuple[limits.Limits, float, str]:
        """The decode/attribution limits, the wall time and the time limit's variable of a request of
        ``kind`` ("work", "heavy" or "corpus")."""
        seconds, variable = {"heavy": (self.heavy_seconds, "GENSCOPE_HEAVY_SECONDS"),
                             "corpus": (self.corpus_seconds, "GENSCOPE_CORPUS_SECONDS")}.get(
            kind, (self.request_seconds, "GENSCOPE_REQUEST_SECONDS"))
        return (limits.Limits(self.traced_work, self.recorded_values, self.attribution_work,
                              self.attribution_batch, self.model_work, self.cache_mb, what=variable), seconds, variable)


ENVIRONMENT = {f.name: f"GENSCOPE_{f.name.upper()}" for f in fields(Budget)}


def from_environment(environ: Optional[dict] = None) -> Budget:
    """The budget with each ``GENSCOPE_*`` variable that is set (ValueError naming a bad one)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Budget):
        raw = environ.get(ENVIRONMENT[f.name])
        if raw is None or raw == "":
            continue
        kind = type(f.default)
        try:
            value = raw.strip().lower() in ("1", "true", "yes") if kind is bool else kind(float(raw))
        except ValueError:
            raise ValueError(f"{ENVIRONMENT[f.name]} must be a number, got {raw[:40]!r}") from None
        if kind is not bool and value <= 0:
            raise ValueError(f"{ENVIRONMENT[f.name]} must be positive, got {raw[:40]!r}")
        values[f.name] = value
    return Budget(**values)


BUDGET = from_environment()


def current() -> Budget:
    """The server's budget (tests may replace ``BUDGET``)."""
    return BUDGET


@contextlib.contextmanager
def limited(kind: str = "work") -> Iterator[limits.Limits]:
    """Run a request of ``kind`` under the budget's limits and its wall time."""
    request_limits, seconds, _ = current().limits_for(kind)
    with limits.applied(request_limits, seconds) as applied:
        yield applied


# -- requests at once, across endpoints ---------------------------------------------------------
def concurrency(kind: str = "work") -> dict:
    """The ``concurrency_id`` / ``concurrency_limit`` of an event of ``kind``: one limit per kind,
    shared by every event of that kind (Gradio's default is one limit per event)."""
    budget = current()
    limit = {"work": budget.concurrency, "heavy": budget.heavy_concurrency, "corpus": 1}[kind]
    return dict(concurrency_id=kind, concurrency_limit=limit)


def check_corpus(examples: int, beams: int, steps: int) -> None:
    """Refuse a corpus run in the app over ``corpus_work`` (the CLI's runs are not bounded)."""
    limits.check_cost("corpus run", examples * beams * steps, current().corpus_work,
                      f"{examples} examples × {beams} beams × {steps} steps",
                      "trace fewer examples, or lower the beam size or the max length "
                      "(the CLI's `python -m gen_models corpus` has no such limit)")


def check_reply(text: str, what: str = "trace JSON") -> str:
    """``text`` when it fits the reply limit, else ValueError naming it."""
    limit = current().reply_mb * MB
    if len(text) > limit:
        raise ValueError(f"the {what} would be {len(text) / MB:.1f} MB, over the reply limit of "
                         f"{current().reply_mb:g} MB (GENSCOPE_REPLY_MB): lower the beam size or the max length")
    return text


# -- what one visitor may queue ------------------------------------------------------------------
_QUEUE: dict[str, Any] = {}


def client_address(request: Any) -> Optional[str]:
    """The address a request comes from: on a Space, the first ``X-Forwarded-For`` hop (its proxy's
    view of the visitor); elsewhere the peer. None for loopback peers (the operator's own machine),
    which are not limited per address."""
    headers = getattr(request, "headers", {}) or {}
    forwarded = headers.get("x-forwarded-for", "") if os.environ.get("SPACE_ID") else ""
    host = forwarded.split(",")[0].strip() or getattr(getattr(request, "client", None), "host", None)
    try:
        return None if host is None or ipaddress.ip_address(host).is_loopback else host
    except ValueError:
        return host


def queued_refusal(queue: Any, session_hash: Optional[str], address: Optional[str]) -> Optional[str]:
    """Why a new event of this session / client may not join ``queue`` (None: it may)."""
    budget = current()
    waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    mine = sum(1 for e in waiting if e.session_hash == session_hash)
    if mine >= budget.queued_per_session:
        return (f"this page already has {mine} requests waiting, the limit per visitor "
                f"(GENSCOPE_QUEUED_PER_SESSION = {budget.queued_per_session}): wait for them to finish")
    if address is not None:
        theirs = sum(1 for e in waiting if client_address(e.request) == address)
        if theirs >= budget.queued_per_client:
            return (f"your address already has {theirs} requests waiting, the limit per client "
                    f"(GENSCOPE_QUEUED_PER_CLIENT = {budget.queued_per_client}): wait for them to finish")
    return None


def guard_queue(demo: Any) -> None:
    """Bound what one session or client may queue in ``demo``'s queue (call after ``demo.queue()``)."""
    queue = demo._queue
    push = queue.push
    _QUEUE["queue"] = queue

    async def bounded_push(body: Any, request: Any, username: Any) -> tuple:
        refusal = queued_refusal(queue, body.session_hash, client_address(request))
        if refusal is not None:
            return False, refusal, "queue_full"
        return await push(body=body, request=request, username=username)

    queue.push = bounded_push


def still_wanted(request: Any, fn_name: str) -> bool:
    """False once the visitor who sent ``request`` to ``fn_name`` has pressed Stop or left the page
    (Gradio then drops the running job, or marks it dead); True outside a served app."""
    queue, session = _QUEUE.get("queue"), getattr(request, "session_hash", None)
    if queue is None or session is None:
        return True
    for jobs in queue.active_jobs:
        for event in jobs or ():
            if event.session_hash == session and getattr(event.fn, "name", None) == fn_name:
                return event.alive
    return False
