"""The costliest requests the work budget lets through, against ``python app.py`` on the shipped
checkpoints (each figure beside its target; ``ui/budget.py`` holds the limits):

- the costliest accepted ``/explain``: integrated gradients with 128 steps at the last step of a
  greedy ``debian-pointer-coverage`` trace sized to the attribution limit — wall time and the
  server's peak resident memory growth (targets ≤ 30 s, ≤ 1.5 GB);
- the heaviest accepted ``/trace`` of ``enzh-transformer`` (beam 16, the most steps the budget
  accepts): reply size and time (target ≤ 10 MB);
- a corpus run at the budget's limit in one session while another session types: the slowest of
  the other session's ``/trace`` answers, and that ratio to an idle server's (target ≤ 20 s);
- all of these at once, each from its own session, plus new heavy sessions, for two minutes: the
  server's peak resident memory (target ≤ 2.5 GB) and the slowest ``/trace`` of a visitor who types
  meanwhile (target ≤ 20 s);
- 30 bodies of 50 MB sent to ``/queue/join``: refused before they are read, memory unchanged.

    python benchmarks/bench_budget.py [--quick]

``--quick`` (the suite): a small attribution, beam 4, a 10-example corpus run, 3 bodies.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_app import resident_mb, served_app  # noqa: E402

DEBIAN, TRANSFORMER = "debian-pointer-coverage", "enzh-transformer"
SENTENCE = "Choose Tools - Options - LibreOffice Calc - View to change the display of formulas."
DESCRIPTION = ("htop is an interactive text-mode process viewer for Unix systems. It aims to be a better "
               "top. It shows a frequently updated list of the processes running on a computer, normally "
               "ordered by the amount of CPU usage.")


class PeakMemory:
    """The peak resident memory of a process while a block runs (sampled every 20 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def __enter__(self) -> "PeakMemory":
        self.start = resident_mb(self.pid)
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, resident_mb(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()

    @property
    def growth(self) -> float:
        return self.peak - self.start


def costliest_explain(url: str, pid: int, quick: bool) -> None:
    from gradio_client import Client

    from ui.budget import current

    client = Client(url, verbose=False)
    words, ig = (40, 16) if quick else (100, 128)
    text = " ".join((" ".join((DESCRIPTION + " ").split() * 10)).split()[:words])
    outputs = client.predict(DEBIAN, text, strategy="greedy", max_len=200, min_len=200 if not quick else 20,
                             api_name="/trace")
    assert outputs[1].startswith("✓"), outputs[1]
    source = len(json.loads(outputs[0])["source_tokens"])  # the model's own tokens (punctuation, cased)
    pinned = min(199, current().attribution_work // (ig * source)) - 1 if not quick else 19  # fills the limit
    steps = pinned + 1
    with PeakMemory(pid) as memory:
        start = time.perf_counter()
        status = client.predict(text, pinned, "ig", "", ig, api_name="/explain")[1]
        elapsed = time.perf_counter() - start
    assert status.startswith("✓") or "time limit" in status, status  # accepted: done, or stopped at its deadline
    print(f"costliest /explain ({ig} IG steps × {source} source tokens × {steps} output steps): {elapsed:.1f} s "
          f"(ratio to the 30 s target {elapsed / 30:.2f}), peak RSS +{memory.growth:.0f} MB (target ≤ 1,500); "
          f"{status[:60]}")


def heaviest_trace(url: str, quick: bool) -> tuple[int, int]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    beams = 4 if quick else 16
    text = " ".join([SENTENCE] * 40)
    for steps in range(60, 0, -5):
        start = time.perf_counter()
        try:
            outputs = client.predict(TRANSFORMER, text, beam_size=beams, max_len=steps, min_len=steps,
                                     api_name="/trace")
        except Exception as error:  # refused by the budget: try fewer steps
            if "over the limit" in str(error):
                continue
            raise
        elapsed = time.perf_counter() - start
        size = len(outputs[0].encode()) / 1e6
        print(f"heaviest accepted /trace, {TRANSFORMER} beam {beams} × {steps} steps: {elapsed:.1f} s, reply "
              f"{size:.1f} MB (ratio to the 10 MB limit {size / 10:.2f})")
        return beams, steps
    raise SystemExit("no /trace of the heaviest kind was accepted")


def corpus_while_typing(url: str, quick: bool) -> None:
    from gradio_client import Client

    typist, runner = Client(url, verbose=False), Client(url, verbose=False)
    idle = []
    for _ in range(3):
        start = time.perf_counter()
        typist.predict(DEBIAN, DESCRIPTION, api_name="/trace")
        idle.append(time.perf_counter() - start)
    examples = 10 if quick else 500
    job = runner.submit(DEBIAN, examples, "attention_entropy", "rouge_l", api_name="/corpus")
    busy, deadline = [], time.perf_counter() + (4 if quick else 90)
    while time.perf_counter() < deadline and not job.done():
        start = time.perf_counter()
        typist.predict(DEBIAN, DESCRIPTION + f" {len(busy)}", api_name="/trace")
        busy.append(time.perf_counter() - start)
        time.sleep(1.0)
    job.cancel()
    slowest = max(busy) if busy else float("nan")
    print(f"/trace while a {examples}-example corpus run holds its slot: slowest {slowest:.2f} s over {len(busy)} "
          f"keystrokes (target ≤ 20 s), idle {min(idle):.2f} s: ratio {slowest / min(idle):.1f}x")


def all_at_once(url: str, pid: int, heaviest: tuple[int, int], quick: bool) -> None:
    """Every costly request at once, each from its own session, for ``seconds``: two loops of the
    heaviest /trace, a loop of the costliest /explain, a corpus run at its limit and a stream of new
    heavy sessions; meanwhile a visitor types once a second. Peak RSS and the visitor's slowest wait."""
    from gradio_client import Client

    seconds, (beams, steps) = (8 if quick else 120), heaviest
    stop, errors = threading.Event(), []

    def looping(request) -> None:
        client = Client(url, verbose=False)
        while not stop.is_set():
            try:
                request(client)
            except Exception as error:  # a refusal or a stop is an answer; count what is not one
                if not any(word in str(error) for word in ("limit", "queue", "waiting")):
                    errors.append(repr(error)[:120])

    def explain(client) -> None:
        text = " ".join(DESCRIPTION.split() * 3)
        client.predict(DEBIAN, text, strategy="greedy", max_len=40, min_len=40, api_name="/trace")
        client.predict(text, 39, "ig", "", 128, api_name="/explain")

    def new_session(_) -> None:
        Client(url, verbose=False).predict(DEBIAN, " ".join(DESCRIPTION.split() * 12), beam_size=8, max_len=60,
                                           min_len=60, api_name="/trace")

    loops = [lambda c: c.predict(TRANSFORMER, " ".join([SENTENCE] * 40), beam_size=beams, max_len=steps,
                                 min_len=steps, api_name="/trace")] * 2
    loops += [explain, new_session,
              lambda c: c.predict(DEBIAN, 10 if quick else 500, "attention_entropy", "rouge_l", api_name="/corpus")]
    threads = [threading.Thread(target=looping, args=(loop,), daemon=True) for loop in loops]
    visitor, waits = Client(url, verbose=False), []
    with PeakMemory(pid) as memory:
        for thread in threads:
            thread.start()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            visitor.predict(DEBIAN, DESCRIPTION + f" {len(waits)}", api_name="/trace")
            waits.append(time.perf_counter() - start)
            time.sleep(1.0)
        stop.set()
    print(f"all at once for {seconds} s (2 heaviest /trace loops, the costliest /explain, a corpus run, new heavy "
          f"sessions): peak RSS {memory.peak:.0f} MB (target ≤ 2,500), a visitor's slowest /trace "
          f"{max(waits):.1f} s over {len(waits)} (target ≤ 20 s); unexpected errors: {len(errors)} {errors[:2]}")


def big_bodies(url: str, pid: int, quick: bool) -> None:
    port = urllib.parse.urlsplit(url).port
    count, size = (3, 50) if quick else (30, 50)
    before, refused, start = resident_mb(pid), 0, time.perf_counter()
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/gradio_api/queue/join")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(size * 1024 * 1024))
        connection.endheaders()
        refused += connection.getresponse().status == 413
        connection.close()
    elapsed = (time.perf_counter() - start) / count
    print(f"{count} bodies of {size} MB: {refused} refused before they were read, {1e3 * elapsed:.1f} ms each; RSS "
          f"{resident_mb(pid) - before:+.0f} MB (ratio of refused {refused / count:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    os.environ["GENSCOPE_CHECKPOINTS"] = str(REPO / "checkpoints")  # the shipped models, always
    with served_app() as (url, process, _):
        print(f"server at start: {resident_mb(process.pid):.0f} MB resident")
        costliest_explain(url, process.pid, args.quick)
        heaviest = heaviest_trace(url, args.quick)
        corpus_while_typing(url, args.quick)
        all_at_once(url, process.pid, heaviest, args.quick)
        big_bodies(url, process.pid, args.quick)
        print(f"server at the end: {resident_mb(process.pid):.0f} MB resident")


if __name__ == "__main__":
    main()
