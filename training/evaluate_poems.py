"""Evaluate the topic-to-poem checkpoints (MTA-LSTM vs the TAV baseline) on the test topic sets.

    python -m training.evaluate_poems [--models poem-mta poem-tav] [--limit N]

Metrics (characters are tokens; punctuation excluded from n-gram counts):
- topic integrity: share of the given topic words that appear verbatim in the poem;
- duplicate character n-grams within a poem (n = 1..4) and corpus-level distinct-1/2;
- regulated form: share of poems that are 4 or 8 lines of equally many (5 or 7) characters;
- BLEU-2 as in the MTA-LSTM reference protocol: nltk ``sentence_bleu`` with weights (0, 1, 0, 0)
  (bigram precision with brevity penalty; smoothing method 1), references = every test poem whose
  topic set equals this one's (at least its own reference), averaged over the test inputs.
Writes metrics.json, model cards and ``docs/results_poems.md``.
"""
from __future__ import annotations

import re
import statistics
from collections import defaultdict

from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from training.evaluation import ROOT, evaluation_args, output_tokens, read_rows, save_results, write_model_card
from training.metrics import duplicate_ngram_rates, is_word, ngrams

DATA = ROOT / "data" / "poems"
MODELS = ["poem-mta", "poem-tav"]
EXAMPLE_EVERY = 101
_SMOOTH = SmoothingFunction().method1


def is_regulated(poem: str) -> bool:
    """4 or 8 lines of 5 or 7 Han characters each."""
    lines = [line for line in re.split(r"[，。？！；,.?!;]", poem) if line]
    return len(lines) in (4, 8) and len({len(line) for line in lines}) == 1 and len(lines[0]) in (5, 7)


def distinct(outputs: list[list[str]], n: int) -> float:
    """Distinct n-grams over all outputs / all n-grams."""
    grams = [g for out in outputs for g in ngrams(out, n)]
    return len(set(grams)) / max(len(grams), 1)


def score(rows: list[dict], poems: list[str]) -> dict:
    """All metrics of generated ``poems`` for the rows' topic sets."""
    chars = [[t for t in poem if is_word(t)] for poem in poems]
    references = defaultdict(list)
    for row in rows:
        references[frozenset(row["topics"])].append([c for c in row["poem"] if is_word(c)])
    bleu = [sentence_bleu(references[frozenset(r["topics"])], out, weights=(0, 1, 0, 0), smoothing_function=_SMOOTH)
            for r, out in zip(rows, chars)]
    found = [sum(t in poem for t in r["topics"]) / len(r["topics"]) for r, poem in zip(rows, poems)]
    return {"topic_integrity": statistics.mean(found), "bleu2_multiref": statistics.mean(bleu),
            "distinct_1": distinct(chars, 1), "distinct_2": distinct(chars, 2),
            "regulated_form": statistics.mean(is_regulated(p) for p in poems),
            "mean_length": statistics.mean(len(c) for c in chars), **duplicate_ngram_rates(chars)}


def decode(name: str, rows: list[dict], settings: DecodeSettings) -> tuple[list[str], dict]:
    """Poems of checkpoint ``name`` for every test topic set, and the mean final topic coverage."""
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    poems, remaining = [], []
    for row in rows:
        trace = generate(model, "", settings, topics=row["topics"])
        poems.append("".join(output_tokens(trace)))
        if trace.steps and trace.steps[-1].topic_coverage is not None:
            remaining.append(float(trace.steps[-1].topic_coverage.mean()))
    return poems, ({"mean_final_topic_coverage": statistics.mean(remaining)} if remaining else {})


def main() -> None:
    args = evaluation_args(__doc__, MODELS)
    rows = read_rows(DATA, "test")[: args.limit or None]
    settings = DecodeSettings(beam_size=args.beam, max_len=80, no_repeat_ngram=0)
    systems = {"reference poems": ([r["poem"] for r in rows], {})}
    systems.update({name: decode(name, rows, settings) for name in args.models})
    results = {name: {"test": score(rows, poems), "decoding": extra} for name, (poems, extra) in systems.items()}
    lines = [f"Test split: {len(rows)} topic sets; beam {args.beam}. Rates in %; BLEU-2 ×100.", "",
             "| system | topic integrity | BLEU-2 (multi-ref) | distinct-1/2 | dup 1/2/3-gram | regulated form "
             "| mean length | final topic coverage |", "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        t, extra = res["test"], res["decoding"]
        remaining = f"{extra['mean_final_topic_coverage']:.2f}" if extra else "–"
        lines.append(f"| {name} | {100 * t['topic_integrity']:.1f} | {100 * t['bleu2_multiref']:.1f} | "
                     f"{100 * t['distinct_1']:.1f}/{100 * t['distinct_2']:.1f} | {100 * t['dup_1gram']:.1f}/"
                     f"{100 * t['dup_2gram']:.1f}/{100 * t['dup_3gram']:.1f} | {100 * t['regulated_form']:.1f} | "
                     f"{t['mean_length']:.1f} | {remaining} |")
    table = "\n".join(lines) + "\n"
    examples = "\n".join(
        f"**{'、'.join(rows[i]['topics'])}** — reference: {rows[i]['poem']}\n"
        + "\n".join(f"- {name}: {systems[name][0][i]}" for name in args.models) + "\n"
        for i in range(0, len(rows), EXAMPLE_EVERY)[:10])
    print(table)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_poems.md").write_text(table + "\n" + examples, encoding="utf-8")
    for name in args.models:
        save_results(name, results[name] | {"baselines": {"reference poems": results["reference poems"]["test"]}},
                     {"beam_size": args.beam, "max_len": 80})
        write_model_card(name, "model_card_poems.md", table=table, examples=examples)


if __name__ == "__main__":
    main()
