"""Deterministic gzipped JSON-lines output shared by the data preparation scripts."""
from __future__ import annotations

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
