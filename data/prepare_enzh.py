"""Prepare the English -> Chinese (simplified) translation corpus from Debian packages.

Three sources, all fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``:

- LibreOffice help (``libreoffice-help-en-us`` / ``-zh-cn``): the HTML pages of both languages share
  file paths and paragraph ids (``par_id...``, ``hd_id...``), so paragraphs align exactly by
  (file, id, occurrence).
- LibreOffice UI catalogs (``libreoffice-l10n-zh-cn``): gettext .mo files whose msgid is
  ``context\\x04English`` and whose msgstr is the Chinese; accelerator markers are removed.
- Debian Reference (``debian-reference-en`` / ``-zh-cn``): DocBook HTML; a page is aligned block by
  block only when both languages have the identical sequence of block elements, else it is skipped.

Pairs are filtered by length, deduplicated (one pair per English source), split by a stable hash
of the document (help file / .mo catalog / Debian Reference page) and written as
``{train,valid,test}.jsonl.gz`` with ``stats.json`` and ``LICENSE.md`` in the output directory.

Usage (from the repository root)::

    python data/prepare_enzh.py [--cache-dir data/raw/enzh] [--out-dir data/enzh] [--skip-download]
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import gettext
import hashlib
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser, write_jsonl_gz  # noqa: E402
from gen_models.text import tokenize  # noqa: E402

PACKAGES = {
    "help_en": "libreoffice-help-en-us",
    "help_zh": "libreoffice-help-zh-cn",
    "ui_zh": "libreoffice-l10n-zh-cn",
    "debref_en": "debian-reference-en",
    "debref_zh": "debian-reference-zh-cn",
}
HELP_EN_DIR = "usr/share/libreoffice/help/en-US"
HELP_ZH_DIR = "usr/share/libreoffice/help/zh-CN"
UI_MO_DIR = "usr/lib/libreoffice/program/resource/zh_CN/LC_MESSAGES"
DEBREF_DIR = "usr/share/debian-reference"

ORIGINS = ("help", "ui", "debref")
SRC_MIN, SRC_MAX = 3, 50
TGT_MIN, TGT_MAX = 1, 80
HASH_BUCKETS = 10000
TEST_SHARE, VALID_SHARE = 0.05, 0.04
MIN_TEST, MIN_VALID = 1500, 1000
MAX_TOTAL_BYTES = 12 * 1024 * 1024
VOCAB_SIZE = 20000

HELP_ID = re.compile(r"^(par|hd)_id")
LATIN = re.compile(r"[a-z0-9]")
# "(A)", "(~A)", "(_A)", "(_#)" accelerator suffixes of translated UI strings (with the space before them).
ACCEL_SUFFIX = re.compile(r"\s*\((?P<marker>[~_]?)(?P<key>[^\s)])\)")
# Placeholders of LibreOffice UI strings: %1, %s, %PRODUCTNAME, $(ARG1), $name$, #1, {0}, <tags>.
PLACEHOLDER = re.compile(r"%[A-Za-z0-9_]+%?|\$\([A-Za-z0-9_]+\)|\$[A-Za-z0-9_]+\$?|#\d+|\{[^}]*\}|<[^>]*>")
# Debian Reference: block elements whose innermost occurrences are the alignment units.
DEBREF_BLOCKS = {"p", "li", "dt", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "caption", "title"}
BLOCK_TAGS = DEBREF_BLOCKS | {"div", "table", "tr", "ul", "ol", "dl", "dd", "pre", "blockquote", "br"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line options."""
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/enzh", REPO_ROOT / "data/enzh",
                         "downloaded .deb files and their unpacked trees")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- download


def deb_file(cache_dir: Path, package: str) -> Path:
    """Return the downloaded .deb of a package in cache_dir/debs (exits if missing)."""
    matches = sorted((cache_dir / "debs").glob(f"{package}_*.deb"))
    if not matches:
        sys.exit(f"No {package}_*.deb in {cache_dir / 'debs'}; run without --skip-download")
    return matches[-1]


def apt_download(debs_dir: Path, packages: list[str]) -> None:
    """Run ``apt-get download`` in debs_dir; on failure run ``apt-get update`` once and retry."""
    cmd = ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", *packages]
    if subprocess.run(cmd, cwd=debs_dir).returncode != 0:
        subprocess.run(["apt-get", "-q", "update"], check=True)
        subprocess.run(cmd, cwd=debs_dir, check=True)


def download(cache_dir: Path) -> None:
    """Fetch the current .deb of every package (replacing older ones) and record the date."""
    debs_dir = cache_dir / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES.values():
        for old in debs_dir.glob(f"{package}_*.deb"):
            old.unlink()
    print(f"Downloading {len(PACKAGES)} packages into {debs_dir} ...", flush=True)
    apt_download(debs_dir, list(PACKAGES.values()))
    (cache_dir / "extracted.txt").write_text(dt.datetime.now(dt.timezone.utc).isoformat() + "\n")
    shutil.rmtree(cache_dir / "unpacked", ignore_errors=True)


def unpack(cache_dir: Path) -> dict[str, Path]:
    """Unpack each .deb into cache_dir/unpacked/<package> (once); return key -> unpacked root."""
    roots = {}
    for key, package in PACKAGES.items():
        root = cache_dir / "unpacked" / package
        stamp = root / ".unpacked-from"
        deb = deb_file(cache_dir, package)
        if not stamp.exists() or stamp.read_text() != deb.name:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.write_text(deb.name)
        roots[key] = root
    return roots


def package_versions(cache_dir: Path) -> dict[str, str]:
    """Package name -> Debian version, read from the downloaded .deb control fields."""
    versions = {}
    for package in PACKAGES.values():
        out = subprocess.run(["dpkg-deb", "-f", str(deb_file(cache_dir, package)), "Version"],
                             check=True, capture_output=True, text=True)
        versions[package] = out.stdout.strip()
    return versions


# ----------------------------------------------------------------------------- text helpers


def clean(text: str) -> str:
    """Drop control/format characters (zero-width spaces, soft hyphens) and collapse whitespace."""
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
    return " ".join(text.split())


def element_text(el) -> str:
    """Visible text of an lxml element: scripts dropped, one variant of each switch, blocks spaced.

    LibreOffice help renders system/application switches (``class="switch"`` / ``"switchinline"``)
    as hidden alternatives that JavaScript chooses between; the ``default*`` variant (else the
    first one) is kept, as a reader on Linux would see it.
    """
    parts: list[str] = []

    def walk(node) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in ("script", "style", "noscript") or not tag:
            return
        if tag in BLOCK_TAGS:
            parts.append(" ")
        if node.text:
            parts.append(node.text)
        children = [c for c in node if isinstance(c.tag, str)]
        if node.get("class") in ("switch", "switchinline") and children:
            default = [c for c in children if (c.get("id") or "").startswith("default")]
            children = default[:1] or children[:1]
            for child in children:
                walk(child)
        else:
            for child in node:
                walk(child)
                if child.tail:
                    parts.append(child.tail)
        if tag in BLOCK_TAGS:
            parts.append(" ")

    walk(el)
    return clean("".join(parts))


def parse_html(path: Path):
    """Parse an HTML/XHTML file with lxml's HTML parser (tags without namespaces)."""
    import lxml.html

    return lxml.html.fromstring(path.read_bytes())


# ----------------------------------------------------------------------------- LibreOffice help


def help_paragraphs(path: Path) -> dict[tuple[str, int], str]:
    """(id, occurrence) -> text of every element with a par_id/hd_id in one help page."""
    seen: collections.Counter = collections.Counter()
    paragraphs = {}
    for el in parse_html(path).iter():
        ident = el.get("id") if isinstance(el.tag, str) else None
        if ident and HELP_ID.match(ident):
            paragraphs[(ident, seen[ident])] = element_text(el)
            seen[ident] += 1
    return paragraphs


def keep_translated(pairs: list[dict], texts: list[tuple[str, str]], origin: str, doc: str) -> tuple[int, int]:
    """Append the (English, Chinese) paragraphs of one document that are both present and really
    translated; return (aligned, dropped because the Chinese equals the English)."""
    aligned = same = 0
    for index, (en, zh) in enumerate(texts):
        if not en or not zh:
            continue
        aligned += 1
        if zh == en:
            same += 1
            continue
        pairs.append({"origin": origin, "doc": doc, "pos": index, "src": en, "tgt": zh})
    return aligned, same


def help_pairs(en_root: Path, zh_root: Path, counts: dict) -> list[dict]:
    """Align help paragraphs of both languages by (relative path, id, occurrence)."""
    pairs = []
    files = sorted(p.relative_to(en_root).as_posix() for p in (en_root / "text").rglob("*.html"))
    aligned = same = missing_files = 0
    for rel in files:
        zh_path = zh_root / rel
        if not zh_path.exists():
            missing_files += 1
            continue
        en_pars, zh_pars = help_paragraphs(en_root / rel), help_paragraphs(zh_path)
        texts = [(en_pars[key], zh_pars.get(key, "")) for key in en_pars]
        n_aligned, n_same = keep_translated(pairs, texts, "help", rel)
        aligned, same = aligned + n_aligned, same + n_same
    counts.update({"help_files": len(files), "help_files_missing_zh": missing_files,
                   "help_aligned": aligned, "help_dropped_same_as_english": same,
                   "help_pairs": len(pairs)})
    return pairs


# ----------------------------------------------------------------------------- LibreOffice UI


def strip_accelerators(en: str, zh: str) -> tuple[str, str]:
    """Remove accelerator (mnemonic) markers from a UI string pair.

    Chinese: "(~A)" / "(_A)" suffixes are dropped; a bare "(A)" only when the English has a marker
    before that letter (so that e.g. "「黑色」(K) 值" survives). The key letter of the suffix says
    which English marker to drop ("Pa~ges:" with "页面(~G):"). Then on both sides "~" before a
    word character is dropped, and a "_" outside placeholders (%FILE_NAME, $error_message$) when it
    is the only one in the string ("P_DF/A", "线条 _1:").
    """
    for match in reversed(list(ACCEL_SUFFIX.finditer(zh))):
        marker, key = match["marker"], match["key"]
        en_marker = re.search(rf"[~_](?={re.escape(key)})", en, re.I)
        if marker or (en_marker and key.isalnum()):
            zh = zh[:match.start()] + zh[match.end():]
            if en_marker:
                en = en[:en_marker.start()] + en[en_marker.end():]
    return _drop_markers(en), _drop_markers(zh)


def _drop_markers(text: str) -> str:
    """Drop "~" before word characters and a single "_" mnemonic outside placeholders."""
    text = re.sub(r"~(?=\w)", "", text)
    pieces = PLACEHOLDER.split(text)
    placeholders = PLACEHOLDER.findall(text)
    outside = [i for i, piece in enumerate(pieces) for m in re.finditer(r"_(?=\S)", piece)]
    if len(outside) == 1 and sum(piece.count("_") for piece in pieces) == 1:
        pieces[outside[0]] = pieces[outside[0]].replace("_", "", 1)
    return "".join(p + (placeholders[i] if i < len(placeholders) else "") for i, p in enumerate(pieces))


def only_placeholders(text: str) -> bool:
    """True when nothing but placeholders, digits and punctuation is left."""
    return not re.search(r"[^\W\d_]", PLACEHOLDER.sub(" ", text))


def ui_pairs(mo_dir: Path, counts: dict) -> list[dict]:
    """Read every .mo catalog; msgid is "context\\x04English", msgstr the Chinese."""
    pairs = []
    entries = plural = empty = same = placeholder = 0
    for path in sorted(mo_dir.glob("*.mo")):
        with open(path, "rb") as handle:
            catalog = gettext.GNUTranslations(handle)._catalog
        for index, (key, value) in enumerate(sorted(catalog.items(), key=lambda kv: str(kv[0]))):
            if key == "":
                continue  # the header
            entries += 1
            if isinstance(key, tuple):  # plural forms: (msgid, n); Chinese has one form
                plural += 1
                if key[1] != 0:
                    continue
                key = key[0]
            en, zh = strip_accelerators(key.rpartition("\x04")[2], value)
            en, zh = clean(en), clean(zh)
            if not en or not zh:
                empty += 1
            elif only_placeholders(en):
                placeholder += 1
            elif zh == en:
                same += 1
            else:
                pairs.append({"origin": "ui", "doc": path.name, "pos": index, "src": en, "tgt": zh})
    counts.update({"ui_catalogs": len(list(mo_dir.glob("*.mo"))), "ui_entries": entries,
                   "ui_plural_entries": plural, "ui_dropped_empty": empty,
                   "ui_dropped_placeholders_only": placeholder, "ui_dropped_same_as_english": same,
                   "ui_pairs": len(pairs)})
    return pairs


# ----------------------------------------------------------------------------- Debian Reference


def debref_units(path: Path) -> list[tuple[str, str]]:
    """(signature, text) of the innermost block elements of a page, navigation excluded."""
    root = parse_html(path)
    for nav in root.xpath('//div[@class="navheader" or @class="navfooter"]'):
        nav.getparent().remove(nav)
    units = []
    for el in root.iter(*DEBREF_BLOCKS):
        if el.xpath("ancestor::pre") or any(d is not el for d in el.iter(*DEBREF_BLOCKS)):
            continue
        units.append((f"{el.tag}.{el.get('class', '')}", element_text(el)))
    return units


def debref_pairs(en_dir: Path, zh_dir: Path, counts: dict) -> list[dict]:
    """Pair blocks position by position on pages whose block signatures agree; skip the others."""
    pairs, skipped = [], []
    pages = sorted(en_dir.glob("*.en.html"))
    aligned = same = 0
    for en_path in pages:
        name = en_path.name.replace(".en.html", ".html")
        zh_path = zh_dir / en_path.name.replace(".en.html", ".zh-cn.html")
        en_units = debref_units(en_path)
        zh_units = debref_units(zh_path) if zh_path.exists() else []
        if [s for s, _ in en_units] != [s for s, _ in zh_units]:
            skipped.append(f"{name} ({len(en_units)} vs {len(zh_units)} blocks)")
            continue
        texts = [(en, zh) for (_, en), (_, zh) in zip(en_units, zh_units)]
        n_aligned, n_same = keep_translated(pairs, texts, "debref", name)
        aligned, same = aligned + n_aligned, same + n_same
    counts.update({"debref_pages": len(pages), "debref_pages_skipped": skipped,
                   "debref_aligned": aligned, "debref_dropped_same_as_english": same,
                   "debref_pairs": len(pairs)})
    return pairs


# ----------------------------------------------------------------------------- filtering


def length_filter(pairs: list[dict], counts: dict) -> list[dict]:
    """Tokenise both sides (cached under _src_tok/_tgt_tok) and keep pairs inside the length limits."""
    kept = []
    for pair in pairs:
        pair["_src_tok"], pair["_tgt_tok"] = tokenize(pair["src"]), tokenize(pair["tgt"])
        if SRC_MIN <= len(pair["_src_tok"]) <= SRC_MAX and TGT_MIN <= len(pair["_tgt_tok"]) <= TGT_MAX:
            kept.append(pair)
    counts["after_length_filter"] = _by_origin(kept)
    return kept


def preference(pair: dict) -> tuple:
    """Which instance to keep among duplicates: help before ui before debref, then document order."""
    return ORIGINS.index(pair["origin"]), pair["doc"], pair["pos"]


def dedupe(pairs: list[dict], counts: dict) -> list[dict]:
    """Drop exact (src, tgt) duplicates, then keep one pair per English source.

    For an English source with several translations the most frequent one wins (ties: the
    preferred instance), so that the kept pair is the consensus translation.
    """
    pairs = sorted(pairs, key=preference)
    first: dict[tuple[str, str], dict] = {}
    votes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for pair in pairs:
        first.setdefault((pair["src"], pair["tgt"]), pair)
        votes[pair["src"]][pair["tgt"]] += 1
    counts["after_exact_dedupe"] = _by_origin(first.values())
    kept = []
    for pair in first.values():
        # max() returns the first of equal counts, i.e. the preferred instance (insertion order)
        best, _ = max(votes[pair["src"]].items(), key=lambda kv: kv[1])
        if best == pair["tgt"]:
            kept.append(pair)
    counts["after_one_per_source"] = _by_origin(kept)
    return kept


def _by_origin(pairs) -> dict[str, int]:
    """Count pairs per origin (plus the total)."""
    tally = collections.Counter(p["origin"] for p in pairs)
    return {**{o: tally[o] for o in ORIGINS}, "total": sum(tally.values())}


# ----------------------------------------------------------------------------- splitting


def bucket(doc: str) -> int:
    """Stable bucket in [0, HASH_BUCKETS) from the SHA-1 of the document name."""
    return int(hashlib.sha1(doc.encode("utf-8")).hexdigest()[:12], 16) % HASH_BUCKETS


def assign_docs(sizes: dict[tuple[str, str], int]) -> dict[tuple[str, str], str]:
    """Map each (origin, doc) to a split, in SHA-1 hash order of the document, per origin.

    For every origin, documents are taken in hash order into test until it holds TEST_SHARE of that
    origin's pairs, then into valid until VALID_SHARE; a document that would overshoot twice the
    target is passed over (so that one huge catalog never becomes the whole test set of its origin).
    If the test/valid splits are still below MIN_TEST/MIN_VALID, further help files (the finest
    documents) are added in hash order.
    """
    order = sorted(sizes, key=lambda d: (bucket(f"{d[0]}:{d[1]}"), d))
    split_of: dict[tuple[str, str], str] = {}
    for origin in ORIGINS:
        docs = [d for d in order if d[0] == origin]
        total = sum(sizes[d] for d in docs)
        for name, share in (("test", TEST_SHARE), ("valid", VALID_SHARE)):
            target, got = share * total, 0
            for doc in docs:
                if got >= target:
                    break
                if doc not in split_of and got + sizes[doc] <= 2 * target:
                    split_of[doc] = name
                    got += sizes[doc]
    for name, minimum in (("test", MIN_TEST), ("valid", MIN_VALID)):
        for doc in order:
            if sum(n for d, n in sizes.items() if split_of.get(d) == name) >= minimum:
                break
            if doc[0] == "help" and doc not in split_of:
                split_of[doc] = name
    return {doc: split_of.get(doc, "train") for doc in order}


def split_pairs(pairs: list[dict]) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Split by document (help file, .mo catalog, Debian Reference page), never by rows."""
    sizes = collections.Counter((p["origin"], p["doc"]) for p in pairs)
    split_of = assign_docs(sizes)
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for pair in pairs:
        splits[split_of[(pair["origin"], pair["doc"])]].append(pair)
    for name in splits:
        splits[name].sort(key=preference)
    held_out = {f"{name}_{origin}_docs": sorted(d for (o, d), s in split_of.items()
                                                if s == name and o == origin)
                for name in ("test", "valid") for origin in ("ui", "debref")}
    return splits, held_out


# ----------------------------------------------------------------------------- statistics


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (q in [0, 100])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def length_stats(pairs: list[dict]) -> dict[str, int]:
    """p50/p95 of English and Chinese token counts."""
    src = [len(p["_src_tok"]) for p in pairs]
    tgt = [len(p["_tgt_tok"]) for p in pairs]
    return {"en_p50": percentile(src, 50), "en_p95": percentile(src, 95),
            "zh_p50": percentile(tgt, 50), "zh_p95": percentile(tgt, 95)}


def latin_stats(pairs: list[dict]) -> dict[str, float]:
    """Share of target tokens that are Latin-script words, and share of those found in the source."""
    total = latin = copied = 0
    for pair in pairs:
        source = set(pair["_src_tok"])
        words = [t for t in pair["_tgt_tok"] if LATIN.search(t)]
        total, latin = total + len(pair["_tgt_tok"]), latin + len(words)
        copied += sum(t in source for t in words)
    return {"tgt_latin_token_share": round(latin / max(total, 1), 4),
            "latin_tokens_in_source": round(copied / max(latin, 1), 4),
            "pairs_with_latin_in_tgt": round(
                sum(any(LATIN.search(t) for t in p["_tgt_tok"]) for p in pairs) / max(len(pairs), 1), 4)}


def vocab_stats(splits: dict[str, list[dict]]) -> dict:
    """Vocabulary sizes and test-target OOV rate under a 20k vocabulary from train src+tgt."""
    freq: collections.Counter = collections.Counter()
    for pair in splits["train"]:
        freq.update(pair["_src_tok"])
        freq.update(pair["_tgt_tok"])
    vocab = {t for t, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:VOCAB_SIZE]}
    en_words = {t for p in splits["train"] for t in p["_src_tok"] if any(c.isalnum() for c in t)}
    zh_chars = {t for p in splits["train"] for t in p["_tgt_tok"] if "\u3400" <= t <= "\u9fff"}
    oov = copyable = total = 0
    for pair in splits["test"]:
        source = set(pair["_src_tok"])
        for tok in pair["_tgt_tok"]:
            total += 1
            if tok not in vocab:
                oov += 1
                copyable += tok in source
    return {"train_types_total": len(freq), "train_en_word_types": len(en_words),
            "train_zh_char_types": len(zh_chars), "shared_vocab_size": len(vocab),
            "test_tgt_oov_rate": round(oov / max(total, 1), 4),
            "test_tgt_oov_in_source": round(copyable / max(oov, 1), 4)}


def copy_baseline(pairs: list[dict]) -> dict[str, float]:
    """BLEU (sacrebleu, tokenize="zh") and chrF of the "output = English source" baseline."""
    import sacrebleu

    hyps, refs = [p["src"] for p in pairs], [[p["tgt"] for p in pairs]]
    return {"bleu_zh": round(sacrebleu.corpus_bleu(hyps, refs, tokenize="zh").score, 2),
            "chrf": round(sacrebleu.corpus_chrf(hyps, refs).score, 2)}


def corpus_stats(splits: dict[str, list[dict]]) -> dict:
    """Counts per origin and split, lengths, Latin-script statistics, vocabulary, test baseline."""
    everything = [p for split in splits.values() for p in split]
    return {
        "split_pairs": {name: _by_origin(split) for name, split in splits.items()},
        "split_docs": {name: len({(p["origin"], p["doc"]) for p in split}) for name, split in splits.items()},
        "lengths_all": length_stats(everything),
        "lengths_by_origin": {o: length_stats([p for p in everything if p["origin"] == o])
                              for o in ORIGINS if any(p["origin"] == o for p in everything)},
        "latin_all": latin_stats(everything),
        "latin_test": latin_stats(splits["test"]),
        "vocab": vocab_stats(splits),
        "test_baseline_copy_source": copy_baseline(splits["test"]),
    }


# ----------------------------------------------------------------------------- output


def write_split(path: Path, pairs: list[dict]) -> int:
    """Write a split's pairs (byte-reproducible gzip); return the file size."""
    return write_jsonl_gz(path, pairs, ("src", "tgt", "origin", "doc"))


def write_outputs(out_dir: Path, splits: dict[str, list[dict]]) -> dict[str, int]:
    """Write the splits; if they exceed the size budget, cap train (keeping its first rows by hash)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {f"{n}.jsonl.gz": write_split(out_dir / f"{n}.jsonl.gz", s) for n, s in splits.items()}
    while sum(sizes.values()) > MAX_TOTAL_BYTES:
        keep = int(len(splits["train"]) * 0.9)
        by_hash = sorted(splits["train"], key=lambda p: hashlib.sha1(p["src"].encode()).hexdigest())
        splits["train"] = by_hash[:keep]
        splits["train"].sort(key=preference)
        sizes["train.jsonl.gz"] = write_split(out_dir / "train.jsonl.gz", splits["train"])
    sizes["total"] = sum(sizes.values())
    return sizes


def write_license(out_dir: Path, provenance: dict) -> None:
    """Write LICENSE.md with attribution, package versions and regeneration instructions."""
    versions = "\n".join(f"  - `{pkg}` {ver}" for pkg, ver in provenance["packages"].items())
    (out_dir / "LICENSE.md").write_text(f"""# English -> Chinese (simplified) translation pairs

Derived from Debian bookworm packages (fetched with `apt-get download`, unpacked with `dpkg-deb -x`):

{versions}

- `origin: "help"`: LibreOffice help pages (English and Simplified Chinese), aligned by file path
  and paragraph id. `origin: "ui"`: LibreOffice user-interface translations (gettext catalogs;
  accelerator markers removed). Both: Mozilla Public License 2.0 (MPL-2.0), copyright The Document
  Foundation, LibreOffice contributors and translators; some files also under Apache-2.0 (see
  `/usr/share/doc/libreoffice-help-en-us/copyright`). https://www.libreoffice.org/
- `origin: "debref"`: Debian Reference by Osamu Aoki and its translators, GPL-2+ (GNU General
  Public License, version 2 or later; see `/usr/share/doc/debian-reference-en/copyright`).
  Pairs derived from it are under the GPL-2+ as well.
- Date of extraction: {provenance['extracted']}
- Fields: `src` (English), `tgt` (Chinese), `origin`, `doc` (help file path, .mo catalog, or
  Debian Reference page).

Regenerate with `python data/prepare_enzh.py` from the repository root (options:
`--cache-dir data/raw/enzh --out-dir data/enzh --skip-download`; the downloaded packages are cached
in `data/raw/enzh/`, which is not committed).
""")


def print_stats(stats: dict) -> None:
    """Print the statistics in a readable form."""
    counts = stats["counts"]
    print("\nExtraction:")
    for key, value in counts.items():
        if not isinstance(value, dict):
            print(f"  {key:34s} {value if isinstance(value, list) else f'{value:>7,}'}")
    for stage in ("after_length_filter", "after_exact_dedupe", "after_one_per_source"):
        print(f"  {stage:34s} " + "  ".join(f"{k} {v:,}" for k, v in counts[stage].items()))
    print("Splits:")
    for name, tally in stats["split_pairs"].items():
        print(f"  {name:6s} " + "  ".join(f"{k} {v:,}" for k, v in tally.items())
              + f"   ({stats['split_docs'][name]:,} docs)")
    for key, docs in stats["held_out_docs"].items():
        print(f"  {key:18s} {', '.join(docs) or '-'}")
    print(f"Lengths (tokens): {stats['lengths_all']}")
    for origin, lengths in stats["lengths_by_origin"].items():
        print(f"  {origin:6s} {lengths}")
    print(f"Latin-script target tokens (all): {stats['latin_all']}")
    print(f"Latin-script target tokens (test): {stats['latin_test']}")
    print(f"Vocabulary: {stats['vocab']}")
    print(f"Test baseline copy-source: {stats['test_baseline_copy_source']}")
    print("Output sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in stats["output_bytes"].items()))


def main(argv: list[str] | None = None) -> None:
    """Download (unless skipped), extract, filter, split, and write the corpus and its statistics."""
    args = parse_args(argv)
    cache_dir, out_dir = args.cache_dir.resolve(), args.out_dir.resolve()
    if not args.skip_download:
        download(cache_dir)
    roots = unpack(cache_dir)
    counts: dict = {}
    pairs = (help_pairs(roots["help_en"] / HELP_EN_DIR, roots["help_zh"] / HELP_ZH_DIR, counts)
             + ui_pairs(roots["ui_zh"] / UI_MO_DIR, counts)
             + debref_pairs(roots["debref_en"] / DEBREF_DIR, roots["debref_zh"] / DEBREF_DIR, counts))
    splits, held_out = split_pairs(dedupe(length_filter(pairs, counts), counts))
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = write_outputs(out_dir, splits)
    stamp = cache_dir / "extracted.txt"
    extracted = stamp.read_text().strip()[:10] if stamp.exists() else dt.date.today().isoformat()
    provenance = {"packages": package_versions(cache_dir), "extracted": extracted}
    stats = {"counts": counts, "held_out_docs": held_out, **corpus_stats(splits),
             "output_bytes": sizes, "provenance": provenance}
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    write_license(out_dir, provenance)
    print_stats(stats)


if __name__ == "__main__":
    main()
