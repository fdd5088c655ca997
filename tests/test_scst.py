"""Self-critical sequence training (training/scst.py): its rollouts against the generic decoder, that
its gradient moves a model towards the reward, and the trainer option end to end."""
from __future__ import annotations

import gzip
import json
import sys

import torch

from gen_models.decoding import DecodeSettings, generate
from tests.helpers import tiny_model
from tests.tiny_checkpoints import TRAIN_ROWS
from training import train as trainer
from training.scst import greedy_rouge_l, rollout, scst_loss, words
from training.train import Example, make_batch

PAIRS = [("w1 w2 w3 w4 w5", "w7 w8 w9"), ("w3 w4 zyx w6", "zyx w10 w11"), ("w12 w13", "w14 w15 w16 w17")]


def examples():
    return [Example(src.split(), tgt.split()) for src, tgt in PAIRS]


def test_the_greedy_rollout_is_the_generic_greedy_decode_copies_included():
    model = tiny_model(seed=3)
    batch = make_batch(model, examples())
    ids, log_probs, mask = rollout(model, batch, 12, sample=False)
    outputs = words(model, ids, mask, [model.source_ids(ex.src)[1] for ex in examples()])
    for (src, _), tokens in zip(PAIRS, outputs):
        trace = generate(model, src, DecodeSettings(strategy="greedy", max_len=12, ban_unk=True))
        assert tokens == [t for t in trace.output_tokens if t != "</s>"]
    assert torch.isfinite(log_probs[mask]).all() and (log_probs[mask] <= 0).all()


def test_the_self_critical_gradient_moves_greedy_output_towards_the_reward():
    """Pure REINFORCE with the greedy baseline (no word-level loss) on three pairs: ROUGE-L of the
    greedy decode rises from where a random model starts (a pair whose samples never score above
    its greedy output gets no signal, as in the method, so the rise is not to 1)."""
    model = tiny_model(seed=0).train()
    before = greedy_rouge_l(model, examples(), 8, 8, make_batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    torch.manual_seed(0)
    for _ in range(80):
        batch_examples = examples() * 4
        out = scst_loss(model, make_batch(model, batch_examples), batch_examples, 8)
        optimizer.zero_grad()
        out["rl"].backward()
        optimizer.step()
    after = greedy_rouge_l(model, examples(), 8, 8, make_batch)
    assert before < 0.1 and after > before + 0.25, (before, after)


def test_the_trainer_option_fine_tunes_a_checkpoint_and_keeps_the_best_by_greedy_rouge(tmp_path, checkpoint_root,
                                                                                        monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        with gzip.open(data / f"{split}.jsonl.gz", "wt", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in TRAIN_ROWS * 4)
    out_dir = tmp_path / "scst"
    monkeypatch.setattr(sys, "argv", ["train", "--data", str(data), "--out", str(out_dir), "--init-from",
                                      str(checkpoint_root / "tiny-pointer-coverage"), "--coverage", "--scst", "0.9",
                                      "--lr", "1e-3", "--batch-size", "4", "--epochs", "2", "--eval-every", "2",
                                      "--threads", "1", "--max-tgt", "10"])
    trainer.main()
    curves = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))["curves"]
    scst_rows = [row for row in curves if row["phase"] == "scst"]
    assert len(scst_rows) >= 3 and all(0 <= row["valid_greedy_rouge_l"] <= 1 for row in scst_rows)
    assert all(0 <= row["train_reward_sample"] <= 1 and 0 <= row["train_reward_greedy"] <= 1 for row in scst_rows)
    assert (out_dir / "model.safetensors").is_file()
