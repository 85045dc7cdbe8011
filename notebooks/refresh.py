"""Execute notebooks in place, keeping their outputs (so they read well on a code host).

    python notebooks/refresh.py                     # every notebook
    python notebooks/refresh.py notebooks/02_patterns.ipynb

Each runs in a fresh temporary directory (its SQLite files land there), offline, in seconds.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def refresh(path: Path) -> None:
    """Run every cell of `path` and write the notebook back with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": work}}
        ).execute()
    nbformat.write(notebook, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for name in sys.argv[1:] or sorted(str(p) for p in here.glob("*.ipynb")):
        refresh(Path(name))
