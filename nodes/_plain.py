"""Step outputs become plain data before they reach a checkpoint.

Checkpoints must load under `LANGGRAPH_STRICT_MSGPACK=true` in any process (a resumed run, the
CLI, LangGraph Studio), so outputs are stored as JSON-like values: pydantic models and
dataclasses become dicts, enums their values, dates ISO text, and anything else its `str()`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


def to_plain(value: Any) -> Any:
    """`value` as JSON-like data (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "model_dump"):  # LangChain messages and other pydantic-like objects
        return to_plain(value.model_dump())
    return str(value)
