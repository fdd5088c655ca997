"""Server-side checks of every parameter a request can carry; messages name the limit.

Values may come from the browser (already typed) or from an API client (anything: strings, None,
floats for integers), so each is coerced explicitly and range-checked by
:meth:`DecodeSettings.validate`.
"""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Optional

from gen_models.decoding import LIMITS, SETTING_FIELDS, SETTING_NAMES, DecodeSettings
from gen_models.protocol import ModelFeatures

MAX_KEYWORD_CHARS = 40
MAX_INPUT_CHARS = 20_000
DEFAULTS = DecodeSettings()
INT_SETTINGS = {f.name for f in fields(DecodeSettings) if f.type in ("int", int, "Optional[int]")}
CHOICES = {name: f.metadata["choices"] for name, f in SETTING_FIELDS.items()}
P_GEN_CHOICES = {"model": None, "0": 0.0, "1": 1.0}


def clean_text(text: Any) -> tuple[str, list[str]]:
    """The input text capped at ``MAX_INPUT_CHARS`` characters, and notices about what was done."""
    if text is None:
        return "", []
    if not isinstance(text, str):
        raise ValueError(f"the input must be text, got {type(text).__name__}")
    notices = []
    cleaned = text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") if _has_surrogates(text) else text
    if cleaned != text:
        notices.append("lone surrogate code points (invalid Unicode) were removed from the input")
        text = cleaned
    if len(text) > MAX_INPUT_CHARS:
        notices.append(f"input cut to its first {MAX_INPUT_CHARS:,} characters (it had {len(text):,})")
        text = text[:MAX_INPUT_CHARS]
    return text, notices


def clean_keyword(keyword: Any) -> str:
    """A keyword: one word of at most ``MAX_KEYWORD_CHARS`` characters ("" for none); ValueError
    naming the problem otherwise."""
    text, _ = clean_text(keyword)
    text = text.strip()
    if len(text) > MAX_KEYWORD_CHARS or len(text.split()) > 1:
        raise ValueError(f"the keyword must be one word of at most {MAX_KEYWORD_CHARS} characters, got {text[:60]!r}")
    return text


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def as_bool(name: str, value: Any, default: bool) -> bool:
    """A checkbox value: a bool, or the strings "true" / "false" (ValueError otherwise)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{name} must be true or false, got {str(value)[:40]!r}")


def as_int(name: str, value: Any) -> int:
    """``value`` as a whole number (ValueError naming ``name`` and its limits otherwise)."""
    number = as_float(name, value)
    if not number.is_integer():
        raise ValueError(f"{name} must be a whole number{_range(name)}, got {value!r}")
    return int(number)


def as_float(name: str, value: Any) -> float:
    """``value`` as a finite float (ValueError naming ``name`` and its limits otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number{_range(name)}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a number{_range(name)}, got a number too large for a float") from None
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number{_range(name)}, got {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number{_range(name)}, got {value!r}")
    return number


def _range(name: str) -> str:
    low, high = LIMITS.get(name, (None, None))
    return f" between {low} and {high}" if low is not None else ""


def decode_settings(values: dict[str, Any], features: Optional[ModelFeatures] = None,
                    **interventions: Any) -> DecodeSettings:
    """Validated :class:`DecodeSettings` from raw UI/API values; None means "the model's default"
    (``features.settings``), else the dataclass default."""
    kwargs: dict[str, Any] = {}
    for name in SETTING_NAMES:
        value = values.get(name)
        if value is None or value == "":
            continue
        if CHOICES.get(name):
            if value not in CHOICES[name]:
                raise ValueError(f"{name} must be one of {', '.join(CHOICES[name])}, got {str(value)[:40]!r}")
            kwargs[name] = value
        elif isinstance(SETTING_FIELDS[name].default, bool):
            kwargs[name] = as_bool(name, value, SETTING_FIELDS[name].default)
        elif name in INT_SETTINGS:
            kwargs[name] = as_int(name, value)
        else:
            kwargs[name] = as_float(name, value)
    return DecodeSettings.for_model(features or ModelFeatures(), **kwargs, **interventions).validate()


def settings_dict(*values: Any) -> dict[str, Any]:
    """Positional UI values (in ``SETTING_NAMES`` order) as a name → value dict."""
    return dict(zip(SETTING_NAMES, values))


def step_index(value: Any, n_steps: int, name: str = "step") -> int:
    """A valid output step index (ValueError naming the range otherwise)."""
    if n_steps <= 0:
        raise ValueError("there is no output to pick a step from")
    index = as_float(name, value)
    if not index.is_integer() or not 0 <= index < n_steps:
        raise ValueError(f"{name} must be a whole number between 0 and {n_steps - 1}, got {value!r}")
    return int(index)


def optional_node(value: Any, node_ids: set[int]) -> Optional[int]:
    """A beam-tree node id that exists in the trace, or None ("", None or -1) for the chosen output."""
    if value is None or value == "" or value == -1 or value == "-1":
        return None
    node = as_float("node", value)
    if not node.is_integer() or int(node) not in node_ids:
        raise ValueError(f"node {value!r} is not in the search tree (ids 0 to {max(node_ids, default=0)})")
    return int(node)


def p_gen_choice(value: Any) -> Optional[float]:
    """The forced p_gen of a UI choice: "model" (None), "0" or "1"."""
    key = "model" if value is None else value if isinstance(value, str) else str(value)
    if key not in P_GEN_CHOICES:
        raise ValueError(f"p_gen must be one of {', '.join(P_GEN_CHOICES)}, got {str(value)[:40]!r}")
    return P_GEN_CHOICES[key]
