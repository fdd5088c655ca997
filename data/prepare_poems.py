"""Prepare the topic-to-poem corpus (regulated Tang and Song shi) for MTA-LSTM style models.

Downloads the npm package ``chinese-poetry`` 2.0.1 (MIT) with ``npm pack`` into a git-ignored cache
directory and reads the Tang and Song shi (``dist/quantangshi/poet.{tang,song}.N.json``) straight
from the tarball. Poems are converted from traditional to simplified characters (zhconv), reduced
to regulated verse (4 or 8 lines of exactly 5 or exactly 7 Han characters), deduplicated, and given
3-5 topic words by jieba's TF-IDF keyword extraction. Poems are split by a stable hash of the poem
text (~1% test, ~1% valid, each at least 1,000) and written as ``{train,valid,test}.jsonl.gz`` with
``stats.json`` and ``LICENSE.md``. To keep the three files within 12 MB together, train is capped
to a deterministic subset (the poems with the smallest salted hash); the counts are in stats.json.

Row format::

    {"topics": ["明月", "故乡", ...], "poem": "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
     "lines": 4, "chars_per_line": 5, "title": "...", "author": "...", "dynasty": "tang"}

Usage (from the repository root)::

    python data/prepare_poems.py [--cache-dir data/raw/poems] [--out-dir data/poems]
                                 [--skip-download] [--max-poems N]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path

import jieba
import jieba.analyse
import zhconv

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser  # noqa: E402

PACKAGE, VERSION = "chinese-poetry", "2.0.1"
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
DYNASTIES = ("tang", "song")
MEMBER = re.compile(r"^package/dist/quantangshi/poet\.(?P<dynasty>tang|song)\.(?P<num>\d+)\.json$")

LINE_SPLIT = re.compile(r"[，。？！；]")
HAN = re.compile(r"^[\u4e00-\u9fff]+$")  # the CJK Unified Ideographs block proper (no extensions)
FORMS = {(4, 5), (8, 5), (4, 7), (8, 7)}  # (lines, characters per line)

MIN_TOPICS, MAX_TOPICS = 3, 5
MAX_TOPIC_CHARS = 4  # jieba's dictionary holds whole famous lines ("飞流直下三千尺"): not topics
CANDIDATES = 20  # keywords asked from jieba per poem before filtering
# Multi-character keywords that jieba's modern-Chinese IDF ranks high in poems but that are
# function words / question words rather than topics.
STOP_WORDS = frozenset("""
不知 何处 何人 何日 何时 何事 何须 何妨 何如 何许 何曾 何必 何由 如何 如许 如此 不须 不可 不见
不是 不得 不用 不如 不曾 不似 无人 无由 莫道 莫问 直须 几时 几回 几度 遥知 谁知 安得 岂知 那知
争知 但见 唯有 惟有 只有 犹自 自是 未必 日日 年年 时时 处处 相将 一番 一时 一般 此时 此中 其间
从今 从来 从教 如今 于今 何年 何用 何为 无处 无端 几多 几许 那堪 不堪 不胜 不能 不厌 不妨 不成
自有 自知 方知 须知 犹能 未觉 试问 借问 莫怪 莫言 等闲 分明 有余 空余 无余 想见 遥想 可怜
""".split())
# Function characters never used as single-character topics (fallback only).
STOP_CHARS = frozenset(
    "不之而何无有是在一此其与亦也以为所自相于乎矣焉哉兮者君我吾尔汝谁犹已又且莫未非更还如若似欲将"
    "可能得见来去独皆尽共应须只但却方才便即曾每几多少虽岂宁勿休谓曰向从到出入上下中里外前后时处"
    "今昔已然乃则因故遂俱俄复重惟唯仍兹斯彼夫余予朕尚最甚正"
)

HASH_BUCKETS = 10000
TEST_SHARE, VALID_SHARE = 0.01, 0.01
MIN_TEST, MIN_VALID = 1000, 1000
MAX_TOTAL_BYTES = 12_000_000  # 12 MB (decimal) for all three files together
TOP_TOPICS = 30
BENCH_POEMS = 1000
FIELDS = ("topics", "poem", "lines", "chars_per_line", "title", "author", "dynasty")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options."""
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/poems", REPO_ROOT / "data/poems", f"the downloaded {TARBALL}")
    parser.add_argument("--max-poems", type=int, default=None,
                        help="subsample the deduplicated poems deterministically (by hash) to at "
                             "most N before keyword extraction (default: keep all)")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- download


def download(cache_dir: Path) -> None:
    """Run ``npm pack chinese-poetry@2.0.1`` inside cache_dir (npm checks the registry integrity)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {PACKAGE}@{VERSION} into {cache_dir} ...", flush=True)
    subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=cache_dir, check=True,
                   stdout=subprocess.DEVNULL)
    (cache_dir / "extracted.txt").write_text(dt.datetime.now(dt.timezone.utc).isoformat() + "\n")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- loading


def load_package(tgz: Path) -> tuple[list[dict], dict]:
    """Read the Tang/Song shi, package.json and LICENSE from the tarball in one streaming pass.

    Returns the poems in (dynasty, file number, position) order, each with a ``dynasty`` key, and
    the parsed package.json with the licence text added as ``license_text``.
    """
    files: dict[tuple[int, int], list[dict]] = {}
    package_json: dict = {}
    license_text = ""
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar:
            match = MEMBER.match(member.name)
            if match:
                key = (DYNASTIES.index(match["dynasty"]), int(match["num"]))
                files[key] = json.load(tar.extractfile(member))
            elif member.name == "package/package.json":
                package_json = json.load(tar.extractfile(member))
            elif member.name == "package/LICENSE":
                license_text = tar.extractfile(member).read().decode("utf-8")
    package_json["license_text"] = license_text
    poems = [{**poem, "dynasty": DYNASTIES[key[0]]} for key in sorted(files) for poem in files[key]]
    return poems, package_json


def to_simplified(text: str) -> str:
    """Traditional -> simplified (mainland) characters with zhconv."""
    return zhconv.convert(text, "zh-cn")


def split_lines(paragraphs: list[str]) -> list[str]:
    """Join the paragraphs and split them into lines at ，。？！； (whitespace removed)."""
    text = "".join("".join(p.split()) for p in paragraphs)
    return [line for line in LINE_SPLIT.split(text) if line]


def form_of(lines: list[str]) -> tuple[int, int] | None:
    """(lines, chars per line) if the lines make a 4/8-line poem of equal 5- or 7-char lines."""
    lengths = {len(line) for line in lines}
    if len(lengths) != 1:
        return None
    form = (len(lines), lengths.pop())
    return form if form in FORMS else None


def join_poem(lines: list[str]) -> str:
    """The poem as text with normalised punctuation: ， after odd lines, 。 after even lines."""
    return "".join(line + ("，" if i % 2 == 0 else "。") for i, line in enumerate(lines))


def regulated_verse(raw: list[dict], counts: dict) -> list[dict]:
    """Convert to simplified, keep regulated verse of Han characters only, drop exact duplicates."""
    forms, han, seen, kept = [], [], set(), []
    for poem in raw:
        lines = split_lines(to_simplified("\n".join(poem.get("paragraphs") or [])).split("\n"))
        form = form_of(lines)
        if form:
            forms.append((poem, lines, form))
    counts["after_form_filter"] = len(forms)
    for poem, lines, form in forms:
        if all(HAN.match(line) for line in lines):
            han.append((poem, lines, form))
    counts["after_han_only_filter"] = len(han)
    for poem, lines, (n_lines, n_chars) in han:
        text = join_poem(lines)
        if text in seen:
            continue
        seen.add(text)
        kept.append({"poem": text, "lines": n_lines, "chars_per_line": n_chars,
                     "title": to_simplified(" ".join((poem.get("title") or "").split())),
                     "author": to_simplified(" ".join((poem.get("author") or "").split())),
                     "dynasty": poem["dynasty"], "_lines": lines})
    counts["after_dedupe"] = len(kept)
    return kept


# ----------------------------------------------------------------------------- topics


class _NoHMM:
    """Tokenizer adapter for jieba.analyse.TFIDF: dictionary-only segmentation (HMM off).

    jieba's HMM guesses new words from runs of single characters, which on classical verse glues
    unrelated characters together ("塞冷鸿飞", "千寻起"); dictionary words only are far cleaner.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def cut(self, text: str):
        """Segment text without the HMM."""
        return self.tokenizer.cut(text, HMM=False)


def make_extractor() -> jieba.analyse.TFIDF:
    """jieba's TF-IDF keyword extractor (its bundled IDF table) with HMM-free segmentation."""
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    extractor = jieba.analyse.TFIDF()
    extractor.tokenizer = _NoHMM(jieba.dt)
    return extractor


def single_char_topics(extractor: jieba.analyse.TFIDF, lines: list[str], need: int,
                       taken: list[str]) -> list[str]:
    """Fallback: the best single-character segments by TF-IDF (jieba's IDF), function chars excluded."""
    freq: collections.Counter = collections.Counter()
    for line in lines:
        freq.update(w for w in jieba.cut(line, HMM=False) if len(w) == 1 and w not in STOP_CHARS)
    score = {w: n * extractor.idf_freq.get(w, extractor.median_idf) for w, n in freq.items()}
    ranked = sorted(score, key=score.__getitem__, reverse=True)  # stable: ties by first occurrence
    return [w for w in ranked if not any(w in t for t in taken)][:need]


def topics_for(extractor: jieba.analyse.TFIDF, poem: dict) -> list[str]:
    """3-5 topic words: top multi-char TF-IDF keywords, topped up with single chars if needed."""
    text = poem["poem"]
    topics = [w for w in extractor.extract_tags(text, topK=CANDIDATES)
              if len(w) <= MAX_TOPIC_CHARS and w not in STOP_WORDS and w in text][:MAX_TOPICS]
    if len(topics) < MIN_TOPICS:
        topics += single_char_topics(extractor, poem["_lines"], MIN_TOPICS - len(topics), topics)
    return topics


def add_topics(poems: list[dict], counts: dict, timing: dict) -> list[dict]:
    """Extract topics for every poem (timing the first 1,000); drop poems with fewer than 3."""
    extractor = make_extractor()
    start = time.perf_counter()
    kept = []
    for i, poem in enumerate(poems):
        if i == BENCH_POEMS:
            rate = (time.perf_counter() - start) / BENCH_POEMS
            timing["jieba_s_per_1000_poems"] = round(rate * 1000, 3)
            print(f"  jieba: {rate * 1000:.2f} s per 1,000 poems, about "
                  f"{rate * len(poems):.0f} s for all {len(poems):,}", flush=True)
        poem["topics"] = topics_for(extractor, poem)
        if len(poem["topics"]) >= MIN_TOPICS:
            kept.append(poem)
    counts["after_topic_filter"] = len(kept)
    return kept


# ----------------------------------------------------------------------------- splitting


def stable_hash(text: str, salt: str = "") -> int:
    """Stable integer from the SHA-1 of salt + text."""
    return int(hashlib.sha1((salt + text).encode("utf-8")).hexdigest()[:15], 16)


def subsample(poems: list[dict], limit: int | None, salt: str) -> list[dict]:
    """Keep the `limit` poems with the smallest salted hash of their text, in corpus order."""
    if limit is None or len(poems) <= limit:
        return poems
    chosen = set(sorted(range(len(poems)), key=lambda i: stable_hash(poems[i]["poem"], salt))[:limit])
    return [poem for i, poem in enumerate(poems) if i in chosen]


def split_poems(poems: list[dict]) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Split by poem-text hash: ~1% test, ~1% valid, rest train, enlarged to the minimum sizes."""
    buckets = [stable_hash(p["poem"]) % HASH_BUCKETS for p in poems]
    test_cut, valid_cut = round(HASH_BUCKETS * TEST_SHARE), round(HASH_BUCKETS * VALID_SHARE)
    step = max(1, HASH_BUCKETS // 1000)
    while sum(b < test_cut for b in buckets) < MIN_TEST and test_cut < HASH_BUCKETS:
        test_cut += step
    while (sum(test_cut <= b < test_cut + valid_cut for b in buckets) < MIN_VALID
           and test_cut + valid_cut < HASH_BUCKETS):
        valid_cut += step
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for poem, b in zip(poems, buckets):
        name = "test" if b < test_cut else "valid" if b < test_cut + valid_cut else "train"
        splits[name].append(poem)
    return splits, {"test_buckets": test_cut, "valid_buckets": valid_cut, "of": HASH_BUCKETS}


# ----------------------------------------------------------------------------- output


def encode_split(poems: list[dict]) -> bytes:
    """Gzipped JSON lines with a fixed gzip timestamp (byte-reproducible)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for poem in poems:
            row = {k: poem[k] for k in FIELDS}
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    return buffer.getvalue()


def encode_with_cap(splits: dict[str, list[dict]], counts: dict) -> dict[str, bytes]:
    """Encode all splits; if over MAX_TOTAL_BYTES, shrink train by a salted hash until it fits."""
    blobs = {name: encode_split(poems) for name, poems in splits.items()}
    counts["train_before_size_cap"] = len(splits["train"])
    while sum(map(len, blobs.values())) > MAX_TOTAL_BYTES:
        room = MAX_TOTAL_BYTES - len(blobs["valid"]) - len(blobs["test"])
        keep = int(len(splits["train"]) * room / len(blobs["train"]) * 0.998)
        splits["train"] = subsample(splits["train"], keep, "train-cap:")
        blobs["train"] = encode_split(splits["train"])
    counts["train_after_size_cap"] = len(splits["train"])
    if counts["train_after_size_cap"] < counts["train_before_size_cap"]:
        print(f"  train capped by hash from {counts['train_before_size_cap']:,} to "
              f"{counts['train_after_size_cap']:,} poems to stay within {MAX_TOTAL_BYTES:,} bytes")
    return blobs


# ----------------------------------------------------------------------------- statistics


def form_name(poem: dict) -> str:
    """'5x4', '7x8', ...: characters per line x lines."""
    return f"{poem['chars_per_line']}x{poem['lines']}"


def topic_sharing(test: list[dict], train: list[dict]) -> dict:
    """How many test poems share their exact topic set with other test poems (or with train)."""
    groups = collections.Counter(frozenset(p["topics"]) for p in test)
    shared = [n for n in groups.values() if n > 1]
    train_sets = {frozenset(p["topics"]) for p in train}
    return {"test_poems_sharing_topic_set": sum(shared), "groups": len(shared),
            "largest_group": max(shared, default=1),
            "test_poems_whose_topic_set_occurs_in_train":
                sum(frozenset(p["topics"]) in train_sets for p in test)}


def corpus_stats(splits: dict[str, list[dict]]) -> dict:
    """Per-split/form/dynasty counts, characters, topic-word statistics."""
    everything = [p for split in splits.values() for p in split]
    topics = [t for p in everything for t in p["topics"]]
    train_chars = {c for p in splits["train"] for c in p["poem"] if HAN.match(c)}
    test_chars = [c for p in splits["test"] for c in p["poem"] if HAN.match(c)]
    return {
        "split_poems": {name: len(split) for name, split in splits.items()},
        "split_by_dynasty": {name: dict(collections.Counter(p["dynasty"] for p in split))
                             for name, split in splits.items()},
        "forms_all": dict(sorted(collections.Counter(map(form_name, everything)).items())),
        "forms_by_split": {name: dict(sorted(collections.Counter(map(form_name, split)).items()))
                           for name, split in splits.items()},
        "distinct_characters": len({c for p in everything for c in p["poem"] if HAN.match(c)}),
        "distinct_characters_train": len(train_chars),
        "test_char_tokens_unseen_in_train": sum(c not in train_chars for c in test_chars),
        "topics_per_poem": dict(sorted(collections.Counter(len(p["topics"]) for p in everything).items())),
        "distinct_topic_words": len(set(topics)),
        "single_char_topic_share": round(sum(len(t) == 1 for t in topics) / max(len(topics), 1), 4),
        "poems_with_single_char_topic": sum(any(len(t) == 1 for t in p["topics"]) for p in everything),
        "topic_word_length": dict(sorted(collections.Counter(map(len, topics)).items())),
        "top_topic_words": collections.Counter(topics).most_common(TOP_TOPICS),
        "test_topic_set_sharing": topic_sharing(splits["test"], splits["train"]),
    }


def provenance_info(cache_dir: Path, tgz: Path, package_json: dict) -> dict:
    """Package metadata, tarball hash, download date and the versions of the converters used."""
    stamp = cache_dir / "extracted.txt"
    downloaded = stamp.read_text().strip()[:10] if stamp.exists() else dt.date.today().isoformat()
    repo = package_json.get("repository", {})
    return {"package": f"{package_json.get('name', PACKAGE)}@{package_json.get('version', VERSION)}",
            "license": package_json.get("license", "MIT"), "author": package_json.get("author", ""),
            "contributors": package_json.get("contributors", []),
            "repository": repo.get("url", "") if isinstance(repo, dict) else repo,
            "tarball": tgz.name, "tarball_sha256": sha256(tgz), "downloaded": downloaded,
            "zhconv": metadata.version("zhconv"), "jieba": metadata.version("jieba"),
            "license_text": package_json.get("license_text", "")}


# ----------------------------------------------------------------------------- license


def write_license(out_dir: Path, prov: dict, stats: dict) -> None:
    """Write LICENSE.md with attribution, provenance and regeneration instructions."""
    contributors = ", ".join(prov["contributors"]) or "none listed"
    counts, splits = stats["counts"], stats["split_poems"]
    (out_dir / "LICENSE.md").write_text(f"""# Regulated Tang and Song shi with topic words (chinese-poetry)

The poems in this directory are derived from the npm package `{prov['package']}`, chinese-poetry's
collection of classical Chinese poetry.

- Licence: {prov['license']} ("Copyright (c) 2016 JackeyGao", reproduced below; it applies to the
  derived files here).
- Package author: {prov['author']}; contributors: {contributors}.
- Repository: {prov['repository']}
- Source files: `dist/quantangshi/poet.tang.*.json` and `poet.song.*.json` of
  `{prov['tarball']}` (sha256 `{prov['tarball_sha256']}`),
  downloaded {prov['downloaded']} with `npm pack {PACKAGE}@{VERSION}`.
- Processing: traditional -> simplified with zhconv {prov['zhconv']}; regulated verse only (4 or 8
  lines of exactly 5 or 7 CJK Unified Ideographs); exact duplicates removed; 3-5 topic words per
  poem from jieba {prov['jieba']} TF-IDF keyword extraction (dictionary-only segmentation, a small
  stop list of function words); split by a SHA-1 hash of the poem text; train capped to a
  hash-chosen {counts['train_after_size_cap']:,} of its {counts['train_before_size_cap']:,} poems to
  keep the files small. Result: {splits['train']:,} train / {splits['valid']:,} valid /
  {splits['test']:,} test poems.
- Fields: `topics`, `poem` (lines joined with ， and 。 alternating), `lines`, `chars_per_line`,
  `title`, `author`, `dynasty` (`tang` or `song`: the collection the poem comes from).
- Date of preparation: {dt.date.today().isoformat()}

Regenerate with `python data/prepare_poems.py` from the repository root (needs `npm` and the
packages in `data/requirements-data.txt`; options are in the script's docstring). The raw tarball
is cached in `data/raw/poems/`, which is not committed.

## chinese-poetry licence

{prov['license_text'].strip()}
""")


# ----------------------------------------------------------------------------- main


def print_stats(stats: dict) -> None:
    """Print the statistics in a readable form."""
    print("\nFiltering stages:")
    for key, value in stats["counts"].items():
        print(f"  {key:38s} {value:>8,}")
    print("Splits: " + ", ".join(f"{k} {v:,}" for k, v in stats["split_poems"].items())
          + f"   (hash buckets {stats['split_buckets']})")
    print("By dynasty: " + "; ".join(f"{k} {v}" for k, v in stats["split_by_dynasty"].items()))
    print(f"Forms (chars x lines), all: {stats['forms_all']}")
    for name, forms in stats["forms_by_split"].items():
        print(f"  {name:5s} {forms}")
    print(f"Distinct characters: {stats['distinct_characters']:,} (train {stats['distinct_characters_train']:,}); "
          f"test character tokens unseen in train: {stats['test_char_tokens_unseen_in_train']:,}")
    print(f"Topic words per poem: {stats['topics_per_poem']}; distinct topic words "
          f"{stats['distinct_topic_words']:,}; lengths {stats['topic_word_length']}")
    print(f"Single-character topic words: {stats['single_char_topic_share']:.2%} of topic words, "
          f"in {stats['poems_with_single_char_topic']:,} poems")
    print("Top topic words: " + " ".join(f"{w}({n})" for w, n in stats["top_topic_words"]))
    print(f"Test topic-set sharing: {stats['test_topic_set_sharing']}")
    print(f"Timing (s): {stats['timing']}")
    print("Output sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in stats["output_bytes"].items()))


def main(argv: list[str] | None = None) -> None:
    """Download (unless skipped), filter, extract topics, split and write the corpus and stats."""
    args = parse_args(argv)
    cache_dir, out_dir = args.cache_dir.resolve(), args.out_dir.resolve()
    timing: dict[str, float] = {}
    clock = time.perf_counter()
    if not args.skip_download:
        download(cache_dir)
    tgz = cache_dir / TARBALL
    if not tgz.exists():
        sys.exit(f"{tgz} not found; run without --skip-download")
    raw, package_json = load_package(tgz)
    counts = {f"raw_{d}": sum(p["dynasty"] == d for p in raw) for d in DYNASTIES}
    counts["raw_total"] = len(raw)
    timing["load"] = round(time.perf_counter() - clock, 1)
    poems = regulated_verse(raw, counts)
    timing["convert_and_filter"] = round(time.perf_counter() - clock - timing["load"], 1)
    if args.max_poems is not None:
        poems = subsample(poems, args.max_poems, "subsample:")
        counts["after_max_poems_subsample"] = len(poems)
    print(f"Extracting topic words for {len(poems):,} poems ...", flush=True)
    mark = time.perf_counter()
    poems = add_topics(poems, counts, timing)
    timing["topics"] = round(time.perf_counter() - mark, 1)
    splits, cuts = split_poems(poems)
    blobs = encode_with_cap(splits, counts)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (out_dir / f"{name}.jsonl.gz").write_bytes(blob)
    sizes = {f"{name}.jsonl.gz": len(blob) for name, blob in blobs.items()}
    sizes["total"] = sum(sizes.values())
    prov = provenance_info(cache_dir, tgz, package_json)
    stats = {"counts": counts, "split_buckets": cuts, **corpus_stats(splits), "output_bytes": sizes,
             "provenance": {k: v for k, v in prov.items() if k != "license_text"}}
    timing["total"] = round(time.perf_counter() - clock, 1)
    stats["timing"] = timing
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    write_license(out_dir, prov, stats)
    print_stats(stats)


if __name__ == "__main__":
    main()
