"""Compare en→zh pointer runs trained with different objectives on the held-out test split.

    python -m training.compare_objectives runs/enzh-pc-tf runs/enzh-pc-ss runs/enzh-pc-attreg [--limit 400] [--every 4]

``--every 4`` takes every fourth pair, so the UI and Debian Reference slices are in; ``--named 50``
takes 50 pairs per slice among those whose reference keeps a Latin-script name (evenly spaced),
and skips the ``<unk>`` count on unlike text. Each run
folder is a checkpoint (``training/train_enzh_objectives.sh`` makes them). The metrics are
``training.evaluate_enzh``'s — BLEU / chrF, names reproduced, duplicate n-grams (repetition),
under-translated source words, ``<unk>`` per output on English unlike the training text — beside
each run's last validation NLL and attention-regulariser value. Writes ``docs/results_objectives.md``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from gen_models.checkpoint import CHECKPOINT_ROOT, read_metrics
from gen_models.decoding import DecodeSettings
from training.evaluate_enzh import DATA, evaluate, names_to_copy, results_table
from training.evaluation import ROOT, read_rows


def named_rows(rows: list[dict], per_slice: int) -> list[dict]:
    """``per_slice`` evenly spaced pairs of each slice among those whose reference keeps a name."""
    chosen = []
    for origin in ("help", "ui", "debref"):
        named = [r for r in rows if r["origin"] == origin and names_to_copy(r["src"], r["tgt"])]
        chosen += named[:: max(1, len(named) // per_slice)][:per_slice]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="the first N test pairs only")
    parser.add_argument("--every", type=int, default=1, help="every K-th test pair (all three slices)")
    parser.add_argument("--named", type=int, default=0, help="N name-bearing pairs per slice")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_objectives.md")
    args = parser.parse_args()
    rows = read_rows(DATA, "test")[:: args.every][: args.limit or None]
    if args.named:
        rows = named_rows(rows, args.named)
    names = [os.path.relpath(run.resolve(), CHECKPOINT_ROOT) for run in args.runs]
    results = evaluate(names, rows, DecodeSettings(beam_size=4, max_len=80), score_references=False,
                       unlike=not args.named)
    lines = [results_table(results, len(rows)), "", "| run | objective | valid NLL | valid attention reg. |",
             "|---|---|---|---|"]
    for run in args.runs:
        metrics = read_metrics(run)
        last, training = metrics["curves"][-1], metrics.get("training", {})
        objective = (f"names scrambled (p = {training['scramble_names']})" if training.get("scramble_names") else
                     f"scheduled sampling ({training.get('scheduled_sampling')}, ε_min {training.get('ss_floor')})"
                     if training.get("scheduled_sampling", "none") != "none" else
                     f"attention reg. λ = {training.get('attention_reg')}, τ = {training.get('attention_target')}"
                     if training.get("attention_reg") else "teacher forcing")
        lines.append(f"| {run.name} | {objective} | {last['valid_nll']:.3f} | {last.get('valid_attention_reg', 0):.3f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
