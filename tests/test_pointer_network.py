"""The convex-hull pointer network: data against scipy, the input format and its messages, the output
format, decoding through the generic search, and the app's views and API."""
from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import ConvexHull

from gen_models.checkpoint import load_checkpoint
from gen_models.decoding import DecodeSettings, generate
from gen_models.models.pointer_network import (
    EOS_ID,
    FIRST_POINT,
    PointerConfig,
    PointerNetwork,
    hull_batch,
    hull_order,
    parse_points,
    random_points,
)
from training.hull_metrics import area_coverage, greedy_hulls, same_cycle


def signed_area(points: np.ndarray, order: list[int]) -> float:
    x, y = points[order, 0], points[order, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.integers(0, 10**6))
def test_targets_are_scipys_hull_counter_clockwise_from_the_lowest_index(n, seed):
    points = random_points(n, seed)
    order = hull_order(points)
    assert sorted(order) == sorted(ConvexHull(points).vertices.tolist())
    assert order[0] == min(order) and signed_area(points, order) > 0


def test_training_batches_end_every_target_with_the_end_symbol():
    batch = hull_batch(12, 8, random.Random(3))
    for row, mask, points in zip(batch["target"], batch["target_mask"], batch["points"].double().numpy()):
        ids = row[mask].tolist()
        assert ids[-1] == EOS_ID and [i - FIRST_POINT for i in ids[:-1]] == hull_order(points)


@pytest.mark.parametrize("text, n", [("0 0; 1 0; 0 1", 3), (" 0.5, 0.25 ; 1e-3 2 ; -3 4;", 3),
                                     ("random 12", 12), ("RANDOM 7 seed 9", 7)])
def test_points_parse_from_text_or_a_seeded_generator(text, n):
    assert parse_points(text).shape == (n, 2)
    assert np.array_equal(parse_points("random 7 seed 9"), random_points(7, 9))


@pytest.mark.parametrize("text, message", [
    ("", "no points"), ("0 0; 1 x; 2 2", "point 2 ('1 x') is not 'x y'"), ("0 0; 1 1", "at least 3 points, got 2"),
    ("0 0; 1 1; 0 0", "point 3 duplicates an earlier point"), ("0 0; inf 1; 2 2", "point 2 has a non-finite"),
    ("0 0; nan 1; 2 2", "point 2 has a non-finite"), ("0 0; 1 1; 2 2", "collinear"),
    ("; ".join(f"{i} {i * i}" for i in range(501)), "too many points: 501 (at most 500)"),
    ("random 2", "random N needs 3 <= N <= 500, got 2"), ("random 10 seed 99999999999", "seed must be at most"),
])
def test_malformed_points_get_a_message_naming_the_limit(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_points(text)


def tiny_pointer() -> PointerNetwork:
    torch.manual_seed(0)
    return PointerNetwork(PointerConfig(8, 16), name="tiny").eval()


def test_beam_search_points_at_each_point_at_most_once_and_writes_indices():
    trace = generate(tiny_pointer(), "random 9 seed 2", DecodeSettings(beam_size=3, max_len=12))
    chosen = [s.token for s in trace.steps if s.token != "</s>"]
    assert len(chosen) == len(set(chosen)) and trace.output_text == " ".join(chosen)
    assert all(t.isdigit() and 1 <= int(t) <= 9 for t in chosen)
    assert trace.extra["points"].shape == (9, 2) and trace.extra["true_hull"].tolist() == [
        i + 1 for i in hull_order(random_points(9, 2))]
    for step in trace.steps:  # attention is the distribution over the points (the end symbol aside)
        assert step.attention.shape == (9,) and abs(step.attention.sum() + step.extra["p_end"] - 1) < 1e-5
    assert {n.status for n in trace.beam} >= {"pruned", "chosen"}
    assert not any(n.token == "<s>" for n in trace.beam if n.parent is not None)


def test_greedy_batches_match_the_generic_greedy_search():
    model = tiny_pointer()
    points = torch.tensor(random_points(11, 5), dtype=torch.float32)[None]
    batched = greedy_hulls(model, points)[0]
    text = "; ".join(f"{a!r} {b!r}" for a, b in points[0].double().tolist())
    traced = generate(model, text, DecodeSettings(strategy="greedy", max_len=12)).output_text
    assert traced == " ".join(str(i + 1) for i in batched)


@settings(max_examples=15, deadline=None)
@given(st.integers(4, 25), st.integers(0, 10**6), st.sampled_from(["greedy", "beam", "sample"]))
def test_a_hull_that_must_be_complete_never_ends_before_every_point_is_enclosed(n, seed, strategy):
    model, text = tiny_pointer(), f"random {n} seed {seed}"
    trace = generate(model, text, DecodeSettings(strategy=strategy, beam_size=3, max_len=n + 1, end_when_complete=True))
    vertices = {str(i + 1) for i in hull_order(random_points(n, seed))}
    chosen = trace.output_text.split()
    assert vertices <= set(chosen) and trace.steps[-1].token == "</s>"
    for step in trace.steps[:-1]:  # the end symbol had no probability while a vertex was missing
        done = vertices <= {s.token for s in trace.steps[: trace.steps.index(step) + 1]}
        assert done or step.extra["p_end"] == 0.0
    batched = greedy_hulls(model, torch.tensor(random_points(n, seed), dtype=torch.float32)[None], True)[0]
    assert vertices <= {str(i + 1) for i in batched}


def test_the_hull_models_default_holds_the_end_back_and_only_completing_models_show_the_setting():
    from gen_models.protocol import ModelFeatures
    from ui.handlers import FEATURE_SETTINGS

    model = tiny_pointer()
    assert DecodeSettings.for_model(model.features).end_when_complete is True and model.features.completes
    assert DecodeSettings().end_when_complete is False and not ModelFeatures().completes
    assert FEATURE_SETTINGS["end_when_complete"] == "completes"


def test_metrics_accept_rotations_and_reject_self_intersections():
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float)
    assert same_cycle([2, 3, 0, 1], [0, 1, 2, 3]) and not same_cycle([0, 3, 2, 1], [0, 1, 2, 3])
    assert area_coverage([0, 1, 2, 3], points) == 1.0 and area_coverage([0, 2, 1, 3], points) is None
    assert area_coverage([0, 1, 2], points) == 0.5


def test_cli_generate_writes_one_based_indices(tmp_path, checkpoint_root):
    from gen_models.__main__ import main

    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"src": "random 8 seed 1"}) + "\n" + json.dumps({"src": "0 0; 1 1"}) + "\n")
    main(["--root", str(checkpoint_root), "generate", "--model", "tiny-hull", "--input", str(rows),
          "--output", str(tmp_path / "out.jsonl"), "--quiet"])
    first, second = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert first["output"] and all(t.isdigit() for t in first["output"].split())
    assert second["output"] == "" and "at least 3 points" in second["error"]


def test_app_shows_the_hull_tab_and_names_malformed_input(app_url):
    from gradio_client import Client

    from tests.test_app_api import named, plot_json, trace
    from ui.handlers import trace_outputs

    client = Client(app_url, verbose=False)
    outputs = named(client.predict("tiny-hull", "random 8 seed 1", api_name="/trace"), trace_outputs())
    hull = plot_json(outputs["hull"])
    assert hull["layout"]["title"]["text"].replace("<br>", " ").startswith("Convex hull of 8 points")
    assert [t["name"] for t in hull["data"]][:2] == ["true hull (scipy)", "predicted polygon"]
    assert outputs["pointer"]["visible"] and outputs["heads"]["visible"] is False
    assert "point 3 duplicates an earlier point" in trace(client, "0 0; 1 1; 0 0", "tiny-hull")[1]
    own, off = (json.loads(trace(client, "random 12 seed 4", "tiny-hull", **given)[0])["settings"]
                for given in ({}, {"end_when_complete": "false"}))
    assert own["end_when_complete"] is True and off["end_when_complete"] is False  # the model's own, else as given
    assert "end_when_complete must be true or false" in trace(client, "random 12 seed 4", "tiny-hull",
                                                              end_when_complete="maybe")[1]


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_settings_that_leave_no_possible_point_get_a_message(strategy):
    with pytest.raises(ValueError, match="no token is possible at step 3"):
        generate(tiny_pointer(), "0 0; 1 0; 0 1", DecodeSettings(strategy=strategy, min_len=5))
    with pytest.raises(ValueError, match="no token is possible at step 0"):
        generate(tiny_pointer(), "0 0; 1 0; 0 1", DecodeSettings(forced_prefix=[0]))


def test_reference_hulls_may_end_with_the_end_symbol_and_alternatives_are_possible_tokens():
    from ui.handlers import alternative_choices

    trace = generate(tiny_pointer(), "random 6 seed 3", DecodeSettings(beam_size=2, max_len=8))
    text = trace.output_text
    for reference in (text, text + " end", text + " </s>"):
        again = generate(tiny_pointer(), "random 6 seed 3", DecodeSettings(beam_size=2, max_len=8), reference=reference)
        assert again.reference["verdict"] == "match", reference
    for step in range(len(trace.steps)):
        chosen_before = {s.token_id for s in trace.steps[:step]}
        offered = {token_id for _, token_id in alternative_choices(trace, step)}
        assert not offered & (chosen_before | {0}) and (step > 0 or 1 not in offered)


def test_the_hull_trainer_runs_phases_and_a_phase_cut_short(tmp_path, monkeypatch):
    """training/train_hull.py end to end at a toy size: a first phase, then a second from its weights
    whose curves follow on (phase 2) and which ``--stop-after`` ends before its schedule's budget."""
    from training import train_hull

    def run(*flags):
        monkeypatch.setattr(sys, "argv", ["train_hull", "--emb-dim", "8", "--hidden-dim", "16", "--batch-size", "8",
                                          "--max-points", "8", "--eval-every", "20", "--valid-size", "8", *flags])
        train_hull.main()

    run("--out", str(tmp_path / "a"), "--cpu-budget", "0.02")
    run("--out", str(tmp_path / "b"), "--init", str(tmp_path / "a"), "--cpu-budget", "10", "--stop-after", "0.02",
        "--lr", "5e-4", "--lr-floor", "0.1", "--seed", "2")
    curves = json.loads((tmp_path / "b" / "metrics.json").read_text())["curves"]
    first, second = [c for c in curves if c.get("phase", 1) == 1], [c for c in curves if c.get("phase") == 2]
    assert first and second and second[0]["batches"] > first[-1]["batches"]
    assert second[-1]["cpu_minutes"] - first[-1]["cpu_minutes"] < 0.5  # stopped long before its 10 minutes
    assert second[-1]["lr"] > 5e-4 * 0.9  # and the rate decays over the 10 minutes, not the 0.02 run
    model = load_checkpoint(tmp_path / "b")
    assert DecodeSettings.for_model(model.features).end_when_complete
