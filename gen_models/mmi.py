"""Maximum mutual information decoding (Li et al. 2016, "A Diversity-Promoting Objective Function
for Neural Conversation Models"), as two scoring rules the generic beam search applies:

- **MMI-antiLM**: hypotheses are ranked by ``log p(T|S) − λ · Σ_{k ≤ γ} log p_LM(t_k | t_<k)``: a
  reply language model's log-probability of the first γ tokens is subtracted, so replies any query
  could get ("i don't know") lose their advantage. The end token is never penalised (the LM finds an
  early end unlikely, and rewarding that would favour empty replies), nor are tokens the LM never
  predicts (its start and padding tokens, which a Transformer's vocabulary can emit); beyond γ tokens the score is
  the plain log-probability (the paper's g(k), which keeps later tokens grammatical).
- **MMI-bidi**: the finished N-best of the beam (N = beam size) is reranked by
  ``log p(T|S) + λ · log p(S|T)``, ``p(S|T)`` a reverse model (reply → query) teacher-forced on the
  query.

The companion models a chat checkpoint uses are named in its config.json (``"mmi": {"lm": ...,
"reverse": ...}``, folders under ``checkpoints/``), loaded once, and matched to the model's tokens
by their text, so any word-level model (RNN or Transformer) can use them. :class:`ReplyLM` (a small
LSTM language model over replies) lives here: it is a scoring component, not an exhibit.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .vocab import Vocab

MODES = ("off", "antilm", "bidi")
LM_TYPE = "reply_lm"
_OVERRIDES: dict[str, dict] = {}  # model name -> {"lm": model, "reverse": model} (tests, notebooks)


@dataclass
class ReplyLMConfig:
    """Constructor arguments of :class:`ReplyLM`."""

    vocab_size: int
    emb_dim: int = 128
    hidden_dim: int = 256
    dropout: float = 0.2
    lowercase: bool = True


class ReplyLM(nn.Module):
    """p_LM(T): a one-layer LSTM language model over replies, ``<s> t_1 … t_n </s>``."""

    model_type = LM_TYPE
    bos_id, eos_id, unk_id, pad_id = Vocab.bos_id, Vocab.eos_id, Vocab.unk_id, Vocab.pad_id

    def __init__(self, config: ReplyLMConfig, vocab: Vocab):
        super().__init__()
        self.config, self.vocab = config, vocab
        self.embedding = nn.Embedding(config.vocab_size, config.emb_dim, padding_idx=Vocab.pad_id)
        self.lstm = nn.LSTM(config.emb_dim, config.hidden_dim, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden_dim, config.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, V) of input ids (B, T)."""
        hidden, _ = self.lstm(self.drop(self.embedding(ids)))  # (B, T, H)
        return self.out(self.drop(hidden))

    def step(self, state: Optional[tuple], prev: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """Log-probabilities (B, V) of the next token after ``prev`` (B,), and the new LSTM state."""
        hidden, state = self.lstm(self.embedding(prev)[:, None], state)  # (B, 1, H)
        return torch.log_softmax(self.out(hidden[:, 0]), dim=-1), state

    def save(self, folder: Path, extra: Optional[dict] = None) -> None:
        """fp16 safetensors, config.json and vocab.txt."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().half().contiguous() for k, v in self.state_dict().items()},
                  str(folder / "model.safetensors"))
        config = {"model_type": LM_TYPE, "args": asdict(self.config), **(extra or {})}
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.vocab.save(folder / "vocab.txt")

    @classmethod
    def load(cls, folder: Path) -> "ReplyLM":
        """The LM a :meth:`save` folder holds, in eval mode."""
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != LM_TYPE:
            raise ValueError(f"{folder}: not a reply language model")
        model = cls(ReplyLMConfig(**config["args"]), Vocab.load(folder / "vocab.txt"))
        model.load_state_dict({k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()})
        return model.eval()


def antilm_scores(totals: torch.Tensor, lm_prefix: torch.Tensor, lm_step: torch.Tensor, lam: float) -> torch.Tensor:
    """MMI-antiLM ranking scores (B, V): ``totals − λ · (lm_prefix + lm_step)``, where ``totals``
    (B, V) is log p(T|S) of each extension, ``lm_prefix`` (B,) the LM log-probability already summed
    over each hypothesis's penalised tokens and ``lm_step`` (B, V) the LM log-probability of each next
    token (0 where it is not penalised: the end token, or at step ≥ γ)."""
    return totals - lam * (lm_prefix[:, None] + lm_step)


def bidi_score(forward: float, reverse: float, lam: float) -> float:
    """MMI-bidi reranking score: ``log p(T|S) + λ · log p(S|T)`` (``forward`` may already carry a
    length penalty)."""
    return forward + lam * reverse


class AntiLM:
    """The LM half of MMI-antiLM for one decoding run: LM log-probabilities of every token of the
    model's (extended) vocabulary after each hypothesis's prefix, cached by prefix (a prefix is
    computed once, from its parent's LSTM state; no reorder hook needed)."""

    def __init__(self, lm: Any, to_lm: torch.Tensor, eos_id: int, lam: float, gamma: int):
        self.lm, self.to_lm, self.eos_id, self.lam, self.gamma = lm, to_lm, eos_id, lam, gamma
        self.cache: dict[tuple, tuple[Any, torch.Tensor]] = {}
        # tokens the LM never predicts (its start and padding tokens, e.g. a Transformer's <s>) would
        # get an unbounded bonus: they, like the end token, are not penalised
        specials = [getattr(lm, "bos_id", None), getattr(lm, "pad_id", None)]
        self.unpenalised = torch.isin(to_lm, torch.tensor([i for i in specials if i is not None]))  # (V_ext,)
        self.unpenalised[eos_id] = True

    @torch.no_grad()
    def step_logprobs(self, histories: list[list[int]], step: int) -> torch.Tensor:
        """(B, V_ext) LM log-probability of each next token after each history (model ids); zeros
        from step γ on, and for the end token."""
        if step >= self.gamma:
            return torch.zeros(len(histories), self.to_lm.numel())
        missing = [tuple(h) for h in dict.fromkeys(tuple(h) for h in histories) if tuple(h) not in self.cache]
        if missing:
            if step == 0:
                states, prev = None, torch.full((len(missing),), self.lm.bos_id)
            else:
                parents = [self.cache[h[:-1]][0] for h in missing]
                states = tuple(torch.cat([p[i] for p in parents], dim=1) for i in range(2))  # (1, B, H)
                prev = self.to_lm[torch.tensor([h[-1] for h in missing])]
            log_probs, (h_n, c_n) = self.lm.step(states, prev)  # (B, V_lm)
            for i, h in enumerate(missing):
                mapped = log_probs[i][self.to_lm].masked_fill(self.unpenalised, 0.0)  # (V_ext,)
                self.cache[h] = ((h_n[:, i : i + 1], c_n[:, i : i + 1]), mapped)
        return torch.stack([self.cache[tuple(h)][1] for h in histories])


@dataclass
class MMIRule:
    """What :func:`gen_models.decoding.generate` needs for one MMI run."""

    mode: str
    lam: float
    antilm: Optional[AntiLM] = None
    reverse: Any = None
    query: str = ""

    def reverse_logprob(self, reply: str) -> float:
        """log p(S|T): the reverse model's teacher-forced log-probability of the query (and its end
        token) given ``reply``; -inf for an empty reply."""
        from .decoding import teacher_forced

        try:
            encoded = self.reverse.encode(reply)
        except ValueError:
            return float("-inf")
        ids = self.reverse.reference_ids(self.query, encoded.oov_words)
        logprobs, _ = teacher_forced(self.reverse, encoded, ids)
        return float(sum(logprobs))


def register(model_name: str, lm: Any = None, reverse: Any = None) -> None:
    """Use these companion models for ``model_name`` (instead of its config.json's)."""
    _OVERRIDES[model_name] = {"lm": lm, "reverse": reverse}


def _checkpoint_root() -> Path:
    """``$GENSCOPE_CHECKPOINTS`` (as the app's registry) or the shipped checkpoint folder."""
    from .checkpoint import CHECKPOINT_ROOT

    return Path(os.environ.get("GENSCOPE_CHECKPOINTS") or CHECKPOINT_ROOT)


@lru_cache(maxsize=8)
def _load(folder: Path, kind: str) -> Any:
    """A companion model, loaded once per folder."""
    if kind == "lm":
        return ReplyLM.load(folder)
    from .checkpoint import load_checkpoint

    return load_checkpoint(folder, device="cpu")


def offered(model_name: str, config: dict) -> bool:
    """Whether a model has MMI companions to decode with: its checkpoint's config.json names them
    (``"mmi"``), or they were registered (:func:`register`)."""
    return model_name in _OVERRIDES or bool(config.get("mmi"))


def companion(model_name: str, kind: str) -> Any:
    """The reply LM (``kind="lm"``) or reverse model (``"reverse"``) of a model; ValueError if it has
    none (only the chat checkpoints name them)."""
    if model_name in _OVERRIDES and _OVERRIDES[model_name].get(kind) is not None:
        return _OVERRIDES[model_name][kind]
    config_path = _checkpoint_root() / model_name / "config.json"
    names = json.loads(config_path.read_text(encoding="utf-8")).get("mmi", {}) if config_path.is_file() else {}
    if not names.get(kind):
        raise ValueError(f"MMI needs a {'reply language model' if kind == 'lm' else 'reverse model'} for "
                         f"{model_name}; only the chat models have one (config.json 'mmi')")
    folder = _checkpoint_root() / names[kind]
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{model_name}'s {'reply language model' if kind == 'lm' else 'reverse model'} "
                         f"({names[kind]}) is not trained here yet: training/train_chat.sh trains it")
    return _load(folder, kind)


def token_map(model: Any, oov_words: list[str], lm: Any) -> torch.Tensor:
    """(V_ext,) LM id of each of the model's extended ids, matched by token text (``<unk>`` when the
    LM does not know it)."""
    size = model.vocab_size + len(oov_words)
    return torch.tensor([lm.vocab.id(_plain_token(model.id_to_token(i, oov_words))) for i in range(size)])


def _plain_token(token: Optional[str]) -> str:
    """A tokenizer's piece as a word (the Transformer's word-level pieces already are)."""
    return token or "<unk>"


def rule_for(model: Any, text: str, settings: Any, oov_words: list[str]) -> Optional[MMIRule]:
    """The :class:`MMIRule` of ``settings.mmi`` for ``model`` decoding ``text``, or None when off."""
    if settings.mmi == "off":
        return None
    if settings.mmi == "antilm":
        lm = companion(model.name, "lm")
        anti = AntiLM(lm, token_map(model, oov_words, lm), model.eos_id, settings.mmi_lambda, settings.mmi_gamma)
        return MMIRule("antilm", settings.mmi_lambda, antilm=anti)
    return MMIRule("bidi", settings.mmi_lambda, reverse=companion(model.name, "reverse"), query=text)
