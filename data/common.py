"""What the data preparation scripts share: their common options and byte-reproducible output."""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Iterable


def write_jsonl_gz(path: Path, rows: Iterable[dict], fields: tuple[str, ...]) -> int:
    """Write ``fields`` of each row as one JSON line, gzipped with a fixed timestamp (byte-reproducible);
    return the file size."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for row in rows:
            gz.write((json.dumps({k: row[k] for k in fields}, ensure_ascii=False) + "\n").encode("utf-8"))
    return Path(path).stat().st_size


def prep_parser(doc: str, cache_dir: Path, out_dir: Path, downloads: str) -> argparse.ArgumentParser:
    """``--cache-dir`` (git-ignored raw ``downloads``), ``--out-dir`` and ``--skip-download``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=cache_dir, help=f"{downloads} (git-ignored)")
    parser.add_argument("--out-dir", type=Path, default=out_dir,
                        help="where the processed splits, stats.json and LICENSE.md go")
    parser.add_argument("--skip-download", action="store_true", help="reuse what --cache-dir already holds")
    return parser
