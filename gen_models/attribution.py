"""Input attribution for one output step, with Captum: which source tokens made the model choose this
token — or, contrastively, this token rather than another ("why A and not B").

The attributed quantity F is log P(target) at output step N, with the output's earlier tokens fed
by teacher forcing under the same interventions as the search, or log P(A) − log P(B). Its input
is a scale s (S,) on each source item's input embedding (:meth:`Generator.encode_scaled`): the path
s·e runs from s = 0 (all-zero embeddings, the baseline) to s = 1 (the source as it is). So a token's
attribution is exactly integrated gradients (or gradient × input) over its embedding, summed over
the embedding's dimensions, for every model type alike (words, topic words, points, subword
pieces). Integrated gradients is complete: Σ attributions = F(1) − F(0) up to
``convergence_delta``, which Captum reports.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Optional

import torch

from . import limits
from .decoding import DecodeSettings
from .protocol import Encoded, Generator
from .trace import mean_attention

METHODS = {"ig": "integrated gradients", "grad_x_input": "gradient × input"}
DEFAULT_STEPS = 32
MAX_STEPS = 128  # the panel's slider ends here too


@dataclass
class Attribution:
    """One step's attribution over the source: one value per source token (``source_tokens``)."""

    method: str
    step: int
    target: str
    contrast: Optional[str]
    source_tokens: list[str]
    attributions: list[float]
    value: float  # F at the source as it is
    baseline_value: float  # F with every source embedding zeroed
    convergence_delta: Optional[float]  # Σ attributions − (value − baseline_value); IG only
    n_steps: Optional[int]
    elapsed_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def step_function(model: Generator, encoded: Encoded, prefix: list[int], target: int,
                  contrast: Optional[int], settings: DecodeSettings):
    """F(scale (B, S)) -> (B,): log P(target) [− log P(contrast)] after ``prefix`` (teacher-forced)."""
    def forward(scale: torch.Tensor) -> torch.Tensor:
        limits.check_time()  # Captum calls this once per batch of integration points
        B, device = scale.size(0), scale.device
        state, prev = model.encode_scaled(encoded, scale), torch.full((B,), model.bos_id, device=device)
        previous = None
        for step in range(len(prefix) + 1):
            out = model.step(state, prev, settings.controls(step, previous))  # the search's interventions
            if step < len(prefix):
                state, prev = out.state, torch.full((B,), prefix[step], device=device)
                previous = out.log_probs
        value = out.log_probs[:, target]  # (B,)
        return value - out.log_probs[:, contrast] if contrast is not None else value
    return forward


def attribute(model: Generator, encoded: Encoded, path_ids: list[int], step: int, method: str = "ig",
              target: Optional[int] = None, contrast: Optional[int] = None, n_steps: int = DEFAULT_STEPS,
              settings: Optional[DecodeSettings] = None) -> Attribution:
    """Attribute output step ``step`` of the path ``path_ids`` (generated ids, end token included or
    not) to the source of ``encoded``. ``target`` defaults to the path's token at ``step``; with
    ``contrast`` the quantity is log P(target) − log P(contrast). ValueError names a bad argument."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 <= step < len(path_ids):
        raise ValueError(f"step must be between 0 and {len(path_ids) - 1}, got {step}")
    if not 2 <= n_steps <= MAX_STEPS:
        raise ValueError(f"n_steps must be between 2 and {MAX_STEPS}, got {n_steps}")
    if not model.features.generates:
        raise ValueError(f"{model.name} does not generate: there is no output step to explain")
    target = path_ids[step] if target is None else target
    if contrast == target:
        raise ValueError("the contrast token must differ from the target token")
    settings = settings or DecodeSettings()
    source_len = len(encoded.source_tokens)
    points = n_steps if method == "ig" else 1
    limits.check_cost("attribution", points * max(source_len, 1) * (step + 1), limits.current().attribution_work,
                      f"{points} integration steps × {source_len} source tokens × {step + 1} output steps fed",
                      "use fewer integration steps, pin an earlier step, or shorten the input")
    if model.features.parameters:
        limits.check_cost("attribution", model.features.parameters * points * (source_len + step + 1),
                          limits.current().model_work, f"{model.features.parameters:,} parameters × {points} "
                          f"integration steps × ({source_len:,} source tokens + {step + 1} output steps fed)",
                          "use fewer integration steps, pin an earlier step, or shorten the input (the limit is "
                          "GENSCOPE_MODEL_WORK on a server)")
    forward = step_function(model, encoded, path_ids[:step], target, contrast, settings)
    device = encoded.source_ids.device
    inputs = torch.ones(1, source_len, device=device, requires_grad=True)  # (1, S) scales of the source
    baseline = torch.zeros(1, source_len, device=device)  # (1, S)
    from captum.attr import InputXGradient, IntegratedGradients  # on first use: the app's start does not pay for it

    start = time.perf_counter()
    with torch.enable_grad():
        if method == "ig":
            values, delta = IntegratedGradients(forward).attribute(
                inputs, baselines=baseline, n_steps=n_steps, return_convergence_delta=True,
                internal_batch_size=limits.current().attribution_batch)  # memory: a batch, not n_steps
            delta = float(delta[0])
        else:
            values, delta = InputXGradient(forward).attribute(inputs), None
    with torch.no_grad():
        value, baseline_value = (float(v) for v in forward(torch.cat([inputs.detach(), baseline])))
    name = lambda i: model.id_to_token(i, encoded.oov_words)  # noqa: E731
    return Attribution(method, step, name(target), name(contrast) if contrast is not None else None,
                       list(encoded.source_tokens), values[0].detach().tolist(), value, baseline_value, delta,
                       n_steps if method == "ig" else None, 1e3 * (time.perf_counter() - start))


def explain(model: Generator, text: str, step: int, method: str = "ig", contrast: Optional[str] = None,
            settings: Optional[DecodeSettings] = None, topics: Optional[list[str]] = None,
            n_steps: int = DEFAULT_STEPS) -> dict:
    """Decode ``text``, then attribute output step ``step`` (to the token the search chose, or that
    token against the ``contrast`` token text). A JSON-ready dict: the attribution, the output and
    the attention of that step where the model records one."""
    from .decoding import generate

    settings = settings or DecodeSettings.for_model(model.features)
    trace = generate(model, text, settings, topics)
    encoded = model.encode(text, topics)
    contrast_id = None
    if contrast is not None:
        contrast_id = model.token_to_id(contrast, encoded.oov_words)
        if contrast_id is None:
            raise ValueError(f"the contrast token {contrast!r} is not in {model.name}'s vocabulary")
    result = attribute(model, encoded, trace.output_ids(), step, method, contrast=contrast_id, n_steps=n_steps,
                       settings=settings).to_dict()
    attention = trace.steps[step].attention if step < len(trace.steps) else None
    result.update(output=trace.output_text, output_tokens=trace.output_tokens,
                  attention=[float(a) for a in mean_attention(attention)] if attention is not None else None)
    return result
