"""Neural Turing machine on the copy task (Graves et al. 2014), one read head and one write head.

Per step an LSTM controller reads the input and the previous read vector; each head emits from the
controller's output h a key k, strength β, gate g, shift distribution s (shifts −1, 0, +1) and
sharpening γ, and the write head an erase vector e and an add vector a:

    w_c(i) = softmax_i(β · cos(k, M(i)))                content addressing
    w_g    = g w_c + (1 − g) w_{t−1}                     interpolation
    w̃(i)   = Σ_j w_g(j) s(i − j)                         circular shift
    w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ                         sharpening
    r      = Σ_i w_r(i) M(i)                              read (before this step's write)
    M(i)  ← M(i) (1 − w_w(i) e) + w_w(i) a                 erase, then add
    y      = W_o [h, r]                                   8 logits, one per output bit

Memory starts at a small constant (Collier & Beel 2018), both heads' weightings start on location 0
and the first read vector is learned. The copy protocol (symbols, end symbol) is
:class:`gen_models.copy_task.CopyModel`. A knocked-out location is zeroed before each output step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..copy_task import BITS, COPY_HINT, INPUT_DIM, MAX_COPY_LEN, CopyModel
from ..protocol import ModelFeatures, StepControls

SHIFTS = (-1, 0, 1)
MEMORY_INIT = 1e-6


@dataclass
class NTMConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    controller_dim: int = 100
    memory_size: int = 128  # N locations
    memory_width: int = 20  # M
    max_len: int = MAX_COPY_LEN


@dataclass
class NTMState:
    """The machine after some steps, for B hypotheses."""

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    memory: torch.Tensor  # (B, N, M)
    read: torch.Tensor  # (B, M) last read vector
    w_read: torch.Tensor  # (B, N)
    w_write: torch.Tensor  # (B, N)
    t: int = 0  # output steps taken
    n: int = 0  # vectors to write


def address(memory: torch.Tensor, w_prev: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """A head's weighting (B, N) from its raw parameters (B, M + 6): key, β, g, shift logits, γ."""
    M = memory.size(-1)
    key, beta, gate = params[:, :M], F.softplus(params[:, M]), torch.sigmoid(params[:, M + 1])
    shift = torch.softmax(params[:, M + 2 : M + 5], -1)  # (B, 3)
    gamma = 1 + F.softplus(params[:, M + 5])
    similarity = F.cosine_similarity(memory, key.unsqueeze(1), dim=-1, eps=1e-8)  # (B, N)
    w = torch.softmax(beta.unsqueeze(1) * similarity, -1)
    w = gate.unsqueeze(1) * w + (1 - gate.unsqueeze(1)) * w_prev
    w = sum(shift[:, k : k + 1] * torch.roll(w, s, dims=-1) for k, s in enumerate(SHIFTS))
    w = (w + 1e-12) ** gamma.unsqueeze(1)
    return w / w.sum(-1, keepdim=True)


class NTM(CopyModel):
    """LSTM-controlled neural Turing machine with one read and one write head."""

    model_type = "ntm"
    config_class = NTMConfig
    features = ModelFeatures(input_kind="bits", architecture="neural Turing machine", input_hint=COPY_HINT,
                             task="copy a sequence of 8-bit vectors through an external memory",
                             settings=(("strategy", "greedy"), ("max_len", MAX_COPY_LEN + 1)), memory="memory location")

    def __init__(self, config: NTMConfig, vocab=None, name: str = "ntm-copy"):
        super().__init__()
        self.config, self.name = config, name
        H, M = config.controller_dim, config.memory_width
        self.controller = nn.LSTMCell(INPUT_DIM + M, H)
        self.read_head = nn.Linear(H, M + 6)
        self.write_head = nn.Linear(H, M + 6 + 2 * M)
        self.output = nn.Linear(H + M, BITS)
        self.read0 = nn.Parameter(torch.randn(M) * 0.01)

    def initial_state(self, B: int) -> NTMState:
        """The blank machine for B sequences."""
        N, M, H = self.config.memory_size, self.config.memory_width, self.config.controller_dim
        dev = self.read0.device
        w0 = torch.zeros(B, N, device=dev)
        w0[:, 0] = 1.0
        return NTMState(torch.zeros(B, H, device=dev), torch.zeros(B, H, device=dev),
                        torch.full((B, N, M), MEMORY_INIT, device=dev), self.read0.expand(B, -1), w0, w0)

    def cell(self, state: NTMState, x: torch.Tensor, knock_out: list[int] = ()) -> tuple[torch.Tensor, NTMState, dict]:
        """One machine step on input x (B, 10): output logits (B, 8), the new state, the step's
        weightings, erase/add vectors and memory after the write."""
        M = self.config.memory_width
        memory = state.memory
        knock_out = [i for i in knock_out if i < memory.size(1)]
        if knock_out:
            keep = torch.ones(memory.size(1), 1, device=memory.device)
            keep[knock_out] = 0.0
            memory = memory * keep  # (B, N, M)
        h, c = self.controller(torch.cat([x, state.read], -1), (state.h, state.c))  # (B, H)
        w_read = address(memory, state.w_read, self.read_head(h))  # (B, N)
        read = torch.einsum("bn,bnm->bm", w_read, memory)  # (B, M)
        wp = self.write_head(h)
        w_write = address(memory, state.w_write, wp[:, : M + 6])  # (B, N)
        erase, add = torch.sigmoid(wp[:, M + 6 : 2 * M + 6]), torch.tanh(wp[:, 2 * M + 6 :])  # (B, M)
        memory = memory * (1 - w_write.unsqueeze(-1) * erase.unsqueeze(1)) + w_write.unsqueeze(-1) * add.unsqueeze(1)
        logits = self.output(torch.cat([h, read], -1))  # (B, 8)
        new = NTMState(h, c, memory, read, w_read, w_write, state.t, state.n)
        record = {"read_weighting": w_read, "write_weighting": w_write, "erase": erase, "add": add,
                  "memory": memory}
        return logits, new, record

    def read_input(self, x: torch.Tensor) -> tuple[NTMState, dict]:
        """Run the input phase on x (B, T+1, 10); per-step records stacked (B, T+1, …) without memory."""
        state = self.initial_state(x.size(0))
        records = []
        for t in range(x.size(1)):
            _, state, record = self.cell(state, x[:, t])
            records.append(record)
        stacked = {k: torch.stack([r[k] for r in records], 1) for k in ("read_weighting", "write_weighting",
                                                                      "erase", "add")}
        stacked["memory_after"] = state.memory
        state.n = x.size(1) - 1
        return state, stacked

    def output_step(self, state: NTMState, controls: StepControls) -> tuple[torch.Tensor, NTMState, dict]:
        """One output-phase step (zero input): logits (B, 8), new state, internals by name."""
        x = state.h.new_zeros(state.h.size(0), INPUT_DIM)
        return self.cell(state, x, controls.knock_out)
