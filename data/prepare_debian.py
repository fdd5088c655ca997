"""Prepare the Debian "long description -> one-line synopsis" summarisation corpus (bookworm main).

Downloads the apt ``Packages``, ``Sources`` and i18n ``Translation-en`` indexes of Debian bookworm
main with a private apt configuration (the system's apt state is left alone), filters boilerplate
and duplicates, splits by a stable hash of the *source* package name and writes
``{train,valid,test}.jsonl.gz``, ``stats.json`` and ``LICENSE.md`` to the output directory.

Usage (from the repository root)::

    python data/prepare_debian.py [--cache-dir data/raw/debian] [--out-dir data/debian] [--skip-download]
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser, write_jsonl_gz  # noqa: E402
from gen_models.text import tokenize  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # tqdm is optional
    tqdm = None

SUITE = "bookworm"
COMPONENT = "main"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT_HELPER = "/usr/lib/apt/apt-helper"

SRC_MIN, SRC_MAX = 10, 400
TGT_MIN, TGT_MAX = 2, 30
STRICT_PREFIX = 20
HASH_BUCKETS = 10000
MIN_TEST, MIN_VALID = 1500, 1000
LEAD_TOKENS = 8

TRANSITIONAL_SYNOPSIS = re.compile(
    r"\b(transitional|transitionnal|transistional|dummy)\b|\btransition\s+(dummy\s+|meta)?package\b",
    re.I,
)
TRANSITIONAL_LONG = re.compile(
    r"\b(transitional|transition|dummy)(\s+(dummy|transitional|transition))?\s+(meta)?package\b", re.I
)
DEBUG_NAME = re.compile(r"-dbg(sym)?$")
DEBUG_SYNOPSIS = re.compile(r"\bdebug(ging)?\s+symbols\b", re.I)
RUST_BOILERPLATE = re.compile(
    r"^(this package contains the source for the rust\b.*\bcrate\b"
    r"|this metapackage enables feature\b"
    r"|additionally, this package also provides the\b.*\bfeatures?\b"
    r"|.*\bpackaged by debcargo\b)",
    re.I,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options."""
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/debian", REPO_ROOT / "data/debian",
                         "private apt state and downloaded indexes")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- download


def _one_line_sources(text: str):
    """Yield (uri, suite, components, signed_by) from one-line ``deb ...`` sources.list text."""
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<rest>.+)$", line)
        if not match:
            continue
        uri, suite, *components = match["rest"].split()
        opts = dict(o.split("=", 1) for o in (match["opts"] or "").split() if "=" in o)
        yield uri, suite, components, opts.get("signed-by")


def _deb822_sources(text: str):
    """Yield (uri, suite, components, signed_by) from deb822 ``*.sources`` text."""
    for fields in iter_stanzas(text):
        if "deb" not in fields.get("Types", "").split() or fields.get("Enabled", "yes") == "no":
            continue
        signed_by = fields.get("Signed-By", "").strip()
        signed_by = signed_by if signed_by.startswith("/") and "\n" not in signed_by else None
        for uri in fields.get("URIs", "").split():
            for suite in fields.get("Suites", "").split():
                yield uri, suite, fields.get("Components", "").split(), signed_by


def find_mirror() -> tuple[str, str]:
    """Return (mirror URI, keyring) of the machine's own bookworm main source, or Debian's default
    (the same mirror serves the other suites)."""
    paths = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*"))
    for path in paths:
        if not os.path.isfile(path) or not path.endswith((".list", ".sources")):
            continue
        text = Path(path).read_text(errors="replace")
        entries = _deb822_sources(text) if path.endswith(".sources") else _one_line_sources(text)
        for uri, suite, components, signed_by in entries:
            if suite == SUITE and COMPONENT in components:
                return uri.rstrip("/"), signed_by or DEFAULT_KEYRING
    return DEFAULT_MIRROR, DEFAULT_KEYRING


def write_apt_config(cache_dir: Path, suite: str = SUITE) -> Path:
    """Write a private sources.list and apt.conf (for ``suite`` main) under cache_dir; return the apt.conf path."""
    uri, keyring = find_mirror()
    for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
        (cache_dir / sub).mkdir(parents=True, exist_ok=True)
    line = f"[signed-by={keyring}] {uri} {suite} {COMPONENT}"
    (cache_dir / "sources.list").write_text(f"deb {line}\ndeb-src {line}\n")
    conf = cache_dir / "apt.conf"
    conf.write_text(
        f'Dir::Etc::SourceList "{cache_dir / "sources.list"}";\n'
        f'Dir::Etc::SourceParts "{cache_dir / "sources.list.d"}";\n'
        f'Dir::State::Lists "{cache_dir / "lists"}";\n'
        f'Dir::Cache "{cache_dir / "cache"}";\n'
        "#clear Acquire::Languages;\n"
        'Acquire::Languages { "en"; };\n'
    )
    return conf


def download(cache_dir: Path, suite: str = SUITE) -> None:
    """Run ``apt-get -c <private conf> update`` to fetch ``suite``'s Packages, Sources and Translation-en."""
    conf = write_apt_config(cache_dir, suite)
    print(f"Downloading {suite} {COMPONENT} indexes into {cache_dir} ...", flush=True)
    subprocess.run(["apt-get", "-q", "-c", str(conf), "update"], check=True)
    (cache_dir / "extracted.txt").write_text(dt.datetime.now(dt.timezone.utc).isoformat() + "\n")


# ----------------------------------------------------------------------------- parsing


def find_list(cache_dir: Path, pattern: str) -> Path:
    """Return the single downloaded index file in cache_dir/lists matching a glob pattern."""
    matches = sorted(p for p in (cache_dir / "lists").glob(pattern) if p.is_file())
    if not matches:
        sys.exit(f"No index matching {pattern} in {cache_dir / 'lists'}; run without --skip-download")
    return matches[0]


def read_list(path: Path) -> str:
    """Decompress an apt list file (lz4, xz, gz or plain) with apt-helper and return its text."""
    out = subprocess.run([APT_HELPER, "cat-file", str(path)], check=True, capture_output=True)
    return out.stdout.decode("utf-8", errors="replace")


def iter_stanzas(text: str):
    """Yield deb822 stanzas as dicts; continuation lines are kept, joined by newlines."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line
            elif ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            yield fields


def source_map(packages_text: str, sources_text: str) -> tuple[dict[str, str], dict[str, str]]:
    """Map binary package -> source package (Packages first, Sources for other architectures).

    Also returns binary package -> Description-md5 from the Packages index.
    """
    mapping: dict[str, str] = {}
    for fields in iter_stanzas(sources_text):
        for binary in fields.get("Binary", "").replace("\n", " ").split(","):
            if binary.strip():
                mapping.setdefault(binary.strip(), fields["Package"])
    md5: dict[str, str] = {}
    for fields in iter_stanzas(packages_text):
        name = fields["Package"]
        mapping[name] = fields.get("Source", name).split("(")[0].strip() or name
        md5.setdefault(name, fields.get("Description-md5", ""))
    return mapping, md5


def parse_long_description(body: str) -> list[str]:
    """Turn the indented long-description lines into plain-text paragraphs (verbatim lines joined)."""
    paragraphs, current = [], []
    for line in body.split("\n"):
        if line.strip() == ".":
            paragraphs.append(" ".join(current))
            current = []
        elif line.strip():
            current.append(line.strip())
    paragraphs.append(" ".join(current))
    return [" ".join(p.split()) for p in paragraphs if p.strip()]


def load_translations(text: str, md5_by_package: dict[str, str]) -> tuple[list[dict], int]:
    """Parse Translation-en into one record per package; return (records, number of stanzas).

    A package listed with several descriptions (per-architecture variants) keeps the one whose
    Description-md5 is in the Packages index, else the first.
    """
    chosen: dict[str, dict] = {}
    stanzas = 0
    for fields in iter_stanzas(text):
        stanzas += 1
        synopsis, _, body = fields.get("Description-en", "").partition("\n")
        record = {"package": fields["Package"], "synopsis": " ".join(synopsis.split()),
                  "paragraphs": parse_long_description(body), "md5": fields.get("Description-md5")}
        old = chosen.get(record["package"])
        if old is None or (old["md5"] != md5_by_package.get(old["package"])
                           and record["md5"] == md5_by_package.get(record["package"])):
            chosen[record["package"]] = record
    return [chosen[name] for name in sorted(chosen)], stanzas


# ----------------------------------------------------------------------------- filtering


def is_transitional(record: dict) -> bool:
    """True for transitional/dummy packages (by synopsis or by the long description)."""
    return bool(TRANSITIONAL_SYNOPSIS.search(record["synopsis"])
                or any(TRANSITIONAL_LONG.search(p) for p in record["paragraphs"]))


def is_debug(record: dict) -> bool:
    """True for debug-symbol packages (-dbg, -dbgsym, "debugging symbols")."""
    return bool(DEBUG_NAME.search(record["package"]) or DEBUG_SYNOPSIS.search(record["synopsis"]))


def strip_rust_boilerplate(paragraphs: list[str]) -> list[str]:
    """Drop debcargo boilerplate paragraphs ("This package contains the source for the Rust ...")."""
    return [p for p in paragraphs if not RUST_BOILERPLATE.match(p)]


def make_pair(record: dict, source_package: str) -> dict:
    """Build the output pair plus cached token lists (keys starting with '_' are not written)."""
    long_text = " ".join(record["paragraphs"])
    src = f"{record['package']}: {long_text}"
    return {"package": record["package"], "source_package": source_package, "src": src,
            "tgt": record["synopsis"], "_long": long_text, "_first_par": record["paragraphs"][0],
            "_long_tok": tokenize(long_text), "_src_tok": tokenize(src),
            "_tgt_tok": tokenize(record["synopsis"])}


def preference(pair: dict) -> tuple[int, str]:
    """Sort key for which duplicate to keep: shortest package name first (the 'main' package)."""
    return len(pair["package"]), pair["package"]


def dedupe(pairs: list[dict], key) -> list[dict]:
    """Keep the preferred pair of each group with equal key(pair)."""
    seen: set = set()
    kept = []
    for pair in sorted(pairs, key=preference):
        k = key(pair)
        if k not in seen:
            seen.add(k)
            kept.append(pair)
    return sorted(kept, key=lambda p: p["package"])


def _progress(items, desc: str):
    """Wrap an iterable in a tqdm progress bar when tqdm is available."""
    return tqdm(items, desc=desc, mininterval=2.0) if tqdm else items


def filter_records(records: list[dict], sources: dict[str, str], counts: dict) -> list[dict]:
    """Apply all filters; record the count after each stage in counts; return the strict pairs."""
    kept, pairs = [], []
    for reason, test in (("transitional_or_dummy", is_transitional), ("debug_symbols", is_debug)):
        before = len(records)
        records = [r for r in records if not test(r)]
        counts[f"dropped_{reason}"] = before - len(records)
    for record in records:
        paragraphs = strip_rust_boilerplate(record["paragraphs"])
        if paragraphs or not record["paragraphs"]:
            kept.append({**record, "paragraphs": paragraphs})
    counts["dropped_rust_debcargo_boilerplate"] = len(records) - len(kept)
    counts["dropped_no_long_description"] = sum(not r["paragraphs"] for r in kept)
    for record in _progress([r for r in kept if r["paragraphs"]], "tokenising"):
        pairs.append(make_pair(record, sources.get(record["package"], record["package"])))
    counts["after_boilerplate_filters"] = len(pairs)
    return dedupe_and_length_filter(pairs, counts)


def dedupe_and_length_filter(pairs: list[dict], counts: dict) -> list[dict]:
    """Drop duplicate long descriptions, out-of-range lengths, then keep one pair per 20-token prefix."""
    pairs = dedupe(pairs, lambda p: p["_long"])
    counts["after_dedupe_long_description"] = len(pairs)
    pairs = [p for p in pairs if SRC_MIN <= len(p["_src_tok"]) <= SRC_MAX
             and TGT_MIN <= len(p["_tgt_tok"]) <= TGT_MAX]
    counts["after_length_filter"] = len(pairs)
    pairs = dedupe(pairs, lambda p: tuple(p["_long_tok"][:STRICT_PREFIX]))
    counts["strict"] = len(pairs)
    return pairs


# ----------------------------------------------------------------------------- splitting


def bucket(source_package: str) -> int:
    """Stable bucket in [0, HASH_BUCKETS) from the SHA-1 of the source package name."""
    digest = hashlib.sha1(source_package.encode("utf-8")).hexdigest()
    return int(digest[:12], 16) % HASH_BUCKETS


def split_pairs(pairs: list[dict]) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """Split by source-package hash: ~5% test, ~5% valid, rest train, enlarged to the minimum sizes."""
    buckets = [bucket(p["source_package"]) for p in pairs]
    test_cut, valid_cut = HASH_BUCKETS // 20, HASH_BUCKETS // 20
    step = HASH_BUCKETS // 200
    while sum(b < test_cut for b in buckets) < MIN_TEST:
        test_cut += step
    while sum(test_cut <= b < test_cut + valid_cut for b in buckets) < MIN_VALID:
        valid_cut += step
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for pair, b in zip(pairs, buckets):
        name = "test" if b < test_cut else "valid" if b < test_cut + valid_cut else "train"
        splits[name].append(pair)
    for name in splits:
        splits[name].sort(key=lambda p: (p["source_package"], p["package"]))
    return splits, {"test_buckets": test_cut, "valid_buckets": valid_cut, "of": HASH_BUCKETS}


# ----------------------------------------------------------------------------- statistics


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def is_word(token: str) -> bool:
    """True for tokens with at least one letter or digit (punctuation excluded)."""
    return any(ch.isalnum() for ch in token)


def copy_stats(pairs: list[dict]) -> dict[str, float]:
    """Share of target words found in the source tokens, and share of fully copyable targets."""
    copied = total = full = 0
    for pair in pairs:
        source = set(pair["_src_tok"])
        words = [t for t in pair["_tgt_tok"] if is_word(t)]
        hits = sum(t in source for t in words)
        copied, total, full = copied + hits, total + len(words), full + (hits == len(words))
    return {"copy_rate": round(copied / max(total, 1), 4),
            "fully_copyable": round(full / max(len(pairs), 1), 4)}


def length_stats(pairs: list[dict]) -> dict[str, int]:
    """p50/p95 of source and target token counts."""
    src = [len(p["_src_tok"]) for p in pairs]
    tgt = [len(p["_tgt_tok"]) for p in pairs]
    return {"src_p50": percentile(src, 50), "src_p95": percentile(src, 95),
            "tgt_p50": percentile(tgt, 50), "tgt_p95": percentile(tgt, 95)}


def first_sentence(paragraph: str) -> str:
    """First sentence of a paragraph: up to the first [.!?] followed by space and a capital/digit."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", paragraph, maxsplit=1)[0]


def rouge_baselines(pairs: list[dict]) -> dict[str, dict[str, float]]:
    """ROUGE-1/2/L F1 (stemmed, on lowercased token text) of lead-8 and first-sentence baselines."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    systems = {
        f"lead_{LEAD_TOKENS}_tokens": lambda p: p["_long_tok"][:LEAD_TOKENS],
        "first_sentence": lambda p: tokenize(first_sentence(p["_first_par"])),
    }
    results = {}
    for name, system in systems.items():
        totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
        for pair in pairs:
            scores = scorer.score(" ".join(pair["_tgt_tok"]), " ".join(system(pair)))
            for key in totals:
                totals[key] += scores[key].fmeasure
        results[name] = {k: round(v / max(len(pairs), 1), 4) for k, v in totals.items()}
    return results


def corpus_stats(splits: dict[str, list[dict]]) -> dict:
    """Per-split counts, lengths, copy statistics and test-split ROUGE baselines."""
    everything = [p for split in splits.values() for p in split]
    return {
        "split_pairs": {name: len(split) for name, split in splits.items()},
        "split_source_packages": {name: len({p["source_package"] for p in split})
                                  for name, split in splits.items()},
        "lengths_all": length_stats(everything),
        "lengths_by_split": {name: length_stats(split) for name, split in splits.items()},
        "copy_all": copy_stats(everything),
        "copy_test": copy_stats(splits["test"]),
        "synopsis_starts_lowercase": round(
            sum(p["tgt"][:1].islower() for p in everything) / len(everything), 4),
        "test_baselines_rouge_f1": rouge_baselines(splits["test"]),
    }


# ----------------------------------------------------------------------------- output


def write_split(path: Path, pairs: list[dict]) -> int:
    """Write a split's pairs (byte-reproducible gzip); return the file size."""
    return write_jsonl_gz(path, pairs, ("package", "source_package", "src", "tgt"))


def index_date(cache_dir: Path) -> str:
    """The Date: field of the downloaded bookworm InRelease file (empty if absent)."""
    for path in (cache_dir / "lists").glob(f"*_dists_{SUITE}_InRelease"):
        match = re.search(r"^Date: (.+)$", path.read_text(errors="replace"), re.M)
        if match:
            return match.group(1).strip()
    return ""


def write_license(out_dir: Path, provenance: dict) -> None:
    """Write LICENSE.md with attribution, provenance and regeneration instructions."""
    (out_dir / "LICENSE.md").write_text(f"""# Debian package descriptions (bookworm main)

The files in this directory are derived from Debian package descriptions from Debian {SUITE}
{COMPONENT}. Each description is part of its package and is distributed under that package's own
DFSG-free licence (see `/usr/share/doc/<package>/copyright` or
https://metadata.ftp-master.debian.org/changelogs/ for each package listed in the `package` field).
Debian is a registered trademark of Software in the Public Interest, Inc.

- Source: the i18n `Translation-en` index of Debian {SUITE} {COMPONENT}
  (`{provenance['mirror']}/dists/{SUITE}/{COMPONENT}/i18n/Translation-en`), with the `Packages` and
  `Sources` indexes of the same suite used only to map binary packages to source packages.
- Release file date: {provenance['index_date'] or 'unknown'}
- Date of extraction: {provenance['extracted']}
- Fields: `package` (binary package), `source_package`, `src` ("<package>: <long description>"),
  `tgt` (the synopsis as written by the maintainer).

Regenerate with `python data/prepare_debian.py` from the repository root (see the script's
docstring for options; the raw indexes are cached in `data/raw/debian/`, which is not committed).
""")


def provenance_info(cache_dir: Path, translation_path: Path) -> dict:
    """Mirror, Release date and extraction date (recorded in cache_dir/extracted.txt at download)."""
    stamp = cache_dir / "extracted.txt"
    extracted = stamp.read_text().strip()[:10] if stamp.exists() else dt.date.today().isoformat()
    return {"mirror": find_mirror()[0], "index_date": index_date(cache_dir),
            "extracted": extracted, "translation_file": translation_path.name}


def print_stats(stats: dict, sizes: dict[str, int]) -> None:
    """Print the statistics in a readable form."""
    print("\nFiltering stages:")
    for key, value in stats["counts"].items():
        print(f"  {key:38s} {value:>7,}")
    print("Splits (pairs / source packages): " + ", ".join(
        f"{k} {v:,} / {stats['split_source_packages'][k]:,}" for k, v in stats["split_pairs"].items()))
    print(f"Lengths (tokens): {stats['lengths_all']}")
    print(f"Copy (all): {stats['copy_all']}   copy (test): {stats['copy_test']}")
    print(f"Synopses starting lowercase: {stats['synopsis_starts_lowercase']:.1%}")
    for name, scores in stats["test_baselines_rouge_f1"].items():
        print(f"Test baseline {name:18s} " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    print("Output sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


def main(argv: list[str] | None = None) -> None:
    """Download (unless skipped), process, split, and write the corpus and its statistics."""
    args = parse_args(argv)
    cache_dir, out_dir = args.cache_dir.resolve(), args.out_dir.resolve()
    if not args.skip_download:
        download(cache_dir)
    translation = find_list(cache_dir, f"*_dists_{SUITE}_{COMPONENT}_i18n_Translation-en*")
    sources, md5 = source_map(
        read_list(find_list(cache_dir, f"*_dists_{SUITE}_{COMPONENT}_binary-*_Packages*")),
        read_list(find_list(cache_dir, f"*_dists_{SUITE}_{COMPONENT}_source_Sources*")))
    records, stanzas = load_translations(read_list(translation), md5)
    counts = {"translation_stanzas": stanzas, "unique_packages": len(records)}
    counts["packages_without_source_mapping"] = sum(r["package"] not in sources for r in records)
    splits, cuts = split_pairs(filter_records(records, sources, counts))
    stats = {"counts": counts, "split_buckets": cuts, **corpus_stats(splits),
             "provenance": provenance_info(cache_dir, translation)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, pairs in splits.items():
        write_split(out_dir / f"{name}.jsonl.gz", pairs)
    sizes = {f"{n}.jsonl.gz": (out_dir / f"{n}.jsonl.gz").stat().st_size for n in splits}
    sizes["total"] = sum(sizes.values())
    stats["output_bytes"] = sizes
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    write_license(out_dir, stats["provenance"])
    print_stats(stats, sizes)


if __name__ == "__main__":
    main()
