"""What does explaining one step cost? Integrated gradients (32 steps) and gradient × input for one
output step of ``debian-pointer-coverage`` on a 100-token input, beside decoding that input, same
process.

    python benchmarks/bench_attribution.py [--repeats 7] [--threads 2] [--step 5]

Target (issue #15): integrated gradients with 32 steps at most 2 s on 2 cores. Prints the medians
and their ratio to one beam-4 decode (the work a keystroke already does).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_tracing import bench_args, median_ms  # noqa: E402
from gen_models.attribution import attribute  # noqa: E402
from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint, read_config  # noqa: E402
from gen_models.decoding import DecodeSettings, generate  # noqa: E402
from gen_models.text import tokenize  # noqa: E402

MODEL = "debian-pointer-coverage"
SOURCE_TOKENS = 100


def hundred_token_input() -> str:
    """The model's examples joined and cut at 100 tokens."""
    words = [t for e in read_config(CHECKPOINT_ROOT / MODEL)["examples"] for t in tokenize(e, lowercase=False)]
    return " ".join(words[:SOURCE_TOKENS])


def main() -> None:
    args = bench_args(__doc__)
    model = load_checkpoint(CHECKPOINT_ROOT / MODEL)
    text = hundred_token_input()
    settings = DecodeSettings(beam_size=4, max_len=30)
    trace = generate(model, text, settings)
    encoded, ids = model.encode(text), trace.output_ids()
    step = min(5, len(ids) - 1)
    decode, ig, gxi = median_ms(
        lambda: generate(model, text, settings),
        lambda: attribute(model, encoded, ids, step, "ig", n_steps=32, settings=settings),
        lambda: attribute(model, encoded, ids, step, "grad_x_input", settings=settings),
        repeats=args.repeats)
    print(f"{MODEL}: {len(encoded.source_tokens)} source tokens, step {step} of {len(ids)}, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"decode (beam 4)              {decode:8.0f} ms")
    print(f"integrated gradients (32)    {ig:8.0f} ms   ratio to decode {ig / decode:5.2f}   target ≤ 2000 ms: "
          f"{'met' if ig <= 2000 else 'NOT met'}")
    print(f"gradient × input             {gxi:8.0f} ms   ratio to decode {gxi / decode:5.2f}")


if __name__ == "__main__":
    main()
