"""Shared fixtures: tiny random checkpoints and the app served from them.

- ``checkpoint_root``: a session temp folder with ``tiny-pointer-coverage``, ``tiny-seq2seq`` and
  ``tiny-mta`` (see ``tests/tiny_checkpoints.py``).
- ``app_module``: ``app`` imported with ``GENSCOPE_CHECKPOINTS`` pointing at those, so its
  module-level registry never loads the shipped checkpoints.
- ``app_url``: that app launched in-process on a free localhost port (queue on), closed at the end.
- ``free_port()``: a helper for tests that launch their own server.
"""
from __future__ import annotations

import importlib
import os
import socket
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GENSCOPE_DEVICE", "cpu")  # the suite runs on the CPU (bench_cuda.py runs it on a GPU)
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.tiny_checkpoints import make_tiny_checkpoints  # noqa: E402


def free_port() -> int:
    """A localhost TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory) -> Path:
    """Tiny random checkpoints, built once per test session."""
    return make_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def app_module(checkpoint_root):
    """The ``app`` module, imported with ``GENSCOPE_CHECKPOINTS`` set to the tiny checkpoints."""
    os.environ["GENSCOPE_CHECKPOINTS"] = str(checkpoint_root)
    # hf: test models are written to temporary folders
    os.environ["GENSCOPE_MODEL_ROOTS"] = os.pathsep.join([str(checkpoint_root), tempfile.gettempdir()])
    return importlib.import_module("app")


@pytest.fixture(scope="session")
def app_url(app_module):
    """The app served on a free port for the whole session."""
    port = free_port()
    kwargs = dict(app_module.launch_kwargs(), server_port=port, prevent_thread_lock=True, quiet=True)
    app_module.demo.launch(**kwargs)
    yield f"http://127.0.0.1:{port}/"
    app_module.demo.close()
