"""Tiny random checkpoints (and a tiny training corpus) for tests and development.

They decode nonsense, which is all the app tests need: every mechanism (copy switch, coverage,
truncation at ``MAX_SOURCE_LEN`` tokens, BM25 over ``train.jsonl.gz``) is exercised in milliseconds.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

from gen_models.babi import vocabulary
from gen_models.checkpoint import save_checkpoint
from gen_models.keywords import PMITable
from gen_models.models.captioner import AttentionCaptioner, CaptionConfig, caption_vocab
from gen_models.models.hgfu import HGFU
from gen_models.models.keyword_reply import KeywordConfig
from gen_models.models.memory_network import MemoryConfig, MemoryNetwork
from gen_models.models.mta_lstm import MTALSTM, TopicConfig
from gen_models.models.ntm import NTM, NTMConfig
from gen_models.models.pointer_generator import PointerGenerator
from gen_models.models.pointer_network import PointerConfig, PointerNetwork
from gen_models.models.seq2bf import Seq2BF
from gen_models.models.seq2seq import Seq2SeqAttention, Seq2SeqConfig
from gen_models.vocab import Vocab

MAX_SOURCE_LEN = 40
WORDS = ("library for the python json parser development files c a of and tool to data "
         "with this package contains command line interface module , . - ( ) : game server client").split()
TRAIN_ROWS = [
    {"src": "libjson: a JSON parser library for C. This package contains the development files.",
     "tgt": "JSON parser library (development files)"},
    {"src": "pytool: command line tool to manage Python packages.", "tgt": "Python package tool"},
    {"src": "chess-server: a server for the game of chess with a client interface.", "tgt": "chess game server"},
]
KEYWORD_TABLE = PMITable(("library", "server", "game"), {"json": {"library": 2.0, "server": 0.5},
                                                        "python": {"library": 1.0, "game": 1.5}})
POEM_CHARS = list("春风花月山水夜雨秋江人归天云明故乡") + ["，", "。"]
EXAMPLES = ["libfoo-dev: the foo library for C, with a command line tool. This package contains the "
            "development files.", "a game server and client written in python"]


def write_corpus(folder: Path) -> Path:
    """A three-row ``train.jsonl.gz`` in ``folder`` (and the same rows as its ``test.jsonl.gz``)."""
    for split in ("test", "train"):
        path = Path(folder) / f"{split}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in TRAIN_ROWS)
    return path


def make_tiny_checkpoints(root: Path) -> Path:
    """Write ``tiny-pointer-coverage`` (with training data for BM25), ``tiny-seq2seq`` (without)
    ``tiny-mta`` (topic words → characters), ``tiny-hgfu`` / ``tiny-seq2bf`` (keyword replies, a
    hand-made PMI table), ``tiny-hull`` (points → hull) and ``tiny-caption`` (picture → caption) checkpoints under
    ``root``; return it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(root)
    vocab = Vocab(WORDS)
    torch.manual_seed(0)
    specs = [("tiny-pointer-coverage", PointerGenerator, True, "pointer-generator + coverage", str(corpus)),
             ("tiny-seq2seq", Seq2SeqAttention, False, "seq2seq + attention", None)]
    for name, model_class, coverage, exhibit, train_data in specs:
        model = model_class(Seq2SeqConfig(len(vocab), 16, 32, coverage=coverage, max_source_len=MAX_SOURCE_LEN),
                            vocab, name=name)
        extra = {"exhibit": exhibit, "title": f"Tiny {exhibit}", "examples": EXAMPLES}
        if train_data:
            extra["train_data"] = train_data
        save_checkpoint(model, root / name, extra)
        curves = [{"phase": "main", "epoch": 1, "train_loss": 5.0, "valid_nll": 4.5, "valid_coverage": 0.6,
                   "valid_p_gen": 0.4},
                  {"phase": "coverage", "epoch": 1, "train_loss": 4.0, "valid_nll": 4.2, "valid_coverage": 0.2,
                   "valid_p_gen": 0.5}]
        metrics = {"curves": curves, "test": {"rouge1": 0.31, "duplicate_trigrams": 0.02}}
        (root / name / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        (root / name / "README.md").write_text(f"# {name}\n\nA random model for tests <b>not</b> trained.\n",
                                               encoding="utf-8")
    poems = Vocab(POEM_CHARS)
    topic_model = MTALSTM(TopicConfig(len(poems), 12, 16, poem_length=12, form_features=True, topic_char_bias=True,
                                      written_penalty=True, topic_word_continuation=True),
                          poems, name="tiny-mta")  # the shipped poem models' parts
    save_checkpoint(topic_model, root / "tiny-mta", {"exhibit": "topics → poem", "examples": ["春风 明月 故乡"],
                                                     "input_hint": "1–5 topic words"})
    for name, model_class in (("tiny-hgfu", HGFU), ("tiny-seq2bf", Seq2BF)):
        model = model_class(KeywordConfig(len(vocab), 16, 32, max_source_len=MAX_SOURCE_LEN), vocab, name=name)
        model.keywords.load_table(KEYWORD_TABLE, vocab)
        model.config.pmi_entries, model.config.fallback_keyword = len(model.keywords.pmi), "game"
        save_checkpoint(model, root / name, {"exhibit": "conversation", "examples": ["a json parser for python"]})
    hull = PointerNetwork(PointerConfig(8, 16, max_points=60), name="tiny-hull")
    save_checkpoint(hull, root / "tiny-hull", {"exhibit": "points → hull", "examples": ["random 8 seed 1"]})
    words = caption_vocab()
    captioner = AttentionCaptioner(CaptionConfig(len(words), 8, 16, 8, channels=(4, 4, 4, 4)), words, name="tiny-caption")
    save_checkpoint(captioner, root / "tiny-caption", {"exhibit": "picture → caption", "examples": ["random scene seed 3"]})
    make_tiny_memory_checkpoints(root)
    return root


def make_tiny_memory_checkpoints(root: Path) -> None:
    """``tiny-memory`` (a story and a question → the answer) and ``tiny-ntm`` (copy 8-bit vectors)."""
    stories = Vocab(vocabulary())
    memory = MemoryNetwork(MemoryConfig(len(stories), emb_dim=12), stories, name="tiny-memory")
    save_checkpoint(memory, root / "tiny-memory", {"exhibit": "stories", "examples": ["random story task 1 seed 2"]})
    ntm = NTM(NTMConfig(controller_dim=16, memory_size=24, memory_width=6, max_len=40), name="tiny-ntm")
    save_checkpoint(ntm, root / "tiny-ntm", {"exhibit": "copy", "examples": ["random copy 5 seed 1"]})
