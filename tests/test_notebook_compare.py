"""notebooks/compare_runs.ipynb runs top to bottom on a small multirun (so it cannot rot)."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO
from tests.test_compare import fake_multirun


def test_compare_notebook_executes(tmp_path, monkeypatch):
    mr = fake_multirun(tmp_path / "mr")
    monkeypatch.setenv("ASL_MULTIRUN", str(mr))
    nb = nbformat.read(REPO / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(str(o) for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert "curriculum=five_then_all" in outputs and "4 finished runs" in outputs
    assert "image/png" in outputs
