"""One visitor cannot take the server down: the work budget, bounded bodies and replies, bounded
memory per visitor, and a named error for every hostile value — tried as a hostile client would,
through raw HTTP on 127.0.0.1 (``tests/raw_client.py``) and ``gradio_client``."""
from __future__ import annotations

import dataclasses
import json
import math
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from gen_models import limits
from gen_models.decoding import SETTING_NAMES, DecodeSettings, generate
from tests.helpers import tiny_model
from tests.raw_client import call, post, texts
from ui import budget
from ui.sessions import LiveRuns, TraceRef, TraceStore, trace_nbytes

POINTER = "tiny-pointer-coverage"
TEXT = "libjson: a JSON parser library for C. This package contains the development files."
N = len(SETTING_NAMES)
OPTIONS = [3, True, "png", "mean", "mean", "own", "whole tree", False, ""]  # VIEW_OPTION_NAMES order


def trace_data(text: str = TEXT, model: str = POINTER, **settings) -> list:
    """/trace's inputs: model, text, settings, pinned, view options, reference, keyword."""
    return [model, text, *[settings.get(n) for n in SETTING_NAMES], 0, *OPTIONS, None, None]


def view_data(pinned=0, node=-1, **options) -> list:
    """/pin's inputs: state, tab, pinned, node, view options."""
    values = dict(zip(("repeat_n", "show_pruned", "image_format", "layer", "head", "mask", "focus", "sink", "span"), OPTIONS))
    values.update(options)
    return [None, None, pinned, node, *values.values()]


@pytest.fixture()
def tight(monkeypatch):
    """Replace the server's budget for one test: ``tight(**limits)``."""
    original = budget.BUDGET

    def set_budget(**values):
        monkeypatch.setattr(budget, "BUDGET", dataclasses.replace(original, **values))
    return set_budget


@pytest.fixture()
def traced_session(app_url, app_module) -> str:
    session = uuid.uuid4().hex
    assert call(app_url, app_module.demo, "/trace", trace_data(), session=session)["success"]
    return session


# -- the budget itself ---------------------------------------------------------------------------
def test_every_limit_is_an_environment_variable_with_a_checked_value():
    assert budget.from_environment({}) == budget.Budget()
    tuned = budget.from_environment({"GENSCOPE_REQUEST_SECONDS": "5", "GENSCOPE_CONCURRENCY": "3",
                                     "GENSCOPE_MONITORING": "1"})
    assert (tuned.request_seconds, tuned.concurrency, tuned.monitoring) == (5.0, 3, True)
    with pytest.raises(ValueError, match="GENSCOPE_TRACE_STORE_MB must be a number, got 'lots'"):
        budget.from_environment({"GENSCOPE_TRACE_STORE_MB": "lots"})
    with pytest.raises(ValueError, match="GENSCOPE_CONCURRENCY must be positive"):
        budget.from_environment({"GENSCOPE_CONCURRENCY": "0"})
    assert set(budget.ENVIRONMENT.values()) >= {"GENSCOPE_REPLY_MB", "GENSCOPE_QUEUED_PER_SESSION"}


def test_each_kind_of_request_gets_its_limits_and_wall_time():
    with budget.limited("heavy") as applied:
        assert limits.current() is applied and applied.seconds == budget.current().heavy_seconds
        assert applied.what == "GENSCOPE_HEAVY_SECONDS"
    assert limits.current() == limits.LIBRARY_DEFAULTS
    assert budget.concurrency("corpus") == {"concurrency_id": "corpus", "concurrency_limit": 1}


def test_attribution_cost_is_checked_before_it_runs_and_integrated_in_batches():
    from gen_models.attribution import attribute

    model = tiny_model()
    encoded = model.encode("w1 w2 w3 w4")
    path = generate(model, "w1 w2 w3 w4", DecodeSettings(strategy="greedy", max_len=6, min_len=5)).output_ids()
    with limits.applied(limits.Limits(attribution_work=100)):
        with pytest.raises(ValueError, match=r"128 integration steps × 4 source tokens × 3 output steps fed = 1,536, "
                                             r"over the limit of 100"):
            attribute(model, encoded, path, 2, n_steps=128)
    batches = []
    original = model.step

    def counting_step(state, prev, controls):
        batches.append(prev.size(0))
        return original(state, prev, controls)
    model.step = counting_step
    with limits.applied(limits.Limits(attribution_batch=8)):
        result = attribute(model, encoded, path, 1, n_steps=64)
    assert max(batches) <= 8 + 2 and abs(result.convergence_delta) < 0.05  # memory: one batch at a time


# -- memory per visitor --------------------------------------------------------------------------
def test_trace_store_is_bounded_in_bytes_and_drops_the_least_recently_used():
    traces = [generate(tiny_model(seed=i), "w1 w2 w3", DecodeSettings(beam_size=4, max_len=8)) for i in range(4)]
    size = trace_nbytes(traces[0])
    assert size > 10_000
    now = [0.0]
    store = TraceStore(int(size * 2.5), idle_s=100, clock=lambda: now[0])
    refs = [store.put(t) for t in traces[:2]]
    assert store.get(refs[0]) is traces[0]  # used again: now the most recent
    refs.append(store.put(traces[2]))
    assert store.get(refs[1]) is None and store.get(refs[0]) is traces[0] and store.total <= store.max_bytes
    now[0] = 101.0  # idle past idle_s
    assert store.get(refs[2]) is None and store.total == 0
    assert store.get("not a reference") is None and store.get(TraceRef("nope")) is None


def test_a_visitor_keeps_its_newest_two_traces_and_others_keep_theirs():
    """A visitor's state holds one trace; each new one it replaces drops the one before the
    replaced (unreachable, but it held bytes until the store's limit pushed it out)."""
    traces = [generate(tiny_model(seed=i), "w1 w2 w3", DecodeSettings(beam_size=2, max_len=6)) for i in range(5)]
    store = TraceStore(10**9, idle_s=100)
    first = store.put(traces[0])
    theirs = store.put(traces[4])  # another visitor's
    second = store.put(traces[1], replaces=first)
    assert store.get(first) is traces[0]  # a request sent before `second` arrived may still read it
    third = store.put(traces[2], replaces=second)
    assert store.get(first) is None and store.get(second) is traces[1] and store.get(third) is traces[2]
    assert store.get(theirs) is traces[4]
    assert store.total == sum(trace_nbytes(t) for t in (traces[1], traces[2], traces[4]))
    fourth = store.put(traces[3], replaces=TraceRef("gone"))  # replaces one already dropped: nothing to drop
    assert store.get(fourth) is traces[3] and store.get(second) is traces[1] and len(store.succeeded) == 1


def test_live_runs_drop_a_visitors_duplicate_while_it_runs_and_just_after_and_stay_bounded():
    now = [0.0]
    runs = LiveRuns(window_s=5, max_sessions=2, clock=lambda: now[0])
    assert not runs.is_duplicate("a", "x")
    now[0] = 60.0  # still running, however long it takes
    assert runs.is_duplicate("a", "x") and not runs.is_duplicate("b", "x")  # another visitor's is its own
    runs.finished("a", "x")
    now[0] = 64.0
    assert runs.is_duplicate("a", "x")
    now[0] = 66.0  # finished more than window_s ago: a run of it decodes again
    assert not runs.is_duplicate("a", "x")
    assert not runs.is_duplicate("a", "y") and not runs.is_duplicate("a", "x")  # x, y, x: each decodes
    assert not runs.is_duplicate(None, "x") and not runs.is_duplicate(None, "x")  # no session: never dropped
    assert not runs.is_duplicate("c", "x") and len(runs._latest) == 2  # the oldest visitor is forgotten


def test_trace_size_estimate_is_close_to_what_python_allocates():
    import tracemalloc

    model = tiny_model()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    trace = generate(model, "w1 w2 w3 w4 w5 w6", DecodeSettings(beam_size=8, max_len=20, min_len=19))
    allocated = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert 0.75 < trace_nbytes(trace) / allocated < 1.33


def test_a_dropped_trace_gives_the_no_trace_message(app_url, app_module, monkeypatch):
    handlers = app_module.handlers
    monkeypatch.setattr(handlers.traces, "max_bytes", 1)  # every new trace pushes out the others
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    assert call(app_url, app_module.demo, "/trace", trace_data(), session=first)["success"]
    assert call(app_url, app_module.demo, "/trace", trace_data(), session=second)["success"]
    assert "No trace to show" in texts(call(app_url, app_module.demo, "/pin", view_data(1), session=first))


# -- compute, time and replies ------------------------------------------------------------------
def test_explain_over_the_budget_or_the_slider_is_refused_by_name(app_url, app_module, traced_session, tight):
    demo = app_module.demo
    refused = texts(call(app_url, demo, "/explain", [None, TEXT, 1, "ig", "", 256], session=traced_session))
    assert "n_steps must be between 2 and 128, got 256" in refused
    tight(attribution_work=50)
    refused = texts(call(app_url, demo, "/explain", [None, TEXT, 1, "ig", "", 128], session=traced_session))
    assert "integration steps ×" in refused and "over the limit of 50" in refused


def test_a_request_past_its_time_is_stopped_with_a_message_naming_the_limit(app_url, app_module, tight):
    tight(request_seconds=1e-9)
    result = call(app_url, app_module.demo, "/intervene_p_gen", [POINTER, TEXT, *[None] * N, "1"])
    assert "time limit of one request (1e-09 s, GENSCOPE_REQUEST_SECONDS)" in texts(result)


def test_corpus_runs_in_the_app_are_bounded_by_the_budget(app_url, app_module, tight):
    settings = {name: None for name in SETTING_NAMES} | {"beam_size": 16, "max_len": 200}
    result = call(app_url, app_module.demo, "/corpus", [POINTER, 500, "rouge_l", "chrf", *settings.values()])
    assert "500 examples × 16 beams × 200 steps = 1,600,000, over the limit of 120,000" in texts(result)
    tight(corpus_seconds=1e-9)
    stopped = texts(call(app_url, app_module.demo, "/corpus", [POINTER, 5, "rouge_l", "chrf", *[None] * N]))
    assert "stopped at the 1e-09 s limit of a corpus run (GENSCOPE_CORPUS_SECONDS) after 0 of 5" in stopped


def test_a_corpus_run_stops_when_its_visitor_is_gone():
    queue = SimpleNamespace(active_jobs=[None, [SimpleNamespace(session_hash="a", fn=SimpleNamespace(name="corpus"),
                                                                alive=False)]])
    budget._QUEUE["queue"] = queue
    try:
        assert not budget.still_wanted(SimpleNamespace(session_hash="a"), "corpus")  # left the page
        assert not budget.still_wanted(SimpleNamespace(session_hash="b"), "corpus")  # Stop: the job is gone
        queue.active_jobs[1][0].alive = True
        assert budget.still_wanted(SimpleNamespace(session_hash="a"), "corpus")
    finally:
        budget._QUEUE.pop("queue")
    assert budget.still_wanted(None, "corpus")  # outside a served app


def test_trace_replies_are_bounded(app_url, app_module, tight):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    tight(recorded_values=2_000)
    with pytest.raises(AppError, match=r"numbers recorded per hypothesis and step .* over the limit of 2,000"):
        client.predict(POINTER, TEXT, beam_size=16, max_len=200, api_name="/trace")
    tight(reply_mb=0.001)
    with pytest.raises(AppError, match=r"over the reply limit of 0.001 MB \(GENSCOPE_REPLY_MB\)"):
        client.predict(POINTER, TEXT, api_name="/trace")


# -- what one visitor may send and queue ----------------------------------------------------------
def test_bodies_over_the_limit_are_refused_before_they_are_read(app_url, app_module):
    import http.client

    host, port = app_url.split("//")[1].rstrip("/").split(":")
    queued = len(app_module.demo._queue)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/gradio_api/queue/join")  # a 60 MB body announced, none of it sent
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(60 * 1024 * 1024))
    connection.endheaders()
    reply = connection.getresponse()
    assert reply.status == 413 and b"GENSCOPE_BODY_KB" in reply.read()
    connection.close()
    chunked = b'{"data": ["' + b"x" * (1100 * 1024) + b'"]}'  # no length announced: counted as it comes
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", "/gradio_api/queue/join", body=iter([chunked[:600_000], chunked[600_000:]]),
                           headers={"Content-Type": "application/json"}, encode_chunked=True)
        assert connection.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused while it was still sending
    finally:
        connection.close()
    assert len(app_module.demo._queue) == queued


def test_uploads_are_bounded_in_files_per_request(app_url):
    boundary = "genscope"
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.txt"\r\n'
                    f"Content-Type: text/plain\r\n\r\nhello\r\n" for i in range(5))
    body = (parts + f"--{boundary}--\r\n").encode()
    status, reply = post(f"{app_url}gradio_api/upload", body,
                         {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 413 and b"at most 4 files per upload" in reply


def test_one_session_may_queue_only_a_few_requests(app_url, app_module, tight):
    import threading

    tight(queued_per_session=4)
    session, results = uuid.uuid4().hex, []
    threads = [threading.Thread(target=lambda: results.append(call(
        app_url, app_module.demo, "/trace", trace_data(beam_size=8, max_len=40), session=session)))
        for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    refused = [r for r in results if r["status"] == 503]
    assert refused and all("GENSCOPE_QUEUED_PER_SESSION = 4" in r["detail"] for r in refused)
    assert any(r["success"] for r in results)


def test_per_client_limit_counts_a_clients_queued_requests_wherever_they_come_from(monkeypatch):
    def event(session, host):
        return SimpleNamespace(session_hash=session, request=SimpleNamespace(headers={}, client=SimpleNamespace(host=host)))
    waiting = [event(f"s{i}", "203.0.113.9") for i in range(32)]
    queue = SimpleNamespace(event_queue_per_concurrency_id={"work": SimpleNamespace(queue=waiting)})
    assert "GENSCOPE_QUEUED_PER_CLIENT = 32" in budget.queued_refusal(queue, "new", "203.0.113.9")
    assert budget.queued_refusal(queue, "new", "198.51.100.1") is None
    assert budget.client_address(SimpleNamespace(headers={}, client=SimpleNamespace(host="127.0.0.1"))) is None
    monkeypatch.setenv("SPACE_ID", "someone/genscope")
    proxied = SimpleNamespace(headers={"x-forwarded-for": "198.51.100.7, 10.0.0.1"},
                              client=SimpleNamespace(host="10.0.0.1"))
    assert budget.client_address(proxied) == "198.51.100.7"


def test_other_sites_get_no_cors_grant_and_monitoring_is_off(app_url):
    port = app_url.rstrip("/").rsplit(":", 1)[1]
    for origin, granted in (("http://evil.example", False), (f"http://127.0.0.1:{port}", True)):
        request = urllib.request.Request(f"{app_url}config", headers={"Origin": origin})
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert (reply.headers.get("access-control-allow-credentials") is not None) == granted or not granted
            if not granted:
                assert reply.headers.get("access-control-allow-origin") is None
    try:
        code = urllib.request.urlopen(f"{app_url}monitoring", timeout=30).status
    except urllib.error.HTTPError as error:
        code = error.code
    assert code in (403, 404)


# -- hostile values -------------------------------------------------------------------------------
@pytest.mark.parametrize("pinned", [10 ** 400, "1e309", "inf", "-inf", "nan", [1], {"a": 1}])
def test_hostile_pinned_steps_get_a_named_error(app_url, app_module, traced_session, pinned):
    reply = texts(call(app_url, app_module.demo, "/pin", view_data(pinned), session=traced_session))
    assert "pinned step must be a" in reply and "internal error" not in reply


def test_hostile_view_options_and_event_data_get_named_errors(app_url, app_module, traced_session):
    demo = app_module.demo
    assert "mask kind must be one of" in texts(call(app_url, demo, "/views", view_data(mask=[]), session=traced_session))
    for api_name in ("/plot_click", "/pin_token"):
        inputs = view_data() if api_name == "/plot_click" else [None, None, -1, *OPTIONS]
        for event_data in ([1, 2], "x", 7):
            reply = texts(call(app_url, demo, api_name, inputs, event_data=event_data, session=traced_session))
            assert "event data must be an object" in reply, (api_name, event_data, reply)
    opened = call(app_url, demo, "open_example", [None], event_data=[1, 2], session=traced_session)
    assert "event data must be an object" in texts(opened)


def test_messages_name_no_server_path_and_no_link(app_url, app_module, tmp_path):
    from ui.handlers import markdown_text

    import os

    typed = str(tmp_path / "nope")
    status = texts(call(app_url, app_module.demo, "/trace", trace_data(model="hf:" + typed)))
    assert "GENSCOPE_MODEL_ROOTS" in status
    for root in os.environ["GENSCOPE_MODEL_ROOTS"].split(os.pathsep):
        assert root not in status.replace(typed, "")  # only what the user typed
    shown = markdown_text("unknown model 'https://evil.example/login' or www.evil.example or me@evil.example")
    assert "://" not in shown and "www." not in shown and "@evil" not in shown
    assert shown.replace("\u2060", "").replace("\\", "") == ("unknown model 'https://evil.example/login' or "
                                                              "www.evil.example or me@evil.example")


def test_a_link_that_cannot_be_restored_opens_the_default_view_and_says_what(app_module):
    import base64
    import zlib

    raw = json.dumps({"model": "https://evil.example", "text": "\ud800", "pinned": 10 ** 30, "settings": {}})
    value = base64.urlsafe_b64encode(zlib.compress(raw.encode("utf-8", "surrogatepass"))).decode()
    request = SimpleNamespace(query_params={"view": value})
    values = app_module.handlers.restore_view(POINTER, TEXT, 0, None, *OPTIONS, request=request)
    message = values["link_status"]
    assert "is not available here" in message and "could not restore: text, pinned" in message
    assert "://" not in message and values["model"] == POINTER and values["state"] is not None


def test_a_link_without_settings_opens_the_model_at_its_own_defaults(app_module):
    import base64
    import zlib

    raw = json.dumps({"model": "tiny-hull", "text": "random 8 seed 1", "settings": {"beam_size": 3}})
    value = base64.urlsafe_b64encode(zlib.compress(raw.encode("utf-8"))).decode()
    values = app_module.handlers.restore_view(POINTER, TEXT, 0, None, *OPTIONS,
                                              request=SimpleNamespace(query_params={"view": value}))
    assert values["model"] == "tiny-hull" and values["link_status"] == "✓ opened a shared view"
    assert (values["end_when_complete"], values["max_len"], values["beam_size"]) == (True, 100, 3)
    assert values["shared"]["settings"]["end_when_complete"] is True


def test_a_link_whose_input_fails_shows_the_models_own_tabs_and_says_so(app_module):
    """A shared view whose input cannot be decoded leaves the page with no trace: the tabs are the
    model's (from its first example), not every tab, and nothing claims views of an earlier run."""
    import base64
    import zlib

    from ui.handlers import STALE, tab_key

    raw = json.dumps({"model": "tiny-hull", "text": "random 2 seed 1", "settings": {}})
    value = base64.urlsafe_b64encode(zlib.compress(raw.encode("utf-8"))).decode()
    values = app_module.handlers.restore_view(POINTER, TEXT, 0, None, *OPTIONS,
                                              request=SimpleNamespace(query_params={"view": value}))
    assert values["model"] == "tiny-hull" and "could not be decoded" in values["link_status"]
    assert values["status"].startswith("⚠") and "random N needs" in values["status"]
    assert STALE not in values["status"] and values.get("state") is None
    shown = {key: update["visible"] for key, update in values.items() if key.startswith("tab:")}
    assert shown[tab_key("Convex hull")] is True and shown[tab_key("Keyword")] == "hidden"
    raw = json.dumps({"model": "tiny-hull", "text": "random 2 seed 1", "pinned": "many", "settings": {}})
    value = base64.urlsafe_b64encode(zlib.compress(raw.encode("utf-8"))).decode()
    values = app_module.handlers.restore_view(POINTER, TEXT, 0, None, *OPTIONS,
                                              request=SimpleNamespace(query_params={"view": value}))
    assert "could not restore: pinned" in values["link_status"] and "could not be decoded" in values["link_status"]


def test_every_endpoint_survives_a_fuzz_of_hostile_values(app_url, app_module):
    """Each named endpoint, each of its inputs in turn replaced by a hostile value: every reply is an
    answer (a result or a named message), never an internal error, and the server keeps serving."""
    demo = app_module.demo
    hostile = [10 ** 400, "1e309", -1, [], {"x": [1]}, "\ud800", "x" * 30_000, None, True, math.pi]
    endpoints = {fn.api_name: len(fn.inputs) for fn in demo.fns.values()
                 if fn.api_name and fn.api_name not in ("corpus",) and fn.fn is not None}
    session = uuid.uuid4().hex
    base = {"trace": trace_data()}
    calls = 0
    for api_name, n_inputs in sorted(endpoints.items()):
        inputs = base.get(api_name, [None] * n_inputs)
        for position in range(0, n_inputs, max(1, n_inputs // 6)):  # a bounded sample of positions
            value = hostile[(calls * 7 + position) % len(hostile)]
            data = list(inputs)
            data[position] = value
            result = call(app_url, demo, f"/{api_name}", data, session=session, timeout=60)
            calls += 1
            assert result["status"] in (200, 422), (api_name, position, value, result)
            assert "internal error" not in texts(result), (api_name, position, repr(value)[:40])
    assert calls > 40
    assert call(app_url, demo, "/trace", trace_data())["success"]  # still serving


def test_app_imports_gradio_without_rewriting_its_type_stubs():
    """#33 start-up: ``import app`` loads Gradio with its stub writer replaced (it parsed every
    component's source on each start), and the components still build."""
    import subprocess
    import sys

    code = ("import app, gradio as gr, gradio.component_meta as meta; gr.Textbox('x'); gr.Slider(0, 1);"
            "print(meta.create_or_modify_pyi.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "_write_no_stubs"
    from ui.gradio_import import skip_stub_writing

    import gradio  # noqa: F401  (imported already in this process: nothing to patch)
    assert skip_stub_writing() is False


def test_the_served_app_gives_a_live_run_its_visitors_session(app_url, app_module):
    """``trace_live``'s ``request`` is keyword-only (after ``*values``), which Gradio does not inject:
    the app fills it from the event, so a visitor's duplicate live runs are recognised when served
    (not only when a test passes ``request=`` itself)."""
    demo = app_module.demo
    fn = next(f for f in demo.fns.values() if f.api_name == "trace_live")
    data = [getattr(component, "value", None) for component in fn.inputs]
    data[0], data[1] = POINTER, TEXT + " served"
    session = uuid.uuid4().hex
    first = call(app_url, demo, "trace_live", data, session=session)
    assert first["success"] and "decoded in" in texts(first)
    assert session in app_module.handlers.live_runs._latest
    late = call(app_url, demo, "trace_live", data, session=session)  # the same run again, just after
    assert late["success"] and "decoded in" not in texts(late)
