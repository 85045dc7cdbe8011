"""Refuse to start when a file in the working directory shadows one of our packages.

The project installs four top-level packages (`state`, `policies`, `nodes`, `orchestrator`).
A user's `state.py` or `nodes/` next to their notebook comes first on `sys.path` and would
otherwise fail deep inside an import with a confusing `cannot import name ...`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PACKAGES = ("state", "policies", "nodes")
_HOME = Path(__file__).resolve().parents[1]


def check_shadowing() -> None:
    """Raise `ImportError` naming the file that shadows one of our packages, and the way out."""
    for name in PACKAGES:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin is None:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            origin = spec.origin if spec is not None else None
        if origin is None:
            continue  # a namespace package: our own would have an __init__.py
        path = Path(origin).resolve()
        if path != _HOME / name / "__init__.py":
            shown = path.parent if path.name == "__init__.py" else path
            raise ImportError(
                f"'{shown}' shadows the orchestrator's `{name}` package (installed in "
                f"{_HOME / name}); rename your {shown.name} or start Python from another "
                "directory"
            )


check_shadowing()
