"""Decoding without a model: beam search against brute force, tree consistency, scoring rules."""
from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_models import limits
from gen_models.decoding import DecodeSettings, generate
from gen_models.scoring import GNMTScorer, NoRepeatNGram, TopP
from tests.helpers import SyntheticStepper, tiny_model


def brute_force_best(stepper: SyntheticStepper, max_len: int) -> tuple:
    """Best complete sequence: ends in EOS, or reaches max_len."""
    words = [t for t in range(stepper.vocab_size) if t not in (stepper.bos_id, stepper.eos_id)]
    candidates = []
    for length in range(0, max_len):
        candidates += [seq + (stepper.eos_id,) for seq in itertools.product(words, repeat=length)]
    candidates += list(itertools.product(words, repeat=max_len))
    return max(candidates, key=stepper.sequence_logprob)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), max_len=st.integers(1, 4))
def test_exhaustive_beam_finds_brute_force_best(seed, max_len):
    stepper = SyntheticStepper(vocab_size=4, seed=seed)
    trace = generate(stepper, "x", DecodeSettings(beam_size=16, max_len=max_len, num_candidates=4))
    assert tuple(trace.output_ids()) == brute_force_best(stepper, max_len)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), beam=st.integers(1, 5), max_len=st.integers(1, 6))
def test_tree_is_consistent(seed, beam, max_len):
    stepper = SyntheticStepper(vocab_size=5, seed=seed)
    trace = generate(stepper, "x", DecodeSettings(beam_size=beam, max_len=max_len, num_candidates=3))
    nodes = {n.id: n for n in trace.beam}
    roots = [n for n in trace.beam if n.parent is None]
    assert len(roots) == 1 and roots[0].step == -1
    for node in trace.beam:
        assert node.status in ("alive", "pruned", "finished", "chosen")
        if node.parent is None:
            continue
        parent = nodes[node.parent]
        assert parent.status in ("alive",)
        assert node.step == parent.step + 1
        assert node.score == pytest.approx(parent.score + node.logprob, abs=1e-4)
        assert (node.internals is None) == (node.status == "pruned")
    assert sum(n.status == "chosen" for n in trace.beam) == 1
    path = trace.chosen_path()
    assert path[0] == roots[0].id and nodes[path[-1]].status == "chosen"
    assert [nodes[i].token for i in path[1:]] == trace.output_tokens
    for step in range(max_len):
        assert sum(n.step == step and n.status == "alive" for n in trace.beam) <= beam
    assert len(trace.output_tokens) <= max_len


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), max_len=st.integers(1, 8))
def test_beam_one_equals_greedy_synthetic(seed, max_len):
    stepper = SyntheticStepper(vocab_size=6, seed=seed)
    greedy = generate(stepper, "x", DecodeSettings(strategy="greedy", max_len=max_len))
    beam = generate(stepper, "x", DecodeSettings(strategy="beam", beam_size=1, max_len=max_len))
    assert greedy.output_ids() == beam.output_ids()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 3), strategy=st.sampled_from(["greedy", "beam", "sample"]))
def test_no_repeat_ngram_holds(seed, n, strategy):
    stepper = SyntheticStepper(vocab_size=8, seed=seed)
    trace = generate(stepper, "x", DecodeSettings(strategy=strategy, beam_size=3, max_len=6,
                                                  no_repeat_ngram=n, seed=seed))
    ids = [i for i in trace.output_ids() if i != stepper.eos_id]
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    assert len(grams) == len(set(grams))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), min_len=st.integers(0, 5), strategy=st.sampled_from(["greedy", "beam"]))
def test_min_length_holds(seed, min_len, strategy):
    stepper = SyntheticStepper(vocab_size=4, seed=seed)
    trace = generate(stepper, "x", DecodeSettings(strategy=strategy, max_len=6, min_len=min_len))
    ids = trace.output_ids()
    assert stepper.eos_id not in ids[:min_len]
    assert len(ids) >= min(min_len, 6)


def test_sampling_is_seeded():
    stepper = SyntheticStepper(vocab_size=8, seed=3)
    runs = [generate(stepper, "x", DecodeSettings(strategy="sample", seed=s, max_len=8)).output_ids() for s in (1, 1, 2)]
    assert runs[0] == runs[1]


def test_no_repeat_ngram_banned_tokens():
    assert NoRepeatNGram(2).banned_tokens([5, 6, 5]) == {6}
    assert NoRepeatNGram(3).banned_tokens([1, 2, 3, 1, 2]) == {3}
    assert NoRepeatNGram(1).banned_tokens([4, 4, 7]) == {4, 7}


def test_top_p_keeps_smallest_nucleus():
    log_probs = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(TopP(0.7)(log_probs, [[]], 0))[0].tolist()
    assert kept == [True, True, False, False]


def test_gnmt_scorer_penalises_uncovered_source():
    scores = torch.tensor([[-2.0]])
    covered = GNMTScorer(0.0, 1.0)(scores, 3, torch.tensor([[1.0, 1.2]]))
    uncovered = GNMTScorer(0.0, 1.0)(scores, 3, torch.tensor([[0.1, 1.0]]))
    assert float(covered) == pytest.approx(-2.0) and float(uncovered) < float(covered)
    assert GNMTScorer(1.0, 0.0).length_penalty(1) == pytest.approx(1.0)


@pytest.mark.parametrize("field,value,limit", [
    ("beam_size", 0, "between 1 and 16"), ("beam_size", 99, "between 1 and 16"),
    ("max_len", 10_000, "between 1 and 200"), ("top_p", 0.0, "between 0.01 and 1.0"),
    ("temperature", float("nan"), "temperature"), ("strategy", "nucleus", "strategy must be one of"),
    ("force_p_gen", 1.5, "between 0 and 1"),
])
def test_settings_name_their_limits(field, value, limit):
    with pytest.raises(ValueError, match=limit):
        DecodeSettings(**{field: value}).validate()


def test_forced_prefix_out_of_range_is_refused():
    with pytest.raises(ValueError, match="forced_prefix ids must be in"):
        generate(tiny_model(), "w1 w2", DecodeSettings(forced_prefix=[10_000]))


def test_traced_work_is_bounded_with_a_message_naming_the_limit():
    stepper = SyntheticStepper()
    with limits.applied(limits.Limits(traced_work=1000)):
        with pytest.raises(ValueError, match="1 source tokens × 16 beams × 200 steps = 3,200, over the limit of 1,000"):
            generate(stepper, "x", DecodeSettings(beam_size=16, max_len=200))
        assert generate(stepper, "x", DecodeSettings(beam_size=16, max_len=200, record=False)).output_tokens
        assert generate(stepper, "x", DecodeSettings(beam_size=4, max_len=200)).steps


def test_recorded_values_are_estimated_before_the_search_runs_far():
    stepper = SyntheticStepper(vocab_size=30)
    small = generate(stepper, "x", DecodeSettings(beam_size=2, max_len=5))
    recorded = sum(len(n.internals.candidates) * 4 + 1 for n in small.beam if n.internals is not None)
    assert recorded > 0
    with limits.applied(limits.Limits(recorded_values=5_000)):
        with pytest.raises(ValueError, match=r"16 beams × 200 steps × ~\d+ numbers recorded .* over the limit of 5,000"):
            generate(stepper, "x", DecodeSettings(beam_size=16, max_len=200))
        assert generate(stepper, "x", DecodeSettings(beam_size=1, max_len=3)).steps


def test_a_run_past_its_deadline_stops_with_a_message_naming_the_limit():
    stepper = SyntheticStepper()
    with limits.applied(limits.Limits(what="TEST_SECONDS"), seconds=-1):
        with pytest.raises(limits.TimeLimitExceeded, match=r"time limit of one request \(-1 s, TEST_SECONDS\)"):
            generate(stepper, "x", DecodeSettings(beam_size=4, max_len=20, record=False))
    assert limits.current() == limits.LIBRARY_DEFAULTS  # the limits are the run's only


def test_each_step_records_the_entropy_of_its_whole_distribution():
    stepper = SyntheticStepper(vocab_size=6, seed=3)
    trace = generate(stepper, "x", DecodeSettings(strategy="greedy", max_len=4))
    prefix: tuple = ()
    for step in trace.steps:
        log_probs = stepper.distribution(prefix)
        expected = -(log_probs.exp() * log_probs.clamp(min=-1e4)).sum().item()
        assert step.entropy == pytest.approx(expected, rel=1e-5)
        prefix += (step.token_id,)


def best_ending_sequence(stepper: SyntheticStepper, max_len: int) -> tuple:
    """The most probable sequence of at most ``max_len`` tokens that ends with EOS."""
    words = [t for t in range(stepper.vocab_size) if t not in (stepper.bos_id, stepper.eos_id)]
    candidates = [seq + (stepper.eos_id,) for n in range(max_len) for seq in itertools.product(words, repeat=n)]
    return max(candidates, key=stepper.sequence_logprob)


def test_reference_mode_tells_search_errors_from_model_errors():
    verdicts = set()
    for seed in range(60):
        stepper = SyntheticStepper(vocab_size=5, seed=seed)
        best = best_ending_sequence(stepper, 4)
        text = " ".join(f"t{i}" for i in best[:-1])
        greedy = generate(stepper, "x", DecodeSettings(strategy="greedy", max_len=4), reference=text or "t2")
        reference = greedy.reference
        if not text or greedy.output_ids()[-1:] != [stepper.eos_id]:
            continue
        assert reference["total_logprob"] == pytest.approx(stepper.sequence_logprob(best), abs=1e-5)
        assert reference["ranks"][0] == 1 + int((stepper.distribution(()) > stepper.distribution(())[best[0]]).sum())
        if tuple(greedy.output_ids()) == best:
            assert reference["verdict"] == "match" and reference["first_departure"] is None
        else:  # greedy lost the most probable sequence: the search's fault
            assert reference["verdict"] == "search error" and reference["total_logprob"] > reference["output_logprob"]
            assert reference["first_departure"] == next(
                i for i, (a, b) in enumerate(zip(greedy.output_ids(), best)) if a != b)
        verdicts.add(reference["verdict"])
        worse = generate(stepper, "x", DecodeSettings(beam_size=8, max_len=4), reference="t2 t2 t2")
        if tuple(worse.output_ids()) != (2, 2, 2, stepper.eos_id):
            assert worse.reference["verdict"] == "model error"
    assert verdicts == {"match", "search error"}


def test_reference_mode_follows_interventions_and_names_a_cut_output():
    model = tiny_model(pointer=True, coverage=True)
    text = "w1 zebrafish w3 w4"
    settings = DecodeSettings(force_p_gen=0.0, max_len=8)
    trace = generate(model, text, settings, reference=generate(model, text, settings).output_text)
    steps = [node.logprob for node in trace.path()]
    words = len([i for i in trace.output_ids() if i != model.eos_id])
    assert trace.reference["logprobs"][:words] == pytest.approx(steps[:words], abs=1e-5)  # p_gen forced there too
    ended = trace.output_ids()[-1] == model.eos_id
    assert trace.reference["verdict"] == ("match" if ended else "output cut")


def test_a_poem_form_must_fit_the_length_limits_and_be_a_known_one():
    assert DecodeSettings(poem_form="7x8", max_len=65).validate().controls(0).form == (7, 8)
    assert DecodeSettings().controls(0).form is None
    with pytest.raises(ValueError, match="poem_form 7x8 is 65 tokens long: it needs max_len ≥ 65"):
        DecodeSettings(poem_form="7x8", max_len=64).validate()
    with pytest.raises(ValueError, match="poem_form must be one of free, 5x4, 7x4, 5x8, 7x8"):
        DecodeSettings(poem_form="6x4").validate()


@pytest.mark.parametrize("values,message", [
    (dict(beam_size=4, beam_groups=3), r"beam_size \(4\) must be a multiple of beam_groups \(3\)"),
    (dict(beam_size=2, beam_groups=4), r"beam_size \(2\) must be a multiple of beam_groups \(4\)"),
    (dict(strategy="greedy", beam_groups=2), r"beam_groups \(2\) is diverse beam search.*got greedy"),
    (dict(strategy="beam_sample", beam_groups=2), r"which does not sample: set strategy to beam \(got beam_sample\)"),
    (dict(diversity_penalty=0.5), r"diversity_penalty \(0.5\) needs beam_groups > 1"),
    (dict(beam_size=4, beam_groups=2, diversity_penalty=11.0), "diversity_penalty must be between 0.0 and 10.0"),
    (dict(beam_groups=0), "beam_groups must be between 1 and 16"),
])
def test_diverse_beam_settings_name_the_problem(values, message):
    with pytest.raises(ValueError, match=message):
        DecodeSettings(**values).validate()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), groups=st.integers(2, 3), per_group=st.integers(1, 2),
       penalty=st.sampled_from([0.0, 0.5, 5.0]), max_len=st.integers(1, 5))
def test_diverse_beam_tree_is_consistent(seed, groups, per_group, penalty, max_len):
    """Every node but the root belongs to a group, its parent to the same group (or is the root);
    each group keeps at most beam_size / groups hypotheses alive per step; the score a penalty left
    is the node's score, never above the score before it."""
    stepper = SyntheticStepper(vocab_size=6, seed=seed)
    trace = generate(stepper, "x", DecodeSettings(beam_size=groups * per_group, beam_groups=groups,
                                                  diversity_penalty=penalty, max_len=max_len, num_candidates=4))
    nodes = trace.nodes_by_id
    alive = {}
    for node in trace.beam:
        if node.parent is None:
            continue
        group = node.extra["group"]
        assert 0 <= group < groups and node.step == nodes[node.parent].step + 1
        assert nodes[node.parent].parent is None or nodes[node.parent].extra["group"] == group
        if "score_after_diversity" in node.extra:
            assert node.extra["score_after_diversity"] == node.score <= node.extra["score_before_diversity"]
        alive[node.step, group] = alive.get((node.step, group), 0) + (node.status == "alive")
    assert max(alive.values()) <= per_group
    assert sum(n.status == "chosen" for n in trace.beam) == 1
    assert [nodes[i].token for i in trace.chosen_path()[1:]] == trace.output_tokens


def scored_nodes(trace, group: int = None) -> dict:
    """(token ids from the root, status) → score of every node but the root (of ``group`` when given);
    the chosen node counts as finished."""
    return {(tuple(n.token_id for n in trace.path(node.id)), "finished" if node.status == "chosen" else node.status):
            node.score for node in trace.beam
            if node.parent is not None and (group is None or node.extra["group"] == group)}


def test_beam_groups_without_a_penalty_are_independent_beams(checkpoint_root):
    """On a tiny pointer-generator with coverage: G groups with no penalty are G copies of beam search
    with beam_size / G beams (each group's tree, pruned candidates included, is that search's tree
    with its scores), and the best of each group's pool is returned G times."""
    from gen_models.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint_root / "tiny-pointer-coverage")
    for text in ["libjson: a JSON parser library for C.", "a zorbulator game server"]:
        plain = generate(model, text, DecodeSettings(beam_size=2, max_len=8, num_return=2, coverage_penalty=0.5))
        grouped = generate(model, text, DecodeSettings(beam_size=6, beam_groups=3, max_len=8, num_return=6,
                                                       coverage_penalty=0.5))
        expected = scored_nodes(plain)
        for group in range(3):
            tree = scored_nodes(grouped, group)
            assert tree.keys() == expected.keys()
            assert list(tree.values()) == pytest.approx([tree[key] for key in expected], abs=1e-5)
        assert grouped.output_ids() == plain.output_ids()
        assert [r["token_ids"] for r in grouped.extra["returned"]] == [
            r["token_ids"] for r in plain.extra["returned"] for _ in range(3)]
        assert [r["group"] for r in grouped.extra["returned"]][:3] == [0, 1, 2]


def test_a_large_diversity_penalty_makes_the_groups_first_tokens_differ(checkpoint_root):
    """With a penalty of 10 the second group's first tokens are none of the first group's. Under a
    penalty of 10 or 0.5, each of its first-step candidates (pruned ones too) lost exactly the penalty
    per first-group beam with its token; under 0.5 such a penalised candidate is still listed."""
    from gen_models.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint_root / "tiny-pointer-coverage")
    text = "libjson: a JSON parser library for C."

    def first(trace, group, statuses=("alive", "finished", "chosen")):
        return [n for n in trace.beam if n.step == 0 and n.extra["group"] == group and n.status in statuses]

    same = generate(model, text, DecodeSettings(beam_size=4, beam_groups=2, max_len=6))
    assert {n.token_id for n in first(same, 0)} == {n.token_id for n in first(same, 1)}
    for penalty in (10.0, 0.5):
        diverse = generate(model, text, DecodeSettings(beam_size=4, beam_groups=2, diversity_penalty=penalty,
                                                       max_len=6, num_candidates=20))
        chosen_first = {n.token_id for n in first(diverse, 0, ("alive",))}
        assert chosen_first
        if penalty == 10.0:
            assert not chosen_first & {n.token_id for n in first(diverse, 1)}
        candidates = first(diverse, 1, ("alive", "finished", "chosen", "pruned"))
        for node in candidates:
            lost = node.extra["score_before_diversity"] - node.extra["score_after_diversity"]
            assert lost == pytest.approx(penalty * (node.token_id in chosen_first), abs=1e-4)
            assert node.extra["score_after_diversity"] == node.score
        if penalty == 0.5:
            assert any(n.token_id in chosen_first for n in candidates), "a penalised candidate is listed"
