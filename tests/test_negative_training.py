"""Negative training (He & Glass 2020) in the Transformer trainer: the model's own frequent replies are
found by greedy decoding, and training against them with the unlikelihood loss makes them less likely."""
import argparse

import torch

from training.train_transformer import BOS, EOS, build_model, collate, frequent_replies, unlikelihood_loss

VOCAB = 40


def tiny_model():
    args = argparse.Namespace(d_model=32, layers=1, heads=2, dropout=0.0, seed=0)
    return build_model(VOCAB, args)


def reply_nll(model, pairs) -> float:
    model.eval()
    batch = collate(pairs)
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits  # (B, T, V)
    model.train()
    return float(torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100))


def test_frequent_replies_are_the_models_own_greedy_replies_above_the_share():
    model = tiny_model()
    prompts = [[BOS, 4 + i % 30, 5 + i % 7, EOS] for i in range(60)]
    negatives, counts = frequent_replies(model, prompts, share=0.2, max_len=8)
    assert sum(counts.values()) == len(prompts)
    frequent = {reply for reply, n in counts.items() if n >= 0.2 * len(prompts)}
    assert len(negatives) == sum(counts[r] for r in frequent)
    for prompt, reply in negatives:
        assert prompt in prompts and tuple(reply) in frequent
        assert reply[0] == BOS and reply[-1] == EOS and len(reply) <= 8
    # an untrained model says much the same to everything: one reply dominates
    assert counts.most_common(1)[0][1] >= 0.2 * len(prompts) and negatives
    assert not frequent_replies(model, prompts, share=1.01, max_len=8)[0]


def test_unlikelihood_steps_make_the_penalised_reply_less_likely_and_the_loss_bounded():
    torch.manual_seed(0)
    model = tiny_model()
    pairs = [([BOS, 4 + i, 9, EOS], [BOS, 7, 8, EOS]) for i in range(8)]  # one "safe reply" to 8 messages
    before = reply_nll(model, pairs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = unlikelihood_loss(model, collate(pairs))
        losses.append(float(loss))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert reply_nll(model, pairs) > before + 1.0  # the reply's NLL rose: it became less likely
    assert losses[-1] < losses[0] and all(0 <= value < 20 for value in losses)
