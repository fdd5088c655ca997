"""Shareable links: the view state (model, input, reference, keyword, settings, pinned step, selected
node, open tab) packed into the page URL's ``?view=`` parameter (JSON, zlib, URL-safe base64) and
read back on load. Whatever a link holds is validated like any other input when it is decoded."""
from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from typing import Any, Optional

from gen_models.decoding import SETTING_FIELDS, SETTING_NAMES

PARAMETER = "view"
MAX_LINK_CHARS = 16_000  # beyond this some servers and proxies refuse the URL
TEXT_FIELDS = ("model", "text", "reference", "keyword", "tab")


def encode_view(state: dict[str, Any], defaults: Optional[dict[str, Any]] = None) -> str:
    """The ``?view=`` value for a view state; settings equal to their defaults are left out: the
    model's own ``defaults`` (``features.settings``) where it has one, else the dataclass's, which is
    how :func:`settings_with_defaults` reads a link back. ValueError when the link would be too long."""
    defaults = defaults or {}
    settings = {k: v for k, v in (state.get("settings") or {}).items()
                if k in SETTING_NAMES and v is not None and v != "" and v != defaults.get(k, SETTING_FIELDS[k].default)}
    packed = {k: state[k] for k in (*TEXT_FIELDS, "pinned", "node") if state.get(k) not in (None, "")}
    packed["settings"] = settings
    data = zlib.compress(json.dumps(packed, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 9)
    value = base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    if len(value) > MAX_LINK_CHARS:
        raise ValueError(f"this view does not fit in a link (the input is too long: {len(value):,} characters "
                         f"encoded, at most {MAX_LINK_CHARS:,}); export the trace instead")
    return value


def settings_with_defaults(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Every setting: the ``given`` values, and for each one left out the model's own default
    (``defaults``, ``features.settings``), else the dataclass's. The model card opens a model so, and
    a link that omits a setting opens it as the card would."""
    return {name: given.get(name, defaults.get(name, SETTING_FIELDS[name].default)) for name in SETTING_NAMES}


def decode_view(value: Optional[str]) -> Optional[dict[str, Any]]:
    """The view state in a ``?view=`` value (None when there is none); ValueError for a damaged link.
    Only known fields of the expected types are kept."""
    if not value:
        return None
    if len(value) > MAX_LINK_CHARS:
        raise ValueError(f"the link's view is longer than {MAX_LINK_CHARS:,} characters")
    try:
        stream = zlib.decompressobj()
        raw = stream.decompress(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), 1 << 20)
        if not stream.eof:
            raise ValueError("the compressed view is incomplete")
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("this link's view could not be read (it is nested too deeply)") from None
    except (binascii.Error, zlib.error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as err:
        raise ValueError("this link's view could not be read (it was cut or changed)") from err
    if not isinstance(data, dict):
        raise ValueError("this link's view could not be read (it was cut or changed)")
    unrestored: list[str] = []
    state: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        if key in data:
            state[key] = _text(data[key])
    for key in ("pinned", "node"):
        if key in data and data[key] is not None:
            state[key] = _whole(data[key])
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    state["settings"] = {}
    for k, v in settings.items():
        if k in SETTING_NAMES and v is not None:
            state["settings"][k] = _text(v) if isinstance(v, str) else _number(v)
    unrestored += [k for k, v in state.items() if v is _BAD]
    unrestored += [f"setting {k}" for k, v in state["settings"].items() if v is _BAD]
    state = {k: v for k, v in state.items() if v is not _BAD}
    state["settings"] = {k: v for k, v in state["settings"].items() if v is not _BAD}
    if unrestored:
        state["unrestored"] = unrestored
    return state


_BAD = object()  # a value a link may not carry
MAX_LINK_INT = 2 ** 53  # what a browser's numbers hold exactly


def _text(value: Any) -> Any:
    """A text field: a string without lone surrogates."""
    if not isinstance(value, str) or any("\ud800" <= ch <= "\udfff" for ch in value):
        return _BAD
    return value


def _whole(value: Any) -> Any:
    """A step or node: a whole number a browser holds exactly."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_LINK_INT:
        return _BAD
    return value


def _number(value: Any) -> Any:
    """A setting's number: finite and within what a browser holds exactly."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _BAD
    if isinstance(value, int):
        return value if abs(value) <= MAX_LINK_INT else _BAD
    return value if math.isfinite(value) and abs(value) <= MAX_LINK_INT else _BAD
