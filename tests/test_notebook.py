"""The example notebook (docs/notebook.ipynb) runs top to bottom in a fresh kernel (nbclient)."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent


def test_example_notebook_executes():
    notebook = nbformat.read(REPO / "docs" / "notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"]
    assert "library" in outputs[0][0]["data"]["text/plain"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs[1])
    assert outputs[-1][0]["data"]["text/plain"].strip("'") in ("search error", "model error", "match")


def test_load_model_names_what_exists():
    import pytest

    from gen_models import load_model

    with pytest.raises(ValueError, match="no checkpoint named 'nope'"):
        load_model("nope")
