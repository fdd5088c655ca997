"""Shared pieces of the evaluation scripts: decode a test split, write metrics and model cards."""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from gen_models.checkpoint import (
    CHECKPOINT_ROOT,
    load_checkpoint,
    read_config,
    read_metrics,
)
from gen_models.decoding import DecodeSettings, generate
from gen_models.trace import GenerationTrace

ROOT = Path(__file__).resolve().parent.parent


def evaluation_args(doc: str, models: list[str], splits: tuple[str, ...] = ("test",),
                    length_penalty: bool = False) -> argparse.Namespace:
    """The options every evaluation script takes: ``--models``, ``--limit`` (first N test rows), ``--beam``,
    ``--split`` where a script has more than one held-out set (the first is the default), and
    ``--length-penalty`` where asked for."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=models)
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N test rows only")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--split", choices=splits, default=splits[0], help=argparse.SUPPRESS if len(splits) == 1
                        else "which held-out set: " + ", ".join(splits))
    if length_penalty:
        parser.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                            help="GNMT length penalty for every model (default: each model's own)")
    return parser.parse_args()


def read_rows(data_dir: Path, split: str) -> list[dict]:
    """Rows of ``<data_dir>/<split>.jsonl.gz``."""
    with gzip.open(Path(data_dir) / f"{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def decode_split(name: str, rows: list[dict], settings: DecodeSettings | dict,
                 score_references: bool = False) -> tuple[list[GenerationTrace], dict]:
    """Traces of checkpoint ``name`` on every row's ``src``, and decoding statistics (time: encoding
    and search, not the reference scoring). ``settings`` as a dict is laid over the model's own
    defaults (:meth:`DecodeSettings.for_model`); a ``DecodeSettings`` is used as it is. With
    ``score_references`` each row's ``tgt`` is also scored (reference mode) and the statistics give
    the share of each verdict: "search error" where the model prefers the reference to its output."""
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    if isinstance(settings, dict):
        settings = DecodeSettings.for_model(model.features, **settings)
    traces, times = [], []
    for row in tqdm(rows, desc=name):
        trace = generate(model, row["src"], settings, reference=row["tgt"] if score_references else None)
        traces.append(trace)
        times.append(trace.timings["encode_ms"] + trace.timings["decode_ms"] + trace.timings["companions_ms"])
    stats = {"ms_per_input_p50": statistics.median(times), "inputs_per_s": 1e3 * len(times) / sum(times),
             "own_settings": dict(model.features.settings)}
    if score_references:
        verdicts = Counter(t.reference["verdict"] for t in traces)
        stats["reference_verdicts"] = {v: n / len(traces) for v, n in sorted(verdicts.items())}
    p_gens = [s.p_gen for t in traces for s in t.steps if s.p_gen is not None]
    if p_gens:
        stats["mean_p_gen_free"] = statistics.mean(p_gens)
    return traces, stats


def verdict_shares(decoding: dict) -> str:
    """"search / model error %" for a results table ("–" without reference scoring)."""
    shares = decoding.get("reference_verdicts")
    if not shares:
        return "–"
    return f"{100 * shares.get('search error', 0):.1f} / {100 * shares.get('model error', 0):.1f}"


def output_tokens(trace: GenerationTrace) -> list[str]:
    """A trace's output tokens without the end token."""
    return [t for t in trace.output_tokens if t != "</s>"]


def stored_results(names: list[str], rows: list[dict], settings: DecodeSettings, keys: tuple[str, ...],
                   fixed: list[int], output=output_tokens) -> dict:
    """Results of shipped models not re-evaluated: ``keys`` from their ``metrics.json`` and ``outputs``
    (``output(trace)`` of each fixed example's trace, None elsewhere), decoding only the ``fixed``
    examples; models without stored test results are left out."""
    results = {}
    for name in names:
        metrics = read_metrics(CHECKPOINT_ROOT / name)
        if "test" not in metrics:
            continue
        traces, _ = decode_split(name, [rows[i] for i in fixed], settings)
        outputs = [None] * len(rows)
        for i, trace in zip(fixed, traces):
            outputs[i] = output(trace)
        results[name] = {key: metrics[key] for key in keys if key in metrics}
        results[name]["outputs"] = outputs
    return results


def save_results(name: str, results: dict, decode_settings: dict) -> None:
    """Merge evaluation results into ``checkpoints/<name>/metrics.json``."""
    folder = CHECKPOINT_ROOT / name
    metrics = read_metrics(folder)
    metrics.update(results)
    metrics["decode_settings"] = decode_settings
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def _number(value) -> str:
    """A curve value with three decimals, or – where the model has no such quantity."""
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def _minutes(curve_row: dict) -> str:
    """Wall-clock minutes so far, with the CPU minutes where the run recorded them."""
    cpu = curve_row.get("cpu_minutes")
    return f"{curve_row['minutes']:.1f}" + (f" ({cpu:.1f} CPU)" if isinstance(cpu, (int, float)) else "")


def write_model_card(name: str, template: str, **fields: str) -> None:
    """``checkpoints/<name>/README.md`` from a template in ``training/`` and the checkpoint's files."""
    folder = CHECKPOINT_ROOT / name
    config, metrics = read_config(folder), read_metrics(folder)
    curves = "\n".join(
        f"| {c['phase']} | {c['epoch']} | {c['train_loss']:.3f} | {c['valid_nll']:.3f} | "
        f"{_number(c.get('valid_p_gen'))} | {_number(c.get('valid_coverage'))} | {_minutes(c)} |"
        for c in metrics.get("curves", []))
    args = config.get("args", {})
    card = (ROOT / "training" / template).read_text(encoding="utf-8").format(
        name=name, model_type=config["model_type"], args=json.dumps(args),
        coverage="on" if args.get("coverage") else "off", curves=curves, **fields)
    (folder / "README.md").write_text(card, encoding="utf-8")
