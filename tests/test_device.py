"""The device path: models and decoding create every tensor next to the model (``GENSCOPE_DEVICE``).

No GPU is needed to catch a tensor created on the wrong device: with PyTorch's default device set to
``meta`` (tensors without data), any tensor that decoding or a model creates without naming its
device lands on ``meta``, and the first operation mixing it with the model's CPU tensors fails.
"""
from __future__ import annotations

import pytest
import torch

from gen_models.attribution import attribute
from gen_models.checkpoint import load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from gen_models.device import resolve_device

INPUTS = {"topics": "明 月", "points": "random 6 seed 2", "text": "w1 w2 w3 the package",
          "image": "random scene seed 2", "story": "random story task 1 seed 2", "bits": "random copy 4 seed 2"}


def test_the_device_setting_names_its_choices_and_needs_a_gpu_for_cuda(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("GENSCOPE_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_every_tensor_of_a_search_is_created_on_the_model_device(checkpoint_root):
    folders = sorted(p for p in checkpoint_root.iterdir() if (p / "config.json").is_file())
    assert len(folders) >= 5
    for folder in folders:
        model = load_checkpoint(folder, device="cpu")
        text = INPUTS.get(model.features.input_kind, INPUTS["text"])
        if model.features.topics:
            text = INPUTS["topics"]
        for settings in (DecodeSettings(beam_size=3, max_len=6), DecodeSettings(strategy="sample", max_len=4)):
            with torch.device("meta"):
                trace = generate(model, text, settings)
            assert trace.output_tokens, folder.name
        if model.features.generates and trace.steps:
            encoded = model.encode(text)
            with torch.device("meta"):
                result = attribute(model, encoded, trace.output_ids(), 0, method="grad_x_input")
            assert len(result.attributions) == len(encoded.source_tokens)


def test_internals_reach_the_host_whole_in_one_copy_per_dtype():
    from gen_models.decoding import gather_to_host

    tensors = {"attention": torch.rand(3, 5), "top_ids": torch.randint(0, 9, (3, 4)), "p_gen": torch.rand(3),
               "layers": torch.rand(3, 2, 2, 5)}
    host = gather_to_host(tensors)
    assert list(host) == list(tensors)
    for name, tensor in tensors.items():
        assert host[name].dtype == tensor.dtype and torch.equal(host[name], tensor)


@pytest.mark.parametrize("family", ["bart", "gpt2"])
def test_hugging_face_models_decode_on_their_device(family, tmp_path):
    from tests.hf_tiny import save_tiny

    model = load_checkpoint(save_tiny(family, tmp_path / family), device="cpu")
    with torch.device("meta"):
        trace = generate(model, "w1 w2 w3", DecodeSettings(beam_size=3, max_len=5))
    assert trace.output_tokens and trace.steps[0].attention.shape[-1] == len(trace.source_tokens)


def test_the_sentence_vae_decodes_its_map_homotopy_and_prior_on_its_device():
    from tests.test_sentence_vae import tiny_vae

    model = tiny_vae(["i like the beach", "do you have any pets", "what music"])
    with torch.device("meta"):
        trace = generate(model, "i like the beach\ndo you have any pets", DecodeSettings(max_len=5))
    assert trace.extra["homotopy"] and trace.extra["map_xy"].shape == (3, 2)
