"""End-to-end memory network (Sukhbaatar et al. 2015, MemN2N) answering questions about a story.

Each story sentence i (words x_i1..x_iJ) is written into K + 1 embedding spaces with position
encoding (PE) and a temporal encoding T (sentence age, newest = 0), and the question likewise:

    m_i^k = Σ_j l_j ∘ E^k x_ij + T^k(i)        l_kj = (1 − j/J) − (k/d)(1 − 2j/J)
    u^1   = Σ_j l_j ∘ E^0 q_j (+ D y_{t−1})     (B = A^1 = E^0: adjacent tying)
    p^k   = softmax_i(u^k · m_i^{k−1})          hop k reads memory A^k = E^{k−1}
    o^k   = Σ_i p_i^k m_i^k                     output memory C^k = E^k  (= A^{k+1})
    u^{k+1} = u^k + o^k
    P(answer word) = softmax(E^K u^{K+1})       (W^T = C^K)

The answer is written one word at a time through GenScope's generic decoder: step t's question
vector adds an embedding D of the previous answer word (``<s>`` first), the hops run again, and the
output is a word or ``</s>`` — one word for tasks 1 and 2, a list (alphabetical) for task 8. Step
internals: ``attention`` = the last hop's attention over the story's sentences, ``hop_attention``
(hops × sentences). A knocked-out sentence gets no attention in any hop.

Input: ``"Mary moved to the bathroom. John went to the hallway. Where is Mary?"`` (the question
is the sentence ending in "?"; words outside the vocabulary are named in the error) or
``random story task T [seed S]`` (:mod:`gen_models.babi`; the trace's extra then holds
``supporting`` and ``answer``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..babi import TASKS, make_story
from ..base import VocabModel
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput

_RANDOM = re.compile(r"^\s*random\s+story\s+task\s+(\d+)(?:\s+seed\s+(\d+))?\s*$", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
MAX_SEED = 2**31 - 1
STORY_HINT = ("a story and a question ('Mary moved to the bathroom. John went to the hallway. Where is "
              "Mary?'), or 'random story task T [seed S]' with T one of " + ", ".join(map(str, TASKS)))


@dataclass
class MemoryConfig:
    """Constructor arguments stored in a checkpoint's config.json."""

    vocab_size: int
    emb_dim: int = 50
    hops: int = 3
    memory_size: int = 50  # the most recent sentences kept
    sentence_len: int = 8  # words per sentence (longer ones are cut)
    lowercase: bool = True


@dataclass
class MemoryState:
    """The encoded story and question for B hypotheses (story tensors may have a leading 1)."""

    memory: torch.Tensor  # (B|1, K+1, S, d) sentence embeddings in each of the K+1 spaces
    question: torch.Tensor  # (B|1, d) u without the previous-word term
    mask: torch.Tensor  # (B|1, S) True where a sentence is present


def position_encoding(J: int, d: int) -> torch.Tensor:
    """The paper's l (J, d): l_kj = (1 − j/J) − (k/d)(1 − 2j/J), j and k from 1."""
    j = torch.arange(1, J + 1, dtype=torch.float32)[:, None] / J  # (J, 1)
    k = torch.arange(1, d + 1, dtype=torch.float32)[None] / d  # (1, d)
    return (1 - j) - k * (1 - 2 * j)


def parse_story(text: str) -> tuple[list[list[str]], list[str], dict]:
    """(sentences, question, extra) from a typed story or ``random story task T [seed S]``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"no story: give {STORY_HINT}")
    match = _RANDOM.match(text)
    if match:
        task, seed = int(match.group(1)), int(match.group(2) or 0)
        if task not in TASKS:
            raise ValueError(f"random story task T needs T in {', '.join(map(str, TASKS))}, got {task}")
        if seed > MAX_SEED:
            raise ValueError(f"seed must be at most {MAX_SEED}, got {seed}")
        story = make_story(task, seed)
        return story.sentences, story.question, {"task": task, "answer": " ".join(story.answer),
                                                "supporting": np.asarray(story.supporting, dtype=np.int64)}
    parts = [p.strip() for p in re.split(r"(?<=[.?!])\s*", text.strip()) if p.strip()]
    if not parts or not parts[-1].endswith("?"):
        raise ValueError(f"the last sentence must be a question ending in '?': give {STORY_HINT}")
    sentences = [_WORD.findall(p.lower()) for p in parts[:-1]]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ValueError(f"a story needs at least one sentence before the question: give {STORY_HINT}")
    return sentences, _WORD.findall(parts[-1].lower()), {}


class MemoryNetwork(VocabModel):
    """MemN2N with position encoding, temporal encoding, K hops and adjacent weight tying."""

    model_type = "memory_network"
    config_class = MemoryConfig
    features = ModelFeatures(input_kind="story", architecture="memory network", input_hint=STORY_HINT,
                             task="a story and a question → the answer",
                             settings=(("strategy", "greedy"), ("max_len", 6)), memory="story sentence")

    def __init__(self, config: MemoryConfig, vocab, name: str = "memory-network"):
        super().__init__(config, vocab, name)
        V, d, K = config.vocab_size, config.emb_dim, config.hops
        del self.embedding  # the K + 1 tied spaces replace the single table
        self.spaces = nn.Parameter(torch.randn(K + 1, V, d) * 0.1)  # E^0 = A^1 = B, E^k = C^k = A^{k+1}
        self.temporal = nn.Parameter(torch.randn(K + 1, config.memory_size, d) * 0.1)  # T^k, newest first
        self.previous = nn.Embedding(V, d)  # D: the previous answer word
        self.register_buffer("pe", position_encoding(config.sentence_len, d), persistent=False)
        self.linear_start = False

    @property
    def device(self) -> torch.device:
        return self.spaces.device

    @property
    def max_source_len(self) -> int:
        return self.config.memory_size

    # -- input -----------------------------------------------------------------------------------
    def words_to_ids(self, sentences: list[list[str]]) -> torch.Tensor:
        """Word ids (S, J) on the host, padded with ``<pad>`` and cut at ``sentence_len``."""
        J = self.config.sentence_len
        ids = torch.full((len(sentences), J), self.vocab.pad_id, dtype=torch.long, device="cpu")
        for i, words in enumerate(sentences):
            ids[i, : min(J, len(words))] = torch.tensor([self.vocab.id(w) for w in words[:J]], device="cpu")
        return ids

    def embed(self, story: torch.Tensor, question: torch.Tensor, lengths: Optional[torch.Tensor] = None,
              scale: Optional[torch.Tensor] = None) -> MemoryState:
        """Encode stories (B, S, J) and questions (B, J) of word ids (``<pad>`` = no word) whose first
        ``lengths`` (B,) sentences are memory slots (all S when None; a slot of pads is an empty
        memory: its temporal encoding only); ``scale`` (B, S) multiplies each sentence's memory
        embeddings (attribution)."""
        B, S = story.shape[:2]
        lengths = torch.full((B,), S, device=story.device) if lengths is None else lengths
        words = (story != self.vocab.pad_id).float()[None, ..., None]  # (1, B, S, J, 1)
        embedded = (self.spaces[:, story] * self.pe[None, None, None] * words).sum(3)  # (K+1, B, S, d)
        age = (lengths[:, None] - 1 - torch.arange(S, device=story.device)).clamp(min=0)  # (B, S) 0 = newest
        memory = embedded + self.temporal[:, age]  # (K+1, B, S, d)
        if scale is not None:
            memory = memory * scale[None, :, :, None]
        q_words = (question != self.vocab.pad_id).float()[..., None]  # (B, J, 1)
        u = (self.spaces[0, question] * self.pe[None] * q_words).sum(1)  # (B, d)
        mask = torch.arange(S, device=story.device)[None] < lengths[:, None]  # (B, S)
        return MemoryState(memory.transpose(0, 1), u, mask)

    def hops(self, state: MemoryState, prev_ids: torch.Tensor, knock_out: list[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """Answer logits (B, V) and attention per hop (B, K, S) for previous answer words (B,)."""
        memory = state.memory.expand(prev_ids.size(0), -1, -1, -1)  # (B, K+1, S, d)
        mask = state.mask.expand(prev_ids.size(0), -1).clone()  # (B, S)
        if knock_out:
            mask[:, [i for i in knock_out if i < mask.size(1)]] = False
        u = state.question + self.previous(prev_ids)  # (B, d)
        attention = []
        for k in range(self.config.hops):
            scores = torch.einsum("bd,bsd->bs", u, memory[:, k])  # (B, S)
            if self.linear_start:  # training's first epochs (the paper's "LS"): no softmax in the hops
                p = scores * mask
            else:
                p = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)  # none left: 0
            u = u + torch.einsum("bs,bsd->bd", p, memory[:, k + 1])  # (B, d)
            attention.append(p)
        return u @ self.spaces[-1].T, torch.stack(attention, 1)  # (B, V), (B, K, S)

    # -- stepper protocol ------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Parse the story and question (ValueError naming unknown words) and embed them."""
        sentences, question, extra = parse_story(text)
        unknown = sorted({w for s in [*sentences, question] for w in s if w not in self.vocab.stoi})
        if unknown:
            raise ValueError(f"unknown words: {', '.join(unknown[:20])} (this model knows the bAbI-style "
                             f"vocabulary of {len(self.vocab) - 4} words; try 'random story task 1')")
        dropped = max(0, len(sentences) - self.config.memory_size)
        notices = [f"only the last {self.config.memory_size} sentences are kept in memory"] if dropped else []
        sentences = sentences[dropped:]
        if "supporting" in extra:
            extra["supporting"] = extra["supporting"][extra["supporting"] >= dropped] - dropped
        story_ids, question_ids = self.words_to_ids(sentences), self.words_to_ids([question])  # (S, J), (1, J)
        story, q = story_ids.to(self.device)[None], question_ids.to(self.device)  # (1, S, J), (1, J)
        extra.update(memory_size=len(sentences), question=" ".join(question), story_ids=story_ids.numpy(),
                     question_ids=question_ids[0].numpy())
        ids = torch.full((len(sentences),), -1, device=self.device)  # (S,) sentences are no tokens: nothing copied
        return Encoded([" ".join(s) for s in sentences], ids, [], self.embed(story, q), truncated=dropped > 0,
                       notices=notices, extra=extra)

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> MemoryState:
        """The state with each sentence's memory embeddings multiplied by ``scale`` (B, S)."""
        story = torch.as_tensor(encoded.extra["story_ids"], device=scale.device).long()[None]  # (1, S, J)
        q = torch.as_tensor(encoded.extra["question_ids"], device=scale.device).long()[None]  # (1, J)
        B = scale.size(0)
        return self.embed(story.expand(B, -1, -1), q.expand(B, -1), scale=scale)

    def step(self, state: MemoryState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One answer word for B hypotheses; ``prev_ids`` (B,)."""
        logits, attention = self.hops(state, prev_ids, controls.knock_out)
        logits[:, [self.vocab.pad_id, self.vocab.bos_id]] = float("-inf")
        internals = {"attention": attention[:, -1], "hop_attention": attention}
        return StepOutput(torch.log_softmax(logits, -1), state, internals)

    def reorder(self, state: MemoryState, index: torch.Tensor) -> MemoryState:
        """Keep hypotheses ``index`` (B',); a shared story stays shared."""
        if state.question.size(0) == 1:
            return state
        return replace(state, memory=state.memory[index], question=state.question[index], mask=state.mask[index])

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """Answer words joined by spaces."""
        return " ".join(self.id_to_token(i, oov_words) for i in token_ids)

    # -- training --------------------------------------------------------------------------------
    def forward(self, story: torch.Tensor, question: torch.Tensor, lengths: torch.Tensor, answer_in: torch.Tensor,
                answer_out: torch.Tensor) -> dict:
        """Teacher-forced cross-entropy over answer words and ``</s>``: story (B, S, J), question
        (B, J), lengths (B,) memory slots per story, answer_in/answer_out (B, T) (``<pad>`` ignored)."""
        state = self.embed(story, question, lengths)
        losses, correct = [], []
        for t in range(answer_in.size(1)):
            logits, _ = self.hops(state, answer_in[:, t])
            losses.append(nn.functional.cross_entropy(logits, answer_out[:, t], ignore_index=self.vocab.pad_id,
                                                      reduction="none"))
            correct.append((logits.argmax(-1) == answer_out[:, t]) | (answer_out[:, t] == self.vocab.pad_id))
        mask = (answer_out != self.vocab.pad_id).float()
        loss = (torch.stack(losses, 1) * mask).sum() / mask.sum()
        return {"loss": loss, "correct": torch.stack(correct, 1).all(1)}
