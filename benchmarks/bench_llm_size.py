"""GenScope's traced decode of a ~0.5B-parameter LLM on the CPU, against ``transformers``' ``generate``.

    python benchmarks/bench_llm_size.py [--repeats 3] [--threads 2] [--dtype float32] [--with-1p5b]
                                        [--beams 1,4] [--skip-long]
    python benchmarks/bench_llm_size.py --quick      # a tiny config, one repeat (the suite runs this)

A randomly initialised Qwen2 config of Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 query heads
over 2 key/value heads, MLP 4,864, vocabulary 151,936, tied embeddings: 494M parameters), built
locally (nothing from the Hub), eager attention. One process:

1. a 200-token prompt, exactly 100 new tokens, greedy and beam 4: GenScope's traced decode ÷
   ``generate(output_attentions=True, return_dict_in_generate=True)`` (eager) and ÷ plain
   ``generate`` (sdpa); medians of ``--repeats`` interleaved runs, and each run's peak RSS above the
   loaded model;
2. a 4,096-token prompt × 20 new tokens, greedy, traced under the library's default work budget
   (``gen_models.limits.LIBRARY_DEFAULTS``): time and peak RSS (``generate(output_attentions=True)``
   is not run: it would keep the prompt's 24 × 14 × 4,096² attention weights, 22.5 GB in fp32);
3. with ``--with-1p5b``, Qwen2.5-1.5B's shape (hidden 1,536, 28 layers, 12 / 2 heads, MLP 8,960):
   one traced greedy run, 200-token prompt × 20 new tokens, for its time and memory per token.

The first decode's runs are under raised trace limits (the default budget refuses 100 steps × beam
4 of a 0.5B model: that is what it is for); ratios are what tracing costs, not what the app allows.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_models import limits  # noqa: E402
from gen_models.decoding import DecodeSettings, generate  # noqa: E402
from gen_models.models.hf_adapter import HFGenerator  # noqa: E402
from tests.hf_tiny import word_tokenizer  # noqa: E402

SHAPES = {
    "0.5B": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 intermediate_size=4864, vocab_size=151_936),
    "1.5B": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                 intermediate_size=8960, vocab_size=151_936),
    "quick": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, vocab_size=1000),
}
UNBOUNDED = replace(limits.LIBRARY_DEFAULTS, traced_work=10**12, recorded_values=10**12)


class PeakRSS:
    """The peak resident memory of this process while the block runs, sampled every 5 ms, in MB
    above what it was at the start (``peak_mb``) and in all (``total_mb``)."""

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = rss_mb()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_mb())
        self.peak_mb, self.total_mb = self.peak - self.start, self.peak


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(shape: str, dtype: torch.dtype) -> HFGenerator:
    """A random Qwen2 model of ``shape`` (tied embeddings, eager attention) behind GenScope's adapter."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    config = Qwen2Config(**SHAPES[shape], tie_word_embeddings=True, max_position_embeddings=32_768,
                         pad_token_id=0, eos_token_id=1, bos_token_id=3)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=dtype)
    model.generation_config.pad_token_id = 0
    return HFGenerator(model.eval(), word_tokenizer(SHAPES[shape]["vocab_size"]), f"random Qwen2 {shape}")


def prompt(tokens: int) -> str:
    """A text of ``tokens`` tokens for the word tokenizer (it appends ``</s>``)."""
    return " ".join(f"w{(7919 * i) % 997 + 4}" for i in range(tokens - 1))


def timed(fn: Callable) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, peak RSS above the start in MB) of one call. On a
    machine other jobs share, CPU time is the steadier measure of the work done."""
    with PeakRSS() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu_seconds, memory.peak_mb


def runs(generator: HFGenerator, text: str, new: int, beams: int) -> dict[str, Callable]:
    """The three decodes compared: GenScope traced, generate with attentions, plain generate (sdpa)."""
    model = generator.model
    ids = generator.encode(text).source_ids[None]  # (1, S)
    settings = DecodeSettings(strategy="beam" if beams > 1 else "greedy", beam_size=beams, max_len=new, min_len=new)
    options = dict(num_beams=beams, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    if beams > 1:
        options.update(length_penalty=0.0, early_stopping=True)

    def traced():
        with limits.applied(UNBOUNDED):
            return generate(generator, text, settings)

    def with_attentions():
        with torch.no_grad():
            return model.generate(ids, output_attentions=True, return_dict_in_generate=True, **options)

    def plain():
        model.set_attn_implementation("sdpa")
        try:
            with torch.no_grad():
                return model.generate(ids, **options)
        finally:
            model.set_attn_implementation("eager")

    return {"traced": traced, "generate(output_attentions)": with_attentions, "generate (sdpa)": plain}


def compare(generator: HFGenerator, text: str, new: int, beams: int, repeats: int) -> dict:
    """Interleaved medians (wall and CPU seconds) and peaks of the three decodes, after one short
    warm-up of each."""
    for fn in runs(generator, text, 2, beams).values():
        fn()
    fns = runs(generator, text, new, beams)
    measured: dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            measured[name].append(timed(fn))
    trace = fns["traced"]()
    theirs = fns["generate (sdpa)"]()[0, -new:].tolist()
    return {"median_s": {n: statistics.median(m[0] for m in ms) for n, ms in measured.items()},
            "median_cpu_s": {n: statistics.median(m[1] for m in ms) for n, ms in measured.items()},
            "peak_mb": {n: max(m[2] for m in ms) for n, ms in measured.items()},
            "same_output": trace.output_ids() == theirs}


def report_comparison(label: str, result: dict) -> None:
    """Print one comparison: wall times, ratios (wall, and CPU time in brackets), peaks."""
    wall, cpu, peak = result["median_s"], result["median_cpu_s"], result["peak_mb"]
    ratio = {n: f"{wall['traced'] / wall[n]:.2f}x ({cpu['traced'] / cpu[n]:.2f}x CPU)" for n in wall}
    print(f"{label}: traced {wall['traced']:.2f} s (peak +{peak['traced']:.0f} MB) | generate(output_attentions) "
          f"{wall['generate(output_attentions)']:.2f} s (+{peak['generate(output_attentions)']:.0f} MB) | "
          f"generate sdpa {wall['generate (sdpa)']:.2f} s (+{peak['generate (sdpa)']:.0f} MB) | "
          f"ratio vs output_attentions {ratio['generate(output_attentions)']}, ratio vs plain "
          f"{ratio['generate (sdpa)']} | same output as generate: {result['same_output']}")


def traced_once(generator: HFGenerator, tokens: int, new: int) -> dict:
    """One traced greedy decode under the library's default limits: seconds, peak RSS, the trace's size."""
    text = prompt(tokens)
    with PeakRSS() as memory:
        start = time.perf_counter()
        trace = generate(generator, text, DecodeSettings(strategy="greedy", beam_size=1, max_len=new, min_len=new))
        seconds = time.perf_counter() - start
    decode_ms = trace.timings["decode_ms"]
    return {"prompt_tokens": len(trace.source_tokens), "new_tokens": len(trace.steps), "seconds": seconds,
            "peak_mb_above_model": memory.peak_mb, "peak_rss_mb": memory.total_mb,
            "trace_json_mb": len(trace.to_json()) / 2**20, "notices": trace.notices, "decode_ms": decode_ms}


def per_token(generator: HFGenerator, text: str, new: int) -> float:
    """Milliseconds one more traced greedy token costs: (decode of ``new`` − decode of 1) / (new − 1)."""
    settings = [DecodeSettings(strategy="greedy", beam_size=1, max_len=n, min_len=n) for n in (1, new)]
    with limits.applied(UNBOUNDED):
        one, many = (generate(generator, text, s).timings["decode_ms"] for s in settings)
    return (many - one) / (new - 1)


def size_line(generator: HFGenerator) -> str:
    """Parameters, dtype and what one token adds to the key/value cache."""
    features = generator.features
    dtype = next(generator.model.parameters()).dtype
    return (f"{generator.name}: {features.parameters / 1e6:.0f}M parameters, {dtype}, key/value cache "
            f"{features.cache_bytes_per_token / 1024:.0f} kB per token and hypothesis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--quick", action="store_true", help="a tiny config, one repeat, short runs")
    parser.add_argument("--with-1p5b", action="store_true", help="also one run of Qwen2.5-1.5B's shape")
    parser.add_argument("--skip-long", action="store_true", help="leave out the 4,096-token prompt")
    parser.add_argument("--beams", default="1,4", help="the beam sizes compared (1: greedy), e.g. 1 or 1,4")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    shape, repeats = ("quick", 1) if args.quick else ("0.5B", args.repeats)
    new, long_prompt, long_new = (10, 600, 5) if args.quick else (100, 4096, 20)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {repeats}, load {os.getloadavg()}")
    generator = build(shape, dtype)
    print(size_line(generator), f"| RSS with the model loaded {rss_mb():.0f} MB")
    for beams in (int(b) for b in args.beams.split(",")):
        result = compare(generator, prompt(200), new, beams, repeats)
        report_comparison(f"200-token prompt, {new} new tokens, {'greedy' if beams == 1 else f'beam {beams}'}",
                          result)
        print(json.dumps({"beams": beams, **result}))
    print(f"per traced token (greedy, 200-token prompt): {per_token(generator, prompt(200), min(new, 20)):.0f} ms")
    if not args.skip_long:
        print(f"{long_prompt:,}-token prompt × {long_new} new tokens, traced greedy under the default budget:",
              json.dumps(traced_once(generator, long_prompt, long_new)))
    if args.with_1p5b and not args.quick:
        del generator
        big = build("1.5B", dtype)
        print(size_line(big), f"| RSS with the model loaded {rss_mb():.0f} MB")
        print("200-token prompt × 20 new tokens, traced greedy:", json.dumps(traced_once(big, 200, 20)))
        print(f"per traced token (greedy, 200-token prompt): {per_token(big, prompt(200), 20):.0f} ms")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
