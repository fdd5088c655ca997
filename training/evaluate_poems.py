"""Evaluate the topic-to-poem checkpoints (MTA-LSTM vs the TAV baseline) on held-out topic sets.

    python -m training.evaluate_poems [--models poem-mta poem-tav] [--limit N]

Each model decodes with its own default settings (the app's: beam 4, max length 70, no repetition
blocking) three held-out sets:
- **test topic sets**: the 3–5 jieba topic words of each test poem;
- **user-style subsets**: 1–3 of those words per test poem (fixed seed), the way people type;
- **typed topic sets**: 40 topic sets written here, unlike the corpus's keywords (single
  characters, images and moods), with no reference poem.

Metrics (characters are tokens; punctuation excluded from n-gram counts):
- topic integrity: share of the given topic words that appear verbatim in the poem;
- duplicate character n-grams within a poem (n = 1..4) and corpus-level distinct-1/2;
- regulated form: share of poems that are 4 or 8 lines of equally many (5 or 7) characters;
- cut: share of poems that did not end (no end token within the maximum length);
- final topic coverage: mean over topics of C after the last step (MTA-LSTM only);
- BLEU-2 as in the MTA-LSTM reference protocol: nltk ``sentence_bleu`` with weights (0, 1, 0, 0)
  (bigram precision with brevity penalty; smoothing method 1), references = every test poem whose
  topic set equals this one's (at least its own reference), averaged over the test inputs.
Writes metrics.json, model cards and ``docs/results_poems.md``. The models decode in parallel
processes, one thread each.
"""
from __future__ import annotations

import random
import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from training.evaluation import (
    ROOT,
    evaluation_args,
    output_tokens,
    read_rows,
    save_results,
    write_model_card,
)
from training.metrics import duplicate_ngram_rates, is_regulated, is_word, ngrams

DATA = ROOT / "data" / "poems"
MODELS = ["poem-mta", "poem-tav"]
EXAMPLE_EVERY = 101
SUBSET_SEED = 16
TYPED_TOPIC_SETS = [
    "秋 雨 孤舟", "春风 明月 故乡", "明月", "边塞 黄沙 将军", "夜雨 孤灯 思君", "梅花 雪", "江南 烟雨",
    "落日 长河", "故人 酒", "山寺 钟声", "竹林 清风", "渔舟 晚霞", "离别 杨柳", "登高 望远",
    "秋风 落叶 归雁", "桃花 流水", "战马 长城", "月 乡愁", "寒山 古寺", "春雨 燕子", "柴门 犬吠 风雪",
    "白发 镜", "长安 落花", "芳草 斜阳", "孤城 羌笛", "白云 青山 归来", "夜 船 灯火", "荷花 池塘",
    "菊花 重阳", "少年 宝剑", "琵琶 泪", "庭院 梧桐 秋雨", "大漠 孤烟", "海 明月", "春 花 鸟", "茶 禅",
    "雪 梅 寒", "故乡 老屋", "书 灯 夜读", "渡口 送别",
]
_SMOOTH = SmoothingFunction().method1


def distinct(outputs: list[list[str]], n: int) -> float:
    """Distinct n-grams over all outputs / all n-grams."""
    grams = [g for out in outputs for g in ngrams(out, n)]
    return len(set(grams)) / max(len(grams), 1)


def user_style_subsets(rows: list[dict]) -> list[list[str]]:
    """1–3 of each row's topic words (fixed seed)."""
    rng = random.Random(SUBSET_SEED)
    return [rng.sample(row["topics"], rng.randint(1, min(3, len(row["topics"])))) for row in rows]


def multi_ref_bleu2(rows: list[dict], chars: list[list[str]]) -> float:
    """Mean BLEU-2 against every test poem with the same topic set."""
    references = defaultdict(list)
    for row in rows:
        references[frozenset(row["topics"])].append([c for c in row["poem"] if is_word(c)])
    return statistics.mean(sentence_bleu(references[frozenset(r["topics"])], out, weights=(0, 1, 0, 0),
                                         smoothing_function=_SMOOTH) for r, out in zip(rows, chars))


def score(topic_sets: list[list[str]], poems: list[str], finished: list[bool]) -> dict:
    """Reference-free metrics of ``poems`` written for ``topic_sets``."""
    chars = [[t for t in poem if is_word(t)] for poem in poems]
    found = [sum(t in poem for t in topics) / len(topics) for topics, poem in zip(topic_sets, poems)]
    return {"topic_integrity": statistics.mean(found), "distinct_1": distinct(chars, 1),
            "distinct_2": distinct(chars, 2), "regulated_form": statistics.mean(is_regulated(p) for p in poems),
            "cut": 1 - statistics.mean(finished), "mean_length": statistics.mean(len(c) for c in chars),
            **duplicate_ngram_rates(chars)}


def decode(name: str, topic_sets: list[list[str]], beam: int,
           form: str = "free") -> tuple[list[str], list[bool], list[float]]:
    """Poems of checkpoint ``name`` with its default settings (and poem ``form``), whether each ended,
    and each one's mean final topic coverage (empty for models without coverage)."""
    torch.set_num_threads(1)
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    settings = DecodeSettings.for_model(model.features, beam_size=beam, poem_form=form)
    poems, finished, remaining = [], [], []
    for topics in topic_sets:
        trace = generate(model, "", settings, topics=topics)
        poems.append("".join(output_tokens(trace)))
        finished.append(bool(trace.output_tokens) and trace.output_tokens[-1] == "</s>")
        if trace.steps and trace.steps[-1].topic_coverage is not None:
            remaining.append(float(trace.steps[-1].topic_coverage.mean()))
    return poems, finished, remaining


def evaluate_model(name: str, sets: dict[str, list[list[str]]], beam: int) -> dict:
    """Each set's (poems, finished, final coverages) for checkpoint ``name``."""
    return {label: decode(name, topic_sets, beam) for label, topic_sets in sets.items()}


def table(results: dict[str, dict], with_bleu: bool) -> list[str]:
    """Markdown rows of one held-out set."""
    lines = ["| system | topic integrity |" + (" BLEU-2 (multi-ref) |" if with_bleu else "")
             + " distinct-1/2 | dup 1/2/3-gram | regulated form | cut | mean length | final topic coverage |",
             "|---|---|" + ("---|" if with_bleu else "") + "---|---|---|---|---|---|"]
    for name, r in results.items():
        remaining = f"{r['mean_final_topic_coverage']:.2f}" if "mean_final_topic_coverage" in r else "–"
        bleu = f" {100 * r['bleu2_multiref']:.1f} |" if with_bleu else ""
        lines.append(f"| {name} | {100 * r['topic_integrity']:.1f} |{bleu} {100 * r['distinct_1']:.1f}/"
                     f"{100 * r['distinct_2']:.1f} | {100 * r['dup_1gram']:.1f}/{100 * r['dup_2gram']:.1f}/"
                     f"{100 * r['dup_3gram']:.1f} | {100 * r['regulated_form']:.1f} | {100 * r['cut']:.1f} | "
                     f"{r['mean_length']:.1f} | {remaining} |")
    return lines


def main() -> None:
    args = evaluation_args(__doc__, MODELS)
    rows = read_rows(DATA, "test")[: args.limit or None]
    sets = {"test": [r["topics"] for r in rows], "user_style": user_style_subsets(rows),
            "typed": [s.split() for s in TYPED_TOPIC_SETS]}
    with ProcessPoolExecutor(max(1, len(args.models))) as pool:
        decoded = dict(zip(args.models, pool.map(evaluate_model, args.models, [sets] * len(args.models),
                                                  [args.beam] * len(args.models))))
    reference = {"test": score(sets["test"], [r["poem"] for r in rows], [True] * len(rows))}
    reference["test"]["bleu2_multiref"] = 1.0
    results = {}
    for name, by_set in decoded.items():
        results[name] = {}
        for label, (poems, finished, remaining) in by_set.items():
            results[name][label] = score(sets[label], poems, finished)
            if remaining:
                results[name][label]["mean_final_topic_coverage"] = statistics.mean(remaining)
        chars = [[t for t in poem if is_word(t)] for poem in by_set["test"][0]]
        results[name]["test"]["bleu2_multiref"] = multi_ref_bleu2(rows, chars)
    header = (f"Each model's default decoding (beam {args.beam}, max length 70, no repetition blocking). "
              "Rates in %; BLEU-2 ×100.")
    lines = [header, "", f"**Test topic sets** ({len(rows)} test poems' jieba topic words, 3–5 each):", "",
             *table({"reference poems": reference["test"]} | {n: r["test"] for n, r in results.items()}, True), "",
             f"**User-style subsets** (1–3 of each test poem's topic words, seed {SUBSET_SEED}):", "",
             *table({n: r["user_style"] for n, r in results.items()}, False), "",
             f"**Typed topic sets** ({len(TYPED_TOPIC_SETS)} sets written here, `TYPED_TOPIC_SETS`):", "",
             *table({n: r["typed"] for n, r in results.items()}, False)]
    summary = "\n".join(lines) + "\n"
    fixed = list(range(0, len(rows), EXAMPLE_EVERY))[:10]
    examples = "\n".join(
        f"**{'、'.join(rows[i]['topics'])}** — reference: {rows[i]['poem']}\n"
        + "\n".join(f"- {name}: {decoded[name]['test'][0][i]}" for name in args.models) + "\n" for i in fixed)
    examples += "\nTen typed topic sets (no reference):\n\n" + "\n".join(
        f"**{TYPED_TOPIC_SETS[i]}**\n" + "\n".join(f"- {name}: {decoded[name]['typed'][0][i]}" for name in args.models)
        + "\n" for i in range(10))
    print(summary)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "results_poems.md").write_text(summary + "\n" + examples, encoding="utf-8")
    for name in args.models:
        save_results(name, results[name] | {"baselines": {"reference poems": reference["test"]}},
                     {"beam_size": args.beam, "max_len": 70})
        write_model_card(name, "model_card_poems.md", table=summary, examples=examples)


if __name__ == "__main__":
    main()
