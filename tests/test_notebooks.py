"""The notebooks run top to bottom with a real kernel (they import only the public API)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, tmp_path: Path) -> None:
    """Every cell of the notebook executes without raising."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pictures, "every tutorial shows at least one picture (a diagram or a plot)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_outputs_and_public_imports(path: Path) -> None:
    """Every code cell was executed before commit (it reads well on a code host) and the
    notebook imports only the public API, never a private module of ours."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), "run notebooks/refresh.py"
    source = "\n".join(cell.source for cell in code)
    assert not re.search(r"(from|import) (state|policies|nodes|orchestrator)\._", source)
    assert not re.search(r"^\s*(from|import) nodes\b", source, flags=re.M)


def test_there_are_notebooks() -> None:
    """The tutorials exist (a missing folder would make the tests above vacuous)."""
    assert [p.stem for p in NOTEBOOKS] == [
        "01_quickstart",
        "02_patterns",
        "03_human_in_the_loop",
        "04_fault_tolerance",
        "05_observability",
    ]
