"""Corpus explorer: trace every example of a jsonl file (or an exhibit's own test split) and keep,
per example, the statistics that find a model's failures across a test set.

Rows are ``{"src": ..., "reference": ...}`` (``reference`` optional; an exhibit's own splits use
``tgt`` / ``poem`` and ``topics``, read too). Each output row keeps the input fields and adds
``output`` and the statistics of :func:`example_stats`. The run is a map over examples: in this
process (``workers=1``), a local process pool (``workers=N``), or Ray actors (``ray_address``:
"local" / "auto" / a cluster address) — each worker loads the model once.
"""
from __future__ import annotations

import functools
import gzip
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from .decoding import DecodeSettings, generate
from .contradiction import NEGATIONS, contradicts
from .limits import TimeLimitExceeded
from .text import RougeTokenizer, tokenize
from .trace import GenerationTrace, mean_attention

STATISTICS = ("rouge_l", "chrf", "unk_count", "repeated_ngrams", "mean_p_gen", "attention_entropy",
              "coverage_loss", "output_tokens", "logprob_per_token", "verdict",
              "question_reply", "negative_reply", "contradiction", "keyword_used", "safe_reply")
# The seq2seq chat failure modes, per reply (1 yes, 0 no; keyword_used None without a keyword):
# a question back, a negation word, a contradiction (:mod:`gen_models.contradiction`), the model's
# own keyword used, and (after a run,
# :func:`mark_safe_replies`) one of the run's 10 most frequent replies.
SAFE_TOP = 10
@functools.lru_cache(maxsize=1)
def _rouge():
    """rouge-score's ROUGE-L scorer with the Han-aware tokenizer (imported on first use: it pulls in nltk)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer())  # Han characters count


def read_examples(path: Path, limit: Optional[int] = None) -> list[dict]:
    """Rows of a ``.jsonl`` or ``.jsonl.gz`` file (ValueError naming the line of a malformed row)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from err
            if not isinstance(row, dict) or source_of(row) is None:
                raise ValueError(f"{path}:{number}: a row needs a \"src\" text (or \"topics\")")
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    return rows


def source_of(row: dict) -> Optional[str]:
    """The input text of a row: ``src``, else its ``topics`` joined, else ``text``."""
    if isinstance(row.get("src"), str):
        return row["src"]
    if isinstance(row.get("topics"), list):
        return " ".join(map(str, row["topics"]))
    return row["text"] if isinstance(row.get("text"), str) else None


def reference_of(row: dict) -> Optional[str]:
    """The expected output of a row, if it has one (``reference``, ``tgt`` or ``poem``)."""
    for key in ("reference", "tgt", "poem"):
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key]
    return None


def example_stats(trace: GenerationTrace, reference: Optional[str]) -> dict[str, Any]:
    """The statistics of one traced example (None where the model has no such signal)."""
    tokens = [s.token for s in trace.steps if s.token != "</s>"]
    attention = [mean_attention(s.attention) for s in trace.steps if s.attention is not None]  # (S,) each
    stats: dict[str, Any] = {
        "output": trace.output_text, "output_tokens": len(tokens), "unk_count": tokens.count("<unk>"),
        "repeated_ngrams": sum(repeats(tokens, n) for n in (2, 3)),
        "logprob_per_token": float(np.mean([s.logprob for s in trace.steps])) if trace.steps else None,
        "mean_p_gen": _mean([s.p_gen for s in trace.steps if s.p_gen is not None]),
        "attention_entropy": _mean([float(-(a * np.log(np.clip(a, 1e-12, 1))).sum()) for a in attention]),
        "coverage_loss": coverage_loss(attention) if any(s.coverage is not None for s in trace.steps) else None,
        "rouge_l": None, "chrf": None, "verdict": None, **chat_failures(trace),
    }
    if reference is not None:
        stats["rouge_l"] = _rouge().score(" ".join(tokenize(reference)), " ".join(tokenize(trace.output_text)))[
            "rougeL"].fmeasure
        import sacrebleu  # on first use: the app's start does not pay for it

        stats["chrf"] = sacrebleu.sentence_chrf(trace.output_text, [reference]).score
        stats["verdict"] = trace.reference["verdict"] if trace.reference else None
    return stats


def chat_failures(trace: GenerationTrace) -> dict[str, Optional[int]]:
    """Per-reply chat failure flags of :data:`STATISTICS` (``safe_reply`` is set by a whole run)."""
    words = tokenize(trace.output_text)
    keyword = trace.extra.get("keyword")
    return {"question_reply": int("?" in words), "negative_reply": int(any(w in NEGATIONS for w in words)),
            "contradiction": int(contradicts(" ".join(trace.source_tokens), trace.output_text)),
            "keyword_used": None if not keyword else int(str(keyword).lower() in words), "safe_reply": None}


def mark_safe_replies(rows: list[dict], top: int = SAFE_TOP) -> list[dict]:
    """Set each row's ``safe_reply``: 1 when its output is one of the ``top`` most frequent outputs of
    the run (Li et al.'s "safe responses"; the share of such rows is the run's safe-reply rate)."""
    from collections import Counter

    counts = Counter(" ".join(tokenize(r["output"])) for r in rows if r.get("output") and "error" not in r)
    frequent = {text for text, _ in counts.most_common(top)}
    for row in rows:
        if row.get("output") and "error" not in row:
            row["safe_reply"] = int(" ".join(tokenize(row["output"])) in frequent)
    return rows


def repeats(tokens: list[str], n: int) -> int:
    """How many n-grams of ``tokens`` repeat an earlier one."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) - len(set(grams))


def coverage_loss(attention: list[np.ndarray]) -> Optional[float]:
    """See et al.'s coverage loss summed over the output: Σ_t Σ_i min(a_ti, Σ_{t'<t} a_t'i)."""
    if not attention:
        return None
    matrix = np.stack(attention)  # (T, S)
    before = np.cumsum(matrix, axis=0) - matrix
    return float(np.minimum(matrix, before).sum())


def _mean(values: list[float]) -> Optional[float]:
    return float(np.mean(values)) if values else None


# -- the map over examples -------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _load(model_name: str, root: Optional[str]):
    from . import load_model
    from .checkpoint import load_checkpoint

    return load_checkpoint(Path(root) / model_name) if root and not model_name.startswith("hf:") \
        else load_model(model_name)


def _init_worker(model_name: str, root: Optional[str], settings: dict) -> None:
    """Process-pool initialiser: one thread, the model loaded once."""
    import torch

    torch.set_num_threads(1)
    _WORKER.update(model=_load(model_name, root), settings=DecodeSettings(**settings))


def trace_row(row: dict, model=None, settings: Optional[DecodeSettings] = None) -> dict:
    """One output row: the input fields, ``output`` and the statistics (``error`` when the example
    cannot be decoded, e.g. an empty source)."""
    model, settings = model or _WORKER["model"], settings or _WORKER["settings"]
    reference = reference_of(row)
    topics = row.get("topics") if isinstance(row.get("topics"), list) else None
    try:
        scoring = reference if model.features.generates else None
        try:
            trace = generate(model, source_of(row) or "", settings, topics, reference=scoring)
        except ValueError:
            if scoring is None:
                raise
            trace = generate(model, source_of(row) or "", settings, topics)  # a reference it cannot score
        return {**row, **example_stats(trace, reference)}
    except TimeLimitExceeded:
        raise  # the run is over, not this example
    except ValueError as err:
        return {**row, "output": "", "error": str(err)}


class _RayWorker:
    """A Ray actor holding one model."""

    def __init__(self, model_name: str, root: Optional[str], settings: dict):
        _init_worker(model_name, root, settings)

    def run(self, row: dict) -> dict:
        return trace_row(row)


def run_corpus(model_name: str, rows: list[dict], settings: DecodeSettings, workers: int = 1,
               ray_address: Optional[str] = None, root: Optional[str] = None) -> Iterator[dict]:
    """Output rows in input order: in this process (``workers`` 1), a process pool of ``workers``,
    or Ray actors (``ray_address``: "local" starts a runtime here, "auto" joins a running one, else a
    cluster address). A generator: stop iterating to cancel (pending work is dropped)."""
    settings_values = {k: v for k, v in settings.__dict__.items()}
    settings_values["record"] = True
    if ray_address:
        yield from _run_ray(model_name, rows, settings_values, max(workers, 1), ray_address, root)
    elif workers <= 1:
        _init_worker(model_name, root, settings_values)
        for row in rows:
            yield trace_row(row)
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker,
                                 initargs=(model_name, root, settings_values)) as pool:
            try:
                yield from pool.map(trace_row, rows, chunksize=max(1, min(16, len(rows) // (4 * workers))))
            finally:
                pool.shutdown(wait=False, cancel_futures=True)


def _run_ray(model_name: str, rows: list[dict], settings: dict, workers: int, address: str,
             root: Optional[str]) -> Iterator[dict]:
    import ray
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        start_ray(address, workers)
    try:
        actor = ray.remote(num_cpus=1)(_RayWorker)
        pool = ActorPool([actor.remote(model_name, root, settings) for _ in range(workers)])
        yield from pool.map(lambda a, row: a.run.remote(row), rows)
    finally:
        if started:
            ray.shutdown()


def start_ray(address: str, workers: int) -> None:
    """Join the Ray cluster at ``address`` ("auto" or host:port), or with "local" start one here whose
    servers listen on 127.0.0.1 only. Ray turns a loopback node address into the machine's reachable
    one unless it runs as a single-machine cluster (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, what it
    does on macOS and Windows), which then binds every server to loopback."""
    import ray
    from ray._private import ray_constants

    local = address == "local"
    if local:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # inherited by the raylet and the workers
        ray_constants.ENABLE_RAY_CLUSTER = False  # read when the node's address is chosen
    ray.init(address=None if local else address, num_cpus=workers if local else None,
             include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}})


def write_jsonl(path: Path, rows: Iterable[dict], progress: Callable[[int], None] = lambda n: None) -> int:
    """Write rows as they come (so a cancelled run keeps what it finished); return how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
            count += 1
            progress(count)
    return count


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def summary(rows: list[dict]) -> dict[str, Any]:
    """Mean of each numeric statistic over the rows that have it, and the verdict counts."""
    result: dict[str, Any] = {"examples": len(rows), "errors": sum("error" in r for r in rows)}
    for name in STATISTICS:
        values = [r[name] for r in rows if isinstance(r.get(name), (int, float)) and not isinstance(r[name], bool)
                  and not math.isnan(r[name])]
        if values:
            result[f"mean_{name}"] = float(np.mean(values))
    verdicts = [r["verdict"] for r in rows if r.get("verdict")]
    if verdicts:
        result["verdicts"] = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    return result


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
