"""The LangGraph Studio / `langgraph dev` entry: the enterprise graph without a checkpointer.

`langgraph dev` brings its own persistence and refuses graphs compiled with one. Studio sends
the graph input `{"workflow": <definition>, "context": <input>}`; actions come from the
module the definition names under `actions:` (importable from the project root).
"""

from __future__ import annotations

from orchestrator._graph import build_graph
from orchestrator._logging import use_stdlib_logging

use_stdlib_logging()

graph = build_graph()
"""The compiled graph `langgraph.json` points at."""
