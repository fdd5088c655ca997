"""Server memory over one user's long session: resident memory of ``python app.py`` at start (every
model warmed up, before the first visitor) and after each round of a browser session that, in one
page, picks every shipped model from the model list, types into its input and opens every tab it
shows.

    python benchmarks/bench_session_memory.py [--rounds 3] [--keys 6] [--models a,b,...]

One round is what a visitor exploring every exhibit does (20 models × (a model switch, ``--keys``
real key presses, every visible tab opened)): at the default that is about 60 model switches, 360
keystrokes and 250 tab renders over three rounds — a busy hour compressed into a few minutes. A
model's first pick pays for loading nothing: the background warm-up has loaded every model before
the first round (the benchmark waits for it).

Target (issue #33): RSS after the session ≤ 1.3× RSS at start.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_app import CHROMIUM, CHROMIUM_ARGS, resident_mb, served_app  # noqa: E402
from ui.registry import get_registry  # noqa: E402

WAIT_MS = 60_000
VISIBLE_TABS_JS = """() => [...document.querySelectorAll('[role=tab]')].filter(t => t.offsetParent !== null)
  .map(t => t.innerText.trim())"""
SETTLED_JS = """(quiet) => {
  const s = document.querySelector('#status').innerText, now = Date.now();
  if (window.__gsStatus !== s) { window.__gsStatus = s; window.__gsSince = now; }
  return now - window.__gsSince >= quiet;
}"""


def settle(page, quiet_ms: int = 800) -> None:
    """Until the status line has not changed for ``quiet_ms``."""
    page.wait_for_function(SETTLED_JS, arg=quiet_ms, timeout=WAIT_MS, polling=100)


def steady_rss(pid: int, seconds: float = 3.0) -> float:
    """RSS in MB once it stops changing by more than 2 MB per second (at most 60 s)."""
    last, deadline = resident_mb(pid), time.time() + 60
    while time.time() < deadline:
        time.sleep(seconds)
        now = resident_mb(pid)
        if abs(now - last) <= 2 * seconds:
            return now
        last = now
    return last


def pick_model(page, name: str) -> None:
    """Choose ``name`` in the model list as a user does (type part of it, click the option)."""
    page.get_by_label("Model (name — exhibit › model)").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(name, delay=5)
    page.get_by_role("option").filter(has_text=name).first.click()
    settle(page)


def explore(page, name: str, keys: int) -> int:
    """Type ``keys`` letters into the input and open every tab shown; returns tabs opened."""
    box = page.locator("#input-text textarea")
    box.click()
    page.keyboard.press("End")
    for index in range(keys):
        page.keyboard.press(" " if index % 3 == 0 else "abcdefghij"[index % 10])
        time.sleep(0.25)
    settle(page)
    tabs = page.evaluate(VISIBLE_TABS_JS)
    for tab in tabs:
        page.get_by_role("tab", name=tab, exact=True).first.click()
        settle(page, 400)
    return len(tabs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=6)
    parser.add_argument("--models", default="", help="comma-separated (default: every shipped model)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    names = [n for n in args.models.split(",") if n] or get_registry().names
    from playwright.sync_api import sync_playwright

    with served_app() as (url, process, seconds), sync_playwright() as playwright:
        start = steady_rss(process.pid)
        print(f"app start (python app.py until HTTP answers): {seconds:.1f} s; RSS once warmed up: {start:.0f} MB")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#view-attention .js-plotly-plot", timeout=WAIT_MS)
        began = time.time()
        for round_index in range(args.rounds):
            tabs = 0
            for name in names:
                try:
                    pick_model(page, name)
                    tabs += explore(page, name, args.keys)
                except Exception as error:  # noqa: BLE001 - one flow that fails is reported, not fatal
                    print(f"  round {round_index + 1}, {name}: {type(error).__name__}: {str(error)[:120]}")
            rss = steady_rss(process.pid)
            print(f"round {round_index + 1}: {len(names)} models, {len(names) * args.keys} keys, {tabs} tabs opened, "
                  f"{time.time() - began:.0f} s in: RSS {rss:.0f} MB = {rss / start:.2f}x start (target <= 1.3x)")
        browser.close()


if __name__ == "__main__":
    main()
