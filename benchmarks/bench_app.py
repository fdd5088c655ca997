"""GenScope app speed: server latency per keystroke, start time, memory, browser redraw time.

    python benchmarks/bench_app.py [--runs 30] [--keystrokes 10] [--no-browser]

1. Server side, in this process: the live handler a keystroke runs (validation, beam-4 decoding of a
   100-token Debian description, the open tab's figures ready to send) vs the plain ``generate()``
   call it wraps, run interleaved; p50/p95 and the ratio of medians. Model: debian-pointer-coverage,
   else any pointer-generator checkpoint, else the first one.
2. ``python app.py`` in a subprocess: seconds until it answers HTTP, resident memory (VmRSS from
   /proc) with every shipped model loaded after a first request, and the ``/trace`` round trip
   through ``gradio_client`` (queue and serialisation included).
3. With /usr/bin/chromium: keystroke in the input box → attention heatmap redrawn with the new
   source, p50/p95.

Targets: server p50 <= 100 ms and <= 1.2x generate(), <= 60 kB of figures per keystroke, start <= 15 s,
memory <= 1.5 GB.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gen_models.decoding import SETTING_NAMES, DecodeSettings, generate  # noqa: E402
from gen_models.text import tokenize  # noqa: E402
from ui.handlers import Handlers  # noqa: E402
from ui.registry import ModelRegistry, get_registry  # noqa: E402

PREFERRED = "debian-pointer-coverage"
INPUT_TOKENS = 100
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]
SETTINGS = [getattr(DecodeSettings(beam_size=4, max_len=30), name) for name in SETTING_NAMES]  # the panel's values
VIEW_OPTIONS = [0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None]  # pinned step, VIEW_OPTION_NAMES, reference, keyword
OPEN_TAB = "Attention"  # the tab a browser opens on


def payload_kb(outputs: dict) -> float:
    """Kilobytes of figures and HTML a live update sends (plot JSON, the page's figures, HTML text)."""
    total = 0
    for name, value in outputs.items():
        value = value.get("value", value) if isinstance(value, dict) and name != "figures" else value
        if hasattr(value, "plot"):
            total += len(value.plot)
        elif name == "figures":
            total += len(json.dumps(value))
        elif isinstance(value, str):
            total += len(value)
    return total / 1e3


def pick_model(registry: ModelRegistry) -> str:
    """debian-pointer-coverage, else a pointer-generator, else the first checkpoint."""
    if PREFERRED in registry.entries:
        return PREFERRED
    pointers = [name for name in registry.names if registry.entries[name].model.features.copies]
    if not pointers and not registry.names:
        raise SystemExit("no checkpoints found")
    return (pointers or registry.names)[0]


def hundred_token_input() -> str:
    """The first 100 tokens of the first Debian test description that has that many."""
    with gzip.open(REPO / "data" / "debian" / "test.jsonl.gz", "rt", encoding="utf-8") as rows:
        for line in rows:
            tokens = tokenize(json.loads(line)["src"])
            if len(tokens) >= INPUT_TOKENS:
                return " ".join(tokens[:INPUT_TOKENS])
    raise SystemExit("no test description with 100 tokens")


def percentiles(times: list[float]) -> str:
    """'p50 X ms, p95 Y ms'."""
    return f"p50 {np.percentile(times, 50):6.1f} ms, p95 {np.percentile(times, 95):6.1f} ms"


def server_latency(registry: ModelRegistry, name: str, text: str, runs: int) -> None:
    """Interleaved timings of the live trace handler (what a keystroke runs) and of generate() alone."""
    handlers, model = Handlers(registry), registry.get(name).model
    settings = DecodeSettings(beam_size=4, max_len=30)
    handler_ms, generate_ms = [], []
    for _ in range(3):
        handlers.trace_live(name, text, *SETTINGS, *VIEW_OPTIONS, OPEN_TAB, None, None, "")
    for _ in range(runs):
        start = time.perf_counter()
        generate(model, text, settings)
        generate_ms.append(1e3 * (time.perf_counter() - start))
        start = time.perf_counter()
        outputs = handlers.trace_live(name, text, *SETTINGS, *VIEW_OPTIONS, OPEN_TAB, None, None, "")
        handler_ms.append(1e3 * (time.perf_counter() - start))
    trace = generate(model, text, settings)
    assert outputs["state"] is not None, outputs["status"]
    json_text = handlers.trace(name, text, *SETTINGS, *VIEW_OPTIONS)["trace_json"]
    print(f"model {name}: {len(trace.source_tokens)} source tokens, beam 4, {len(trace.steps)} output tokens, "
          f"{len(trace.beam)} tree nodes, trace JSON {len(json_text) / 1e3:.0f} kB (API only)")
    print(f"server live trace handler (open tab ready):  {percentiles(handler_ms)}")
    print(f"plain generate():                          {percentiles(generate_ms)}")
    print(f"ratio of medians handler / generate: {np.median(handler_ms) / np.median(generate_ms):.2f}x "
          f"(target: <= 1.2x, p50 <= 100 ms)")
    print(f"figures and HTML sent per keystroke ({OPEN_TAB} tab open): {payload_kb(outputs):.0f} kB (target: <= 60 kB)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(port: int) -> tuple[subprocess.Popen, float]:
    """``python app.py`` on ``port``; seconds until it answers HTTP."""
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    while time.perf_counter() - start < 120:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process, time.perf_counter() - start
        except OSError:
            if process.poll() is not None:
                raise SystemExit("app.py exited during start-up")
            time.sleep(0.1)
    process.kill()
    raise SystemExit("app.py did not answer within 120 s")


@contextlib.contextmanager
def served_app() -> Iterator[tuple[str, subprocess.Popen, float]]:
    """``python app.py`` on a free port for a block: (its URL, the process, seconds until it answered)."""
    port = free_port()
    process, seconds = start_app(port)
    try:
        yield f"http://127.0.0.1:{port}/", process, seconds
    finally:
        process.terminate()
        process.wait(timeout=30)


def resident_mb(pid: int) -> float:
    """VmRSS of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def round_trips(url: str, name: str, text: str, runs: int) -> list[float]:
    """/trace through gradio_client (queue, serialisation and transport included)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(name, text, api_name="/trace")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.predict(name, text, api_name="/trace")
        times.append(1e3 * (time.perf_counter() - start))
    return times


def keystroke_redraws(url: str, text: str, keystrokes: int) -> list[float]:
    """ms from a key press in the input box until the attention heatmap is redrawn with the new
    source (its last column label, e.g. "100 · writexa", changes)."""
    from playwright.sync_api import sync_playwright

    last_column = "() => { const g = document.querySelector('#view-attention .js-plotly-plot');" \
                  " return g && g.data && g.data[0].x ? g.data[0].x[g.data[0].x.length - 1] : null; }"
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#view-attention .js-plotly-plot", timeout=60_000)
        page.locator("#input-text textarea").fill(text)
        page.locator("#input-text textarea").press("End")
        page.keyboard.type("x")
        time.sleep(3)
        for letter in "abcdefghijklmnopqrstuvw"[:keystrokes]:
            before = page.evaluate(last_column)
            start = time.perf_counter()
            page.keyboard.press(letter)
            page.wait_for_function(f"(before) => ({last_column})() !== before", arg=before, timeout=30_000)
            times.append(1e3 * (time.perf_counter() - start))
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keystrokes", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--server-only", action="store_true", help="only part 1 (in-process handler timings)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("GENSCOPE_TORCH_THREADS", "1")))
    registry = get_registry()
    name, text = pick_model(registry), hundred_token_input()
    server_latency(registry, name, text, args.runs)
    if args.server_only:
        return
    with served_app() as (url, process, seconds):
        trips = round_trips(url, name, text, max(5, args.runs // 3))
        print(f"app start (python app.py until HTTP answers): {seconds:.1f} s (target <= 15 s)")
        print(f"resident memory with {len(registry.names)} models loaded, after requests: "
              f"{resident_mb(process.pid):.0f} MB (target <= 1536 MB)")
        print(f"/trace round trip through gradio_client: {percentiles(trips)}")
        if CHROMIUM.exists() and not args.no_browser:
            print(f"browser keystroke -> redrawn heatmap: {percentiles(keystroke_redraws(url, text, args.keystrokes))}")


if __name__ == "__main__":
    main()
