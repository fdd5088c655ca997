"""Import Gradio without its type-stub writer: a third of the app's start-up.

Each Gradio component class, as it is created at ``import gradio``, calls
``gradio.component_meta.create_or_modify_pyi``, which reads and parses the component's whole source
file to regenerate its ``.pyi`` type stubs beside it — a development aid for Gradio's own authors
(the installed wheel ships the stubs). For the ~80 components that is about 1.3 s of a 4 s start on
a 2-core machine. :func:`skip_stub_writing`, called before Gradio is first imported, replaces that
function with a no-op as soon as its module has loaded; nothing else of Gradio changes. Only the
standard library is imported here.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any, Optional, Sequence

MODULE = "gradio.component_meta"


def _write_no_stubs(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``create_or_modify_pyi``: the installed stubs are left as they are."""


class _StubSkipper(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` as the path finder would, and patches it once executed."""

    def find_spec(self, name: str, path: Optional[Sequence[str]], target: Any = None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # once: the module is found here, then by the usual finders
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            if callable(getattr(module, "create_or_modify_pyi", None)):
                module.create_or_modify_pyi = _write_no_stubs

        spec.loader.exec_module = exec_module
        return spec


def skip_stub_writing() -> bool:
    """Install the patch for the coming ``import gradio``; False (nothing done) when Gradio is
    already imported."""
    if MODULE in sys.modules or any(isinstance(f, _StubSkipper) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _StubSkipper())
    return True
