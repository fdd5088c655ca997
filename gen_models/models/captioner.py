"""Show, attend and tell (Xu et al. 2015): a caption written word by word, attending to image regions.

    a_i   = CNN(image)_i,  i = 1..G²                 region vectors (row-major grid), D each
    h_0, c_0 = tanh(W_h mean_i a_i), tanh(W_c mean_i a_i)
    α_ti  = softmax_i(v · tanh(W_a a_i + U_a h_{t-1}))   soft attention over the regions
    β_t   = σ(w_β · h_{t-1})                         the gate: how much the image speaks at this word
    z_t   = β_t Σ_i α_ti a_i
    h_t, c_t = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))
    P(y_t) = softmax(W_o tanh(E y_{t-1} + L_h h_t + L_z z_t))    Xu et al.'s deep output

Training adds the doubly stochastic regulariser λ Σ_i (τ − Σ_t α_ti)² (τ = 1 as in the paper;
since Σ_i Σ_t α_ti = T is fixed, τ only shifts the penalty's constant), which asks every region to
receive about the same total attention over the caption and so discourages attending to the same
region twice. ``caption-attention`` is trained with λ > 0, ``caption-noreg`` with λ = 0.

The encoder is plain ``torch.nn`` convolutions (no torchvision) over the RGB image plus two
coordinate channels (CoordConv) so that the region vectors know where they are ("left of",
"above"). The source "tokens" are the G² regions, labelled ``rRcC``; a step's ``attention`` is over
them in row-major order; the trace's ``extra["image"]`` is the CANVAS × CANVAS picture the model
saw (small enough to keep). The input is ``'random scene seed S'`` (a generated scene, see
:mod:`gen_models.scenes`) or a picture: as text ``'image data:image/png;base64,…'``
(:func:`gen_models.scenes.image_data_url`; the app's upload and sketchpad and the CLI's ``--image``
write it), a PIL image or an (H, W, 3) uint8 array. Pictures are flattened on white, padded to a
square and resized to the canvas.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..base import VocabModel
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput
from ..scenes import (CANVAS, SCENE_HINT, VOCABULARY, image_to_array, is_image_text, parse_scene_seed, random_scene,
                      read_image_text)
from ..vocab import Vocab



@dataclass
class CaptionConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    vocab_size: int
    emb_dim: int = 64
    hidden_dim: int = 256
    attn_dim: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 128)
    grid: int = 8
    canvas: int = CANVAS
    kernels: tuple[int, ...] = (3, 3, 3, 3)  # per layer; 1 × 1 late layers keep each region local
    beta_gate: bool = True
    input_feeding: bool = True  # z_t enters the LSTM (Xu et al.); False: only the output sees it
    reg_lambda: float = 1.0  # the regulariser's weight it was trained with (0: caption-noreg)
    supervise: float = 0.0  # the attention-supervision weight μ it was trained with (0: Xu et al.'s soft attention)
    lowercase: bool = True


@dataclass
class CaptionState:
    """Decoder state of B hypotheses over one image."""

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    regions: torch.Tensor  # (B|1, L, D) region vectors a_i
    regions_proj: torch.Tensor  # (B|1, L, A) W_a a_i


def image_tensor(pixels: np.ndarray) -> torch.Tensor:
    """An (H, W, 3) uint8 image as the encoder's input: (3, H, W) floats in [-1, 1]."""
    return torch.from_numpy(np.array(pixels, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0


class Encoder(nn.Module):
    """Convolutions and max-pooling down to a G × G grid of D-dimensional region vectors."""

    def __init__(self, channels: tuple[int, ...], grid: int, canvas: int, kernels: tuple[int, ...] = (3, 3, 3, 3)):
        super().__init__()
        if len(kernels) != len(channels):
            raise ValueError(f"{len(kernels)} kernel sizes for {len(channels)} layers")
        layers, previous, side = [], 5, canvas
        for width, kernel in zip(channels, kernels):
            layers += [nn.Conv2d(previous, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU()]
            if side > grid:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            previous = width
        if side != grid:
            raise ValueError(f"a {canvas}px canvas with {len(channels)} layers gives a {side}-grid, not {grid}")
        self.net = nn.Sequential(*layers)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, canvas), torch.linspace(-1, 1, canvas), indexing="ij")
        self.register_buffer("coords", torch.stack([xs, ys])[None], persistent=False)  # (1, 2, H, W)

    def receptive_field(self) -> int:
        """Side in pixels of the input window one region vector sees (its cell is canvas / G)."""
        field, jump = 1, 1
        for layer in self.net:
            if isinstance(layer, nn.Conv2d):
                field += (layer.kernel_size[0] - 1) * jump
            elif isinstance(layer, nn.MaxPool2d):
                field += jump
                jump *= 2
        return field

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) → region vectors (B, G², D), row-major."""
        x = torch.cat([images, self.coords.expand(images.size(0), -1, -1, -1)], 1)  # (B, 5, H, W)
        return self.net(x).flatten(2).transpose(1, 2)  # (B, G², D)


class AttentionCaptioner(VocabModel):
    """CNN regions, LSTM decoder with soft attention and a β gate (Xu et al. 2015)."""

    model_type = "show_attend_tell"
    config_class = CaptionConfig
    features = ModelFeatures(input_kind="image", architecture="CNN encoder + attention LSTM decoder", soft_inputs=True,
                             input_hint=SCENE_HINT, task="picture → caption",
                             # greedy: beam 4 finds captions the model scores higher that merge or
                             # miscount objects (every claim true on 3–4-object scenes: 57.8% vs 98.5%; README)
                             settings=(("max_len", 30), ("strategy", "greedy")))

    def __init__(self, config: CaptionConfig, vocab: Vocab, name: str = "caption-attention"):
        config = replace(config, channels=tuple(config.channels), kernels=tuple(config.kernels))
        super().__init__(config, vocab, name)
        E, H, A, D = config.emb_dim, config.hidden_dim, config.attn_dim, config.channels[-1]
        self.encoder = Encoder(config.channels, config.grid, config.canvas, config.kernels)
        self.init_h, self.init_c = nn.Linear(D, H), nn.Linear(D, H)
        self.attn_regions, self.attn_hidden = nn.Linear(D, A), nn.Linear(H, A)
        self.attn_v = nn.Linear(A, 1, bias=False)
        self.beta = nn.Linear(H, 1)
        self.cell = nn.LSTMCell(E + D if config.input_feeding else E, H)
        self.out_h, self.out_z = nn.Linear(H, E), nn.Linear(D, E)
        self.out = nn.Linear(E, config.vocab_size)

    @property
    def max_source_len(self) -> int:
        return self.config.grid ** 2

    def region_labels(self) -> list[str]:
        """``rRcC`` for each region, row-major."""
        G = self.config.grid
        return [f"r{r}c{c}" for r in range(G) for c in range(G)]

    # -- stepper protocol -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, text: Any, topics: Optional[list[str]] = None) -> Encoded:
        """A generated scene (``'random scene seed S'``) or a picture (PIL, array or ``'image data:…'``)."""
        pixels, extra = self.read_input(text)
        labels = self.region_labels()
        ids = torch.full((len(labels),), -1, device=self.device)  # (L,) regions are no vocabulary token
        extra.update(grid=self.config.grid, image_size=[pixels.shape[1], pixels.shape[0]], image=pixels)
        encoded = Encoded(labels, ids, [], None, extra=extra)
        encoded.state = self.encode_scaled(encoded, torch.ones(1, len(labels), device=self.device))
        return encoded

    def read_input(self, source: Any) -> tuple[np.ndarray, dict]:
        """(pixels (H, W, 3) uint8, extra) of a scene text, a picture text, a PIL image or an array."""
        if isinstance(source, Image.Image):
            return image_to_array(source), {}
        if isinstance(source, np.ndarray):
            return image_to_array(Image.fromarray(source.astype(np.uint8))), {}
        if is_image_text(source):
            return read_image_text(source), {}
        scene = random_scene(parse_scene_seed(source))
        return scene.image, {"objects": scene.object_dicts(), "scene_seed": scene.seed,
                             "true_caption": scene.caption}

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> CaptionState:
        """The state of B copies of the image with each region vector multiplied by ``scale`` (B, L)."""
        images = image_tensor(encoded.extra["image"])[None].to(scale.device)  # (1, 3, H, W)
        regions = self.encoder(images).expand(scale.size(0), -1, -1) * scale.unsqueeze(-1)  # (B, L, D)
        return self.initial_state(regions)

    def step(self, state: CaptionState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One word for B hypotheses; ``prev_ids`` (B,)."""
        logits, new_state, alpha, beta = self.decode_step(state, prev_ids, controls.input_distribution)
        never = [self.vocab.pad_id, self.vocab.unk_id, self.vocab.bos_id]  # targets never hold these
        logits = logits.index_fill(1, torch.tensor(never, device=logits.device), float("-inf"))  # (B, V)
        return StepOutput(torch.log_softmax(logits, -1), new_state, {"attention": alpha, "beta": beta})

    def reorder(self, state: CaptionState, index: torch.Tensor) -> CaptionState:
        """Keep hypotheses ``index`` (B',)."""
        return replace(state, h=state.h[index], c=state.c[index])

    # -- shared by training and decoding ------------------------------------------------------
    def initial_state(self, regions: torch.Tensor) -> CaptionState:
        """Decoder state from region vectors (B, L, D)."""
        mean = regions.mean(1)  # (B, D)
        return CaptionState(torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)), regions,
                            self.attn_regions(regions))

    def decode_step(self, state: CaptionState, prev_ids: torch.Tensor, distribution: Optional[torch.Tensor] = None):
        """(logits (B, V), new state, α (B, L), β (B,)) given the previous words (B,) (or the
        distribution (B, V) read instead, see :meth:`embed_previous`)."""
        B = prev_ids.size(0)
        regions = state.regions.expand(B, -1, -1)  # (B, L, D)
        scores = self.attn_v(torch.tanh(state.regions_proj + self.attn_hidden(state.h).unsqueeze(1)))  # (B, L, 1)
        alpha = torch.softmax(scores.squeeze(-1), -1)  # (B, L)
        context = torch.bmm(alpha.unsqueeze(1), regions).squeeze(1)  # (B, D)
        beta = torch.sigmoid(self.beta(state.h)).squeeze(-1) if self.config.beta_gate \
            else torch.ones(B, device=prev_ids.device)  # (B,)
        z = beta.unsqueeze(1) * context  # (B, D)
        emb = self.embed_previous(prev_ids, distribution)  # (B, E)
        cell_in = torch.cat([emb, z], 1) if self.config.input_feeding else emb  # (B, E + D) or (B, E)
        h, c = self.cell(cell_in, (state.h, state.c))  # (B, H)
        logits = self.out(torch.tanh(emb + self.out_h(h) + self.out_z(z)))  # (B, V)
        return logits, replace(state, h=h, c=c), alpha, beta

    def forward(self, images: torch.Tensor, dec_in: torch.Tensor, target: torch.Tensor,
                regions: Optional[torch.Tensor] = None) -> dict:
        """Teacher-forced loss terms: images (B, 3, H, W), decoder inputs / targets (B, T) ids, and
        optionally attention targets ``regions`` (B, T, G²: 1 on a word's cells, rows of unsupervised
        words 0).

        ``nll``: per-caption summed NLL averaged over the batch (Xu et al.'s scale); ``token_nll``:
        per token; ``doubly_stochastic``: Σ_i (1 − Σ_t α_ti)² averaged over the batch;
        ``attention_supervision`` (with ``regions``): −log of the attention mass the emitting step
        puts on its word's target cells, averaged over the supervised words."""
        state = self.initial_state(self.encoder(images))
        mask = (target != self.vocab.pad_id).float()  # (B, T)
        nll, alphas = [], []
        for t in range(target.size(1)):
            logits, state, alpha, _ = self.decode_step(state, dec_in[:, t])
            nll.append(nn.functional.cross_entropy(logits, target[:, t], reduction="none"))  # (B,)
            alphas.append(alpha * mask[:, t : t + 1])  # (B, L)
        nll_sum = (torch.stack(nll, 1) * mask).sum(1)  # (B,)
        attention = torch.stack(alphas, 1)  # (B, T, L)
        attention_total = attention.sum(1)  # (B, L) Σ_t α_ti
        losses = {"nll": nll_sum.mean(), "token_nll": nll_sum.sum() / mask.sum(),
                  "doubly_stochastic": ((1.0 - attention_total) ** 2).sum(1).mean()}
        if regions is not None:
            supervised = (regions.sum(2) > 0).float()  # (B, T)
            on_target = (attention * regions).sum(2)  # (B, T) attention mass on the word's cells
            losses["attention_supervision"] = -(torch.log(on_target + 1e-6) * supervised).sum() / \
                supervised.sum().clamp(min=1.0)
        return losses

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """The caption's words joined by spaces, as the grammar writes them (``a , b and c``)."""
        return " ".join(self.id_to_token(i, oov_words) for i in token_ids)

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference caption's words (split on spaces) as ids; unknown words are ``<unk>``."""
        return [self.vocab.id(w) for w in text.lower().split()]


def caption_vocab() -> Vocab:
    """The grammar's words (see :mod:`gen_models.scenes`)."""
    return Vocab(VOCABULARY)


def caption_batch(seeds: list[int], vocab: Vocab) -> dict:
    """Scenes of ``seeds`` as a training batch: images (B, 3, H, W), decoder inputs and targets (B, T)."""
    scenes = [random_scene(seed) for seed in seeds]
    words = [scene.caption.split() for scene in scenes]
    T = max(len(w) for w in words) + 1
    dec_in = torch.full((len(seeds), T), vocab.pad_id)
    target = torch.full((len(seeds), T), vocab.pad_id)
    for b, caption in enumerate(words):
        ids = [vocab.id(w) for w in caption]
        dec_in[b, : len(ids) + 1] = torch.tensor([vocab.bos_id] + ids)
        target[b, : len(ids) + 1] = torch.tensor(ids + [vocab.eos_id])
    images = torch.stack([image_tensor(scene.image) for scene in scenes])  # (B, 3, H, W)
    return {"images": images, "dec_in": dec_in, "target": target, "scenes": scenes}
