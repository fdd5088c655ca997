"""The poem models held to each poem form, on the first test topic sets (no files written).

    python -m training.compare_poem_forms [--limit 300]

For each model and each ``poem_form`` (free, 5x4, 7x4, 5x8, 7x8): topic integrity, duplicate
character bigrams, regulated form, mean length, multi-reference BLEU-2 and the mean final topic
coverage, as in :mod:`training.evaluate_poems` (beam 4, the models' own defaults otherwise). The
models decode in parallel processes, one thread each.
"""
from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ProcessPoolExecutor

from gen_models.decoding import POEM_FORMS
from training.evaluate_poems import DATA, MODELS, decode, multi_ref_bleu2, score
from training.evaluation import read_rows
from training.metrics import is_word


def form_rows(name: str, rows: list[dict]) -> list[str]:
    """One markdown row per poem form for checkpoint ``name``."""
    sets = [row["topics"] for row in rows]
    lines = []
    for form in POEM_FORMS:
        poems, finished, remaining = decode(name, sets, 4, form)
        s = score(sets, poems, finished)
        bleu = multi_ref_bleu2(rows, [[c for c in poem if is_word(c)] for poem in poems])
        coverage = f"{statistics.mean(remaining):.2f}" if remaining else "–"
        lines.append(f"| {name} | {form} | {100 * s['topic_integrity']:.1f} | {100 * s['dup_2gram']:.1f} | "
                     f"{100 * s['regulated_form']:.1f} | {s['mean_length']:.1f} | {100 * bleu:.1f} | {coverage} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300, help="the first N test topic sets")
    rows = read_rows(DATA, "test")[: parser.parse_args().limit]
    with ProcessPoolExecutor(len(MODELS)) as pool:
        tables = list(pool.map(form_rows, MODELS, [rows] * len(MODELS)))
    print("| model | form | topic integrity | dup 2-gram | regulated form | mean length | BLEU-2 | final coverage |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(line for table in tables for line in table))


if __name__ == "__main__":
    main()
