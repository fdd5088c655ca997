"""Golden tests on the shipped checkpoints: they load, decode fixed inputs to stored outputs, copy OOVs."""
from __future__ import annotations

import json

import pytest

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from tests.golden.update_golden import GOLDEN, MODELS

GOLDEN_DATA = json.loads(GOLDEN.read_text(encoding="utf-8"))
POINTER_MODELS = [name for name in MODELS if "pointer" in name]


@pytest.fixture(scope="module", params=sorted(MODELS))
def shipped(request):
    return request.param, load_checkpoint(CHECKPOINT_ROOT / request.param)


def test_checkpoint_decodes_golden_outputs(shipped):
    name, model = shipped
    for case in GOLDEN_DATA["outputs"][name]:
        trace = generate(model, case["src"], DecodeSettings(**GOLDEN_DATA["settings"]))
        assert trace.output_tokens == case["output_tokens"], case["src"][:40]


def test_checkpoint_is_small_safetensors(shipped):
    name, _ = shipped
    weights = CHECKPOINT_ROOT / name / "model.safetensors"
    assert weights.stat().st_size <= 25 * 2**20
    assert not list((CHECKPOINT_ROOT / name).glob("*.bin")) and not list((CHECKPOINT_ROOT / name).glob("*.pt"))
    for part in ("config.json", "vocab.txt", "metrics.json", "README.md"):
        assert (CHECKPOINT_ROOT / name / part).is_file(), part


@pytest.mark.parametrize("name", POINTER_MODELS)
@pytest.mark.parametrize("package", ["zorbulator", "quixplode"])
def test_pointer_models_copy_an_unseen_package_name(name, package):
    model = load_checkpoint(CHECKPOINT_ROOT / name)
    text = (f"{package}: {package.capitalize()} is a command-line tool that converts archives into plain "
            f"text files. {package.capitalize()} supports streaming and parallel extraction.")
    assert package not in model.vocab.stoi
    trace = generate(model, text, DecodeSettings(beam_size=4, max_len=30))
    assert package in trace.output_tokens, trace.output_text
    step = trace.steps[trace.output_tokens.index(package)]
    assert step.copied_from and step.p_gen < 0.5
    chosen = next(c for c in step.candidates if c.token == package)
    assert chosen.p_generate == 0.0 and chosen.p_copy > 0.0
