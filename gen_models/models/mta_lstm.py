"""MTA-LSTM: topic-to-essay generation with multi-topic-aware attention (Feng et al., IJCAI 2018).

Topics k_1..k_K are embedded from the word embedding table (a multi-character topic word is the
mean of its characters' embeddings, since tokens here are characters). Each topic keeps a coverage
value C_j, starting at 1 and decaying as the text uses the topic:

    g_tj  = C_{t-1,j} · v · tanh(W h_{t-1} + U k_j)        topic attention scaled by coverage
    α_t   = softmax_j(g_t)                                  over the given topics
    T_t   = Σ_j α_tj k_j                                    topic context
    h_t   = LSTM([emb(y_{t-1}); T_t], h_{t-1})
    P(y_t) = softmax(W_o [h_t; T_t])
    C_t,j = max(0, C_{t-1,j} − α_tj / φ_j),  φ_j = N · σ(U_f [k_1; …; k_K])_j

N is the true target length in training and ``poem_length`` (the most common training length, a
seven-character quatrain's 33 tokens) at generation — the reference code's convention, with the mode
rather than the mean so that the usual poem ends with its topics spent. When the user picks a form
(``StepControls.form``: characters per line × lines), N is that form's length, and line ends and the
end are forced where the form puts them. C is clamped at 0 so a
spent topic's score cannot change sign. ``TopicAveragedLSTM`` is the TAV baseline: the context is
the plain mean of the topic embeddings, with no attention and no coverage.

Four optional parts (config flags, off in older checkpoints), shared by both models:

- ``form_features``: the regulated form as input. A form vector f_t, the sum of embeddings of the
  characters written in the current line, the lines finished and the first line's width (unknown,
  5, 7, other), is counted from the characters written so far and fed to the LSTM and the output
  layer (line ends are ，。？！；). The model then knows where a line must end.
- ``topic_char_bias``: the logits of the topic words' own characters get a bonus
  b_t · Σ_j α_tj · 1[y ∈ chars(k_j)], b_t = softplus(w · [h_t; T_t]) ≥ 0, so a topic word is
  written verbatim from the topic it attends to.
- ``written_penalty``: a coverage of the poem's own characters. The logits of the characters
  already written (line ends excepted) get a learned penalty −n_y · softplus(w · [h_t; T_t] + b),
  n_y the times character y has been written (so a third 萧 costs twice the second), so the
  model can tell, at each step, how much it wants to avoid repeating itself; real poems almost
  never do (2.6% of characters), and a model without it writes 秋秋雨雨 under beam search. The
  same state masks the topic-character bonus: a topic character already written gets none, or a
  single topic, which holds all the attention, pulls its characters back forever (啼鸟啼鸟…).
- ``topic_word_continuation``: the character that follows the one just written inside a topic word
  gets a bonus softplus(w · [h_t; T_t] + b) (none if already written), so a topic word once begun
  is finished in order (垂柳, not 垂…柳 or 柳垂).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import nn

from ..base import VocabModel
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput, form_length
from ..text import tokenize
from ..vocab import Vocab

MAX_TOPICS = 5
LINE_ENDS = frozenset("，。？！；,.?!;")
FORM_SLOTS = 10  # counts of characters and lines are clamped to 0..9
FORM_DIM = 32


@dataclass
class TopicConfig:
    """Constructor arguments stored in config.json."""

    vocab_size: int
    emb_dim: int = 128
    hidden_dim: int = 256
    poem_length: int = 32
    max_source_len: int = MAX_TOPICS
    lowercase: bool = False
    form_features: bool = False
    topic_char_bias: bool = False
    written_penalty: bool = False
    topic_word_continuation: bool = False


@dataclass
class TopicState:
    """Decoder state of B hypotheses; topic tensors broadcast from a leading 1 at decode time."""

    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    coverage: torch.Tensor  # (B, K) C_{t-1}
    topics: torch.Tensor  # (B|1, K, E)
    topic_mask: torch.Tensor  # (B|1, K) True on real topics
    phi: torch.Tensor  # (B|1, K)
    form: Optional[torch.Tensor] = None  # (B, 3) long: characters in this line, lines done, first line's width
    topic_chars: Optional[torch.Tensor] = None  # (B|1, K, V) 1 where a character belongs to topic j
    written: Optional[torch.Tensor] = None  # (B, V) how many times each character has been written
    topic_seq: Optional[torch.Tensor] = None  # (B|1, K, L) each topic word's character ids, padded


class MTALSTM(VocabModel):
    """Multi-topic-aware LSTM generator."""

    model_type = "mta_lstm"
    config_class = TopicConfig
    uses_topic_attention = True
    features = ModelFeatures(topics=True, topic_coverage=True, architecture="topic-to-text LSTM", input_kind="topics",
                             soft_inputs=True,
                             input_hint="Type 1–5 topic words separated by spaces, e.g. 春风 明月 故乡",
                             task="topic words → poem", settings=(("max_len", 70),))

    def __init__(self, config: TopicConfig, vocab: Vocab, name: str = "mta_lstm"):
        super().__init__(config, vocab, name)
        E, H = config.emb_dim, config.hidden_dim
        F = FORM_DIM if config.form_features else 0
        self.cell = nn.LSTMCell(2 * E + F, H)
        self.attn_h = nn.Linear(H, H)
        self.attn_k = nn.Linear(E, H, bias=False)
        self.attn_v = nn.Linear(H, 1, bias=False)
        self.phi = nn.Linear(MAX_TOPICS * E, MAX_TOPICS)
        self.out = nn.Linear(H + E + F, config.vocab_size)
        self.register_buffer("line_end", torch.tensor([token in LINE_ENDS for token in vocab.itos]),
                             persistent=False)  # (V,)
        ids = torch.arange(len(vocab.itos))  # (V,)
        self.register_buffer("is_end", ids == vocab.eos_id, persistent=False)  # (V,) what may end a poem
        special = torch.isin(ids, torch.tensor([vocab.pad_id, vocab.bos_id, vocab.eos_id]))  # (V,)
        self.register_buffer("is_char", ~self.line_end & ~special, persistent=False)  # (V,) inside a line
        if config.form_features:
            self.form_position = nn.Embedding(FORM_SLOTS, F)
            self.form_line = nn.Embedding(FORM_SLOTS, F)
            self.form_width = nn.Embedding(4, F)
        if config.topic_char_bias:
            self.bias_gate = nn.Linear(H + E, 1)
        if config.written_penalty:
            self.written_gate = nn.Linear(H + E, 1)
            nn.init.zeros_(self.written_gate.weight)
            nn.init.constant_(self.written_gate.bias, 1.0)
        if config.topic_word_continuation:
            self.continue_gate = nn.Linear(H + E, 1)

    @property
    def max_source_len(self) -> int:
        return MAX_TOPICS

    # -- stepper protocol -------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Topics from ``topics`` or, if none, the words of ``text`` (1–5 are used)."""
        given = [w for w in (topics if topics else text.replace("，", " ").replace(",", " ").split()) if w.strip()]
        words = [w for w in dict.fromkeys(given) if self.topic_char_ids(w)]
        if not words:
            raise ValueError("give 1–5 topic words (none of the input's words is known to the model)")
        truncated = len(words) > MAX_TOPICS
        words = words[:MAX_TOPICS]
        notices = []
        ignored = [w for w in dict.fromkeys(given) if not self.topic_char_ids(w)]
        if ignored:
            shown = " ".join(ignored[:5]) + (" …" if len(ignored) > 5 else "")
            notices.append(f"{len(ignored)} word{'s' if len(ignored) != 1 else ''} ignored (no character the model "
                           f"knows): {shown}")
        notices += [f"“{w}” was read as one topic: separate topic words with spaces" for w in words if len(w) > 4]
        no_source_ids = torch.full((len(words),), -1, device=self.device)  # characters are never copied from topics
        encoded = Encoded(words, no_source_ids, [], None, words, truncated, notices=notices)
        encoded.state = self.encode_scaled(encoded, torch.ones(1, len(words), device=self.device))
        return encoded

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> TopicState:
        """The state of B copies of the topics, each topic embedding multiplied by ``scale`` (B, K);
        differentiable, for attribution."""
        chars, mask = self.pad_topics([[self.topic_char_ids(w) for w in encoded.source_tokens]])
        B = scale.size(0)
        padded = torch.ones(B, MAX_TOPICS, device=scale.device)
        padded[:, : scale.size(1)] = scale  # (B, MAX_TOPICS)
        length = torch.full((B,), float(self.config.poem_length), device=scale.device)
        return self.initial_state(chars.expand(B, -1, -1), mask.expand(B, -1), length, padded)

    def step(self, state: TopicState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One step for B hypotheses."""
        if controls.topic_coverage:
            coverage = state.coverage.clone()
            for j, value in controls.topic_coverage.items():
                if 0 <= int(j) < coverage.size(1):
                    coverage[:, int(j)] = value
            state = replace(state, coverage=coverage)
        if controls.form and controls.step == 0:  # N is the picked form's length: φ spends the topics over it
            state = replace(state, phi=state.phi * form_length(controls.form) / self.config.poem_length)
        log_probs, new_state, internals = self.decode_step(state, prev_ids, controls.input_distribution)
        if controls.form and new_state.form is not None:
            log_probs = self.in_form(log_probs, new_state.form, *controls.form)
        return StepOutput(log_probs, new_state, internals)

    def in_form(self, log_probs: torch.Tensor, form: torch.Tensor, width: int, lines: int) -> torch.Tensor:
        """``log_probs`` (B, V) renormalised over what a ``width`` × ``lines`` poem allows next, given
        the form counters (B, 3): a character inside a line, a line end after ``width`` characters,
        the end after ``lines`` lines."""
        position, done, _ = form.unbind(1)  # (B,) each
        finished = (done >= lines).unsqueeze(1)  # (B, 1)
        line_full = (position >= width).unsqueeze(1)  # (B, 1)
        allowed = torch.where(finished, self.is_end, torch.where(line_full, self.line_end, self.is_char))  # (B, V)
        return torch.log_softmax(log_probs.masked_fill(~allowed, float("-inf")), dim=-1)  # (B, V)

    def reorder(self, state: TopicState, index: torch.Tensor) -> TopicState:
        """Keep hypotheses ``index``."""
        form = state.form[index] if state.form is not None else None
        written = state.written[index] if state.written is not None else None
        return replace(state, h=state.h[index], c=state.c[index], coverage=state.coverage[index], form=form,
                       written=written)

    # -- training ---------------------------------------------------------------------------
    @classmethod
    def new_config(cls, vocab_size: int, examples: list, emb_dim: int = 128, hidden_dim: int = 256,
                   lowercase: bool = False, form_features: bool = False, topic_char_bias: bool = False,
                   written_penalty: bool = False, topic_word_continuation: bool = False,
                   **_: object) -> TopicConfig:
        """The config of a fresh model; ``poem_length`` is the most common target length of ``examples``."""
        usual_length = statistics.mode(len(ex.tgt) + 1 for ex in examples)
        return TopicConfig(vocab_size, emb_dim, hidden_dim, usual_length, lowercase=lowercase,
                           form_features=form_features, topic_char_bias=topic_char_bias,
                           written_penalty=written_penalty, topic_word_continuation=topic_word_continuation)

    def training_batch(self, examples: list) -> dict:
        """Padded tensors for :meth:`forward`: topic characters, true lengths N, targets."""
        chars, topic_mask = self.pad_topics([[self.topic_char_ids(w) or [self.vocab.unk_id] for w in ex.topics]
                                             for ex in examples])
        dec_in, target = self.teacher_targets([ex.tgt for ex in examples], [[] for _ in examples])
        return {"chars": chars, "topic_mask": topic_mask,
                "length": torch.tensor([len(ex.tgt) + 1.0 for ex in examples]),
                "dec_in": dec_in, "target": target, "target_mask": target != self.vocab.pad_id}

    # -- shared by training and decoding ------------------------------------------------------
    def topic_char_ids(self, word: str) -> list[int]:
        """In-vocabulary character ids of a topic word (unknown characters dropped)."""
        return [self.vocab.stoi[t] for t in tokenize(word, self.config.lowercase) if t in self.vocab.stoi]

    def pad_topics(self, batch: list[list[list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Char ids (B, K, L) padded to MAX_TOPICS topics, and the topic mask (B, K)."""
        L = max(len(ids) for topics in batch for ids in topics)
        chars = torch.full((len(batch), MAX_TOPICS, L), self.vocab.pad_id, device=self.device)
        for b, topics in enumerate(batch):
            for k, ids in enumerate(topics[:MAX_TOPICS]):
                chars[b, k, : len(ids)] = torch.tensor(ids, device=self.device)
        return chars, chars[:, :, 0] != self.vocab.pad_id

    def initial_state(self, chars: torch.Tensor, mask: torch.Tensor, length: torch.Tensor,
                      scale: Optional[torch.Tensor] = None) -> TopicState:
        """State before the first token: C = 1 on real topics; ``length`` (B,) is N; ``scale`` (B, K)
        multiplies each topic's embedding."""
        char_mask = (chars != self.vocab.pad_id).unsqueeze(-1).float()  # (B, K, L, 1)
        topics = (self.embedding(chars) * char_mask).sum(2) / char_mask.sum(2).clamp(min=1)  # (B, K, E)
        if scale is not None:
            topics = topics * scale.unsqueeze(-1)  # (B, K, E)
        phi = length[:, None] * torch.sigmoid(self.phi(topics.flatten(1)))  # (B, K)
        B, H = chars.size(0), self.config.hidden_dim
        zeros = topics.new_zeros(B, H)
        form = chars.new_zeros(B, 3) if self.config.form_features else None  # (B, 3)
        topic_chars = None
        if self.config.topic_char_bias:
            topic_chars = topics.new_zeros(B, MAX_TOPICS, self.config.vocab_size)  # (B, K, V)
            topic_chars.scatter_(2, chars, 1.0)
            topic_chars[:, :, [self.vocab.pad_id, self.vocab.unk_id]] = 0.0
        written = topics.new_zeros(B, self.config.vocab_size) if self.config.written_penalty else None  # (B, V)
        topic_seq = chars if self.config.topic_word_continuation else None
        return TopicState(zeros, zeros, mask.float(), topics, mask, phi.clamp(min=1e-3), form, topic_chars, written,
                          topic_seq)

    def advance_form(self, form: torch.Tensor, prev_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The form counters after ``prev_ids`` (B,) and their vector f_t (B, FORM_DIM)."""
        position, lines, width = form.unbind(1)  # (B,) each
        line_end = self.line_end[prev_ids]  # (B,)
        counted = ~line_end & (prev_ids != self.vocab.bos_id) & (prev_ids != self.vocab.pad_id)
        width = torch.where(line_end & (width == 0), position, width)
        lines = lines + line_end.long()
        position = torch.where(line_end, torch.zeros_like(position), position + counted.long())
        width_slot = torch.where(width == 0, 0, torch.where(width == 5, 1, torch.where(width == 7, 2, 3)))
        vector = (self.form_position(position.clamp(max=FORM_SLOTS - 1)) + self.form_line(lines.clamp(max=FORM_SLOTS - 1))
                  + self.form_width(width_slot))  # (B, F)
        return torch.stack([position, lines, width], 1), vector

    def following_chars(self, topic_seq: torch.Tensor, prev_ids: torch.Tensor) -> torch.Tensor:
        """(B, V) 1 on each character that follows ``prev_ids`` (B,) inside a topic word."""
        seq = topic_seq.expand(prev_ids.size(0), -1, -1)  # (B, K, L)
        after = seq[:, :, 1:]  # (B, K, L-1)
        follows = (seq[:, :, :-1] == prev_ids[:, None, None]) & (after != self.vocab.pad_id)  # (B, K, L-1)
        following = seq.new_zeros(seq.size(0), self.config.vocab_size, dtype=torch.float)  # (B, V)
        return following.scatter_add_(1, after.flatten(1), follows.flatten(1).float()).clamp(max=1.0)

    def topic_context(self, state: TopicState) -> tuple[torch.Tensor, torch.Tensor]:
        """(topic attention α (B, K), context T (B, E)) from h_{t-1} and C_{t-1}."""
        feat = torch.tanh(self.attn_h(state.h).unsqueeze(1) + self.attn_k(state.topics))  # (B, K, H)
        scores = state.coverage * self.attn_v(feat).squeeze(-1)  # (B, K)
        alpha = torch.softmax(scores.masked_fill(~state.topic_mask, float("-inf")), dim=-1)  # (B, K)
        context = torch.bmm(alpha.unsqueeze(1), state.topics.expand(alpha.size(0), -1, -1)).squeeze(1)  # (B, E)
        return alpha, context

    def decode_step(self, state: TopicState, prev_ids: torch.Tensor, distribution: Optional[torch.Tensor] = None):
        """(log_probs (B, V), new state, internals) for one step (``distribution`` (B, V): read
        instead of ``prev_ids``' embeddings; the form and written counts still follow ``prev_ids``)."""
        log_probs, new_state, alpha = self.advance(state, prev_ids, distribution)
        if not self.uses_topic_attention:
            return log_probs, new_state, {}
        K = int(state.topic_mask[0].sum())
        coverage = new_state.coverage[:, :K]  # (B, K)
        return log_probs, new_state, {"attention": alpha[:, :K], "topic_attention": alpha[:, :K],
                                      "topic_coverage": coverage}

    def advance(self, state: TopicState, prev_ids: torch.Tensor, distribution: Optional[torch.Tensor] = None):
        """(log_probs (B, V), new state, topic attention α_t (B, MAX_TOPICS)) for one step."""
        alpha, context = self.topic_context(state)
        form, extra = state.form, []
        if form is not None:
            form, form_vector = self.advance_form(form, prev_ids)  # (B, 3), (B, F)
            extra = [form_vector]
        emb = self.embed_previous(prev_ids, distribution)  # (B, E)
        h, c = self.cell(torch.cat([emb, context, *extra], -1), (state.h, state.c))  # (B, H)
        logits = self.out(torch.cat([h, context, *extra], -1))  # (B, V)
        gate_input = torch.cat([h, context], -1)  # (B, H + E)
        written, unwritten = state.written, 1.0  # a topic character written once gets no more bonus
        if written is not None:
            content = (~self.line_end[prev_ids] & (prev_ids > self.vocab.eos_id)).float()  # (B,)
            written = written.scatter_add(1, prev_ids.unsqueeze(1), content.unsqueeze(1))  # (B, V) counts
            logits = logits - nn.functional.softplus(self.written_gate(gate_input)) * written
            unwritten = (written == 0).float()  # (B, V)
        if state.topic_chars is not None:
            members = torch.bmm(alpha.unsqueeze(1), state.topic_chars.expand(alpha.size(0), -1, -1)).squeeze(1)  # (B, V)
            logits = logits + nn.functional.softplus(self.bias_gate(gate_input)) * members * unwritten
        if state.topic_seq is not None:
            following = self.following_chars(state.topic_seq, prev_ids)  # (B, V)
            logits = logits + nn.functional.softplus(self.continue_gate(gate_input)) * following * unwritten
        log_probs = torch.log_softmax(logits, dim=-1)  # (B, V)
        coverage = (state.coverage - alpha / state.phi).clamp(min=0.0) * state.topic_mask  # (B, K)
        return log_probs, replace(state, h=h, c=c, coverage=coverage, form=form, written=written), alpha

    def forward(self, chars, topic_mask, length, dec_in, target, target_mask):
        """Teacher-forced losses per target token: ``nll``, ``unlikelihood`` (token-level unlikelihood
        of the characters already written, Welleck et al. 2019), ``coverage`` (mean final topic
        coverage) and ``spend`` (mean (log S_j)², S_j = Σ_t α_tj / φ_j the unclamped spending of
        topic j over the target: 0 when each topic is spent exactly once by the end)."""
        state = self.initial_state(chars, topic_mask, length)
        candidates = self.repeat_candidates(target)  # (B, T)
        step_mask = target_mask.float()  # (B, T)
        nll, unlikelihood, spent = [], [], torch.zeros_like(state.phi)  # spent: (B, K)
        for t in range(dec_in.size(1)):
            log_probs, state, alpha = self.advance(state, dec_in[:, t])
            spent = spent + step_mask[:, t : t + 1] * alpha / state.phi  # (B, K)
            nll.append(-log_probs.gather(1, target[:, t : t + 1]).squeeze(1))  # (B,)
            earlier = log_probs.gather(1, target[:, :t]).exp()  # (B, t) p of the characters written before
            negative = candidates[:, :t] & (target[:, :t] != target[:, t : t + 1])  # (B, t)
            unlikelihood.append((-torch.log1p(-earlier.clamp(max=1 - 1e-5)) * negative).sum(1))  # (B,)
        mask, topics = target_mask.float(), topic_mask.float()
        remaining = (state.coverage.sum(1) / topics.sum(1)).mean()
        spend = ((spent.clamp(min=1e-6).log() ** 2 * topics).sum(1) / topics.sum(1)).mean()
        return {"nll": (torch.stack(nll, 1) * mask).sum() / mask.sum(), "coverage": remaining, "spend": spend,
                "unlikelihood": (torch.stack(unlikelihood, 1) * mask).sum() / mask.sum()}

    def repeat_candidates(self, target: torch.Tensor) -> torch.Tensor:
        """(B, T) True at the first occurrence of each written character (line ends and special
        tokens excluded): the characters the unlikelihood term discourages writing again."""
        same = target.unsqueeze(2) == target.unsqueeze(1)  # (B, T, T)
        earlier = torch.ones_like(same[0]).tril(-1)  # (T, T) s' < s
        first = ~(same & earlier).any(2)  # (B, T)
        return first & ~self.line_end[target] & (target > self.vocab.eos_id)


class TopicAveragedLSTM(MTALSTM):
    """TAV baseline: the mean topic embedding as context; no topic attention, no coverage."""

    model_type = "tav_lstm"
    uses_topic_attention = False
    features = ModelFeatures(soft_inputs=True, topics=True, architecture="topic-to-text LSTM", input_kind="topics",
                             input_hint=MTALSTM.features.input_hint, task=MTALSTM.features.task,
                             settings=MTALSTM.features.settings)

    def topic_context(self, state: TopicState) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform weights over the real topics."""
        weights = state.topic_mask.float() / state.topic_mask.float().sum(1, keepdim=True)  # (B|1, K)
        weights = weights.expand(state.h.size(0), -1)  # (B, K)
        context = torch.bmm(weights.unsqueeze(1), state.topics.expand(weights.size(0), -1, -1)).squeeze(1)
        return weights, context
