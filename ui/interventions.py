"""Interventions: change one thing inside decoding and decode again.

- take an alternative token at step t: force the chosen output's first t tokens plus that token
  (``trace.output_ids()[:t] + [token_id]``), then let search continue;
- force the copy switch p_gen to 0 (always copy), 1 (always generate) or leave it to the model;
- reset the coverage vector to zero before step t;
- overwrite one topic's coverage before step t (topic-to-text models);
- knock out one memory item (a memory network's story sentence, an NTM's memory location);
- feed the distribution: the input after step t is Σ_w P(w)·E(w) of step t's whole distribution
  instead of the chosen token's embedding (once, or at every later step too).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from gen_models.trace import GenerationTrace

from .registry import ModelEntry
from .service import rerun
from .validation import as_float, step_index


@dataclass
class Intervention:
    """The original and the changed run, a label for the change and notices about it."""

    original: GenerationTrace
    changed: GenerationTrace
    label: str
    notices: list[str] = field(default_factory=list)


def resolve_token(entry: ModelEntry, trace: GenerationTrace, step: int, value: Any) -> int:
    """An extended-vocabulary id from a candidate id or a token text (ValueError if unknown)."""
    if value is None or value == "":
        raise ValueError("pick an alternative token first")
    candidates = trace.steps[step].candidates
    by_text = {c.token: c.token_id for c in candidates}
    if isinstance(value, str) and value in by_text:
        return by_text[value]
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        return _token_id_of_text(entry, trace, value)
    token_id = as_float("token id", value)
    limit = entry.model.vocab_size + len(trace.oov_words)
    if not token_id.is_integer():
        raise ValueError(f"token id must be a whole number between 0 and {limit - 1}, got {value!r}")
    token_id = int(token_id)
    if not 0 <= token_id < limit:
        raise ValueError(f"token id must be between 0 and {limit - 1} for this input, got {value!r}")
    return token_id


def _token_id_of_text(entry: ModelEntry, trace: GenerationTrace, text: str) -> int:
    token_id = entry.model.token_to_id(text, trace.oov_words)
    if token_id is None:
        raise ValueError(f"token {text[:40]!r} is neither in the vocabulary nor copyable from this input "
                         "(a Hugging Face model's vocabulary is its tokenizer's pieces)")
    return token_id


def take_alternative(entry: ModelEntry, text: str, original: GenerationTrace, settings, step: Any,
                     token: Any) -> Intervention:
    """Force the output up to ``step`` and ``token`` at ``step``, then decode the rest."""
    step = step_index(step, len(original.steps))
    token_id = resolve_token(entry, original, step, token)
    prefix = original.output_ids()[:step] + [token_id]
    changed = rerun(entry, text, settings, forced_prefix=prefix)
    word = entry.model.id_to_token(token_id, original.oov_words)
    return Intervention(original, changed, f"“{word}” at step {step}")


def force_p_gen(entry: ModelEntry, text: str, original: GenerationTrace, settings,
                value: Optional[float]) -> Intervention:
    """Decode with p_gen fixed to ``value`` at every step (None: the model's own)."""
    if value is not None:
        value = as_float("force_p_gen", value)
    notices = [] if entry.model.features.copies else [f"{entry.name} has no copy switch: forcing p_gen changes nothing"]
    changed = rerun(entry, text, settings, force_p_gen=value)
    what = "model's own p_gen" if value is None else f"p_gen = {value:g} at every step"
    return Intervention(original, changed, what, notices)


def reset_coverage(entry: ModelEntry, text: str, original: GenerationTrace, settings, step: Any) -> Intervention:
    """Decode with the coverage vector zeroed before ``step``."""
    step = step_index(step, len(original.steps))
    notices = [] if entry.model.features.coverage else [
        f"{entry.name} has no coverage mechanism: its attention never reads coverage, so nothing changes"]
    changed = rerun(entry, text, settings, reset_coverage_at=[step])
    return Intervention(original, changed, f"coverage reset at step {step}", notices)


def set_topic_coverage(entry: ModelEntry, text: str, original: GenerationTrace, settings, step: Any,
                       topic: Any, value: Any) -> Intervention:
    """Decode with topic ``topic``'s coverage overwritten with ``value`` before ``step``."""
    step = step_index(step, len(original.steps))
    topics = original.topics or original.source_tokens
    index = step_index(topic, len(topics), name="topic")
    amount = as_float("topic coverage", value)
    notices = [] if entry.model.features.topic_coverage else [
        f"{entry.name} has no topic coverage: overwriting it changes nothing"]
    changed = rerun(entry, text, settings, topic_coverage={index: amount}, topic_coverage_step=step)
    what = f"coverage of “{topics[index]}” set to {amount:g} at step {step}"
    before = topic_coverage_before(original, step, index)
    if not notices and changed.output_tokens == original.output_tokens:
        had = (f": “{topics[index]}” already had coverage {before:.2f} before step {step}"
               if before is not None and abs(before - amount) < 5e-3 else "")
        notices.append(f"the output did not change{had}; coverage 0 marks a topic as used up, "
                       "higher values keep it wanted (MTA-LSTM topics start at 1)")
    return Intervention(original, changed, what, notices)


def topic_coverage_before(trace: GenerationTrace, step: int, index: int) -> Optional[float]:
    """Topic ``index``'s coverage before output step ``step``: the previous step's coverage after it
    (None at step 0, unless the trace records ``extra['topic_coverage_start']``)."""
    if step > 0 and trace.steps[step - 1].topic_coverage is not None:
        return float(trace.steps[step - 1].topic_coverage[index])
    start = trace.extra.get("topic_coverage_start")
    return float(start[index]) if start is not None else None


def knock_out(entry: ModelEntry, text: str, original: GenerationTrace, settings, item: Any) -> Intervention:
    """Decode with memory item ``item`` (0-based) removed at every step."""
    what = entry.model.features.memory
    if not what:
        raise ValueError(f"{entry.name} has no memory to knock an item out of")
    index = step_index(item, int(original.extra.get("memory_size", 0)), name=what)
    changed = rerun(entry, text, settings, knock_out=[index])
    return Intervention(original, changed, f"{what} {index} knocked out")


def feed_distribution(entry: ModelEntry, text: str, original: GenerationTrace, settings, step: Any,
                      onward: Any = False) -> Intervention:
    """Decode with step ``step``'s whole distribution, not its chosen token, as the next input (and,
    with ``onward``, every later step's too)."""
    if not entry.model.features.soft_inputs:
        raise ValueError(f"{entry.name} does not read its previous token as an embedding: there is no "
                         "distribution to feed it")
    step = step_index(step, len(original.steps))
    if step + 1 >= len(original.steps):
        raise ValueError(f"step {step} is the output's last: pin an earlier step, whose next input can change")
    onward = onward is True or onward == "true"
    changed = rerun(entry, text, settings, feed_distribution_from=step + 1, feed_distribution_steps=0 if onward else 1)
    then = f"from step {step + 1} on" if onward else f"at step {step + 1}"
    return Intervention(original, changed, f"step {step}'s distribution fed as the input {then}")
