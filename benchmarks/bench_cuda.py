"""GenScope on a GPU: the golden tests there, traces against the CPU's, and tracing overhead on a
~0.5B-parameter decoder.

    python benchmarks/bench_cuda.py [--repeats 5]          # on a CUDA machine
    python benchmarks/bench_cuda.py --device cpu --quick   # the same code path on a CPU, tiny sizes

1. ``tests/test_golden.py`` with ``GENSCOPE_DEVICE`` set to the device (the shipped checkpoints'
   beam-4 outputs must be the recorded ones).
2. Every shipped checkpoint on its first example, traced on the CPU and on the device: same output
   tokens, and the largest difference of any recorded attention, p_gen and log-probability.
3. A randomly initialised GPT-2-style decoder built locally from a config (no Hub; 1280 wide, 26
   layers: 0.51B parameters; stored in fp16 and run in its checkpoint dtype on a GPU): GenScope's
   traced beam 4 over 40 new tokens vs ``generate(num_beams=4, output_attentions=True)``. Prints
   medians (interleaved runs) and the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.bench_hf import compare  # noqa: E402
from gen_models.checkpoint import CHECKPOINT_ROOT, list_checkpoints, load_checkpoint, read_config  # noqa: E402
from gen_models.decoding import DecodeSettings, generate  # noqa: E402
from gen_models.device import resolve_device  # noqa: E402
from gen_models.models.hf_adapter import load_hf  # noqa: E402
from tests.hf_tiny import WORDS, word_tokenizer  # noqa: E402

SIZES = {"full": dict(n_embd=1280, n_layer=26, n_head=20), "quick": dict(n_embd=64, n_layer=2, n_head=2)}


def golden_on(device: str) -> str:
    """The golden tests' summary line, run with ``GENSCOPE_DEVICE=device``."""
    env = dict(os.environ, GENSCOPE_DEVICE=device)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_golden.py"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]


def largest_difference(a, b) -> float:
    """Max |a − b| over the recorded per-step signals of two traces of the same output."""
    worst = 0.0
    for step_a, step_b in zip(a.steps, b.steps):
        worst = max(worst, abs(step_a.logprob - step_b.logprob))
        for name in ("attention", "coverage", "p_gen"):
            x, y = getattr(step_a, name), getattr(step_b, name)
            if x is not None and y is not None:
                worst = max(worst, float(np.max(np.abs(np.asarray(x, dtype=np.float64) - np.asarray(y)))))
    return worst


def traces_against_cpu(device: str) -> list[str]:
    """One line per shipped checkpoint: same output on the device as on the CPU, and the largest gap."""
    lines = []
    settings = DecodeSettings(beam_size=4, max_len=30)
    for folder in list_checkpoints(CHECKPOINT_ROOT):
        example = (read_config(folder).get("examples") or ["hello"])[0]
        on_cpu = generate(load_checkpoint(folder, device="cpu"), example, settings)
        on_device = generate(load_checkpoint(folder, device=device), example, settings)
        same = on_cpu.output_tokens == on_device.output_tokens
        gap = largest_difference(on_cpu, on_device) if same else float("nan")
        lines.append(f"{folder.name}: {'same output' if same else 'OUTPUT DIFFERS'}, largest difference {gap:.2e}")
    return lines


def build_decoder(folder: Path, size: str) -> Path:
    """A random GPT-2-style decoder over the test word vocabulary, saved in fp16 (safetensors)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, pad_token_id=0, eos_token_id=1,
                        bos_token_id=3, **SIZES[size])
    model = GPT2LMHeadModel(config).half()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny decoder, one repeat, no golden run")
    args = parser.parse_args()
    device = str(resolve_device(args.device))
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(0)})" if device.startswith("cuda") else ""))
    if not args.quick:
        print("golden tests:", golden_on(device))
        print("\n".join(traces_against_cpu(device)))
    with tempfile.TemporaryDirectory() as tmp:
        generator = load_hf(str(build_decoder(Path(tmp) / "decoder", "quick" if args.quick else "full")),
                            device=device)
    parameters = sum(p.numel() for p in generator.model.parameters())
    text = " ".join(WORDS[(7 * i) % len(WORDS)] for i in range(60))
    traced, baseline, source = compare(generator, text, 40, 1 if args.quick else args.repeats)
    print(json.dumps({"parameters": parameters, "dtype": str(next(generator.model.parameters()).dtype)}))
    print(f"decoder ({parameters / 1e6:.0f}M parameters, {source} prompt tokens): GenScope traced {traced:.1f} ms "
          f"vs transformers generate {baseline:.1f} ms (output_attentions=True) = ratio {traced / baseline:.2f}x")


if __name__ == "__main__":
    main()
