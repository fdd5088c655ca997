"""Regenerate tests/golden/caption_eval.json: the shipped captioners evaluated on the first test seeds
(run after a deliberate retrain).

    python -m tests.golden.update_caption_golden

It stores, for each shipped captioner, each scene's greedy caption, its pointing hits and repeated-peak
share, and the summary over these scenes, all as ``training.evaluate_caption`` computes them.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from gen_models.checkpoint import CHECKPOINT_ROOT
from gen_models.decoding import DecodeSettings

CAPTION_GOLDEN = Path(__file__).resolve().parent / "caption_eval.json"
CAPTION_MODELS = ("caption-attention", "caption-noreg", "caption-supervised")
SCENES = 24
SUMMARY_KEYS = ("exact", "all_claims_true", "all_claims_true_1_2", "all_claims_true_3_4", "pointing",
                "repeated_peak_words", "bleu4", "chrf")


def caption_golden() -> dict:
    """{model: {"scenes": [{"caption", "pointing", "repeats"}], "summary": {...}}} computed now."""
    from training.evaluate_caption import evaluate

    torch.set_num_threads(1)
    settings = DecodeSettings(strategy="greedy", max_len=30)
    out = {}
    for name in CAPTION_MODELS:
        if not (CHECKPOINT_ROOT / name / "model.safetensors").is_file():
            continue
        summary, rows = evaluate(name, SCENES, settings)
        out[name] = {"scenes": [{"caption": r["caption"], "pointing": r["pointing"], "repeats": r["repeats"]}
                                for r in rows],
                     "summary": {k: summary[k] for k in SUMMARY_KEYS}}
    return out


if __name__ == "__main__":
    CAPTION_GOLDEN.write_text(json.dumps({"scenes": SCENES, "models": caption_golden()}, indent=1) + "\n",
                              encoding="utf-8")
    print(f"wrote {CAPTION_GOLDEN}")
