"""The notebooks run top to bottom on tiny synthetic data (parameters through ASL_NB_* variables)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO
from .test_explain import tiny_run

pytestmark = pytest.mark.slow


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    # kernel "python3" started with this interpreter (jupyter_client maps "python" to sys.executable)
    assert Path(sys.executable).parent.parent.exists()
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_explore_data_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("ASL_NB_PER_CLASS", "4")
    monkeypatch.setenv("ASL_NB_IMAGE_SIZE", "32")
    monkeypatch.setenv("ASL_NB_SAMPLES", "2")
    nb = execute("explore_data.ipynb", tmp_path)
    text = outputs(nb)
    assert "96 images, 24 classes, 0 skipped" in text and "images with a hand mask: all" in text
    assert sum(o.get("output_type") == "display_data" for c in nb.cells for o in c.get("outputs", [])) >= 3


def test_inspect_model_notebook(tmp_path, tmp_path_factory, monkeypatch):
    run = tiny_run(tmp_path_factory.getbasetemp())
    monkeypatch.setenv("ASL_NB_CKPT", str(run / "checkpoints" / "best.ckpt"))
    monkeypatch.setenv("ASL_NB_MISTAKES", "1")
    nb = execute("inspect_model.ipynb", tmp_path)
    text = outputs(nb)
    assert "on 24 images" in text and "hand share" in text
