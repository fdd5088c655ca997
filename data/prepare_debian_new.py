"""An evaluation slice of Debian packages that appeared after bookworm (trixie main), never trained on.

The Debian synopsis models train on bookworm main (``data/prepare_debian.py``). Their test split is
held out by source package, but it is the same release: the same maintainers' habits, the same
package families. This slice is what a user brings later: packages of trixie main whose *binary*
name bookworm main does not have (``new.jsonl.gz``; ``new_source`` marks those whose source package
is new too, a stricter slice), with the same filters as the corpus, and with any pair whose long
description a bookworm training pair already has dropped. 1,000 pairs are kept, chosen
by a stable hash of the package name.

    python data/prepare_debian_new.py [--cache-dir data/raw/debian-trixie] [--out-dir data/debian-new] [--skip-download]

Then ``python -m training.evaluate_debian --split new`` scores the models on it (no model card or
shipped metric is written from it). Evaluation only: nothing trains on this directory.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from data.common import prep_parser, write_jsonl_gz  # noqa: E402
from data.prepare_debian import (  # noqa: E402
    COMPONENT,
    SUITE,
    download,
    filter_records,
    find_list,
    load_translations,
    provenance_info,
    read_list,
    source_map,
)
from training.evaluation import read_rows  # noqa: E402

NEW_SUITE = "trixie"
SIZE = 1000
FIELDS = ("package", "source_package", "new_source", "src", "tgt")


def suite_indexes(cache_dir: Path, suite: str, skip_download: bool) -> tuple[str, str, str]:
    """(Packages, Sources, Translation-en) text of ``suite`` main, downloaded into ``cache_dir``."""
    if not skip_download:
        download(cache_dir, suite)
    prefix = f"*_dists_{suite}_{COMPONENT}_"
    return (read_list(find_list(cache_dir, prefix + "binary-*_Packages*")),
            read_list(find_list(cache_dir, prefix + "source_Sources*")),
            read_list(find_list(cache_dir, prefix + "i18n_Translation-en*")))


def stable_order(package: str) -> str:
    """A fixed pseudo-random order of package names."""
    return hashlib.sha1(f"new:{package}".encode("utf-8")).hexdigest()


def new_pairs(cache_dir: Path, skip_download: bool) -> tuple[list[dict], dict]:
    """Filtered trixie pairs whose binary package bookworm lacks, minus those repeating a training description."""
    old_packages, old_sources, _ = suite_indexes(cache_dir / SUITE, SUITE, skip_download)
    old_binaries, _ = source_map(old_packages, old_sources)
    old_source_names = set(old_binaries.values())
    packages, sources_text, translation = suite_indexes(cache_dir / NEW_SUITE, NEW_SUITE, skip_download)
    sources, md5 = source_map(packages, sources_text)
    records, _ = load_translations(translation, md5)
    counts = {"trixie_packages": len(records)}
    new_records = [r for r in records if r["package"] not in old_binaries]
    counts["binary_name_not_in_bookworm"] = len(new_records)
    pairs = filter_records(new_records, sources, counts)
    train = read_rows(REPO_ROOT / "data" / "debian", "train")
    seen_long = {row["src"].split(": ", 1)[-1] for row in train}
    pairs = [p for p in pairs if p["_long"] not in seen_long]
    counts["not_repeating_a_training_pair"] = len(pairs)
    for pair in pairs:
        pair["new_source"] = pair["source_package"] not in old_source_names
    counts["new_source_package"] = sum(p["new_source"] for p in pairs)
    return pairs, counts


def main() -> None:
    parser = prep_parser(__doc__, REPO_ROOT / "data/raw/debian-new", REPO_ROOT / "data/debian-new",
                         "private apt state and downloaded bookworm and trixie indexes")
    args = parser.parse_args()
    cache_dir, out_dir = args.cache_dir.resolve(), args.out_dir.resolve()
    pairs, counts = new_pairs(cache_dir, args.skip_download)
    chosen = sorted(sorted(pairs, key=lambda p: stable_order(p["package"]))[:SIZE], key=lambda p: p["package"])
    counts["kept"] = len(chosen)
    counts["kept_new_source"] = sum(p["new_source"] for p in chosen)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = write_jsonl_gz(out_dir / "new.jsonl.gz", chosen, FIELDS)
    translation = find_list(cache_dir / NEW_SUITE, f"*_dists_{NEW_SUITE}_{COMPONENT}_i18n_Translation-en*")
    provenance = provenance_info(cache_dir / NEW_SUITE, translation)
    (out_dir / "stats.json").write_text(json.dumps({"counts": counts, "bytes": size, "provenance": provenance},
                                                   indent=2) + "\n")
    (out_dir / "LICENSE.md").write_text(f"""# Debian package descriptions new in {NEW_SUITE} (evaluation only)

`new.jsonl.gz` holds {len(chosen)} long description → synopsis pairs of Debian {NEW_SUITE} {COMPONENT}
packages whose binary package Debian {SUITE} {COMPONENT} does not have (`new_source`: the source
package is new as well). Each description is part of its package and is distributed under that
package's own DFSG-free licence (see `/usr/share/doc/<package>/copyright`). Debian is a registered
trademark of Software in the Public Interest, Inc.

- Source: the i18n `Translation-en`, `Packages` and `Sources` indexes of {NEW_SUITE} and {SUITE} main
  (`{provenance['mirror']}`), extracted {provenance['extracted']} (Release date
  {provenance['index_date'] or 'unknown'}).
- Nothing is trained on these pairs. Regenerate with `python data/prepare_debian_new.py`.
""")
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
