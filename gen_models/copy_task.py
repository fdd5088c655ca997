"""The copy task of Graves et al. (2014) and the stepper protocol its models share.

Data: a sequence of random 8-bit vectors, then a delimiter; the model must then write the
sequence back with no further input. Input vectors have 10 channels (8 bits, the delimiter flag and
the repeat count, which is zero for copy); targets are the 8 bits. Repeat copy (the paper's second
task; data only, no shipped model) puts the number of repeats ÷ 10 on the delimiter step's last
channel and expects the sequence that many times, then an end marker on a ninth target channel.

Symbols: every output vector is one of the 2⁸ bit patterns, so an output step is a distribution
over 256 symbols whose log-probability is Σ over bits of log σ(±o_b) (the model's independent
per-bit Bernoullis, summed to one over the patterns). Token ids: 0 = ``<s>`` (never produced),
1 = ``</s>`` (forced after exactly as many vectors as the input has, impossible before), and
``2 + v`` = the pattern whose bits read as the binary number v ("10110010" → 2 + 178). Token
texts and the output text are 8-character bit strings joined by spaces.
"""
from __future__ import annotations

import random
import re
from dataclasses import asdict, replace
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .protocol import Encoded, StepControls, StepOutput

BITS, INPUT_DIM = 8, 10
BOS_ID, EOS_ID, FIRST_PATTERN = 0, 1, 2
VOCAB_SIZE = FIRST_PATTERN + 2**BITS
MAX_COPY_LEN, MAX_RANDOM_SEED = 120, 2**31 - 1
_RANDOM = re.compile(r"^\s*random\s+copy\s+(\d+)(?:\s+seed\s+(\d+))?\s*$", re.IGNORECASE)
COPY_HINT = f"8-bit vectors as '10110010 01100111 …' (1 to {MAX_COPY_LEN}), or 'random copy N [seed S]'"
PATTERNS = torch.tensor([[(v >> (BITS - 1 - b)) & 1 for b in range(BITS)] for v in range(2**BITS)],
                        dtype=torch.float32)  # (256, 8): row v = the bits of v, most significant first


def random_sequence(n: int, seed: int) -> np.ndarray:
    """``n`` random 8-bit vectors reproducible from ``seed``: (n, 8) of 0/1."""
    return np.random.default_rng(seed).integers(0, 2, (n, BITS)).astype(np.float32)


def parse_bits(text: str, max_len: int = MAX_COPY_LEN) -> np.ndarray:
    """Vectors (n, 8) from ``'10110010 01100111 …'`` or ``'random copy N [seed S]'``; ValueError
    naming the rule."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"no input: give {COPY_HINT}")
    match = _RANDOM.match(text)
    if match:
        n, seed = int(match.group(1)), int(match.group(2) or 0)
        if not 1 <= n <= max_len:
            raise ValueError(f"random copy N needs 1 <= N <= {max_len}, got {n}")
        if seed > MAX_RANDOM_SEED:
            raise ValueError(f"seed must be at most {MAX_RANDOM_SEED}, got {seed}")
        return random_sequence(n, seed)
    words = text.replace(",", " ").split()
    if len(words) > max_len:
        raise ValueError(f"too many vectors: {len(words)} (at most {max_len})")
    for index, word in enumerate(words, 1):
        if len(word) != BITS or set(word) - {"0", "1"}:
            raise ValueError(f"vector {index} ({word[:20]!r}) is not 8 bits of 0/1: give {COPY_HINT}")
    return np.array([[int(c) for c in w] for w in words], dtype=np.float32)


def bits_text(bits: np.ndarray) -> str:
    """Vectors (n, 8) as space-separated 8-character bit strings."""
    return " ".join("".join(str(int(b)) for b in row) for row in np.asarray(bits).round())


def copy_inputs(bits: torch.Tensor) -> torch.Tensor:
    """The input phase of a batch of sequences (B, T, 8): the vectors, then the delimiter: (B, T+1, 10)."""
    B, T, _ = bits.shape
    x = bits.new_zeros(B, T + 1, INPUT_DIM)
    x[:, :T, :BITS] = bits
    x[:, T, BITS] = 1.0  # the delimiter flag
    return x


def repeat_copy_batch(length: int, repeats: int, batch_size: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat-copy inputs (B, T+1, 10) and targets (B, T·repeats + 1, 9): the vectors ``repeats``
    times, then the end marker (channel 8)."""
    bits = copy_batch(length, batch_size, rng)  # (B, T, 8)
    x = copy_inputs(bits)
    x[:, length, BITS + 1] = repeats / 10
    target = bits.new_zeros(batch_size, length * repeats + 1, BITS + 1)
    target[:, :-1, :BITS] = bits.repeat(1, repeats, 1)
    target[:, -1, BITS] = 1.0
    return x, target


def copy_batch(length: int, batch_size: int, rng: random.Random) -> torch.Tensor:
    """``batch_size`` random sequences of ``length`` vectors drawn from ``rng``: (B, T, 8)."""
    gen = torch.Generator().manual_seed(rng.randrange(MAX_RANDOM_SEED))
    return torch.randint(0, 2, (batch_size, length, BITS), generator=gen).float()


def pattern_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probability of each of the 256 patterns under independent bits: logits (B, 8) → (B, 256)."""
    patterns = PATTERNS.to(logits.device)  # (256, 8)
    return nn.functional.logsigmoid(logits) @ patterns.T + nn.functional.logsigmoid(-logits) @ (1 - patterns).T


def bit_errors(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Wrong bits per sequence when each bit is thresholded at ½: logits/target (B, T, 8) → (B,)."""
    return ((logits > 0).float() != target).float().sum((1, 2))


class CopyModel(nn.Module):
    """The stepper protocol of a copy model: ``encode`` reads the input phase, ``step`` writes one
    output vector (the model is fed no input then, so the previous token is ignored). Subclasses
    provide ``read_input(x) -> (state, records)``, ``output_step(state, controls) -> (logits (B, 8),
    state, internals)`` and ``forward(bits)`` for training; the state is a dataclass of tensors with
    a leading B plus ``t`` (output steps taken) and ``n`` (vectors to write)."""

    config_class: type = object
    bos_id, eos_id, unk_id, vocab_size, vocab = BOS_ID, EOS_ID, None, VOCAB_SIZE, None

    @property
    def max_source_len(self) -> int:
        return self.config.max_len

    @property
    def device(self) -> torch.device:
        """Where the weights are (see :mod:`gen_models.device`)."""
        return next(self.parameters()).device

    def config_dict(self) -> dict:
        """Constructor arguments for config.json."""
        return asdict(self.config)

    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """``</s>`` or an 8-character bit string to its id (None otherwise)."""
        if token in ("</s>", "end"):
            return EOS_ID
        if len(token) == BITS and not set(token) - {"0", "1"}:
            return FIRST_PATTERN + int(token, 2)
        return None

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """``<s>``, ``</s>`` or the pattern's bit string."""
        return ("<s>", "</s>")[token_id] if token_id < FIRST_PATTERN else format(token_id - FIRST_PATTERN, "08b")

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference output as pattern ids; ValueError names a malformed vector."""
        return [self.token_to_id(word, oov_words) for word in bits_text(parse_bits(text)).split()]

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """The output vectors as space-separated bit strings."""
        return " ".join(self.id_to_token(i, oov_words) for i in token_ids if i >= FIRST_PATTERN)

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Parse the vectors and run the input phase (ValueError naming the rule if malformed)."""
        bits = parse_bits(text, self.config.max_len)
        tokens = bits_text(bits).split()
        ids = torch.tensor([self.token_to_id(t, []) for t in tokens], device=self.device)  # (n,)
        x = copy_inputs(torch.tensor(bits, device=self.device)[None])  # (1, n+1, 10)
        state, records = self.read_input(x)
        extra = {"target": " ".join(tokens), "input_bits": bits,
                 **{f"input_{k}": v[0].cpu().numpy() for k, v in records.items()}}
        if self.features.memory:
            extra["memory_size"] = self.config.memory_size
        return Encoded(tokens, ids, [], state, extra=extra)

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> Any:
        """The state after reading B copies of the input with vector i multiplied by ``scale`` (B, n)."""
        bits = torch.tensor(encoded.extra["input_bits"], device=scale.device)[None]  # (1, n, 8)
        x = copy_inputs(bits.expand(scale.size(0), -1, -1) * scale.unsqueeze(-1))  # (B, n+1, 10)
        return self.read_input(x)[0]

    def step(self, state: Any, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One output vector for B hypotheses as a distribution over the 256 patterns; the end symbol
        exactly when all n vectors have been written."""
        B = prev_ids.size(0)
        logits, new_state, internals = self.output_step(state, controls)  # (B, 8)
        log_probs = logits.new_full((B, VOCAB_SIZE), float("-inf"))  # (B, 258)
        if state.t < state.n:
            log_probs[:, FIRST_PATTERN:] = pattern_log_probs(logits)
        else:
            log_probs[:, EOS_ID] = 0.0
        internals["bit_probs"] = torch.sigmoid(logits)
        return StepOutput(log_probs, replace(new_state, t=state.t + 1), internals)

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        """Keep hypotheses ``index`` (B',) of every batched tensor in the state."""
        return replace(state, **{k: v[index] for k, v in vars(state).items() if isinstance(v, torch.Tensor)})

    def copy_logits(self, bits: torch.Tensor, knock_out: tuple[int, ...] = ()) -> torch.Tensor:
        """Output logits (B, T, 8) for input sequences (B, T, 8), free-running (what training scores)."""
        state, _ = self.read_input(copy_inputs(bits))
        controls = StepControls(knock_out=list(knock_out))
        logits = []
        for _ in range(bits.size(1)):
            out, state, _ = self.output_step(state, controls)
            logits.append(out)
        return torch.stack(logits, 1)

    def forward(self, bits: torch.Tensor) -> dict:
        """Binary cross-entropy per bit and bit errors per sequence for a batch (B, T, 8)."""
        logits = self.copy_logits(bits)  # (B, T, 8)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, bits)
        return {"loss": loss, "bit_errors": bit_errors(logits.detach(), bits)}
