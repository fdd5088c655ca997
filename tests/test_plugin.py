"""The growth rule, tested: a model defined here (one class) and a view registered here (one line)
reach the trace JSON and the app's API output without any edit to app.py, ui/ or decoding."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from gradio_client import Client

from gen_models.decoding import DecodeSettings, generate
from gen_models.protocol import Encoded, ModelFeatures, StepControls, StepOutput
from gen_models.trace import GenerationTrace
from tests.test_app_api import named
from visualizers.registry import VIEWS, View, register_view

WORDS = ["<s>", "</s>", "a", "b", "c"]


class ToyModel:
    """Counts down: emits "c", "b", "a", then the end; reports an internal ``foo`` per step and a
    per-run ``run_value``."""

    name = "toy"
    features = ModelFeatures(architecture="toy counter", task="anything → c b a")
    bos_id, eos_id, unk_id, vocab_size, max_source_len = 0, 1, None, len(WORDS), 8

    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        tokens = text.split()[: self.max_source_len]
        return Encoded(tokens, torch.full((len(tokens),), 2), [], torch.zeros(1),
                       extra={"run_value": np.array([1.5, 2.5]), "label": "toy run"})

    def step(self, state: torch.Tensor, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        wanted = (4 - state.long()).clamp(min=1)  # (B,) 4, 3, 2 then the end id 1
        log_probs = torch.full((len(state), self.vocab_size), -20.0)
        log_probs[torch.arange(len(state)), wanted] = 0.0
        log_probs = torch.log_softmax(log_probs, -1)  # (B, V)
        return StepOutput(log_probs, state + 1, {"foo": state + 0.5, "foo_map": torch.ones(len(state), 3)})

    def reorder(self, state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return state[index]

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        return WORDS[token_id]

    def token_to_id(self, token: str, oov_words: list[str]) -> Optional[int]:
        return WORDS.index(token) if token in WORDS else None

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        return " ".join(WORDS[i] for i in token_ids)


def foo_figure(trace: GenerationTrace, options) -> go.Figure:
    """The toy view: ``foo`` per step."""
    return go.Figure(go.Bar(y=[step.extra["foo"] for step in trace.steps]), layout=dict(title="foo per step"))


def test_unknown_internals_and_per_run_signals_reach_the_json():
    trace = generate(ToyModel(), "x y", DecodeSettings(beam_size=2))
    assert trace.output_text == "c b a"
    restored = GenerationTrace.from_json(trace.to_json())
    assert [s.extra["foo"] for s in restored.steps] == [0.5, 1.5, 2.5, 3.5]
    assert restored.steps[0].extra["foo_map"].tolist() == [1.0, 1.0, 1.0]
    assert restored.extra["run_value"].tolist() == [1.5, 2.5] and restored.extra["label"] == "toy run"
    assert restored.to_json() == trace.to_json()
    node = next(n for n in restored.beam if n.internals is not None and n.status != "chosen")
    assert "foo" in node.internals.extra  # every hypothesis keeps its own internals


@pytest.fixture()
def toy_view():
    view = register_view(View("foo", "Toy", "Foo per step", foo_figure, lambda t: "foo" in t.steps[0].extra))
    yield view
    VIEWS.remove(view)


def test_a_registered_view_and_model_reach_the_apps_api(app_module, toy_view, tmp_path):
    from tests.conftest import free_port
    from ui.handlers import Handlers, trace_outputs
    from ui.registry import ModelEntry, ModelRegistry

    registry = ModelRegistry([ModelEntry("toy", Path(tmp_path), ToyModel(), {}, {})])
    demo = app_module.build_demo(registry, Handlers(registry))
    port = free_port()
    demo.launch(**dict(app_module.launch_kwargs(), server_port=port, prevent_thread_lock=True, quiet=True))
    try:
        outputs = named(Client(f"http://127.0.0.1:{port}/", verbose=False).predict("toy", "x y", api_name="/trace"),
                        trace_outputs())
    finally:
        demo.close()
    assert GenerationTrace.from_json(outputs["trace_json"]).steps[1].extra["foo"] == 1.5
    assert outputs["foo"]["visible"] and '"foo per step"' in outputs["foo"]["value"]["plot"]
    assert outputs["attention"] == {"__type__": "update", "visible": False}  # the toy has no attention
    with pytest.raises(ValueError, match="already registered"):
        register_view(toy_view)
