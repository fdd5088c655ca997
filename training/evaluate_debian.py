"""Evaluate the Debian synopsis checkpoints on the held-out test split, beside two baselines.

    python -m training.evaluate_debian [--models debian-seq2seq debian-pointer ...] [--limit N]
    python -m training.evaluate_debian --split new   # packages new in trixie (data/prepare_debian_new.py)
    python -m training.evaluate_debian --split new --length-penalty 0   # without the models' own α

Writes each checkpoint's ``metrics.json`` (``test``, ``test_unfamiliar``), its model card
``README.md`` (data, command, curves, metrics, 10 fixed test examples with every model's output),
its app examples into ``config.json``, and the results table ``docs/results_debian.md``.
"Unfamiliar" packages are test pairs whose package-name family (text before the first ``-``)
never starts a training package name. Shipped models left out of ``--models`` keep the test results
stored in their ``metrics.json`` (only the fixed examples are decoded for them), so re-evaluating one
retrained model keeps the whole table.

``--split new`` scores the models on 1,000 packages that appeared after bookworm
(``data/debian-new``; "unfamiliar" there = the source package is new too) and writes only
``docs/results_debian_new.md``: no model card or stored metric comes from it.
"""
from __future__ import annotations

import re
import statistics

from gen_models.text import tokenize
from training.evaluation import (
    ROOT,
    decode_split,
    evaluation_args,
    output_tokens,
    read_rows,
    save_results,
    stored_results,
    verdict_shares,
    write_model_card,
)
from training.metrics import (
    duplicate_ngram_rates,
    novel_ngram_rates,
    rouge_f1,
    token_share,
)

DATA = ROOT / "data" / "debian"
NEW_DATA = ROOT / "data" / "debian-new"
MODELS = ["debian-seq2seq", "debian-pointer", "debian-pointer-coverage", "debian-pointer-scst"]
EXAMPLE_EVERY = 199


def read_split(split: str) -> list[dict]:
    """Rows of ``data/debian/<split>.jsonl.gz``."""
    return read_rows(DATA, split)


def family(package: str) -> str:
    """Package-name family: ``python3-foo`` -> ``python3``."""
    return package.split("-")[0]


def long_description(src: str) -> str:
    """The source without its ``<package>: `` prefix."""
    return src.split(": ", 1)[1] if ": " in src else src


def first_sentence(text: str) -> str:
    """Text up to the first sentence end followed by a capital or digit."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", text, maxsplit=1)[0]


BASELINES = {
    "lead-8 (first 8 tokens)": lambda src: tokenize(long_description(src))[:8],
    "first sentence": lambda src: tokenize(first_sentence(long_description(src))),
}


def score(rows: list[dict], outputs: list[list[str]]) -> dict:
    """All text metrics of ``outputs`` against the rows' references and sources."""
    refs = [tokenize(r["tgt"]) for r in rows]
    srcs = [tokenize(r["src"]) for r in rows]
    return {**rouge_f1(refs, outputs), "mean_length": statistics.mean(len(o) for o in outputs),
            **duplicate_ngram_rates(outputs), **novel_ngram_rates(srcs, outputs),
            "unk_rate": token_share(outputs, "<unk>")}


def evaluate(names: list[str], rows: list[dict], unfamiliar: set[int], settings: dict) -> dict:
    """{system: {"test": metrics, "test_unfamiliar": metrics, "outputs": [...]}} for baselines and models."""
    results = {}
    systems = {name: [fn(r["src"]) for r in rows] for name, fn in BASELINES.items()}
    systems["reference"] = [tokenize(r["tgt"]) for r in rows]
    for name in names:
        traces, decode_stats = decode_split(name, rows, settings, score_references=True)
        systems[name] = [output_tokens(t) for t in traces]
        results[name] = {"decoding": decode_stats}
    for name, outputs in systems.items():
        subset = sorted(unfamiliar)
        results.setdefault(name, {}).update(
            test=score(rows, outputs),
            test_unfamiliar=score([rows[i] for i in subset], [outputs[i] for i in subset]),
            outputs=outputs,
        )
    return results


def results_table(results: dict, n: int, n_unfamiliar: int) -> str:
    """Markdown table of the main metrics."""
    lines = [f"Test split: {n} pairs ({n_unfamiliar} from unfamiliar package families). "
             "ROUGE F1 ×100 (rouge-score, stemmed); rates in %. Search / model errors: reference mode on each "
             "test pair — the share where the model scores the reference above its own output (the search lost "
             "it) / below it (the model prefers its output).", "",
             "| system | R-1 | R-2 | R-L | R-1 unfamiliar | length | dup 1/2/3/4-gram | repeated-trigram outputs "
             "| novel 1/2-gram | UNK | mean p_gen | search / model errors | ms/input |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        t, u, d = res["test"], res["test_unfamiliar"], res.get("decoding", {})
        dups = "/".join(f"{100 * t[f'dup_{k}gram']:.1f}" for k in range(1, 5))
        p_gen = f"{d['mean_p_gen_free']:.2f}" if "mean_p_gen_free" in d else "–"
        speed = f"{d['ms_per_input_p50']:.0f}" if d else "–"
        lines.append(
            f"| {name} | {100 * t['rouge1']:.1f} | {100 * t['rouge2']:.1f} | {100 * t['rougeL']:.1f} | "
            f"{100 * u['rouge1']:.1f} | {t['mean_length']:.1f} | {dups} | "
            f"{100 * t['outputs_with_repeated_trigram']:.1f} | {100 * t['novel_1gram']:.1f}/"
            f"{100 * t['novel_2gram']:.1f} | {100 * t['unk_rate']:.2f} | {p_gen} | {verdict_shares(d)} | {speed} |")
    return "\n".join(lines) + "\n"


def examples_table(rows: list[dict], results: dict, names: list[str]) -> str:
    """Markdown list of the fixed test examples with every model's output."""
    parts = []
    for i in range(0, len(rows), EXAMPLE_EVERY)[:10]:
        src = rows[i]["src"]
        parts.append(f"**{rows[i]['package']}** — input: {src[:300]}{'…' if len(src) > 300 else ''}\n")
        parts.append(f"- reference: {rows[i]['tgt']}")
        parts += [f"- {name}: {' '.join(results[name]['outputs'][i])}" for name in names]
        parts.append("")
    return "\n".join(parts)


def decoding(args) -> dict:
    """Beam ``--beam``, at most 30 tokens, over each model's own defaults (its length penalty)."""
    values = {"beam_size": args.beam, "max_len": 30}
    if args.length_penalty is not None:
        values["length_penalty"] = args.length_penalty
    return values


def evaluate_new_packages(args) -> None:
    """Scores on packages new in trixie: a table in ``docs/results_debian_new.md``, nothing else written."""
    rows = read_rows(NEW_DATA, "new")[: args.limit or None]
    new_source = {i for i, r in enumerate(rows) if r["new_source"]}
    results = evaluate(args.models, rows, new_source, decoding(args))
    table = results_table(results, len(rows), len(new_source)).replace(
        "Test split:", "Packages new in trixie (binary name not in bookworm):", 1).replace(
        "unfamiliar package families", "new source packages", 1).replace("R-1 unfamiliar", "R-1 new source", 1)
    print(table)
    if not args.limit:
        (ROOT / "docs" / "results_debian_new.md").write_text(table, encoding="utf-8")


def main() -> None:
    args = evaluation_args(__doc__, MODELS, splits=("test", "new"), length_penalty=True)
    if args.split == "new":
        evaluate_new_packages(args)
        return
    rows = read_split("test")[: args.limit or None]
    train_families = {family(r["package"]) for r in read_split("train")}
    unfamiliar = {i for i, r in enumerate(rows) if family(r["package"]) not in train_families}
    settings = decoding(args)
    results = evaluate(args.models, rows, unfamiliar, settings)
    if not args.limit:
        fixed = list(range(0, len(rows), EXAMPLE_EVERY))[:10]
        results.update(stored_results([n for n in MODELS if n not in args.models], rows, settings,
                                      ("test", "test_unfamiliar", "decoding"), fixed))
    shown = [n for n in MODELS if n in results] + [n for n in args.models if n not in MODELS]
    results = {name: results[name] for name in [*shown, *[n for n in results if n not in shown]]}
    table = results_table(results, len(rows), len(unfamiliar))
    examples = examples_table(rows, results, shown)
    print(table)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_debian.md").write_text(table + "\n" + examples, encoding="utf-8")
    for name in shown:
        if name in args.models:
            kept = {k: v for k, v in results[name].items() if k != "outputs"}
            kept["baselines"] = {b: results[b]["test"] for b in BASELINES}
            save_results(name, kept, {**results[name]["decoding"]["own_settings"], **settings})
        write_model_card(name, "model_card_debian.md", table=table, examples=examples)


if __name__ == "__main__":
    main()
