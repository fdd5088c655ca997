"""Evaluate the English→Chinese checkpoints on the held-out test split (sacrebleu and copy metrics).

    python -m training.evaluate_enzh [--models enzh-seq2seq enzh-pointer-coverage enzh-transformer] [--limit N]

Metrics, overall and per origin (LibreOffice help, LibreOffice UI, Debian Reference — the last is
text unlike LibreOffice's): BLEU (sacrebleu, ``tokenize="zh"``) and chrF on detokenised text; the
share of the source's Latin-script names that the reference keeps and the output reproduces exactly;
UNK rate; duplicate n-grams; under-translation proxy = share of source words whose attention summed
over all output steps stays below 0.2 (recurrent models: one attention distribution per step).
Token-level metrics read GenScope's tokenisation of each output (the Transformer's BPE pieces are
re-tokenised from its text). Writes metrics.json, model cards and ``docs/results_enzh.md``.

English unlike the training text: the first sentences of ``OOD_SENTENCES`` Debian package
descriptions (test split; no reference), where the ``<unk>`` tokens per output are counted — a
pointer model should copy a word it does not know rather than write ``<unk>``.
"""
from __future__ import annotations

import re

import numpy as np
import sacrebleu

from gen_models.decoding import DecodeSettings
from gen_models.text import tokenize
from gen_models.trace import GenerationTrace
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
from training.metrics import duplicate_ngram_rates, is_word, token_share

DATA = ROOT / "data" / "enzh"
MODELS = ["enzh-seq2seq", "enzh-pointer-coverage", "enzh-transformer"]
CARD_TEMPLATES = {"enzh-transformer": "model_card_enzh_transformer.md"}
LATIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.+\-]*")
UNDER_TRANSLATED = 0.2
EXAMPLE_EVERY = 173
OOD_SENTENCES = 300


def names_to_copy(src: str, tgt: str) -> list[str]:
    """Latin-script source tokens that the reference translation keeps verbatim."""
    target = set(tokenize(tgt, lowercase=False))
    return [t for t in dict.fromkeys(tokenize(src, lowercase=False)) if LATIN_NAME.fullmatch(t) and t in target]


def under_translation(trace: GenerationTrace) -> tuple[int, int]:
    """(source words with total attention < 0.2, source words) for one trace."""
    if not trace.steps:
        return 0, 0
    total = np.sum([s.attention for s in trace.steps], axis=0)  # (S,)
    words = [i for i, tok in enumerate(trace.source_tokens) if is_word(tok)]
    return sum(total[i] < UNDER_TRANSLATED for i in words), len(words)


def score(rows: list[dict], texts: list[str], tokens: list[list[str]], traces=None) -> dict:
    """All metrics for one system on ``rows``."""
    refs = [r["tgt"] for r in rows]
    names = [names_to_copy(r["src"], r["tgt"]) for r in rows]
    kept = sum(n in set(out) for ns, out in zip(names, tokens) for n in ns)
    result = {"bleu": sacrebleu.corpus_bleu(texts, [refs], tokenize="zh").score,
              "chrf": sacrebleu.corpus_chrf(texts, [refs]).score,
              "names_reproduced": kept / max(sum(len(n) for n in names), 1),
              "unk_rate": token_share(tokens, "<unk>"), **duplicate_ngram_rates(tokens)}
    if traces is not None:
        low, words = map(sum, zip(*(under_translation(t) for t in traces)))
        result["under_translated_words"] = low / max(words, 1)
    return result


def out_of_domain_sentences(n: int = OOD_SENTENCES) -> list[str]:
    """First sentences of Debian package descriptions (test split): English unlike LibreOffice's."""
    from training.evaluate_debian import first_sentence, long_description, read_split

    sentences = [first_sentence(long_description(r["src"])) for r in read_split("test")]
    return [s for s in sentences if 4 <= len(s.split()) <= 40][:n]


def unk_per_output(name: str, sentences: list[str], settings: DecodeSettings) -> float:
    """Mean count of ``<unk>`` tokens in the outputs of checkpoint ``name`` on ``sentences``."""
    traces, _ = decode_split(name, [{"src": s, "tgt": ""} for s in sentences], settings)
    return float(np.mean([output_tokens(t).count("<unk>") for t in traces]))


def evaluate(names: list[str], rows: list[dict], settings: DecodeSettings, score_references: bool = True,
             unlike: bool = True) -> dict:
    """{system: {"test": ..., "test_by_origin": {...}, "texts": [...]}} for the baseline and models
    (reference mode on every pair unless ``score_references`` is off; ``<unk>`` per output on
    English unlike the training text unless ``unlike`` is off)."""
    systems = {"copy source (baseline)": ([r["src"] for r in rows], [tokenize(r["src"], False) for r in rows], None)}
    decoding = {}
    for name in names:
        traces, decoding[name] = decode_split(name, rows, settings, score_references=score_references)
        if any(np.ndim(t.steps[0].attention) != 1 for t in traces if t.steps):  # multi-head: no per-step attention
            systems[name] = ([t.output_text for t in traces], [tokenize(t.output_text, False) for t in traces], None)
        else:
            systems[name] = ([t.output_text for t in traces], [output_tokens(t) for t in traces], traces)
    results = {}
    for name, (texts, tokens, traces) in systems.items():
        by_origin = {}
        for origin in sorted({r["origin"] for r in rows}):
            idx = [i for i, r in enumerate(rows) if r["origin"] == origin]
            by_origin[origin] = score([rows[i] for i in idx], [texts[i] for i in idx], [tokens[i] for i in idx],
                                      [traces[i] for i in idx] if traces else None)
        results[name] = {"test": score(rows, texts, tokens, traces), "test_by_origin": by_origin,
                         "texts": texts, **({"decoding": decoding[name]} if name in decoding else {})}
    sentences = out_of_domain_sentences() if unlike else []
    for name in names if unlike else []:
        results[name]["unlike_training_unk_per_output"] = unk_per_output(name, sentences, settings)
    return results


def results_table(results: dict, n: int) -> str:
    """Markdown table of the main metrics."""
    lines = [f"Test split: {n} pairs. BLEU with sacrebleu `tokenize=\"zh\"`; names = Latin-script source tokens "
             "the reference keeps; under-translated = source words with total attention < 0.2; rates in %. "
             "Search / model errors: reference mode on each pair — the model scores the reference above / below "
             "its own output.", "",
             f"Names help / UI / Debian Ref.: per slice. UNK per output, unlike: `<unk>` tokens per output on "
             f"{OOD_SENTENCES} first sentences of Debian package descriptions (English unlike the training text).", "",
             "| system | BLEU | chrF | BLEU help / UI / Debian Ref. | names reproduced | names help / UI / Debian Ref. "
             "| UNK | UNK per output, unlike | dup 1/2/3-gram | under-translated | search / model errors | ms/input |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        t, o = res["test"], res["test_by_origin"]
        by_origin = " / ".join(f"{o[k]['bleu']:.1f}" for k in ("help", "ui", "debref") if k in o)
        under = f"{100 * t['under_translated_words']:.1f}" if "under_translated_words" in t else "–"
        speed = f"{res['decoding']['ms_per_input_p50']:.0f}" if "decoding" in res else "–"
        names = " / ".join(f"{100 * o[k]['names_reproduced']:.1f}" for k in ("help", "ui", "debref")
                           if "names_reproduced" in o.get(k, {})) or "–"
        unlike = f"{res['unlike_training_unk_per_output']:.3f}" if "unlike_training_unk_per_output" in res else "–"
        lines.append(f"| {name} | {t['bleu']:.1f} | {t['chrf']:.1f} | {by_origin} | {100 * t['names_reproduced']:.1f} "
                     f"| {names} | {100 * t['unk_rate']:.2f} | {unlike} | {100 * t['dup_1gram']:.1f}/{100 * t['dup_2gram']:.1f}/"
                     f"{100 * t['dup_3gram']:.1f} | {under} | {verdict_shares(res.get('decoding', {}))} | {speed} |")
    return "\n".join(lines) + "\n"


def examples_table(rows: list[dict], results: dict, names: list[str]) -> str:
    """The fixed test examples with every model's output."""
    parts = []
    for i in range(0, len(rows), EXAMPLE_EVERY)[:10]:
        parts += [f"**{rows[i]['origin']}** — {rows[i]['src']}", f"- reference: {rows[i]['tgt']}"]
        parts += [f"- {name}: {results[name]['texts'][i]}" for name in names] + [""]
    return "\n".join(parts)


def main() -> None:
    args = evaluation_args(__doc__, MODELS)
    rows = read_rows(DATA, "test")[: args.limit or None]
    settings = DecodeSettings(beam_size=args.beam, max_len=80)
    results = evaluate(args.models, rows, settings)
    if not args.limit:
        results.update(stored_enzh_results([n for n in MODELS if n not in args.models], rows, settings))
    shown = [n for n in MODELS if n in results] + [n for n in args.models if n not in MODELS]
    results = {name: results[name] for name in [*[n for n in results if n not in shown], *shown]}
    table = results_table(results, len(rows))
    examples = examples_table(rows, results, shown)
    print(table)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_enzh.md").write_text(table + "\n" + examples, encoding="utf-8")
    for name in shown:
        if name in args.models:
            kept = {k: v for k, v in results[name].items() if k != "texts"}
            kept["baselines"] = {"copy source": results["copy source (baseline)"]["test"]}
            save_results(name, kept, {"beam_size": args.beam, "max_len": 80})
        write_model_card(name, CARD_TEMPLATES.get(name, "model_card_enzh.md"), table=table, examples=examples)


def stored_enzh_results(names: list[str], rows: list[dict], settings: DecodeSettings) -> dict:
    """:func:`training.evaluation.stored_results` with output texts, adding (and saving) the
    ``<unk>``-per-output on unlike text where a model has no stored value."""
    fixed = list(range(0, len(rows), EXAMPLE_EVERY))[:10]
    keys = ("test", "test_by_origin", "decoding", "unlike_training_unk_per_output")
    results = stored_results(names, rows, settings, keys, fixed, output=lambda trace: trace.output_text)
    for name, result in results.items():
        result["texts"] = result.pop("outputs")
        if "unlike_training_unk_per_output" not in result:
            value = unk_per_output(name, out_of_domain_sentences(), settings)
            result["unlike_training_unk_per_output"] = value
            save_results(name, {"unlike_training_unk_per_output": value},
                         {"beam_size": settings.beam_size, "max_len": settings.max_len})
    return results


if __name__ == "__main__":
    main()
