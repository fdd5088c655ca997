"""Training objectives beyond plain teacher forcing, shared by every seq2seq-family run.

Scheduled sampling (Bengio et al. 2015): at training step i each decoder input is the reference
token with probability ε_i and a token sampled from the model's previous distribution otherwise
(a coin per token). ε_i decays from 1 by one of the paper's three schedules:

    linear            ε_i = max(ε_min, 1 − c·i)
    exponential       ε_i = max(ε_min, k^i)            (k < 1)
    inverse sigmoid   ε_i = max(ε_min, k / (k + exp(i / k)))   (k ≥ 1)

Doubly stochastic attention (Xu et al. 2015): λ Σ_i (τ − Σ_t α_ti)² per target token is added to
the loss; the model reports the sum as ``attention_reg``. With each step's attention summing to
one, Σ_i Σ_t α_ti is the output length whatever τ is, so the penalty's gradient pushes every source
position towards the same total attention (τ only shifts the loss by a constant).

Unlikelihood (Welleck et al. 2019, token level): α Σ_{c ∈ C_t} −log(1 − p(c | y_<t)) per target
token, C_t the characters already written (first occurrences, line ends excluded, not y_t). Topic
models report it as ``unlikelihood``; ``--unlikelihood α`` adds it to the loss.

Topic coverage loss: λ · mean final topic coverage (``--topic-coverage-loss λ``), so each topic is
spent by the end of the text and the coverage decay is visible.

Topic spend loss: λ · mean_j (log S_j)², S_j = Σ_t α_tj / φ_j, the unclamped coverage topic j
spends over the target (``--topic-spend-loss λ``). It is zero when every topic is spent exactly
once by the end: unlike the coverage loss, which only asks for C = 0 at the end and so lets φ shrink
until a topic is spent in two or three characters, it makes the decay run over the whole text. The
log makes it a ratio, so a far overspent topic (S = 250) does not swamp the NLL's gradient.

Topic subsets (``--topic-subsets``): half of the training examples keep a random non-empty subset
of their topic words in random order, and a word of two or more characters becomes one of its
characters with probability 0.15. Each kept topic still occurs in the target, and the model learns
from the 1–3 topic inputs users type as well as from the corpus's 3–5.

Name scrambling (``--scramble-names p``): each Latin-script word that occurs in both the source and
the target is, with probability p, replaced everywhere in the pair by a made-up word of the same
shape (letters for letters, digits for digits, case kept). The made-up word is in no vocabulary,
so the only way to write it is to copy it: a pointer-generator learns to copy names in running
text, the skill that the vocabulary otherwise lets it skip.

Rare source words (``--unk-rare-source-below k``): the encoder reads each Latin-script word seen in
fewer than k training sources as ``<unk>``. Four sightings do not teach an embedding (PAM, LDAP and
NSS were translated as 语句, 打印, 名称), and the copy path has learned, from made-up names and real
unknown words, to copy what reads as ``<unk>``; the word stays copyable by its own id.

Loss masks: ``--mask-unk-targets`` leaves ``<unk>`` targets out of the loss, so the decoder is never
trained to write ``<unk>`` (a pointer-generator copies a source word it does not know); targets the
model cannot produce at all (a copy-only word absent from the source) are always left out.
"""
from __future__ import annotations

import math
import random
import re
import string
from collections import Counter

import torch

SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_.+\-]*")


def teacher_forcing_probability(schedule: str, step: int, k: float, c: float, floor: float) -> float:
    """ε_i of scheduled sampling at training step ``step`` (1.0 for schedule "none")."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        value = 1.0 - c * step
    elif schedule == "exponential":
        value = k**step
    elif schedule == "inverse_sigmoid":
        value = k / (k + math.exp(min(step / k, 700.0)))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
    return max(floor, value)


def topic_subset(topics: list[str], rng: random.Random) -> list[str]:
    """A random training view of ``topics`` (see the module docstring)."""
    if len(topics) < 2 or rng.random() < 0.5:
        return topics
    kept = rng.sample(topics, rng.randint(1, len(topics)))
    return [rng.choice(word) if len(word) > 1 and rng.random() < 0.15 else word for word in kept]


def made_up_word(word: str, rng: random.Random) -> str:
    """A random word of ``word``'s shape: each letter a random letter of the same case, each digit
    a random digit, other characters kept; at least four characters long."""
    def swap(char: str) -> str:
        if char.isdigit():
            return rng.choice(string.digits)
        if char.isalpha():
            return rng.choice(string.ascii_uppercase if char.isupper() else string.ascii_lowercase)
        return char
    padded = word + "".join(rng.choice(string.ascii_lowercase) for _ in range(4 - len(word)))
    return "".join(swap(c) for c in padded)


def scramble_names(src: list[str], tgt: list[str], rng: random.Random, p: float) -> tuple[list[str], list[str]]:
    """``src`` and ``tgt`` with each shared Latin-script word made up with probability ``p``."""
    shared = [w for w in dict.fromkeys(src) if LATIN.fullmatch(w) and w in tgt]
    mapping = {w: made_up_word(w, rng) for w in shared if rng.random() < p}
    return [mapping.get(t, t) for t in src], [mapping.get(t, t) for t in tgt]


def copy_only_words(targets: list[list[str]], below: int) -> set[str]:
    """Latin-script words seen in fewer than ``below`` training targets: left out of generation."""
    counts = Counter(tok for tgt in targets for tok in set(tgt) if LATIN.fullmatch(tok))
    return {tok for tok, n in counts.items() if n < below}


def set_copy_only(model, words: set[str]) -> int:
    """Mark ``words`` (those in the model's vocabulary) as copy-only; returns how many were marked."""
    ids = [model.vocab.stoi[w] for w in words if w in model.vocab.stoi]
    model.generable[ids] = False
    return len(ids)


def set_source_unknown(model, sources: list[list[str]], below: int) -> int:
    """Mark the Latin-script vocabulary words seen in fewer than ``below`` training ``sources`` as unknown
    to the encoder (read as ``<unk>``); returns how many were marked."""
    counts = Counter(tok for src in sources for tok in set(src))
    ids = [i for i, word in enumerate(model.vocab.itos) if LATIN.fullmatch(word) and counts[word] < below]
    model.source_known[ids] = False
    return len(ids)


def loss_mask(model, batch: dict, mask_unk: bool) -> torch.Tensor:
    """The batch's target mask (B, T) without targets the loss should not teach: unreachable ones
    (not generable and not in the source) always, ``<unk>`` ones when ``mask_unk``."""
    target, mask = batch["target_ext"], batch["target_mask"]  # (B, T)
    if mask_unk:
        mask = mask & (target != model.vocab.unk_id)
    if model.config_dict().get("copy_only"):
        in_vocab = target.clamp(max=model.vocab_size - 1)  # (B, T)
        generable = model.generable[in_vocab] | (target >= model.vocab_size)  # (B, T)
        in_source = (target.unsqueeze(2) == batch["src_ext"].unsqueeze(1)).any(-1)  # (B, T)
        mask = mask & (generable | in_source)
    return mask
