"""Sentence VAE (Bowman et al. 2016): a GRU encoder maps a sentence to a Gaussian posterior over a
latent z; a GRU decoder generates the sentence from z alone.

    h_enc        = GRU_enc(emb(x))                         final state
    μ, log σ²    = W_μ h_enc, W_σ h_enc                    posterior q(z|x) = N(μ, σ²)
    z            = μ + σ ⊙ ε,  ε ~ N(0, I)                 reparameterisation (training)
    s_0          = tanh(W_z z)                            z enters only the decoder's first state
    s_t          = GRU_dec(emb(y_{t-1}), s_{t-1});  P(y_t) = softmax(W_o s_t)
    loss         = −log p(x|z) + w_t · KL(q(z|x) ‖ N(0, I))

Decoding uses z = μ (the posterior mean) unless a latent is given: :meth:`encode_latent` starts the
generic search from any z (a map point, a homotopy point, a prior sample). Per-run signals in the
trace: ``latent_mean``, ``latent_logvar`` (Z,) and ``z`` (Z,) the latent decoded from.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..base import VocabModel
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput
from ..text import tokenize
from ..vocab import Vocab


@dataclass
class VAEConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    vocab_size: int
    emb_dim: int = 128
    hidden_dim: int = 256
    latent_dim: int = 16
    max_source_len: int = 40
    lowercase: bool = True


@dataclass
class VAEState:
    """Decoder state of B hypotheses."""

    h: torch.Tensor  # (B, H)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row, summed over latent dimensions: (B, Z) -> (B,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def word_dropout(ids: torch.Tensor, rate: float, unk_id: int, keep: torch.Tensor,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Replace each decoder input id with UNK with probability ``rate``, except where ``keep`` (B, T)."""
    if rate <= 0:
        return ids
    drop = torch.rand(ids.shape, generator=generator) < rate
    return ids.masked_fill(drop & ~keep, unk_id)


class SentenceVAE(VocabModel):
    """GRU sentence VAE; the latent is a per-run signal of the trace."""

    model_type = "sentence_vae"
    config_class = VAEConfig
    features = ModelFeatures(architecture="sentence VAE", input_kind="text",
                             input_hint="Type a short English chat sentence (3-25 words).",
                             task="sentence → latent z → sentence")

    def __init__(self, config: VAEConfig, vocab: Vocab, name: str = "vae"):
        super().__init__(config, vocab, name)
        E, H, Z = config.emb_dim, config.hidden_dim, config.latent_dim
        self.encoder = nn.GRU(E, H, batch_first=True)
        self.to_mean = nn.Linear(H, Z)
        self.to_logvar = nn.Linear(H, Z)
        self.latent_to_hidden = nn.Linear(Z, H)
        self.decoder = nn.GRUCell(E, H)
        self.out = nn.Linear(H, config.vocab_size)

    @property
    def max_source_len(self) -> int:
        return self.config.max_source_len

    # -- stepper protocol -------------------------------------------------------------------
    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """Vocabulary id of a token (None when it is not in the vocabulary)."""
        return self.vocab.stoi.get(token)

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Posterior of one sentence; decoding starts from its mean (ValueError if it has no tokens)."""
        tokens = tokenize(text, self.config.lowercase)
        if not tokens:
            raise ValueError("the input has no tokens")
        truncated = len(tokens) > self.max_source_len
        tokens = tokens[: self.max_source_len]
        ids = torch.tensor([[self.vocab.id(t) for t in tokens]])  # (1, S)
        mean, logvar = self.posterior(ids, torch.ones_like(ids, dtype=torch.bool))
        encoded = self.encode_latent(mean[0])
        encoded.extra.update(latent_mean=mean[0].numpy(), latent_logvar=logvar[0].numpy())
        return replace(encoded, source_tokens=tokens, source_ids=ids[0], truncated=truncated)

    @torch.no_grad()
    def encode_latent(self, z: torch.Tensor) -> Encoded:
        """Start decoding from a latent ``z`` (Z,) with no source sentence."""
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32).reshape(1, -1)  # (1, Z)
        if z.size(1) != self.config.latent_dim:
            raise ValueError(f"a latent needs {self.config.latent_dim} values, got {z.size(1)}")
        state = VAEState(torch.tanh(self.latent_to_hidden(z)))
        return Encoded([], torch.zeros(0, dtype=torch.long), [], state, extra={"z": z[0].numpy()})

    @torch.no_grad()
    def step(self, state: VAEState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One decoder step for B hypotheses (prev_ids (B,))."""
        log_probs, h = self.decode_step(state.h, prev_ids)
        return StepOutput(log_probs, VAEState(h))

    def reorder(self, state: VAEState, index: torch.Tensor) -> VAEState:
        """Keep hypotheses ``index`` (B',)."""
        return VAEState(state.h[index])

    # -- shared by training and decoding ------------------------------------------------------
    def posterior(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance (B, Z) of a padded batch of ids (B, S)."""
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), mask.sum(1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.encoder(packed)  # (1, B, H)
        return self.to_mean(h[0]), self.to_logvar(h[0])

    def decode_step(self, h: torch.Tensor, prev_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log_probs (B, V), new hidden (B, H)) from hidden (B, H) and previous ids (B,)."""
        h = self.decoder(self.embedding(prev_ids), h)  # (B, H)
        return torch.log_softmax(self.out(h), -1), h

    def forward(self, src, src_mask, dec_in, target, target_mask, kl_weight: float = 1.0,
                dropout_rate: float = 0.0) -> dict:
        """Losses for a batch: ``loss`` (per sentence, KL weighted), ``nll`` (reconstruction, per
        sentence), ``kl`` (per sentence), ``tokens`` (per sentence). src (B, S); dec_in/target (B, T)."""
        mean, logvar = self.posterior(src, src_mask)  # (B, Z)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        h = torch.tanh(self.latent_to_hidden(z))  # (B, H)
        inputs = word_dropout(dec_in, dropout_rate, self.vocab.unk_id, dec_in == self.vocab.bos_id)
        nll = []
        for t in range(dec_in.size(1)):
            log_probs, h = self.decode_step(h, inputs[:, t])
            nll.append(-log_probs.gather(1, target[:, t : t + 1]).squeeze(1))  # (B,)
        nll_sentence = (torch.stack(nll, 1) * target_mask.float()).sum(1)  # (B,)
        kl = gaussian_kl(mean, logvar)  # (B,)
        return {"loss": (nll_sentence + kl_weight * kl).mean(), "nll": nll_sentence.mean(), "kl": kl.mean(),
                "tokens": target_mask.float().sum(1).mean()}
