"""Self-critical sequence training (Rennie et al. 2017) for the seq2seq family.

For each source the model samples a reply y^s from its own distribution and decodes a greedy one ŷ;
the sentence-level reward r (ROUGE-L F1 against the reference, rouge-score with the project's
tokenizer) is not differentiable, so REINFORCE is used with the greedy reward as the baseline:

    L_rl = −(r(y^s) − r(ŷ)) · Σ_t log p(y^s_t | y^s_<t, x)        (mean over the batch)

A sample that beats what the model would say greedily is made more likely, one that loses less
likely; with r(ŷ) as the baseline no value network is needed. Following Paulus et al. (2018) the
trainer mixes it with the word-level loss, L = γ·L_rl + (1 − γ)·L_mle (``--scst γ``), which keeps
the output readable (pure ROUGE optimisation drifts towards ungrammatical keyword lists).
"""
from __future__ import annotations

import torch

from training.metrics import rouge_l_f1

SKIP_KEYS = {"src_ext", "src_mask", "n_oov", "dec_in", "target_ext", "target_mask"}


def rollout(model, batch: dict, max_len: int, sample: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode the batch's sources: (ids (B, T) extended ids, log-probabilities (B, T) of the chosen
    ids, mask (B, T) true up to and including each output's end token). ``sample`` draws each token
    from the model's distribution, otherwise the most probable one is taken."""
    conditioning = {k: v for k, v in batch.items() if k not in SKIP_KEYS}
    state = model.start_state(batch["src_ext"], batch["src_mask"], batch["n_oov"], **conditioning)
    B = batch["src_ext"].size(0)
    prev = torch.full((B,), model.vocab.bos_id, dtype=torch.long)  # (B,)
    alive = torch.ones(B, dtype=torch.bool)  # (B,)
    ids, log_probs, masks = [], [], []
    for _ in range(max_len):
        step_log_probs, state, _ = model.decode_step(state, prev)  # (B, V_ext)
        step_log_probs = step_log_probs.index_fill(1, torch.tensor([model.vocab.unk_id]), float("-inf"))
        chosen = (torch.multinomial(step_log_probs.detach().exp(), 1).squeeze(1) if sample
                  else step_log_probs.argmax(-1))  # (B,)
        ids.append(chosen)
        log_probs.append(step_log_probs.gather(1, chosen.unsqueeze(1)).squeeze(1))  # (B,)
        masks.append(alive)
        alive = alive & (chosen != model.vocab.eos_id)
        prev = chosen
        if not alive.any():
            break
    return torch.stack(ids, 1), torch.stack(log_probs, 1), torch.stack(masks, 1)


def words(model, ids: torch.Tensor, mask: torch.Tensor, oov_lists: list[list[str]]) -> list[list[str]]:
    """The output tokens of each row of ``ids`` (B, T), copied OOV ids read from the row's OOV list,
    the end token dropped."""
    result = []
    for row, keep, oovs in zip(ids.tolist(), mask.tolist(), oov_lists):
        tokens = []
        for i, kept in zip(row, keep):
            if not kept or i == model.vocab.eos_id:
                break
            tokens.append(model.vocab.itos[i] if i < model.vocab_size else oovs[i - model.vocab_size])
        result.append(tokens)
    return result


def rewards(references: list[list[str]], outputs: list[list[str]]) -> torch.Tensor:
    """ROUGE-L F1 (B,) of each output against its reference."""
    return torch.tensor([rouge_l_f1(ref, out) for ref, out in zip(references, outputs)], dtype=torch.float32)


def scst_loss(model, batch: dict, examples: list, max_len: int) -> dict:
    """The self-critical loss of a training batch (``examples``: the batch's :class:`Example` rows):
    ``rl`` (scalar, differentiable), and the mean sampled and greedy rewards for the curves."""
    oov_lists = [model.source_ids(ex.src)[1] for ex in examples]
    references = [ex.tgt for ex in examples]
    with torch.no_grad():
        greedy_ids, _, greedy_mask = rollout(model, batch, max_len, sample=False)
    sample_ids, sample_log_probs, sample_mask = rollout(model, batch, max_len, sample=True)
    r_greedy = rewards(references, words(model, greedy_ids, greedy_mask, oov_lists))  # (B,)
    r_sample = rewards(references, words(model, sample_ids, sample_mask, oov_lists))  # (B,)
    sequence_log_prob = (sample_log_probs * sample_mask).sum(1)  # (B,)
    rl = -((r_sample - r_greedy) * sequence_log_prob).mean()
    return {"rl": rl, "reward_sample": float(r_sample.mean()), "reward_greedy": float(r_greedy.mean())}


@torch.no_grad()
def greedy_rouge_l(model, examples: list, batch_size: int, max_len: int, make_batch) -> float:
    """Mean ROUGE-L F1 of greedy decodes of ``examples`` (the selection score of an SCST run)."""
    model.eval()
    scores = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        ids, _, mask = rollout(model, make_batch(model, chunk), max_len, sample=False)
        outputs = words(model, ids, mask, [model.source_ids(ex.src)[1] for ex in chunk])
        scores += rewards([ex.tgt for ex in chunk], outputs).tolist()
    model.train()
    return sum(scores) / len(scores)
