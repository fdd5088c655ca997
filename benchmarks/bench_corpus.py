"""Corpus runs on 2 cores: examples per second in one process, a process pool of 2, and Ray local
with 2 actors, over the first N Debian test examples (``debian-pointer-coverage``, beam 4).

    python benchmarks/bench_corpus.py [--examples 1000] [--no-ray]

Target (issue #18): the pool of 2 at least 1.7x one worker. Start-up (loading the model in each
worker, starting Ray) is included, as a user waits for it too; the rows are checked to be the same.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_models.checkpoint import CHECKPOINT_ROOT  # noqa: E402
from gen_models.corpus import read_examples, run_corpus  # noqa: E402
from gen_models.decoding import DecodeSettings  # noqa: E402

MODEL = "debian-pointer-coverage"
DATA = Path(__file__).resolve().parent.parent / "data" / "debian" / "test.jsonl.gz"


def timed(rows: list[dict], **options) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    out = list(run_corpus(MODEL, rows, DecodeSettings(beam_size=4, max_len=30), root=str(CHECKPOINT_ROOT), **options))
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    rows = read_examples(DATA, args.examples)
    one, reference = timed(rows, workers=1)
    print(f"{MODEL}, {len(rows)} Debian test examples")
    print(f"1 worker (this process)   {one:7.1f} s   {len(rows) / one:6.1f} examples/s")
    two, pooled = timed(rows, workers=2)
    print(f"process pool, 2 workers   {two:7.1f} s   {len(rows) / two:6.1f} examples/s   speed-up ratio {one / two:.2f}"
          f"   target ≥ 1.7: {'met' if one / two >= 1.7 else 'NOT met'}")
    assert [r["output"] for r in pooled] == [r["output"] for r in reference]
    if not args.no_ray:
        ray_time, rayed = timed(rows, workers=2, ray_address="local")
        print(f"Ray local, 2 actors       {ray_time:7.1f} s   {len(rows) / ray_time:6.1f} examples/s   "
              f"ratio to the pool {two / ray_time:.2f}")
        assert [r["output"] for r in rayed] == [r["output"] for r in reference]


if __name__ == "__main__":
    main()
