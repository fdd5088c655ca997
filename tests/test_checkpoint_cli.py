"""Checkpoint folders (safetensors only, registry by model type) and the command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gen_models.__main__ import main
from gen_models.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from gen_models.decoding import DecodeSettings, generate
from gen_models.trace import GenerationTrace
from tests.helpers import tiny_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def checkpoint_root(tmp_path: Path) -> Path:
    save_checkpoint(tiny_model(pointer=True, coverage=True), tmp_path / "tiny-pointer", {"exhibit": "test"})
    save_checkpoint(tiny_model(pointer=False), tmp_path / "tiny-seq2seq", fp16=False)
    return tmp_path


def test_save_load_round_trip_decodes_identically(checkpoint_root):
    original = tiny_model(pointer=False)
    loaded = load_checkpoint(checkpoint_root / "tiny-seq2seq")
    assert loaded.name == "tiny-seq2seq" and not loaded.training
    for a, b in zip(original.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    settings = DecodeSettings(max_len=6)
    assert generate(original, "w1 w2 w3", settings).output_tokens == generate(loaded, "w1 w2 w3", settings).output_tokens


def test_fp16_checkpoint_loads_as_fp32(checkpoint_root):
    model = load_checkpoint(checkpoint_root / "tiny-pointer")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.features.copies and model.features.coverage


def test_loader_refuses_pickles_and_unknown_types(tmp_path, checkpoint_root):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "seq2seq", "args": {}}))
    torch.save({"x": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="only safetensors"):
        load_checkpoint(pickled)
    unknown = checkpoint_root / "tiny-pointer"
    config = json.loads((unknown / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "rnn_from_mars"}))
    with pytest.raises(ValueError, match="unknown model_type"):
        load_checkpoint(unknown)


def test_cli_list_names_first(checkpoint_root, capsys):
    main(["--root", str(checkpoint_root), "list"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["tiny-pointer", "tiny-seq2seq"]
    assert [p.name for p in list_checkpoints(checkpoint_root)] == ["tiny-pointer", "tiny-seq2seq"]


def test_cli_trace_prints_full_trace_json(checkpoint_root, capsys):
    main(["--root", str(checkpoint_root), "trace", "--model", "tiny-pointer", "--text", "w1 zebrafish w2",
          "--beam", "3", "--max-len", "5", "--force-p-gen", "0"])
    trace = GenerationTrace.from_json(capsys.readouterr().out)
    assert trace.model == "tiny-pointer" and trace.settings["beam_size"] == 3
    assert trace.settings["force_p_gen"] == 0.0 and all(s.p_gen == 0.0 for s in trace.steps)
    assert set(trace.output_tokens) <= {"w1", "zebrafish", "w2", "</s>"}


def test_cli_generate_batch(checkpoint_root, tmp_path):
    inputs = tmp_path / "in.jsonl"
    rows = [{"src": "w1 w2", "id": 7}, {"src": "", "id": 8}, {"src": "zebrafish w3", "topics": ["w3"]}]
    inputs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    main(["--root", str(checkpoint_root), "generate", "--model", "tiny-pointer", "--input", str(inputs),
          "--output", str(out), "--beam", "2", "--max-len", "4", "--quiet"])
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("id") for r in results] == [7, 8, None]
    assert isinstance(results[0]["output"], str) and results[0]["output"]
    assert results[1]["output"] == "" and "no tokens" in results[1]["error"]
    assert results[2]["topics"] == ["w3"]


@pytest.mark.parametrize("args,message", [
    (["trace", "--model", "nope", "--text", "x"], "no checkpoint named 'nope'"),
    (["trace", "--model", "tiny-pointer", "--text", "w1", "--beam", "0"], "beam_size must be between 1 and 16"),
])
def test_cli_errors_are_one_line(checkpoint_root, args, message):
    result = subprocess.run([sys.executable, "-m", "gen_models", "--root", str(checkpoint_root), *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


OWN_DEFAULTS = dict(strategy="beam_sample", beam_size=7, max_len=33, min_len=2, length_penalty=0.5,
                    length_penalty_form="hf", coverage_penalty=0.25, no_repeat_ngram=2, repetition_penalty=1.2,
                    encoder_repetition_penalty=1.1, num_return=2, beam_groups=7, diversity_penalty=0.5, temperature=0.7,
                    top_k=5, top_p=0.8, seed=11,
                    num_candidates=6, force_p_gen=0.5, poem_form="5x4", ban_unk=True, reset_coverage_at=[3],
                    forced_prefix=[4], knock_out=[1], feed_distribution_from=3, feed_distribution_steps=0,
                    mmi="antilm", mmi_lambda=0.3, mmi_gamma=3, end_when_complete=True)


def test_cli_flags_left_out_keep_every_model_default_and_given_flags_win():
    """Every setting the CLI has a flag for: left out, the model's own default (here unlike the
    dataclass's for every one of them) stands; given, the flag wins (``--no-ban-unk`` included)."""
    from types import SimpleNamespace

    from gen_models.__main__ import CLI_EXTRA_SETTINGS, CLI_SETTINGS, _settings, build_parser

    assert set(OWN_DEFAULTS) == {*CLI_SETTINGS, *CLI_EXTRA_SETTINGS}
    defaults = DecodeSettings()
    assert all(getattr(defaults, k) != v for k, v in OWN_DEFAULTS.items()), "pick values unlike the dataclass's"
    model = SimpleNamespace(features=SimpleNamespace(settings=tuple(OWN_DEFAULTS.items())))
    args = build_parser().parse_args(["trace", "--model", "m", "--text", "x"])
    settings = _settings(args, model)
    assert {k: getattr(settings, k) for k in OWN_DEFAULTS} == OWN_DEFAULTS
    args = build_parser().parse_args(["trace", "--model", "m", "--text", "x", "--no-ban-unk", "--beam", "3",
                                      "--reset-coverage-at", "--max-len", "9", "--no-end-when-complete"])
    settings = _settings(args, model)
    assert (settings.ban_unk, settings.beam_size, settings.reset_coverage_at, settings.max_len) == (False, 3, [], 9)
    assert settings.end_when_complete is False
    assert settings.top_k == 5  # still the model's own


@pytest.mark.parametrize("name", ["vae-plain", "chat-hgfu", "chat-seq2bf"])
def test_cli_trace_of_a_shipped_model_keeps_its_ban_unk(name, capsys):
    """The shipped models that ban <unk> by default keep banning it on the command line."""
    if not (ROOT / "checkpoints" / name / "config.json").is_file():
        pytest.skip(f"{name} is not shipped here")
    main(["--root", str(ROOT / "checkpoints"), "trace", "--model", name, "--text", "my favorite game is zyxwvut"])
    trace = GenerationTrace.from_json(capsys.readouterr().out)
    assert trace.settings["ban_unk"] is True and "<unk>" not in trace.output_tokens
