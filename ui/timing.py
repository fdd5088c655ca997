"""Handler timings for benchmarks: with ``$GENSCOPE_TIMING_LOG`` set to a file, each handler run
under :func:`ui.handlers.guarded` appends ``{"handler", "start", "end", "cpu"}`` (epoch seconds; the
handler thread's CPU seconds) to it as one JSON line, so that ``benchmarks/bench_keystroke.py`` can
split a keystroke's wait into the browser's and the server's parts, and the handler's into running
and waiting (for the GIL or a core). Unset (the default), nothing is written."""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Iterator

_LOCK = threading.Lock()


@contextlib.contextmanager
def logged(name: str) -> Iterator[None]:
    """Time the block and append it to ``$GENSCOPE_TIMING_LOG`` (if set)."""
    path = os.environ.get("GENSCOPE_TIMING_LOG")
    if not path:
        yield
        return
    start, cpu = time.time(), time.thread_time()
    try:
        yield
    finally:
        line = json.dumps({"handler": name, "start": start, "end": time.time(), "cpu": time.thread_time() - cpu})
        with _LOCK, open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
