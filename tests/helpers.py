"""Small models and a synthetic stepper shared by the engine tests."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Optional

import torch

from gen_models.models.pointer_generator import PointerGenerator
from gen_models.models.seq2seq import Seq2SeqAttention, Seq2SeqConfig
from gen_models.protocol import Encoded, ModelFeatures, StepControls, StepOutput
from gen_models.vocab import Vocab

WORDS = [f"w{i}" for i in range(30)]


def tiny_model(pointer: bool = True, coverage: bool = False, seed: int = 0, name: str = "tiny"):
    """A randomly initialised model over a 34-token vocabulary."""
    torch.manual_seed(seed)
    vocab = Vocab(WORDS)
    cls = PointerGenerator if pointer else Seq2SeqAttention
    return cls(Seq2SeqConfig(len(vocab), 12, 16, coverage=coverage, max_source_len=40), vocab, name).eval()


@dataclass
class SyntheticStepper:
    """A model-free stepper whose log-probs are a fixed random function of the prefix.

    Vocabulary: ids 0..vocab_size-1, with ``bos_id`` and ``eos_id`` among them. Used to check beam
    search against brute force without any network.
    """

    vocab_size: int = 4
    seed: int = 0
    name: str = "synthetic"
    bos_id: int = 0
    eos_id: int = 1
    unk_id: Optional[int] = None
    max_source_len: int = 10
    features: ModelFeatures = ModelFeatures()

    def encode(self, text, topics=None) -> Encoded:
        return Encoded(["x"], torch.tensor([2]), [], [()], list(topics or []))

    def distribution(self, prefix: tuple) -> torch.Tensor:
        """log-probs (V,) after ``prefix``; BOS is never produced."""
        rng = random.Random(hash((self.seed,) + prefix))
        logits = torch.tensor([rng.gauss(0, 2) for _ in range(self.vocab_size)])
        logits[self.bos_id] = -math.inf
        return torch.log_softmax(logits, -1)

    def step(self, state, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        prefixes = [p + (int(t),) if p or int(t) != self.bos_id else () for p, t in zip(state, prev_ids)]
        log_probs = torch.stack([self.distribution(p) for p in prefixes])  # (B, V)
        return StepOutput(log_probs, prefixes)

    def reorder(self, state, index):
        return [state[i] for i in index.tolist()]

    def id_to_token(self, token_id, oov_words):
        return f"t{token_id}"

    def decode_text(self, token_ids, oov_words):
        return " ".join(self.id_to_token(i, oov_words) for i in token_ids)

    def reference_ids(self, text, oov_words):
        return [int(t[1:]) for t in text.split()]

    def sequence_logprob(self, seq: tuple) -> float:
        """Total log-probability of ``seq`` (ids after BOS)."""
        return sum(float(self.distribution(seq[:i])[tok]) for i, tok in enumerate(seq))
