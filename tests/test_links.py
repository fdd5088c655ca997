"""Shareable links: the view state survives the round trip, defaults are left out, damaged or
oversized links get a message."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui.links import MAX_LINK_CHARS, decode_view, encode_view, settings_with_defaults


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300), pinned=st.integers(0, 200), node=st.integers(0, 5000),
       beam=st.integers(1, 16), tab=st.sampled_from(["Attention", "Beam tree", "Coverage"]))
def test_a_view_survives_the_round_trip(text, pinned, node, beam, tab):
    state = {"model": "debian-pointer", "text": text, "pinned": pinned, "node": node, "tab": tab,
             "settings": {"beam_size": beam, "max_len": 30, "strategy": "beam"}}
    value = encode_view(state)
    assert all(ch.isalnum() or ch in "-_" for ch in value)  # URL-safe as it is
    restored = decode_view(value)
    assert restored["text" if text else "model"] == (text or "debian-pointer")
    assert (restored["pinned"], restored["node"], restored["tab"]) == (pinned, node, tab)
    # defaults are left out of the link; the rest comes back
    assert restored["settings"] == ({"beam_size": beam} if beam != 4 else {})


def test_settings_left_out_are_the_models_own_defaults():
    """A model whose own default differs from the dataclass's (the hull decodes greedily): a link
    holds what differs from the model's defaults, and restores what it leaves out from them."""
    own = {"strategy": "greedy", "max_len": 100}
    greedy = decode_view(encode_view({"model": "hull", "settings": {"strategy": "greedy", "max_len": 100}}, own))
    assert greedy["settings"] == {}
    beam = decode_view(encode_view({"model": "hull", "settings": {"strategy": "beam", "max_len": 100}}, own))
    assert beam["settings"] == {"strategy": "beam"}
    assert settings_with_defaults(greedy["settings"], own)["strategy"] == "greedy"
    assert settings_with_defaults(beam["settings"], own)["strategy"] == "beam"
    assert settings_with_defaults({}, own)["beam_size"] == 4  # no model default: the dataclass's


def test_damaged_and_oversized_links_name_the_problem():
    value = encode_view({"model": "m", "text": "hello", "settings": {}})
    with pytest.raises(ValueError, match="could not be read"):
        decode_view(value[:-5])
    with pytest.raises(ValueError, match="could not be read"):
        decode_view("!!not-base64!!")
    import random
    rng = random.Random(0)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(40_000))
    with pytest.raises(ValueError, match="does not fit in a link"):
        encode_view({"model": "m", "text": noise, "settings": {}})
    with pytest.raises(ValueError, match=f"longer than {MAX_LINK_CHARS:,}"):
        decode_view("a" * (MAX_LINK_CHARS + 1))
    assert decode_view(None) is None and decode_view("") is None


def test_unknown_fields_and_wrong_types_are_dropped():
    import base64
    import json
    import zlib
    raw = {"model": 3, "text": "ok", "pinned": "7", "node": True, "evil": "x",
           "settings": {"beam_size": 5, "nonsense": 1, "max_len": [1]}}
    value = base64.urlsafe_b64encode(zlib.compress(json.dumps(raw).encode())).decode().rstrip("=")
    assert decode_view(value) == {"text": "ok", "settings": {"beam_size": 5},
                                  "unrestored": ["model", "pinned", "node", "setting max_len"]}


def packed(raw: object) -> str:
    import base64
    import zlib
    return base64.urlsafe_b64encode(zlib.compress(raw.encode() if isinstance(raw, str) else raw)).decode()


def test_hostile_links_are_named_not_fatal():
    """A lone surrogate, integers past 2**53, deep nesting: each is dropped with its name, or refused."""
    raw = ('{"model": "m", "text": "a\\ud800b", "pinned": 1' + "0" * 30 + ', "settings": {"seed": 1' + "0" * 25
           + ', "top_p": 1e400}}')
    state = decode_view(packed(raw))
    assert state["model"] == "m" and "text" not in state and "pinned" not in state and state["settings"] == {}
    assert state["unrestored"] == ["text", "pinned", "setting seed", "setting top_p"]
    with pytest.raises(ValueError, match="nested too deeply"):
        decode_view(packed("[" * 100_000 + "]" * 100_000))
