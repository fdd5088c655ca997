"""The shipped Debian corpus files: the new-package evaluation slice never repeats a training pair,
and the corpus splits never share a source package."""
from __future__ import annotations

from training.evaluate_debian import DATA, NEW_DATA
from training.evaluation import read_rows


def test_the_new_package_slice_is_disjoint_from_training():
    train = read_rows(DATA, "train")
    new = read_rows(NEW_DATA, "new")
    assert len(new) == 1000 and len({r["package"] for r in new}) == 1000
    trained_packages = {r["package"] for r in train}
    trained_descriptions = {r["src"].split(": ", 1)[1] for r in train}
    assert not {r["package"] for r in new} & trained_packages
    assert not {r["src"].split(": ", 1)[1] for r in new} & trained_descriptions
    assert all(r["src"].startswith(r["package"] + ": ") and r["tgt"] for r in new)
    assert 0.5 < sum(r["new_source"] for r in new) / len(new) < 1  # most, not all, come from new sources


def test_corpus_splits_share_no_source_package():
    sources = {split: {r["source_package"] for r in read_rows(DATA, split)} for split in ("train", "valid", "test")}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["valid"]
    assert not sources["valid"] & sources["test"]
