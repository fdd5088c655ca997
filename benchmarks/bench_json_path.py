"""The API's ``/trace`` (every view that applies, and the trace JSON) against the browser's live
event (the open tab's views only) on the heaviest request the work budget lets through.

    python benchmarks/bench_json_path.py [--repeats 2] [--quick]

Beam 16 and max_len = min_len = the most steps up to 60 that the work budget accepts (``ui/budget.py``:
the recorded-values limit binds first for multi-head models), a 40-sentence documentation input (cut
to each model's source limit: 256 Transformer pieces, 120 RNN tokens), one thread, in this process
(no HTTP). Prints the best of ``--repeats`` for both paths, their ratio and the JSON size (target:
at most ``GENSCOPE_REPLY_MB``, 10 MB). ``--quick``: beam 2, 5 steps.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from ui.handlers import SETTING_NAMES, Handlers  # noqa: E402
from ui.registry import get_registry  # noqa: E402

MODELS = ("enzh-transformer", "enzh-pointer-coverage")
SENTENCE = "Choose Tools - Options - LibreOffice Calc - View to change the display of formulas."
VIEW_VALUES = [0, 3, True, "png", "mean", "mean", "own", "whole tree", False, "", None, None]  # pin, view options, reference, keyword


def best_seconds(run, repeats: int) -> tuple[float, dict]:
    """The fastest of ``repeats`` runs, and the last output."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def heaviest(handlers: Handlers, name: str, text: str, beams: int, most: int) -> tuple[int, list]:
    """The most steps (≤ ``most``) at ``beams`` beams that the budget accepts for ``name`` on ``text``,
    and the settings values (a refusal comes after two steps, so the search is cheap)."""
    for steps in range(most, 0, -5 if most > 5 else -1):
        settings = dict.fromkeys(SETTING_NAMES)
        settings.update(beam_size=beams, max_len=steps, min_len=steps)
        values = [settings[n] for n in SETTING_NAMES]
        status = handlers.trace_live(name, text, *values, *VIEW_VALUES, "Attention", None, None, "")["status"]
        if "over the limit" not in status:
            return steps, values
    raise SystemExit(f"{name}: the budget refuses even one step at beam {beams}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    registry = get_registry(REPO / "checkpoints")  # the shipped models, whatever $GENSCOPE_CHECKPOINTS says
    handlers = Handlers(registry)
    if not any(m in registry.names for m in MODELS):
        raise SystemExit(f"none of {', '.join(MODELS)} is in {REPO / 'checkpoints'}")
    beams, most = (2, 5) if args.quick else (16, 60)
    text = " ".join([SENTENCE] * 40)
    for name in (m for m in MODELS if m in registry.names):
        steps, values = heaviest(handlers, name, text, beams, most)
        live, _ = best_seconds(lambda: handlers.trace_live(name, text, *values, *VIEW_VALUES, "Attention", None, None, ""), args.repeats)
        full, out = best_seconds(lambda: handlers.trace(name, text, *values, *VIEW_VALUES), args.repeats)
        print(f"{name}, beam {beams}, {steps} steps: live {live:.2f} s, /trace with JSON {full:.2f} s = ratio "
              f"{full / live:.2f}x; JSON {len(out['trace_json']) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
