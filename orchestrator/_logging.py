"""structlog routed through stdlib logging, so applications stay in control of output."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

import structlog

from policies import REDACTED, is_secret_key, redact, redact_text

LOGGER_NAME = "orchestrator"


def redact_secrets(value: Any) -> Any:
    """A copy of `value` redacted by the project's one policy (`policies.redact`).

    Values under secret-looking keys are replaced at any depth and secrets inside strings
    (`password=...`, bearer tokens, URL passwords) are hidden; the input is never changed.

    Example:
        ```python
        redact_secrets({"user": "a", "auth": {"api_key": "k"}})
        # {"user": "a", "auth": "[REDACTED]"}
        ```
    """
    return redact(value)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if is_secret_key(key):
            event[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple | str):
            event[key] = redact(value)
        elif isinstance(value, BaseException):
            event[key] = redact_text(f"{type(value).__name__}: {value}")
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact,
]


def use_stdlib_logging() -> None:
    """Send our structlog events to stdlib logging unless the application configured structlog.

    Nothing is printed unless logging is configured (stdlib's last-resort handler shows
    warnings and errors on stderr).
    """
    if not logging.getLogger(LOGGER_NAME).handlers:
        logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop disabled levels before any processing
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_logging(
    *, json: bool | None = None, level: str | int = "INFO", stream: IO[str] | None = None
) -> None:
    """Show the orchestrator's logs: JSON lines (production) or readable console lines.

    `json=None` picks JSON when `stream` is not a terminal. Every line carries the workflow,
    run and step ids where they apply; values under secret-looking keys are redacted.
    """
    use_stdlib_logging()
    out = stream or sys.stderr
    as_json = json if json is not None else not out.isatty()
    renderers: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(default=str)]
        if as_json
        else [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
            foreign_pre_chain=_SHARED,
        )
    )
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers = [handler]
    logger.setLevel(level if isinstance(level, int) else level.upper())
    logger.propagate = False
