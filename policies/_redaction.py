"""The one redaction policy: which keys hold secrets, and how a value or a message hides them.

Everything that leaves a run goes through it: log lines, audit entries, `--json` output
(`pending_approval.summary` included), error messages recorded for failed steps, and the
headers a webhook keeps when a redirect leaves the origin it named.

Keys are matched by regular expressions, case-insensitively, anywhere in the key. The
defaults cover passwords, tokens, secrets, API keys (`api_key`, `api-key`, `X-Api-Key`),
`auth`/`Authorization`, cookies, sessions, credentials and private/access keys. Add patterns
with `configure_redaction(extra=[...])` or `ORCHESTRATOR_REDACT_KEYS` (comma-separated
regular expressions); replace them with `configure_redaction(patterns=[...])`.

Example:
    ```python
    redact({"user": "ada", "headers": {"X-Api-Key": "k"}})
    # {"user": "ada", "headers": {"X-Api-Key": "[REDACTED]"}}
    redact_text("login failed: password=hunter2")
    # "login failed: password=[REDACTED]"
    ```
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_SECRET_PATTERNS",
    "REDACTED",
    "RedactionPolicy",
    "configure_redaction",
    "is_secret_key",
    "redact",
    "redact_text",
    "redaction_policy",
]

REDACTED = "[REDACTED]"
"""What a secret's value becomes."""

DEFAULT_SECRET_PATTERNS = (
    r"passw(or)?d",
    r"^pass$",
    r"^pwd$",
    r"secret",
    r"token(?!s|_?count|_?usage|_?budget|_?limit)",  # not token counts of LLM calls
    r"api[-_ ]?key",
    r"auth(?!or(?!iz))",  # auth, authorization, authentication, oauth; not author(ity)
    r"cookie",
    r"session",
    r"credential",
    r"private[-_ ]?key",
    r"access[-_ ]?key",
    r"signature",
)
"""Key patterns whose values are secrets, unless configured otherwise."""

_ENV = "ORCHESTRATOR_REDACT_KEYS"

# `key=value`, `key: value`, `"key": "value"` inside free text (error messages), for a key
# containing one of the policy's patterns
_PAIR = (
    r"""(?P<key>[\w.-]*(?:{keys})[\w.-]*)(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"',;&)}}\]]+)"""
)
# every secret `redact_text` hides sits next to a separator (`=`, `:`, `://`) or after
# whitespace (`Bearer x`): text with none of them is returned as it is, without the searches
_MAYBE_SECRET = re.compile(r"[\s:=]")
_KNOWN_KEYS_MAX = 4096
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


@dataclass(frozen=True)
class RedactionPolicy:
    """Which keys are secret. Immutable; build another to change it."""

    patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    """Regular expressions searched (case-insensitively) in each key."""
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _pairs: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _known: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = "|".join(f"(?:{p})" for p in self.patterns)
        try:
            compiled = re.compile(keys, re.IGNORECASE)
            # anchors in key patterns (`^pwd$`) mean "the whole key", so drop them in free text
            loose = "|".join(f"(?:{p.lstrip('^').rstrip('$')})" for p in self.patterns)
            pairs = re.compile(_PAIR.format(keys=loose), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(
                f"invalid redaction pattern in {list(self.patterns)}: {exc}; use Python "
                f"regular expressions (check {_ENV})"
            ) from None
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_pairs", pairs)
        object.__setattr__(self, "_known", {})

    def is_secret_key(self, key: object) -> bool:
        """True when `key` is a string matching one of the patterns."""
        if not isinstance(key, str):
            return False
        known = self._known.get(key)
        if known is None:
            # the same few keys come back on every entry and log line: remember the answer
            if len(self._known) >= _KNOWN_KEYS_MAX:
                self._known.clear()
            known = self._known[key] = self._compiled.search(key) is not None
        return known

    def redact(self, value: Any) -> Any:
        """A copy of `value` with secret keys' values replaced and strings cleaned, any depth.

        Mappings, lists and tuples are copied (tuples become lists); the input is unchanged.
        """
        if isinstance(value, Mapping):
            return {
                k: REDACTED if self.is_secret_key(k) else self.redact(v) for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in value]
        if isinstance(value, str):
            return self.redact_text(value)
        return value

    def redact_text(self, text: str) -> str:
        """`text` with `secret_key=value` pairs, bearer tokens and URL passwords hidden."""
        if not text or _MAYBE_SECRET.search(text) is None:
            return text
        text = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
        return self._pairs.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)


def _from_env() -> RedactionPolicy:
    extra = [p.strip() for p in os.environ.get(_ENV, "").split(",") if p.strip()]
    return RedactionPolicy((*DEFAULT_SECRET_PATTERNS, *extra))


_active: RedactionPolicy | None = None


def redaction_policy() -> RedactionPolicy:
    """The policy in force (defaults plus `ORCHESTRATOR_REDACT_KEYS`, unless configured)."""
    global _active
    if _active is None:
        _active = _from_env()
    return _active


def configure_redaction(
    *, patterns: Iterable[str] | None = None, extra: Iterable[str] = ()
) -> RedactionPolicy:
    """Set the process-wide policy: `patterns` replace the defaults, `extra` adds to them."""
    global _active
    base = tuple(patterns) if patterns is not None else DEFAULT_SECRET_PATTERNS
    _active = RedactionPolicy((*base, *extra))
    return _active


def is_secret_key(key: object) -> bool:
    """True when the policy in force calls `key` secret."""
    return redaction_policy().is_secret_key(key)


def redact(value: Any) -> Any:
    """`value` redacted by the policy in force (see `RedactionPolicy.redact`)."""
    return redaction_policy().redact(value)


def redact_text(text: str) -> str:
    """`text` redacted by the policy in force (see `RedactionPolicy.redact_text`)."""
    return redaction_policy().redact_text(text)
