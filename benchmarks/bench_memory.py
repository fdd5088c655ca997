"""Server memory per new visitor: resident memory growth of ``python app.py`` over N new sessions,
each sending one heavy ``/trace`` (beam 8, max_len = min_len = 60, a 3,000-character Debian input).

    python benchmarks/bench_memory.py [--sessions 30]

Runs the server twice in this process's environment, with freed memory handed back to the system
after each trace (the default) and without (``GENSCOPE_MALLOC_TRIM=0``), and prints both growths.
Target: growth <= 150 MB over 30 sessions.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_app import free_port, resident_mb, start_app  # noqa: E402

MODEL = "debian-pointer-coverage"


def heavy_input() -> str:
    """About 3,000 characters of Debian test descriptions."""
    text = ""
    with gzip.open(REPO / "data" / "debian" / "test.jsonl.gz", "rt", encoding="utf-8") as rows:
        for line in rows:
            text += json.loads(line)["src"] + " "
            if len(text) >= 3000:
                return text[:3000]
    return text


def growth(sessions: int, trim: bool) -> tuple[float, float]:
    """(resident MB after the first session, growth in MB over the following ones)."""
    from gradio_client import Client

    os.environ["GENSCOPE_MALLOC_TRIM"] = "1" if trim else "0"
    port = free_port()
    process, _ = start_app(port)
    try:
        text, first = heavy_input(), None
        for index in range(sessions):
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
                MODEL, text, beam_size=8, max_len=60, min_len=60, api_name="/trace")
            if index == 0:
                time.sleep(1)
                first = resident_mb(process.pid)
        time.sleep(1)
        return first, resident_mb(process.pid) - first
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=30)
    args = parser.parse_args()
    for trim in (True, False):
        first, grew = growth(args.sessions, trim)
        label = "memory returned after each trace" if trim else "GENSCOPE_MALLOC_TRIM=0"
        print(f"{label:34s}: {first:6.0f} MB after 1 session, +{grew:5.0f} MB over {args.sessions - 1} more "
              "(target <= 150 MB)")


if __name__ == "__main__":
    main()
