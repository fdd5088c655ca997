"""Command line: ``python -m gen_models {list,trace,explain,corpus,generate}``.

    python -m gen_models list
    python -m gen_models trace --model debian-pointer --text "hello: a friendly greeter" --beam 4
    python -m gen_models generate --model debian-pointer --input in.jsonl --output out.jsonl
    python -m gen_models trace --model poem-mta --topics 春风 明月 故乡
    python -m gen_models trace --model caption-attention --image drawing.png   (or --text "random scene seed 3")
    python -m gen_models trace --model hf:path/to/local/model --text "..."   (any local HF folder)
    python -m gen_models corpus --model debian-pointer --input data/debian/test.jsonl.gz --output out.jsonl --workers 2
    python -m gen_models explain --model debian-pointer --text "..." --step 2 [--method ig] [--contrast TOKEN]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from .checkpoint import CHECKPOINT_ROOT, list_checkpoints, load_checkpoint, read_config
from .decoding import SETTING_FIELDS, SETTING_NAMES, DecodeSettings, generate
from .device import DEVICE_ENV, resolve_device
from .models.hf_adapter import load_hf


def _load_model(args: argparse.Namespace):
    """A shipped checkpoint by name, or ``hf:PATH`` for a local Hugging Face model folder."""
    if args.model.startswith("hf:"):
        return load_hf(args.model[3:], allow_network=args.allow_network)
    folder = Path(args.root) / args.model
    if not (folder / "config.json").is_file():
        known = ", ".join(p.name for p in list_checkpoints(args.root)) or "none"
        raise SystemExit(f"error: no checkpoint named {args.model!r} in {args.root} (known: {known})")
    return load_checkpoint(folder)


CLI_SETTINGS = (*SETTING_NAMES, "num_candidates", "ban_unk", "force_p_gen", "feed_distribution_from",
                "feed_distribution_steps")  # every panel setting, and interventions
CLI_EXTRA_SETTINGS = ("reset_coverage_at", "forced_prefix", "knock_out")  # lists: flags of their own kind (below)


def _settings(args: argparse.Namespace, model) -> DecodeSettings:
    """Settings from the flags given, over the model's own defaults; beam size 1 means greedy."""
    given = {name: getattr(args, name) for name in (*CLI_SETTINGS, *CLI_EXTRA_SETTINGS)
             if getattr(args, name) is not None}  # a flag left out takes the model's own default
    if "strategy" not in given and given.get("beam_size") == 1:
        given["strategy"] = "greedy"
    return DecodeSettings.for_model(model.features, **given)


def cmd_list(args: argparse.Namespace) -> None:
    """One line per checkpoint: name, model type, exhibit."""
    for folder in list_checkpoints(args.root):
        config = read_config(folder)
        print(f"{folder.name}\t{config['model_type']}\t{config.get('exhibit', '')}")


def _image_text(args: argparse.Namespace, model) -> None:
    """``--image PATH``: the picture becomes the model's text input ``'image data:…'`` (pictures only
    for models whose input is an image)."""
    if getattr(args, "image", None) is None:
        return
    if model.features.input_kind != "image":
        raise ValueError(f"--image is for models that read a picture; {args.model} reads {model.features.input_kind}")
    from PIL import Image, UnidentifiedImageError

    from .scenes import image_data_url

    try:
        with Image.open(args.image) as image:
            args.text = image_data_url(image)
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"--image {args.image}: not a readable picture ({err})") from None


def cmd_trace(args: argparse.Namespace) -> None:
    """Print the full trace JSON of one input."""
    model = _load_model(args)
    _image_text(args, model)
    if args.text is None and not args.topics:
        raise ValueError("give --text, or --topics for a topic-to-text model")
    topics = [args.keyword] if args.keyword else args.topics
    trace = generate(model, args.text if args.text is not None else " ".join(args.topics), _settings(args, model),
                     topics, reference=args.reference)
    print(trace.to_json(indent=args.indent))


def cmd_explain(args: argparse.Namespace) -> None:
    """Print the JSON attribution of one output step to the source tokens."""
    from .attribution import explain

    model = _load_model(args)
    _image_text(args, model)
    topics = [args.keyword] if args.keyword else args.topics
    text = args.text if args.text is not None else " ".join(args.topics or [])
    result = explain(model, text, args.step, args.method, args.contrast, _settings(args, model), topics, args.ig_steps)
    print(json.dumps(result, ensure_ascii=False, indent=args.indent))


def cmd_corpus(args: argparse.Namespace) -> None:
    """Trace every example of a jsonl file; write one row per example with its statistics."""
    from tqdm import tqdm

    from .corpus import mark_safe_replies, read_examples, run_corpus, summary, write_jsonl

    model = _load_model(args)
    rows = read_examples(args.input, args.limit)
    settings = _settings(args, model)
    root = None if args.model.startswith("hf:") else str(args.root)
    with tqdm(total=len(rows), desc=f"{args.model} ({args.ray or f'{args.workers} worker(s)'})",
              disable=args.quiet) as bar:
        results = run_corpus(args.model, rows, settings, args.workers, args.ray, root)
        written = []
        write_jsonl(args.output, (written.append(r) or r for r in results), lambda n: bar.update(1))
    write_jsonl(args.output, mark_safe_replies(written))  # safe_reply needs the whole run's outputs
    print(json.dumps(summary(written), ensure_ascii=False))


def cmd_generate(args: argparse.Namespace) -> None:
    """Decode every line ``{"src": ..., "topics": [...]}`` of a jsonl file; add ``"output"``."""
    model = _load_model(args)
    settings = _settings(args, model)
    settings.record = False
    rows = [json.loads(line) for line in Path(args.input).read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(args.output, "w", encoding="utf-8") as out:
        for row in tqdm(rows, desc=args.model, disable=args.quiet):
            try:
                row["output"] = generate(model, row["src"], settings, row.get("topics")).output_text
            except ValueError as err:
                row["output"], row["error"] = "", str(err)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _decoding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="checkpoint name (see `list`), or hf:PATH for a local Hugging Face model folder")
    parser.add_argument("--allow-network", action="store_true",
                        help="let hf:ID download from the Hugging Face Hub (off by default)")
    for name in CLI_SETTINGS:
        meta = SETTING_FIELDS[name].metadata
        flags = [f"--{name.replace('_', '-')}", *([meta["cli"]] if meta["cli"] else [])]
        if isinstance(SETTING_FIELDS[name].default, bool):
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{meta['help']} (default: the model's own, else {SETTING_FIELDS[name].default})")
            continue
        kind = str if meta["choices"] else int if SETTING_FIELDS[name].type in ("int", int, "Optional[int]") else float
        limits = f" [{meta['low']}, {meta['high']}]" if meta["low"] is not None else ""
        parser.add_argument(*flags, dest=name, type=kind, choices=meta["choices"] or None, default=None,
                            help=f"{meta['help'] or meta['label']}{limits} (default: the model's own, "
                                 f"else {SETTING_FIELDS[name].default})")
    parser.add_argument("--reset-coverage-at", type=int, nargs="*", default=None, help="steps")
    parser.add_argument("--forced-prefix", type=int, nargs="*", default=None, help="token ids to force")
    parser.add_argument("--knock-out", type=int, nargs="*", default=None,
                        help="memory items to remove (memory network: story sentences; NTM: memory locations; 0-based)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m gen_models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=CHECKPOINT_ROOT, help="checkpoint folder")
    parser.add_argument("--device", default=None,
                        help=f"auto, cpu, cuda or cuda:N (default: ${DEVICE_ENV}, else auto: CUDA when available)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list shipped checkpoints").set_defaults(func=cmd_list)
    trace = sub.add_parser("trace", help="print the trace JSON of one input")
    _decoding_options(trace)
    trace.add_argument("--text", help="the input (topic-to-text models may take --topics instead)")
    trace.add_argument("--topics", nargs="*", default=None, help="topic words (topic-to-text models)")
    trace.add_argument("--image", type=Path, help="a PNG/JPEG picture (captioning models; replaces --text)")
    trace.add_argument("--keyword", help="the keyword a keyword model (Seq2BF, HGFU) builds its reply around "
                                         "(default: predicted from the input by PMI)")
    trace.add_argument("--reference", help="reference mode: score this expected output (trace's `reference`: "
                                          "teacher-forced log-probs, first departure, search or model error)")
    trace.add_argument("--indent", type=int, default=None)
    trace.set_defaults(func=cmd_trace)
    explain = sub.add_parser("explain", help="attribute one output step to the source tokens (Captum)")
    _decoding_options(explain)
    explain.add_argument("--text", help="the input (topic-to-text models may take --topics instead)")
    explain.add_argument("--topics", nargs="*", default=None, help="topic words (topic-to-text models)")
    explain.add_argument("--image", type=Path, help="a PNG/JPEG picture (captioning models; replaces --text)")
    explain.add_argument("--keyword", help="the keyword of a keyword model (default: predicted)")
    explain.add_argument("--step", type=int, required=True, help="output step to explain (0-based)")
    explain.add_argument("--method", choices=("ig", "grad_x_input"), default="ig",
                         help="integrated gradients or gradient × input")
    explain.add_argument("--contrast", help="why the chosen token and not this one: attribute log P(chosen) − "
                                            "log P(contrast)")
    explain.add_argument("--ig-steps", type=int, default=32, help="integration steps of integrated gradients")
    explain.add_argument("--indent", type=int, default=None)
    explain.set_defaults(func=cmd_explain)
    corpus = sub.add_parser("corpus", help="trace every example of a jsonl file and keep per-example statistics")
    _decoding_options(corpus)
    corpus.add_argument("--input", type=Path, required=True, help='rows {"src": ..., "reference": ...} (.jsonl[.gz])')
    corpus.add_argument("--output", type=Path, required=True)
    corpus.add_argument("--limit", type=int, default=None, help="the first N examples only")
    corpus.add_argument("--workers", type=int, default=1, help="local worker processes (or Ray actors)")
    corpus.add_argument("--ray", default=None, metavar="ADDRESS",
                        help='run on Ray: "local" starts a runtime here, "auto" joins a running one, or an address')
    corpus.add_argument("--quiet", action="store_true")
    corpus.set_defaults(func=cmd_corpus)
    batch = sub.add_parser("generate", help="batch-decode a jsonl file")
    _decoding_options(batch)
    batch.add_argument("--input", type=Path, required=True)
    batch.add_argument("--output", type=Path, required=True)
    batch.add_argument("--quiet", action="store_true")
    batch.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point; errors in settings or input exit with status 2 and a one-line message."""
    args = build_parser().parse_args(argv)
    try:
        if args.device:
            os.environ[DEVICE_ENV] = str(resolve_device(args.device))  # corpus workers inherit it
        args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err


if __name__ == "__main__":
    main()
