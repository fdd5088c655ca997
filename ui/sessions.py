"""What the server keeps per visitor. Gradio copies every output value of every event into the
session (``SessionState.config_values``) so that its deep-link button can rebuild the page; for
GenScope that is each keystroke's figures and trace JSON, about 17 MB per visitor that stay until
the session expires (gradio-app/gradio#11009 reports the growth). GenScope offers no deep-link
button (its shareable links carry the view in the address), so sessions keep what the handlers
read — their ``gr.State`` values and updated component settings — and no copies of outputs; the
``/gradio_api/deep_link`` route, which would write those copies to disk, is refused.

The traces themselves are not in the sessions: a session's ``gr.State`` holds a :class:`TraceRef`
into one :class:`TraceStore`, bounded in bytes for all visitors together.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from gradio.state_holder import SessionState

DEEP_LINK_ROUTE = "/gradio_api/deep_link"


def _keep_no_output_copy(self: SessionState, key: int, value: Any) -> None:
    """Stands in for ``SessionState._update_value_in_config``: the value is not copied."""


def keep_no_output_copies() -> None:
    """Stop Gradio's sessions from holding a copy of every output (call once, before serving)."""
    SessionState._update_value_in_config = _keep_no_output_copy


class RefuseDeepLinks:
    """ASGI middleware answering 404 to Gradio's deep-link route."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").endswith(DEEP_LINK_ROUTE):
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"GenScope links carry the view in ?view="})
            return
        await self.app(scope, receive, send)


def trace_nbytes(trace: Any) -> int:
    """About how many bytes a trace holds in memory: its arrays, plus the Python objects of its
    steps, nodes, candidates and processor stages (tracemalloc on shipped models: within 20%)."""
    arrays = objects = 0
    for step in [*trace.steps, *(n.internals for n in trace.beam if n.internals is not None)]:
        arrays += sum(getattr(getattr(step, name), "nbytes", 0) for name in ARRAY_FIELDS)
        arrays += sum(getattr(v, "nbytes", 0) for v in step.extra.values())
        objects += STEP_BYTES + CANDIDATE_BYTES * len(step.candidates)
    for stages in (step.processors for step in trace.steps if step.processors is not None):  # the output's only
        arrays += getattr(stages.probs, "nbytes", 0)
        objects += STAGES_BYTES + STAGE_TOKEN_BYTES * len(stages.token_ids)
    encoder = getattr(trace.encoder_attention, "nbytes", 0)
    return arrays + objects + encoder + NODE_BYTES * len(trace.beam)


ARRAY_FIELDS = ("attention", "coverage", "topic_attention", "topic_coverage", "self_attention")
STEP_BYTES, CANDIDATE_BYTES, NODE_BYTES = 300, 160, 210  # fitted with tracemalloc on shipped models
STAGES_BYTES, STAGE_TOKEN_BYTES = 150, 70  # a step's ProcessorStages and each of its tokens (tiny models)


@dataclass(frozen=True)
class TraceRef:
    """What a visitor's ``gr.State`` holds for its trace: a key into the server's :class:`TraceStore`."""

    key: str


class TraceStore:
    """The traces the server keeps for its visitors, bounded in bytes: the least recently used are
    dropped first when the total passes ``max_bytes``, and any left unused for ``idle_s`` seconds.
    A visitor whose trace was dropped gets the "no trace" message and decodes again on the next edit.
    A visitor keeps its newest two: a trace put as the successor of another (``replaces``) drops the
    one that other succeeded, which nothing of that visitor can reach any more (a request sent just
    before the newest arrived may still read the one before it)."""

    def __init__(self, max_bytes: int, idle_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_bytes, self.idle_s, self.clock = max_bytes, idle_s, clock
        self.entries: OrderedDict[str, tuple[Any, int, float]] = OrderedDict()  # key -> (trace, bytes, last use)
        self.total = 0
        self.succeeded: dict[str, str] = {}  # key -> the key of the trace it replaced
        self.lock = threading.Lock()

    def put(self, trace: Any, replaces: Any = None) -> TraceRef:
        """Keep ``trace``; its reference for the visitor's state. ``replaces``: the visitor's
        current trace (a :class:`TraceRef`), which this one succeeds."""
        key, size = uuid.uuid4().hex, trace_nbytes(trace)
        with self.lock:
            if isinstance(replaces, TraceRef) and replaces.key in self.entries:
                older = self.succeeded.pop(replaces.key, None)
                if older is not None:
                    self._drop(older)
                self.succeeded[key] = replaces.key
            self.entries[key] = (trace, size, self.clock())
            self.total += size
            self._evict()
        return TraceRef(key)

    def get(self, ref: Any) -> Any:
        """The trace of ``ref`` (None when it was dropped, or ``ref`` is no reference)."""
        if not isinstance(ref, TraceRef):
            return None
        with self.lock:
            self._evict()
            entry = self.entries.get(ref.key)
            if entry is None:
                return None
            self.entries[ref.key] = (entry[0], entry[1], self.clock())
            self.entries.move_to_end(ref.key)
            return entry[0]

    def _evict(self) -> None:
        now = self.clock()
        while self.entries:
            key, (_, size, used) = next(iter(self.entries.items()))
            if self.total <= self.max_bytes and now - used <= self.idle_s:
                break
            self._drop(key)

    def _drop(self, key: str) -> None:
        """Forget the trace of ``key`` (if still kept) and its link to the one it replaced."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.total -= entry[1]
        self.succeeded.pop(key, None)


class LiveRuns:
    """Each visitor's latest live decode (what it decodes from, and when), for dropping duplicates.
    One edit can start several live decodes: a model switch sets the input and every setting, and
    each change event dispatches one, all carrying the page's values from before the first reply. A
    duplicate would decode again and, replying last, put back the pinned step it was sent with over
    a pin the user made meanwhile. Bounded: the ``max_sessions`` most recent visitors."""

    def __init__(self, window_s: float = 5.0, max_sessions: int = 4096,
                 clock: Callable[[], float] = time.monotonic):
        self.window_s, self.max_sessions, self.clock = window_s, max_sessions, clock
        self._latest: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def is_duplicate(self, session: Any, inputs: str) -> bool:
        """Whether ``session``'s latest live decode, still running or finished within ``window_s``,
        was from these ``inputs``; if not, this one becomes its latest (running until
        :meth:`finished`). No session (an API client): no."""
        if not session:
            return False
        with self._lock:
            now = self.clock()
            latest = self._latest.get(session)
            if latest is not None and latest[0] == inputs and now - latest[1] <= self.window_s:
                return True
            self._latest[session] = (inputs, math.inf)
            self._latest.move_to_end(session)
            while len(self._latest) > self.max_sessions:
                self._latest.popitem(last=False)
            return False

    def finished(self, session: Any, inputs: str) -> None:
        """The decode from ``inputs`` has replied (or failed): its window starts now."""
        with self._lock:
            if session and self._latest.get(session, ("",))[0] == inputs:
                self._latest[session] = (inputs, self.clock())
