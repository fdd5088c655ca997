"""Prepare (query -> reply) pairs and a PMI keyword table from PyPI's ``chitchat-dataset`` (MIT).

Each pair is two adjacent turns of one conversation (a turn: one speaker's consecutive messages
joined), both sides 3-30 GenScope tokens. Conversations are split as for the VAE sentences
(data/prepare_chitchat.py's SHA-1 buckets: ~5% test, ~3% valid), so no conversation straddles
two splits.

Keyword candidates are WordNet nouns (Debian's ``wordnet-base``, WordNet 3.0 licence): a word is a
candidate when its noun senses are tagged at least as often in WordNet's semantic concordance as
its verb, adjective or adverb senses, it is not an English stop word (scikit-learn's list), and it
occurs in at least 20 training replies. PMI between query words and reply nouns is counted on the
training split only, from the query's content words (no stop words) to reply nouns
(gen_models/keywords.py). Each row gets

- ``keyword``: the reply noun most associated with the query (the split point Seq2BF trains on,
  HGFU's cue word); when the reply has no candidate noun, the predicted keyword;
- ``keyword_in_reply``: whether that keyword occurs in the reply;
- ``predicted``: argmax over all candidate nouns of the query's summed PMI (what a model gets at
  test time).

Writes ``pairs/{train,valid,test}.jsonl.gz``, ``pairs/keywords.json.gz`` (the PMI table),
``pairs/stats.json`` (sizes and how often the predicted keyword occurs in the real reply).

    sudo apt-get install wordnet-base
    python data/prepare_chat_pairs.py [--cache-dir data/raw/chitchat] [--out-dir data/chitchat] [--skip-download]
"""
from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser, write_jsonl_gz  # noqa: E402
from data.prepare_chitchat import WHEEL, download, split_of  # noqa: E402
from gen_models.keywords import PMITable, pmi_table  # noqa: E402
from gen_models.text import detokenize, tokenize  # noqa: E402

MIN_TOKENS, MAX_TOKENS = 3, 30
WORDNET = Path("/usr/share/wordnet")
FIELDS = ("src", "tgt", "keyword", "keyword_in_reply", "predicted")


def tagged_senses(path: Path) -> dict[str, int]:
    """WordNet index file -> {lemma: tagged sense count} (single-word lemmas only)."""
    counts = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" ") or "_" in line.split(" ", 1)[0]:
            continue
        fields = line.split()
        pointers = int(fields[3])
        counts[fields[0]] = int(fields[5 + pointers])
    return counts


def noun_candidates(wordnet: Path = WORDNET) -> set[str]:
    """Words whose noun senses are tagged at least as often as their other parts of speech."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    if not (wordnet / "index.noun").is_file():
        raise SystemExit(f"{wordnet}/index.noun not found: sudo apt-get install wordnet-base")
    nouns = tagged_senses(wordnet / "index.noun")
    others = [tagged_senses(wordnet / f"index.{pos}") for pos in ("verb", "adj", "adv")]
    return {w for w, n in nouns.items()
            if w.isalpha() and len(w) > 2 and w not in ENGLISH_STOP_WORDS
            and all(n >= other.get(w, 0) for other in others) and (n > 0 or not any(w in o for o in others))}


def turn_pairs(dataset: dict) -> dict[str, list[tuple[list[str], list[str]]]]:
    """Adjacent-turn (query, reply) token pairs per split, deduplicated within a split."""
    splits: dict[str, dict] = {"train": {}, "valid": {}, "test": {}}
    for conversation_id in sorted(dataset):
        turns = [tokenize(" ".join(m["text"] for m in turn)) for turn in dataset[conversation_id]["messages"]]
        split = splits[split_of(conversation_id)]
        for query, reply in zip(turns, turns[1:]):
            if MIN_TOKENS <= len(query) <= MAX_TOKENS and MIN_TOKENS <= len(reply) <= MAX_TOKENS:
                split.setdefault((tuple(query), tuple(reply)), None)
    return {name: [(list(q), list(r)) for q, r in rows] for name, rows in splits.items()}


def content_words(tokens: list[str]) -> list[str]:
    """Query words that may carry PMI: alphabetic, not stop words (function words associate with
    every noun a little and would swamp the sum)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [t for t in tokens if t.isalpha() and t not in ENGLISH_STOP_WORDS]


def keyword_rows(pairs: list, table: PMITable) -> list[dict]:
    """Rows with the training keyword and the predicted one."""
    rows = []
    for query, reply in pairs:
        ranked = table.rank(query, 1)
        predicted = ranked[0][0] if ranked else ""
        gold = table.best_in(query, reply)
        keyword = gold or predicted
        rows.append({"src": detokenize(query), "tgt": detokenize(reply), "keyword": keyword,
                     "keyword_in_reply": keyword in reply, "predicted": predicted})
    return rows


def main() -> None:
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/chitchat", REPO_ROOT / "data/chitchat", "the wheel")
    args = parser.parse_args()
    wheel = args.cache_dir / WHEEL if args.skip_download else download(args.cache_dir)
    with zipfile.ZipFile(wheel) as archive:
        dataset = json.loads(archive.read("chitchat_dataset/dataset.json"))
    pairs = turn_pairs(dataset)
    table = pmi_table(((content_words(q), r) for q, r in pairs["train"]), noun_candidates())
    out = args.out_dir / "pairs"
    out.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out / "keywords.json.gz", "wb", mtime=0) as f:
        f.write(json.dumps(table.to_json(), ensure_ascii=False).encode("utf-8"))
    stats = {"source": "chitchat-dataset 0.9.0", "nouns": len(table.nouns),
             "pmi_entries": sum(len(v) for v in table.entries.values())}
    for split, split_pairs in pairs.items():
        rows = keyword_rows(split_pairs, table)
        size = write_jsonl_gz(out / f"{split}.jsonl.gz", rows, FIELDS)
        hits = sum(r["predicted"] in tokenize(r["tgt"]) for r in rows if r["predicted"])
        stats[split] = {"pairs": len(rows), "bytes": size,
                        "gold_keyword_share": round(sum(r["keyword_in_reply"] for r in rows) / len(rows), 4),
                        "predicted_in_reply": round(hits / len(rows), 4)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    (out / "LICENSE.md").write_text(LICENSE, encoding="utf-8")
    print(json.dumps(stats))


LICENSE = """# Chat (query, reply) pairs and PMI keywords

Pairs derived from the PyPI package `chitchat-dataset` 0.9.0 (MIT, "Copyright (c) 2019 Perception,
Control and Cognition Lab"; see ../LICENSE.md for the licence text); the MIT licence applies to them.
Keyword candidates come from WordNet 3.0 (Debian `wordnet-base`), "WordNet 3.0 Copyright 2006 by
Princeton University. All rights reserved." under the WordNet licence, which permits use, copying and
distribution with this notice. Processing: data/prepare_chat_pairs.py.
"""


if __name__ == "__main__":
    main()
