"""MMI decoding (Li et al. 2016): the scoring arithmetic against hand computations, and the two
rules inside the generic beam search with synthetic models (no trained weights)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from gen_models import mmi
from gen_models.decoding import DecodeSettings, generate
from gen_models.mmi import ReplyLM, ReplyLMConfig
from gen_models.vocab import Vocab
from tests.helpers import WORDS, SyntheticStepper, tiny_model


def test_antilm_scores_by_hand():
    totals = torch.tensor([[-1.0, -2.0, -4.0], [-3.0, -0.5, -1.5]])  # log p(T|S) of each extension
    lm_prefix = torch.tensor([-3.0, -1.0])  # LM log-prob already summed over each hypothesis
    lm_step = torch.tensor([[-0.5, 0.0, -6.0], [-2.0, -0.25, 0.0]])  # LM log-prob of each next token
    got = mmi.antilm_scores(totals, lm_prefix, lm_step, lam=0.5)
    # -1 - 0.5(-3 - 0.5) = 0.75; -2 - 0.5(-3) = -0.5; -4 - 0.5(-9) = 0.5
    # -3 - 0.5(-1 - 2) = -1.5; -0.5 - 0.5(-1.25) = 0.125; -1.5 - 0.5(-1) = -1.0
    assert got.flatten().tolist() == pytest.approx([0.75, -0.5, 0.5, -1.5, 0.125, -1.0])
    assert torch.equal(mmi.antilm_scores(totals, lm_prefix, lm_step, lam=0.0), totals)


def test_bidi_score_by_hand():
    assert mmi.bidi_score(-2.0, -10.0, 0.5) == pytest.approx(-7.0)
    assert mmi.bidi_score(-2.0, -10.0, 0.0) == -2.0


@dataclass
class TableLM:
    """A language model over the synthetic stepper's tokens t0..t{V-1} with fixed random tables."""

    vocab_size: int = 5
    seed: int = 3
    bos_id: int = 0

    def __post_init__(self):
        self.vocab = Vocab([f"t{i}" for i in range(self.vocab_size)])  # ids 4.. after the specials
        self.calls = 0

    def table(self, prev: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100 + prev)
        return torch.log_softmax(2 * torch.randn(len(self.vocab), generator=g), -1)

    def step(self, state, prev):
        self.calls += 1
        rows = torch.stack([self.table(int(p)) for p in prev])  # (B, V_lm): a bigram LM
        h = torch.zeros(1, len(prev), 1)
        return rows, (h, h)

    def logprob(self, prev_lm: int, token_lm: int) -> float:
        return float(self.table(prev_lm)[token_lm])


def lm_penalty_by_hand(lm: TableLM, stepper: SyntheticStepper, tokens: list[int], gamma: int) -> float:
    """Σ over the first γ tokens (the end token excluded) of log p_LM(t_k | t_{k-1})."""
    to_lm = lambda t: lm.vocab.id(f"t{t}")  # noqa: E731
    total, prev = 0.0, lm.bos_id
    for k, tok in enumerate(tokens[:gamma]):
        if tok != stepper.eos_id:
            total += lm.logprob(prev, to_lm(tok))
        prev = to_lm(tok)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_antilm_in_beam_search_matches_a_hand_computation(seed):
    stepper = SyntheticStepper(vocab_size=5, seed=seed, name=f"synthetic-{seed}")
    lm = TableLM(seed=seed)
    mmi.register(stepper.name, lm=lm)
    settings = DecodeSettings(beam_size=3, max_len=5, mmi="antilm", mmi_lambda=0.7, mmi_gamma=3)
    trace = generate(stepper, "x", settings)
    nodes = {n.id: n for n in trace.beam}
    for node in trace.beam:
        if node.parent is None or node.status == "pruned":
            continue
        tokens = [n.token_id for n in trace.path(node.id)]
        expected = nodes[node.id].score - 0.7 * lm_penalty_by_hand(lm, stepper, tokens, 3)
        assert node.extra["score_before_mmi"] == pytest.approx(node.score, abs=1e-5)
        assert node.extra["score_after_mmi"] == pytest.approx(expected, abs=1e-4)
        assert node.adjusted_score == pytest.approx(expected, abs=1e-4)  # no length penalty: ranked by it
        assert node.score == pytest.approx(nodes[node.parent].score + node.logprob, abs=1e-4)
    chosen = nodes[trace.chosen_path()[-1]]
    finished = [n for n in trace.beam if n.status in ("finished", "chosen")]
    assert chosen.adjusted_score == max(n.adjusted_score for n in finished)


def test_antilm_with_lambda_zero_is_plain_beam_search():
    for seed in range(5):
        stepper = SyntheticStepper(vocab_size=5, seed=seed, name=f"synthetic-zero-{seed}")
        mmi.register(stepper.name, lm=TableLM(seed=seed))
        plain = generate(stepper, "x", DecodeSettings(beam_size=3, max_len=5))
        zero = generate(stepper, "x", DecodeSettings(beam_size=3, max_len=5, mmi="antilm", mmi_lambda=0.0))
        assert zero.output_ids() == plain.output_ids()


class PreferringReverse:
    """A reverse model p(S|T) that gives the reply ``liked`` log-prob 0 and every other reply -50."""

    def __init__(self, liked: str):
        self.liked = liked

    def encode(self, reply, topics=None):
        if not reply:
            raise ValueError("the input has no tokens")
        return reply

    def reference_ids(self, query, oov_words=None):
        return [0]

    bos_id = eos_id = 0


def test_bidi_reranks_the_finished_beam(monkeypatch):
    stepper = SyntheticStepper(vocab_size=6, seed=11, name="synthetic-bidi")
    plain = generate(stepper, "x", DecodeSettings(beam_size=4, max_len=4))
    finished = [n for n in plain.beam if n.status in ("finished", "chosen")]
    assert len(finished) >= 2
    worst = min(finished, key=lambda n: n.adjusted_score)
    words = [n.token_id for n in plain.path(worst.id)]
    liked = stepper.decode_text([t for t in words if t != stepper.eos_id], [])
    reverse = PreferringReverse(liked)
    monkeypatch.setattr(mmi.MMIRule, "reverse_logprob",
                        lambda self, reply: 0.0 if reply == liked else -50.0)
    mmi.register(stepper.name, reverse=reverse)
    trace = generate(stepper, "x", DecodeSettings(beam_size=4, max_len=4, mmi="bidi", mmi_lambda=0.5))
    assert trace.output_text == liked
    for node in trace.beam:
        if "reverse_logprob" in node.extra:
            assert node.extra["score_after_mmi"] == pytest.approx(
                node.extra["score_before_mmi"] + 0.5 * node.extra["reverse_logprob"])
            assert node.adjusted_score == node.extra["score_after_mmi"]


def test_bidi_reverse_logprob_is_the_teacher_forced_query():
    """log p(S|T) from a real (tiny, random) seq2seq equals the sum of its step log-probs on the query."""
    reverse = tiny_model(pointer=False, seed=2, name="tiny-reverse")
    rule = mmi.MMIRule("bidi", 0.5, reverse=reverse, query="w1 w2 w3")
    encoded = reverse.encode("w4 w5")
    state, prev, total = encoded.state, torch.tensor([reverse.bos_id]), 0.0
    from gen_models.protocol import StepControls

    with torch.no_grad():
        for step, token in enumerate([reverse.vocab.id(w) for w in ("w1", "w2", "w3")] + [reverse.eos_id]):
            out = reverse.step(state, prev, StepControls(step=step))
            total += float(out.log_probs[0, token])
            state, prev = out.state, torch.tensor([token])
    assert rule.reverse_logprob("w4 w5") == pytest.approx(total, abs=1e-5)
    assert rule.reverse_logprob("") == -math.inf


def test_reply_lm_round_trip_and_cache(tmp_path):
    torch.manual_seed(0)
    lm = ReplyLM(ReplyLMConfig(len(Vocab(WORDS)), 8, 8), Vocab(WORDS)).eval()
    lm.save(tmp_path / "lm")
    back = ReplyLM.load(tmp_path / "lm")
    ids = torch.tensor([[Vocab.bos_id, 5, 6]])
    assert torch.allclose(lm(ids), back(ids), atol=1e-2)  # fp16 storage
    model = tiny_model(pointer=False)
    anti = mmi.AntiLM(back, mmi.token_map(model, [], back), model.eos_id, 0.5, 2)
    first = anti.step_logprobs([[]], 0)
    assert first.shape == (1, model.vocab_size) and float(first[0, model.eos_id]) == 0.0
    expected = back.step(None, torch.tensor([Vocab.bos_id]))[0][0, model.vocab.id("w3")]
    assert float(first[0, model.vocab.id("w3")]) == pytest.approx(float(expected), abs=1e-6)
    assert torch.equal(anti.step_logprobs([[5], [6]], 2), torch.zeros(2, model.vocab_size))  # past γ


def test_settings_refuse_mmi_outside_beam_search_and_models_without_companions():
    with pytest.raises(ValueError, match="beam search rule"):
        DecodeSettings(strategy="greedy", mmi="antilm").validate()
    with pytest.raises(ValueError, match="mmi must be one of"):
        DecodeSettings(mmi="both").validate()
    with pytest.raises(ValueError, match="reply language model"):
        generate(tiny_model(pointer=False, name="tiny-no-companions"), "w1 w2", DecodeSettings(mmi="antilm"))


def test_tokens_the_lm_never_predicts_get_no_bonus():
    """A start token the model can emit (a Transformer's <s>) maps to the LM's <s>, which the LM gives
    almost no mass: without the rule it would win every early step."""
    model = tiny_model(pointer=False)
    torch.manual_seed(1)
    lm = ReplyLM(ReplyLMConfig(len(Vocab(WORDS)), 8, 8), Vocab(WORDS)).eval()
    anti = mmi.AntiLM(lm, mmi.token_map(model, [], lm), model.eos_id, 0.5, 3)
    row = anti.step_logprobs([[]], 0)[0]
    assert float(row[model.bos_id]) == 0.0 and float(row[model.vocab.pad_id]) == 0.0 and float(row[model.eos_id]) == 0.0
    assert float(row[model.vocab.id("w1")]) < 0.0
