"""What a user waits for: a key press in the input box until the attention heatmap is redrawn with
the new input, in a real browser, against the bare ``generate()`` of the same input and settings.

    python benchmarks/bench_keystroke.py [--keys 15] [--models debian-pointer-coverage,enzh-transformer,poem-mta]
    python benchmarks/bench_keystroke.py --quick      # one model, 4 keys (the test suite runs this)

``python app.py`` runs in a subprocess, as a user starts it (with ``$GENSCOPE_TIMING_LOG`` set, so
that each handler run is logged with its start and end). Debian Chromium opens the app on a link to
each model with its input (debian-pointer-coverage: a 100-token test description; enzh-transformer
and poem-mta: their first example) and the Attention tab; then, ``--keys`` times, ``--gap`` seconds
apart, a real key press (a letter appended; for poem-mta, the last character deleted and typed
again) and, in the page, a MutationObserver on the heatmap notes when its figure first shows the new
input (its source labels change). Between key presses this process times ``generate()`` on the same
input with the same settings, three times (median); the ratio is latency ÷ bare decode, per key.

Breakdown of the median key (epoch clocks of page and server, same machine):
- to handler: key press → the live handler starts (input event, request, queue);
- handler: the server's live trace handler (decode, figures, outputs); handler cpu: the CPU time
  of its thread meanwhile (the rest it waited, for the GIL or for a core);
- transport: handler end → the page has parsed the reply (serialisation, SSE, JSON parse);
- render: reply parsed → heatmap redrawn (Svelte update, Plotly), split into to draw (reply parsed →
  the page's draw call starts: Gradio's outputs update and its chained ``.then`` event) and plotly
  (the draw call itself, ``Plotly.react``);
and the bytes of the replies that one key press brought (every event it triggered).

Targets (issue #33): p50 ≤ 1.5× and p90 ≤ 2.5× the bare decode per model; ≤ 20 kB per key press for
the 100-token Debian input.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from benchmarks.bench_app import CHROMIUM, CHROMIUM_ARGS, hundred_token_input, pick_model, served_app  # noqa: E402
from gen_models.decoding import generate  # noqa: E402
from ui.links import PARAMETER, encode_view  # noqa: E402
from ui.registry import get_registry  # noqa: E402
from ui.service import prepare  # noqa: E402

MODELS = ("debian-pointer-coverage", "enzh-transformer", "poem-mta")
BEAM = 4
LIVE_HANDLER = "trace_live"

# Installed before the page's own scripts: the epoch time of each key press, and of each reply the
# page parses (Gradio's client JSON-parses every server-sent message) with its size.
PAGE_PROBES = """
window.__gs = {keys: [], replies: [], draws: [], calls: []};
Object.defineProperty(window, 'gsDraw', {configurable: true, get() { return window.__gsDraw; }, set(draw) {
  window.__gsDraw = (figures) => {  // the page's draw call, timed: [start, end]
    const start = performance.timeOrigin + performance.now();
    draw(figures);
    window.__gs.calls.push([start, performance.timeOrigin + performance.now()]);
  };
}});
document.addEventListener('keydown', () => window.__gs.keys.push(performance.timeOrigin + performance.now()), true);
const parse = JSON.parse;
JSON.parse = function (text, reviver) {
  const value = parse.call(this, text, reviver);
  if (typeof text === 'string' && text.indexOf('"process_completed"') >= 0)
    window.__gs.replies.push([performance.timeOrigin + performance.now(), text.length]);
  return value;
};
"""
# Notes when the heatmap's figure first shows other source labels than the given ones.
OBSERVE_JS = """(before) => {
  const box = document.querySelector('#view-attention');
  const labels = () => { const g = box.querySelector('.js-plotly-plot');
    return g && g.data && g.data[0] && g.data[0].x ? JSON.stringify(Array.from(g.data[0].x)) : null; };
  window.__gsBefore = before === null ? labels() : before;
  if (window.__gsObserver) window.__gsObserver.disconnect();
  window.__gsObserver = new MutationObserver(() => {
    const now = labels();
    if (now !== null && now !== window.__gsBefore) {
      window.__gs.draws.push(performance.timeOrigin + performance.now());
      window.__gsBefore = now;
    }
  });
  window.__gsObserver.observe(box, {subtree: true, childList: true, attributes: true});
  return window.__gsBefore;
}"""


def model_input(registry, name: str) -> str:
    """The benchmark's input for ``name``: 100 Debian tokens, else the model's first example."""
    if name.startswith("debian-pointer"):
        return hundred_token_input()
    return registry.get(name).examples[0]


def bare_decode_ms(registry, name: str, text: str, repeats: int = 3) -> float:
    """Median ms of ``generate()`` on ``text`` with the settings the app uses (beam 4)."""
    entry, text, settings, _ = prepare(registry, name, text, {"beam_size": BEAM})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(entry.model, text, settings)
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def handler_runs(log: Path) -> list[dict]:
    """The live handler's logged runs."""
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["handler"] == LIVE_HANDLER]


def next_key(name: str, index: int) -> str:
    """The key press that changes the input: a letter, or (poem topics) delete / retype."""
    if name.startswith("poem"):
        return "Backspace" if index % 2 == 0 else "retype"
    return "abcdefghijklmnopqrstuvwxyz"[index % 26]


def measure_model(browser, url: str, log: Path, registry, name: str, keys: int, gap: float) -> dict:
    """Per key: latency, bare decode and breakdown (ms), and reply bytes."""
    text = model_input(registry, name)
    link = encode_view({"model": name, "text": text, "tab": "Attention", "settings": {"beam_size": BEAM}})
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.add_init_script(PAGE_PROBES)
    page.goto(f"{url}?{PARAMETER}={link}")
    page.wait_for_selector("#view-attention .js-plotly-plot", timeout=120_000)
    box = page.locator("#input-text textarea")
    page.wait_for_function("(t) => document.querySelector('#input-text textarea').value === t", arg=text,
                           timeout=120_000)
    time.sleep(gap)
    box.click()
    page.keyboard.press("End")
    removed = text[-1]
    rows = []
    for index in range(keys):
        before = page.evaluate(OBSERVE_JS, None)
        counts = page.evaluate("() => [window.__gs.keys.length, window.__gs.replies.length, window.__gs.draws.length]")
        key = next_key(name, index)
        if key == "retype":
            page.keyboard.insert_text(removed)  # an IME's commit: one input event, no key code
            page.evaluate("() => window.__gs.keys.push(performance.timeOrigin + performance.now())")
        else:
            page.keyboard.press(key)
        try:
            page.wait_for_function("(n) => window.__gs.draws.length > n", arg=counts[2], timeout=30_000)
        except Exception:  # noqa: BLE001 - a key that did not redraw is reported, not fatal
            print(f"  {name}: key {index} ({key}) did not redraw the heatmap within 30 s")
            continue
        time.sleep(max(0.0, gap - 0.2))
        probes = page.evaluate("() => window.__gs")
        typed = page.evaluate("() => document.querySelector('#input-text textarea').value")
        if before is None:
            continue
        key_at, drawn_at = probes["keys"][counts[0]], probes["draws"][counts[2]]
        replies = [r for r in probes["replies"][counts[1]:]]
        runs = [r for r in handler_runs(log) if r["start"] * 1e3 >= key_at - 5]
        bare = bare_decode_ms(registry, name, typed)
        row = {"latency": drawn_at - key_at, "bare": bare, "bytes": sum(size for _, size in replies)}
        if runs:
            run = runs[-1] if runs[-1]["end"] * 1e3 <= drawn_at else runs[0]
            parsed = [at for at, _ in replies if at >= run["end"] * 1e3 - 5]
            reply_at = parsed[0] if parsed else drawn_at
            calls = [c for c in probes["calls"] if reply_at <= c[0] <= drawn_at + 1]
            if calls:  # reply parsed -> the page's draw call -> Plotly done
                row.update(to_draw=calls[0][0] - reply_at, plotly=calls[0][1] - calls[0][0])
            row.update(to_handler=run["start"] * 1e3 - key_at, handler=(run["end"] - run["start"]) * 1e3,
                       transport=reply_at - run["end"] * 1e3, render=drawn_at - reply_at, handler_runs=len(runs),
                       handler_cpu=run.get("cpu", float("nan")) * 1e3)
        rows.append(row)
    page.close()
    return {"name": name, "rows": rows, "source_tokens": len(text.split())}


def report(result: dict) -> dict:
    """Print one model's figures; return its medians."""
    rows = result["rows"]
    if not rows:
        print(f"{result['name']}: no key press redrew the heatmap")
        return {}
    latency = [r["latency"] for r in rows]
    bare = [r["bare"] for r in rows]
    ratios = [r["latency"] / r["bare"] for r in rows]
    p50, p90 = np.percentile(latency, 50), np.percentile(latency, 90)
    print(f"{result['name']} ({len(rows)} keys, beam {BEAM}): keystroke -> redrawn heatmap p50 {p50:.0f} ms, "
          f"p90 {p90:.0f} ms; bare generate() p50 {np.median(bare):.0f} ms; "
          f"ratio p50 {np.median(ratios):.2f}x, p90 {np.percentile(ratios, 90):.2f}x (targets <= 1.5x, <= 2.5x)")
    split = [r for r in rows if "handler" in r]  # keys whose handler run was found in the log
    if split:
        print(f"  breakdown, medians over {len(split)} keys: " + ", ".join(
            f"{k.replace('_', ' ')} {np.median([r[k] for r in split]):.0f} ms"
            for k in ("to_handler", "handler", "handler_cpu", "transport", "render", "to_draw", "plotly")
            if all(k in r for r in split)))
    print(f"  bytes received per key press: median {np.median([r['bytes'] for r in rows]) / 1e3:.1f} kB"
          + (" (target <= 20 kB)" if result["name"].startswith("debian") else ""))
    return {"p50": p50, "ratio": float(np.median(ratios))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=15)
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between key presses")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="one model, 4 keys, 1.2 s apart")
    args = parser.parse_args()
    if args.quick:
        args.keys, args.gap, args.models = 4, 1.2, MODELS[0]
    torch.set_num_threads(int(os.environ.get("GENSCOPE_TORCH_THREADS", "1")))
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    registry = get_registry()
    names = [n for n in args.models.split(",") if n in registry.entries]
    if not names:  # other checkpoints ($GENSCOPE_CHECKPOINTS): bench_app's choice among them
        names = [pick_model(registry)]
        print(f"none of {args.models} is among the checkpoints: measuring {names[0]}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "timings.jsonl"
        os.environ["GENSCOPE_TIMING_LOG"] = str(log)
        with served_app() as (url, _process, seconds), sync_playwright() as playwright:
            print(f"app start (python app.py until HTTP answers): {seconds:.1f} s")
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            for name in names:
                report(measure_model(browser, url, log, registry, name, args.keys, args.gap))
            browser.close()


if __name__ == "__main__":
    main()
