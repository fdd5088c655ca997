"""Make a trained pointer-generator read rare source words as ``<unk>`` (weights unchanged).

    python -m training.mark_rare_sources checkpoints/enzh-pointer-coverage --data data/enzh --below 5

Each Latin-script vocabulary word seen in fewer than ``--below`` training sources is marked unknown
to the encoder (``rare_source_unk``, :func:`training.objectives.set_source_unknown`). A handful of
sightings does not teach an embedding, so such a word (PAM, LDAP, NSS in the Debian Reference) was
translated as if it were some other word; read as ``<unk>`` it looks like the made-up names of name
scrambling, which the model has learned to copy. Marking the trained model kept as many names as
training with the mark, and more on text unlike the training text (README, "Rare source words").
The checkpoint's other files stay as they are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gen_models.checkpoint import load_checkpoint, read_config, save_checkpoint
from training.objectives import set_source_unknown
from training.train import read_split, with_parts


def mark(folder: Path, data: Path, below: int) -> int:
    """Rewrite checkpoint ``folder`` with its rare source words marked; returns how many were marked."""
    model = with_parts(load_checkpoint(folder), {"rare_source_unk": True})
    sources = [ex.src for ex in read_split(data, "train", 10**9, 10**9, model.config.lowercase)]
    model.source_known.fill_(True)
    marked = set_source_unknown(model, sources, below)
    extra = {k: v for k, v in read_config(folder).items() if k not in ("model_type", "args")}
    save_checkpoint(model, folder, {**extra, "rare_source_words": {"below": below, "marked": marked}})
    return marked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the corpus the checkpoint was trained on")
    parser.add_argument("--below", type=int, default=5, help="mark words seen in fewer training sources")
    args = parser.parse_args()
    print(f"{mark(args.checkpoint, args.data, args.below)} Latin-script words are read as <unk> by the encoder")


if __name__ == "__main__":
    main()
