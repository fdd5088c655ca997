"""Regenerate tests/golden/group_beam_golden.json: transformers 4.x's diverse (group) beam search
on the tiny seeded models of tests/hf_tiny.py, for ``tests/test_hf_adapter.py``.

transformers 5 moved group beam search out of the library (to a Hub repository), so it cannot run
offline under the installed version. This script builds the tiny models under the installed
transformers (5.x), saves them, and runs ``generate(num_beam_groups=…, diversity_penalty=…)`` on
them under transformers 4.46.3 (the last 4.x ``_group_beam_search`` before 5) in a subprocess::

    pip install --target /tmp/tf4 --no-deps transformers==4.46.3 tokenizers==0.20.3 huggingface_hub==0.26.5
    python -m tests.golden.make_group_beam_golden --tf4 /tmp/tf4

The subprocess runs with ``PYTHONPATH=/tmp/tf4`` first (over the project's torch). It checks that
the weights it loaded hash as the 5.x models' do (the JSON keeps that hash, so the test can check
it rebuilds the same models), and the script checks that plain beam search gives the same outputs
under both versions (the models compute the same under both).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "group_beam_golden.json"
FAMILIES = ("bart", "t5", "gpt2", "llama")  # two encoder-decoders, two decoder-only
SEED = 1
TEXTS = ("w1 w5 w7 w9 w2", "w30 w3 w3 w12", "w8", "w9 w34", "w32 w24 w33")  # the last two: a group ends first
MAX_NEW_TOKENS = 10
# generate's arguments of each run (early_stopping=True: a group stops when it has num_beams / groups)
CASES = (
    dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.5, num_return_sequences=2, length_penalty=0.0),
    dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0, num_return_sequences=4, length_penalty=1.0),
    dict(num_beams=6, num_beam_groups=3, diversity_penalty=1.0, num_return_sequences=3, length_penalty=0.0),
    dict(num_beams=6, num_beam_groups=2, diversity_penalty=0.5, num_return_sequences=1, length_penalty=1.0),
)
PLAIN = dict(num_beams=4, num_return_sequences=1, length_penalty=0.0)  # the cross-version check
FIXED = dict(max_new_tokens=MAX_NEW_TOKENS, early_stopping=True, do_sample=False, no_repeat_ngram_size=0,
             repetition_penalty=1.0, forced_eos_token_id=None, forced_bos_token_id=None)


def state_digest(model) -> str:
    """sha256 of a model's state dict: every tensor's name, dtype, shape and bytes, by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def new_tokens(out: list[int], prompt_len: int, eos_id: int) -> list[int]:
    """The generated part of one ``generate`` row (``prompt_len``: the decoder start token, or a
    decoder-only model's prompt), cut after its end token."""
    new = out[prompt_len:]
    return new[: new.index(eos_id) + 1] if eos_id in new else new


def run_generate(model, input_ids: list[int], options: dict) -> dict:
    """One ``generate`` run: its returned sequences (new tokens) and their sequence scores."""
    import torch

    ids = torch.tensor([input_ids])  # (1, S)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), output_scores=True, return_dict_in_generate=True,
                         **FIXED, **options)
    prompt_len = 1 if model.config.is_encoder_decoder else ids.size(1)
    eos = model.generation_config.eos_token_id
    return {"sequences": [new_tokens(row.tolist(), prompt_len, eos) for row in out.sequences],
            "scores": out.sequences_scores.tolist()}


def worker(job_path: Path, out_path: Path) -> None:
    """Under transformers 4.x: load each saved model, check its hash, run every case on every prompt."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    job = json.loads(job_path.read_text())
    results = {"transformers": transformers.__version__, "torch": torch.__version__, "models": {}}
    for family, spec in job.items():
        auto = AutoModelForSeq2SeqLM if spec["encoder_decoder"] else AutoModelForCausalLM
        model = auto.from_pretrained(spec["folder"], attn_implementation="eager").eval()
        if state_digest(model) != spec["state_sha256"]:
            raise SystemExit(f"{family}: transformers {transformers.__version__} loaded other weights than 5.x saved")
        results["models"][family] = [
            {"plain": run_generate(model, ids, PLAIN), "runs": [run_generate(model, ids, case) for case in CASES]}
            for ids in spec["input_ids"]]
    out_path.write_text(json.dumps(results))


def build(folder: Path) -> dict:
    """Under the installed transformers: save each tiny model, with its hash, prompts and plain beam outputs."""
    from gen_models.models.hf_adapter import load_hf
    from tests.hf_tiny import save_tiny

    job = {}
    for family in FAMILIES:
        generator = load_hf(str(save_tiny(family, folder / family, seed=SEED)))
        input_ids = [generator.encode(text).source_ids.tolist() for text in TEXTS]
        job[family] = {"folder": str(folder / family), "encoder_decoder": generator.is_encoder_decoder,
                       "state_sha256": state_digest(generator.model), "input_ids": input_ids,
                       "plain": [run_generate(generator.model, ids, PLAIN) for ids in input_ids]}
    return job


def golden(job: dict, results: dict) -> dict:
    """The fixture: per model its hash and per prompt each case's generate output; SystemExit when
    plain beam search differs between the two versions."""
    models = {}
    for family, spec in job.items():
        prompts = []
        for text, ids, plain, theirs in zip(TEXTS, spec["input_ids"], spec["plain"], results["models"][family]):
            if theirs["plain"]["sequences"] != plain["sequences"]:
                raise SystemExit(f"{family}, {text!r}: plain beam search differs between transformers versions")
            prompts.append({"text": text, "input_ids": ids,
                            "runs": [{"generate": case, **run} for case, run in zip(CASES, theirs["runs"])]})
        models[family] = {"seed": SEED, "state_sha256": spec["state_sha256"], "prompts": prompts}
    return {"made_with": {"transformers": results["transformers"], "torch": results["torch"],
                          "command": "python -m tests.golden.make_group_beam_golden --tf4 /tmp/tf4"},
            "fixed": FIXED, "models": models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf4", type=Path, help="folder holding transformers 4.x (pip install --target)")
    parser.add_argument("--worker", nargs=2, type=Path, metavar=("JOB", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    if args.tf4 is None:
        parser.error("--tf4 is required")
    with tempfile.TemporaryDirectory() as tmp:
        job = build(Path(tmp))
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        paths = [str(args.tf4), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        subprocess.run([sys.executable, __file__, "--worker", f"{tmp}/job.json", f"{tmp}/out.json"], env=env,
                       check=True, cwd=tmp)
        results = json.loads((Path(tmp) / "out.json").read_text())
    text = json.dumps(golden(job, results), indent=1)
    GOLDEN.write_text(re.sub(r"\[\s+([-\d.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text) + "\n")
    print(f"wrote {GOLDEN} (transformers {results['transformers']})")


if __name__ == "__main__":
    main()
