"""Every shipped checkpoint traced through the app's API (``gradio_client``), with its own first
example: each answers with a trace and at least one view, never a warning; and each benchmark runs
once in a quick mode so it cannot rot."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from gen_models.checkpoint import CHECKPOINT_ROOT, list_checkpoints
from gen_models.trace import GenerationTrace

SHIPPED = [folder.name for folder in list_checkpoints(CHECKPOINT_ROOT)]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped_client(app_module):
    from tests.conftest import free_port
    from ui.handlers import Handlers
    from ui.registry import ModelRegistry

    registry = ModelRegistry.load(CHECKPOINT_ROOT)
    assert not registry.errors, registry.errors
    demo = app_module.build_demo(registry, Handlers(registry))
    port = free_port()
    demo.launch(**dict(app_module.launch_kwargs(), server_port=port, prevent_thread_lock=True, quiet=True))
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), registry
    demo.close()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_checkpoint_traces_through_the_api(shipped_client, name):
    from tests.test_app_api import named
    from ui.handlers import trace_outputs, view_outputs

    client, registry = shipped_client
    example = registry.get(name).examples[0]
    outputs = named(client.predict(name, example, api_name="/trace"), trace_outputs())
    assert outputs["status"].startswith("✓") and "⚠" not in outputs["status"], outputs["status"]
    trace = GenerationTrace.from_json(outputs["trace_json"])
    assert trace.steps and trace.output_text.strip()
    shown = [n for n in view_outputs()[2:] if isinstance(outputs.get(n), dict) and outputs[n].get("visible")]
    assert "beam" in shown, shown


def test_an_empty_input_shows_each_models_hint_as_text(shipped_client):
    """#27 item 11: Debian's hint "<package name>: <long description>" was read as HTML tags, so the
    status showed a lone "✎"; every model's hint is Markdown-escaped text."""
    import re

    from tests.test_app_api import named
    from ui.handlers import trace_outputs

    client, registry = shipped_client
    for name in SHIPPED:
        status = named(client.predict(name, "", api_name="/trace"), trace_outputs())["status"]
        entry = registry.get(name)
        hint = entry.input_hint or entry.model.features.input_hint
        assert status.startswith("✎ ") and len(status) > 20, (name, status)
        assert not re.search(r"(?<!\\)[<>]", status), (name, status)  # no raw tag for the Markdown renderer
        if hint:
            assert re.sub(r"\\(.)", r"\1", status).startswith(f"✎ {hint}"), (name, status)


@pytest.mark.parametrize("command", [
    ["benchmarks/bench_tracing.py", "--repeats", "1", "--threads", "1"],
    ["benchmarks/bench_app.py", "--server-only", "--runs", "1"],
    ["benchmarks/bench_attribution.py", "--repeats", "1", "--threads", "1"],
    ["benchmarks/bench_cuda.py", "--device", "cpu", "--quick"],
    ["benchmarks/bench_json_path.py", "--quick", "--repeats", "1"],
    ["benchmarks/bench_budget.py", "--quick"],
    ["benchmarks/bench_keystroke.py", "--quick"],
    ["benchmarks/bench_llm_size.py", "--quick", "--threads", "1"],
])
def test_benchmarks_run_in_quick_mode(command):
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio" in done.stdout
