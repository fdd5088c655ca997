"""What does recording the whole trace cost? Traced vs untraced beam search, same process.

    python benchmarks/bench_tracing.py [--repeats 7] [--threads 2]

Models: a See-et-al.-sized pointer-generator with coverage (hidden 256, embedding 128, vocabulary
50k, random weights; 400 source tokens, exactly 100 steps, beam 4) and every shipped checkpoint
(its test-length input: 100 source tokens, up to 30 steps, beam 4). The See-sized model also runs
with every logits processor on (sampling: repetition penalty, n-gram block, temperature, top-k,
top-p; and beam search with the first two), whose stages each recorded step keeps. Prints median
milliseconds and the traced/untraced ratio (target: at most 1.3x); a trace's JSON serialisation is
timed apart. ``--see-only`` skips the shipped checkpoints.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_models.checkpoint import list_checkpoints, load_checkpoint, read_config  # noqa: E402
from gen_models.decoding import DecodeSettings, generate  # noqa: E402
from gen_models.models.pointer_generator import PointerGenerator  # noqa: E402
from gen_models.models.seq2seq import Seq2SeqConfig  # noqa: E402
from gen_models.vocab import Vocab  # noqa: E402


def median_ms(*fns, repeats: int) -> list[float]:
    """Median wall time in ms of each function, run interleaved (so load drifts hit all alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(1e3 * (time.perf_counter() - start))
    return [statistics.median(t) for t in times]


def bench_args(doc: str, flags: tuple[str, ...] = ()) -> argparse.Namespace:
    """``--repeats``, ``--threads`` (applied to torch here) and the boolean ``flags``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    for flag in flags:
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def see_sized_model() -> PointerGenerator:
    """Random pointer-generator + coverage with See et al.'s dimensions."""
    torch.manual_seed(0)
    vocab = Vocab(f"w{i}" for i in range(50_000 - 4))
    return PointerGenerator(Seq2SeqConfig(len(vocab), 128, 256, coverage=True, max_source_len=400), vocab).eval()


def compare(label: str, model, text: str, settings: DecodeSettings, repeats: int) -> None:
    """Print traced vs untraced medians for one configuration."""
    settings_off = DecodeSettings(**{**settings.__dict__, "record": False})
    traced, untraced = median_ms(lambda: generate(model, text, settings),
                                 lambda: generate(model, text, settings_off), repeats=repeats)
    trace = generate(model, text, settings)
    [to_json] = median_ms(trace.to_json, repeats=repeats)
    print(f"{label:32s} traced {traced:8.1f} ms | untraced {untraced:8.1f} ms | "
          f"ratio {traced / untraced:4.2f}x | steps {len(trace.steps):3d} | nodes {len(trace.beam):5d} | "
          f"to_json {to_json:6.1f} ms")


def main() -> None:
    args = bench_args(__doc__, ("--see-only",))
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}")
    see = see_sized_model()
    long_text = " ".join(f"w{(i * 7919) % 49_000}" for i in range(400))
    compare("see-sized (50k vocab, S=400, T=100)", see, long_text,
            DecodeSettings(beam_size=4, max_len=100, min_len=100), args.repeats)
    rules = dict(max_len=100, min_len=100, repetition_penalty=1.2, no_repeat_ngram=3)
    compare("see-sized, beam + rep. + n-gram", see, long_text, DecodeSettings(beam_size=4, **rules), args.repeats)
    compare("see-sized, sampling, all rules", see, long_text,
            DecodeSettings(strategy="sample", temperature=0.8, top_k=50, top_p=0.9, **rules), args.repeats)
    if args.see_only:
        return
    for folder in list_checkpoints():
        model = load_checkpoint(folder)
        sample = (read_config(folder).get("examples") or ["a b c"])[0]
        compare(f"{folder.name} (its first example)", model, sample,
                DecodeSettings.for_model(model.features, beam_size=4), args.repeats)


if __name__ == "__main__":
    main()
