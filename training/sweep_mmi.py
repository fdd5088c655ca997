"""Reply-free statistics of one chat model on the 228 everyday queries under several decoding
settings, each a JSON object of ``DecodeSettings`` fields over the model's own defaults (beam 4,
max 30, as ``training.evaluate_chat``); prints, writes nothing (evaluate_chat keeps the tables).

    python -m training.sweep_mmi chat-seq2seq '{}' '{"no_repeat_ngram": 2}' \
        '{"mmi": "antilm", "mmi_lambda": 0.4, "mmi_gamma": 10, "no_repeat_ngram": 2}'
"""
from __future__ import annotations

import argparse
import json
from collections import Counter

import torch

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings
from training.evaluate_chat import EVERYDAY_DEV, everyday_rows, output_tokens_in_reading_order, reply_free_scores
from training.evaluation import decode_split

SHOWN = ("distinct_2", "safe_reply_rate", "question_rate", "negative_rate", "repetition_rate", "mean_length")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("settings", nargs="+", help="JSON objects of DecodeSettings fields")
    parser.add_argument("--dev", action="store_true", help="the 100 development queries instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    features = load_checkpoint(CHECKPOINT_ROOT / args.model).features
    rows = everyday_rows(EVERYDAY_DEV if args.dev else None)
    for spec in args.settings:
        settings = DecodeSettings.for_model(features, beam_size=4, max_len=30, record=False, **json.loads(spec))
        outputs = [output_tokens_in_reading_order(t) for t in decode_split(args.model, rows, settings)[0]]
        scores = reply_free_scores(rows, outputs)
        print(args.model, spec, {k: round(scores[k], 3) for k in SHOWN}, flush=True)
        print("    most frequent:", Counter(" ".join(o) for o in outputs).most_common(5), flush=True)


if __name__ == "__main__":
    main()
