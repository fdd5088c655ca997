"""Sentence VAE (Bowman et al. 2016): a GRU encoder maps a sentence to a Gaussian posterior over a
latent z; a GRU decoder generates the sentence from z alone.

    h_enc        = GRU_enc(emb(x))                         final state
    μ, log σ²    = W_μ h_enc, W_σ h_enc                    posterior q(z|x) = N(μ, σ²)
    z            = μ + σ ⊙ ε,  ε ~ N(0, I)                 reparameterisation (training)
    s_0          = tanh(W_z z)                            z enters only the decoder's first state
    s_t          = GRU_dec(emb(y_{t-1}), s_{t-1});  P(y_t) = softmax(W_o s_t)
    loss         = −log p(x|z) + w_t · KL(q(z|x) ‖ N(0, I))

Decoding uses z = μ (the posterior mean) unless a latent is given: :meth:`encode_latent` starts the
generic search from any z. Input: a sentence; a second line asks for a homotopy (Bowman et al.'s
Table 8): ``HOMOTOPY_POINTS`` evenly spaced latents from the first sentence's mean to the second's,
each decoded greedily; a line ``seed N`` picks the prior samples (``PRIOR_SAMPLES`` z ~ N(0, I)).

Per-run signals in the trace: ``latent_mean``, ``latent_logvar``, ``z`` (Z,), ``kl_per_dim`` (Z,),
``active_units`` (Z,; 1 where the test set's posterior means vary, from the checkpoint); with a
latent map in the checkpoint (``training.evaluate_vae`` fits a PCA on training sentences):
``map_xy`` (N, 2), ``map_text`` (N,), ``typed_xy`` (2,), ``typed_spread`` (2,) (σ along each axis),
``homotopy_xy`` (K, 2); and the companion outputs ``homotopy`` and ``prior_samples`` (texts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
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
    map_sentences: list[str] = field(default_factory=list)  # training sentences on the latent map


HOMOTOPY_POINTS, PRIOR_SAMPLES = 7, 5
_SEED_LINE = re.compile(r"^\s*seed\s+(\d{1,9})\s*$", re.IGNORECASE)


@dataclass
class VAEState:
    """Decoder state of B hypotheses."""

    h: torch.Tensor  # (B, H)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row, summed over latent dimensions: (B, Z) -> (B,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterise(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample of N(μ, σ²) that gradients flow through. (B, Z)"""
    return mean + torch.randn_like(mean) * (0.5 * logvar).exp()


def word_dropout(ids: torch.Tensor, rate: float, unk_id: int, keep: torch.Tensor,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Replace each decoder input id with UNK with probability ``rate``, except where ``keep`` (B, T)."""
    if rate <= 0:
        return ids
    drop = torch.rand(ids.shape, generator=generator) < rate
    return ids.masked_fill(drop & ~keep, unk_id)


def _host(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a numpy array on the host (from any device)."""
    return tensor.detach().cpu().numpy()


class SentenceVAE(VocabModel):
    """GRU sentence VAE; the latent is a per-run signal of the trace."""

    model_type = "sentence_vae"
    config_class = VAEConfig
    features = ModelFeatures(soft_inputs=True, architecture="sentence VAE", input_kind="text",
                             input_hint="A short English chat sentence; a second line for a homotopy to it; "
                                        "a line 'seed N' for other prior samples",
                             task="sentence → latent z → sentence",
                             settings=(("ban_unk", True),))  # sentences far from chat would otherwise end in <unk>

    def __init__(self, config: VAEConfig, vocab: Vocab, name: str = "vae"):
        super().__init__(config, vocab, name)
        E, H, Z = config.emb_dim, config.hidden_dim, config.latent_dim
        self.encoder = nn.GRU(E, H, batch_first=True)
        self.to_mean = nn.Linear(H, Z)
        self.to_logvar = nn.Linear(H, Z)
        self.latent_to_hidden = nn.Linear(Z, H)
        self.decoder = nn.GRUCell(E, H)
        self.out = nn.Linear(H, config.vocab_size)
        N = len(config.map_sentences)
        self.register_buffer("map_points", torch.zeros(N, 2))  # (N, 2) PCA projection of their means
        self.register_buffer("pca_components", torch.zeros(2, Z))  # (2, Z)
        self.register_buffer("pca_center", torch.zeros(Z))  # (Z,)
        self.register_buffer("active_units", torch.zeros(Z))  # (Z,) 1 = active on the test set

    @property
    def max_source_len(self) -> int:
        return self.config.max_source_len

    # -- stepper protocol -------------------------------------------------------------------
    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        """Vocabulary id of a token (None when it is not in the vocabulary)."""
        return self.vocab.stoi.get(token)

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """The first line's posterior; decoding starts from its mean. A second line adds a homotopy
        to its mean; a ``seed N`` line picks the prior samples (ValueError if a sentence has no tokens)."""
        lines = [line for line in text.splitlines() if line.strip()]
        seeds = [int(m.group(1)) for m in map(_SEED_LINE.match, lines) if m]
        sentences = [line for line in lines if not _SEED_LINE.match(line)]
        if not sentences:
            raise ValueError("the input has no tokens")
        (tokens, truncated, ids), *others = [self._tokens(line) for line in sentences[:2]]
        mean, logvar = self.posterior(ids, torch.ones_like(ids, dtype=torch.bool))  # (1, Z)
        encoded = self.encode_latent(mean[0])
        std = (0.5 * logvar[0]).exp()  # (Z,)
        extra = {"latent_mean": _host(mean[0]), "latent_logvar": _host(logvar[0]),
                 "kl_per_dim": _host(0.5 * (mean[0] ** 2 + std ** 2 - 1 - logvar[0])),
                 "active_units": _host(self.active_units).copy()}
        generator = torch.Generator().manual_seed(seeds[0] if seeds else 0)  # on the host: same draws anywhere
        prior = torch.randn(PRIOR_SAMPLES, self.config.latent_dim, generator=generator, device="cpu").to(self.device)  # (P, Z)
        companions = {"prior_samples": [self.encode_latent(z) for z in prior]}
        if others:
            other_mean, _ = self.posterior(others[0][2], torch.ones_like(others[0][2], dtype=torch.bool))
            steps = torch.linspace(0, 1, HOMOTOPY_POINTS, device=self.device)[:, None]  # (K, 1)
            path = mean + steps * (other_mean - mean)  # (K, Z)
            companions["homotopy"] = [self.encode_latent(z) for z in path]
            extra["homotopy_t"] = _host(steps[:, 0])
            if len(self.config.map_sentences):
                extra["homotopy_xy"] = _host(self.project(path))
        if len(self.config.map_sentences):
            components = self.pca_components  # (2, Z)
            extra.update(map_xy=_host(self.map_points).copy(), map_text=list(self.config.map_sentences),
                         typed_xy=_host(self.project(mean)[0]),
                         typed_spread=_host((components.pow(2) @ std.pow(2)).sqrt()))
        encoded.extra.update(extra)
        return replace(encoded, source_tokens=tokens, source_ids=ids[0], truncated=truncated, companions=companions)

    def _tokens(self, line: str) -> tuple[list[str], bool, torch.Tensor]:
        """Tokens of one sentence (cut to ``max_source_len``), whether it was cut, ids (1, S)."""
        tokens = tokenize(line, self.config.lowercase)
        if not tokens:
            raise ValueError("each sentence needs at least one token")
        ids = torch.tensor([[self.vocab.id(t) for t in tokens[: self.max_source_len]]], device=self.device)
        return tokens[: self.max_source_len], len(tokens) > self.max_source_len, ids

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (K, Z) on the latent map's two PCA axes: (K, 2)."""
        return (latents - self.pca_center) @ self.pca_components.T

    @torch.no_grad()
    def encode_latent(self, z: torch.Tensor) -> Encoded:
        """Start decoding from a latent ``z`` (Z,) with no source sentence."""
        z = (z if isinstance(z, torch.Tensor) else torch.as_tensor(np.asarray(z)))
        z = z.to(self.device, torch.float32).reshape(1, -1)  # (1, Z)
        if z.size(1) != self.config.latent_dim:
            raise ValueError(f"a latent needs {self.config.latent_dim} values, got {z.size(1)}")
        state = VAEState(torch.tanh(self.latent_to_hidden(z)))
        return Encoded([], torch.zeros(0, dtype=torch.long, device=self.device), [], state, extra={"z": _host(z[0])})

    def step(self, state: VAEState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One decoder step for B hypotheses (prev_ids (B,))."""
        log_probs, h = self.decode_step(state.h, prev_ids, controls.input_distribution)
        return StepOutput(log_probs, VAEState(h))

    def reorder(self, state: VAEState, index: torch.Tensor) -> VAEState:
        """Keep hypotheses ``index`` (B',)."""
        return VAEState(state.h[index])

    # -- shared by training and decoding ------------------------------------------------------
    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> VAEState:
        """The decoder state from the posterior mean of B copies of the sentence, each token's
        embedding multiplied by ``scale`` (B, S); differentiable, for attribution."""
        ids = encoded.source_ids.unsqueeze(0).expand(scale.size(0), -1)  # (B, S)
        mean, _ = self.posterior(ids, torch.ones_like(ids, dtype=torch.bool), scale)  # (B, Z)
        return VAEState(torch.tanh(self.latent_to_hidden(mean)))

    def posterior(self, ids: torch.Tensor, mask: torch.Tensor,
                  scale: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance (B, Z) of a padded batch of ids (B, S); ``scale`` (B, S)
        multiplies each token's embedding."""
        embedded = self.embedding(ids) if scale is None else self.embedding(ids) * scale.unsqueeze(-1)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, mask.sum(1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.encoder(packed)  # (1, B, H)
        return self.to_mean(h[0]), self.to_logvar(h[0])

    def decode_step(self, h: torch.Tensor, prev_ids: torch.Tensor,
                    distribution: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log_probs (B, V), new hidden (B, H)) from hidden (B, H) and previous ids (B,) (or the
        distribution (B, V) read instead, see :meth:`embed_previous`)."""
        h = self.decoder(self.embed_previous(prev_ids, distribution), h)  # (B, H)
        return torch.log_softmax(self.out(h), -1), h

    def forward(self, src, src_mask, dec_in, target, target_mask, kl_weight: float = 1.0,
                dropout_rate: float = 0.0) -> dict:
        """Losses for a batch: ``loss`` (per sentence, KL weighted), ``nll`` (reconstruction, per
        sentence), ``kl`` (per sentence), ``tokens`` (per sentence). src (B, S); dec_in/target (B, T)."""
        mean, logvar = self.posterior(src, src_mask)  # (B, Z)
        z = reparameterise(mean, logvar) if self.training else mean
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
