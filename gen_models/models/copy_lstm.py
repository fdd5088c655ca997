"""The LSTM baseline of the copy task (Graves et al. 2014, section 4.1): a stacked LSTM reads the
vectors and the delimiter, then writes the sequence back from its hidden state alone, with no
external memory. Same symbols and protocol as the NTM (:class:`gen_models.copy_task.CopyModel`);
``knock_out`` has nothing to act on here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..copy_task import BITS, COPY_HINT, INPUT_DIM, MAX_COPY_LEN, CopyModel, copy_inputs
from ..protocol import ModelFeatures, StepControls


@dataclass
class CopyLSTMConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    hidden_dim: int = 256
    layers: int = 3
    max_len: int = MAX_COPY_LEN


@dataclass
class CopyLSTMState:
    """Hidden and cell states of the stack for B hypotheses."""

    h: torch.Tensor  # (B, L, H)
    c: torch.Tensor  # (B, L, H)
    t: int = 0
    n: int = 0


class CopyLSTM(CopyModel):
    """Stacked LSTM copy baseline."""

    model_type = "copy_lstm"
    config_class = CopyLSTMConfig
    features = ModelFeatures(input_kind="bits", architecture="LSTM (no external memory)", input_hint=COPY_HINT,
                             task="copy a sequence of 8-bit vectors from the hidden state alone",
                             settings=(("strategy", "greedy"), ("max_len", MAX_COPY_LEN + 1)))

    def __init__(self, config: CopyLSTMConfig, vocab=None, name: str = "copy-lstm"):
        super().__init__()
        self.config, self.name = config, name
        self.lstm = nn.LSTM(INPUT_DIM, config.hidden_dim, config.layers, batch_first=True)
        self.output = nn.Linear(config.hidden_dim, BITS)

    def read_input(self, x: torch.Tensor) -> tuple[CopyLSTMState, dict]:
        """Run the input phase on x (B, T+1, 10); no per-step records."""
        _, (h, c) = self.lstm(x)  # (L, B, H)
        return CopyLSTMState(h.transpose(0, 1), c.transpose(0, 1), 0, x.size(1) - 1), {}

    def output_step(self, state: CopyLSTMState, controls: StepControls) -> tuple[torch.Tensor, CopyLSTMState, dict]:
        """One output step (zero input): logits (B, 8) and the new state."""
        x = state.h.new_zeros(state.h.size(0), 1, INPUT_DIM)
        out, (h, c) = self.lstm(x, (state.h.transpose(0, 1).contiguous(), state.c.transpose(0, 1).contiguous()))
        return self.output(out[:, 0]), CopyLSTMState(h.transpose(0, 1), c.transpose(0, 1), state.t, state.n), {}

    def copy_logits(self, bits: torch.Tensor, knock_out: tuple[int, ...] = ()) -> torch.Tensor:
        """Output logits (B, T, 8) in one pass over input and output phases (zero inputs after the
        delimiter), as training scores them."""
        x = copy_inputs(bits)  # (B, T+1, 10)
        out, _ = self.lstm(torch.cat([x, x.new_zeros(x.size(0), bits.size(1), INPUT_DIM)], 1))
        return self.output(out[:, x.size(1):])  # (B, T, 8)
