"""The corpus explorer's CLI: per-example statistics, the same rows from 1 worker, a process pool and
a local Ray runtime, and clear messages for bad files."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gen_models.corpus import coverage_loss, read_examples, repeats

ROWS = [{"src": "libjson: a JSON parser library for C.", "reference": "JSON parser library"},
        {"src": "pytool: command line tool to manage Python packages."},
        {"src": "chess-server: a server for the game of chess with a client interface.", "reference": "chess server"},
        {"src": "   "}]


def corpus_cli(checkpoint_root, tmp_path, *extra: str) -> list[dict]:
    source, out = tmp_path / "in.jsonl", tmp_path / f"out{len(extra)}.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gen_models", "--root", str(checkpoint_root), "corpus", "--model",
                           "tiny-pointer-coverage", "--input", str(source), "--output", str(out), "--quiet", *extra],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["examples"] == len(ROWS)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_cli_keeps_the_input_fields_and_adds_the_statistics(checkpoint_root, tmp_path):
    rows = corpus_cli(checkpoint_root, tmp_path)
    assert [r["src"] for r in rows] == [r["src"] for r in ROWS]
    first = rows[0]
    assert first["reference"] == "JSON parser library" and first["output"]
    for name in ("rouge_l", "chrf", "unk_count", "repeated_ngrams", "mean_p_gen", "attention_entropy",
                 "coverage_loss", "verdict"):
        assert first[name] is not None, name
    assert rows[1]["rouge_l"] is None and rows[1]["verdict"] is None  # no reference: no reference statistics
    assert rows[3]["error"] == "the input has no tokens"


def test_workers_and_ray_give_the_same_rows_as_one_process(checkpoint_root, tmp_path):
    pytest.importorskip("ray")
    one = corpus_cli(checkpoint_root, tmp_path)
    pool = corpus_cli(checkpoint_root, tmp_path, "--workers", "2")
    ray = corpus_cli(checkpoint_root, tmp_path, "--workers", "2", "--ray", "local", "--limit", "4")
    assert pool == one and ray == one


def test_a_local_ray_runtime_listens_on_loopback_only():
    """``--ray local`` starts Ray with every server on 127.0.0.1 (no port open to the network)."""
    ray = pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    from gen_models.corpus import start_ray

    if ray.is_initialized():
        pytest.skip("a Ray runtime is already running in this process")
    start_ray("local", 1)
    try:
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        listening = {c.laddr.ip for p in psutil.Process().children(recursive=True)
                     for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening
    finally:
        ray.shutdown()


def test_statistics_by_hand():
    assert repeats("a b a b a".split(), 2) == 2 and repeats("a b c".split(), 2) == 0
    import numpy as np
    attention = [np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([0.0, 1.0])]
    assert coverage_loss(attention) == pytest.approx(0.5 + 0.5)  # step 1: min(.5, 1); step 2: min(1, .5)


def test_bad_files_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"src": "ok"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2: not JSON"):
        read_examples(path)
    path.write_text('{"text_missing": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match='bad.jsonl:1: a row needs a "src" text'):
        read_examples(path)


def test_chat_failure_flags_by_hand():
    from gen_models.corpus import chat_failures, mark_safe_replies
    from gen_models.trace import GenerationTrace

    def reply(text, keyword=None):
        trace = GenerationTrace(model="m", source_tokens=["x"], output_tokens=[], output_text=text, steps=[], beam=[],
                                settings={}, timings={}, extra={"keyword": keyword} if keyword else {})
        return chat_failures(trace)

    assert reply("what do you do?") == {"question_reply": 1, "negative_reply": 0, "contradiction": 0,
                                        "keyword_used": None, "safe_reply": None}
    assert reply("i like it, i don't like it")["contradiction"] == 1
    assert reply("i don't know", "music")["negative_reply"] == 1 and reply("i don't know", "music")["keyword_used"] == 0
    assert reply("i love Music, not books", "music") == {"question_reply": 0, "negative_reply": 1, "contradiction": 0,
                                                         "keyword_used": 1, "safe_reply": None}
    rows = [{"output": t} for t in ["i don't know"] * 3 + ["oh cool!"] * 2 + ["a", "b", "c"]] + [{"output": "", "error": "e"}]
    mark_safe_replies(rows, top=2)
    assert [r.get("safe_reply") for r in rows] == [1, 1, 1, 1, 1, 0, 0, 0, None]
    assert sum(r["safe_reply"] for r in rows[:-1]) / 8 == 5 / 8  # the run's safe-reply rate


def test_rouge_l_counts_han_characters_so_a_poem_scores_above_zero():
    """#27 item 9: rouge-score's tokenizer drops every non-ASCII character, so each Chinese poem scored
    ROUGE-L 0; Han characters are now one token each, and English scores as before."""
    from rouge_score import rouge_scorer

    from gen_models.corpus import example_stats
    from gen_models.text import RougeTokenizer
    from gen_models.trace import GenerationTrace, Step
    from training.metrics import rouge_f1

    def trace(output: str) -> GenerationTrace:
        tokens = list(output)
        return GenerationTrace(model="m", source_tokens=["春"], output_tokens=tokens, output_text=output,
                               steps=[Step(token=t, token_id=0, logprob=-1.0) for t in tokens], beam=[], settings={})

    poem, reference = "春风吹绿江南岸", "春风又绿江南岸"
    assert example_stats(trace(poem), reference)["rouge_l"] == pytest.approx(6 / 7)
    assert example_stats(trace("明月何时照我还"), reference)["rouge_l"] == 0
    assert rouge_f1([list(reference)], [list(poem)])["rouge1"] == pytest.approx(6 / 7)
    english = ("the running dogs were chasing cats", "a dog chased the running cat")
    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(*english)["rougeL"].fmeasure
    ours = rouge_scorer.RougeScorer(["rougeL"], tokenizer=RougeTokenizer()).score(*english)["rougeL"].fmeasure
    assert ours == pytest.approx(default) and default > 0
