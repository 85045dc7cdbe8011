"""One redaction policy, applied wherever a value leaves a run; webhook replies are bounded."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orchestrator import ActionRegistry, configure_logging
from policies import REDACTED, RedactionPolicy, configure_redaction, redact, redact_text
from policies._redaction import _BEARER, _URL_USERINFO
from state import AdvancedWorkflow, WorkflowStatus

SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "api-key",
        "X-Api-Key",
        "api_key",
        "cookie",
        "Set-Cookie",
        "auth",
        "session",
        "Authorization",
        "access_token",
        "client_secret",
        "private_key",
    ],
)
def test_secret_keys_are_redacted(key: str) -> None:
    """Every key the issue names (and their usual spellings) is redacted at any depth."""
    assert redact({"outer": [{key: SECRET}]}) == {"outer": [{key: REDACTED}]}


@pytest.mark.parametrize("key", ["author", "authority", "max_tokens", "input_tokens", "passenger"])
def test_lookalike_keys_are_kept(key: str) -> None:
    """Keys that only look like secrets (author, max_tokens) keep their values."""
    assert redact({key: 1}) == {key: 1}


@pytest.mark.parametrize(
    "text",
    [
        f"login failed: password={SECRET}",
        f'{{"api_key": "{SECRET}"}}',
        f"Authorization: Bearer {SECRET}",
        f"cannot reach postgresql://app:{SECRET}@db/x",
        f"token: {SECRET}",
    ],
)
def test_secrets_inside_messages_are_hidden(text: str) -> None:
    """Secrets written into free text (error messages) are hidden, the rest kept."""
    out = redact_text(text)
    assert SECRET not in out
    assert REDACTED in out


_PIECES = ["token", "Bearer", "password", "x", "7", " ", "\t", ":", "=", "://", "@", "/", '"']


@given(st.lists(st.sampled_from(_PIECES), max_size=8).map("".join))
@example("token x")
@example("x://x:x@x")
@example("password=x")
def test_text_without_separators_is_returned_as_is_only_when_safe(text: str) -> None:
    """Skipping texts with no separator or whitespace changes nothing: the result equals the
    three substitutions applied in full."""
    policy = RedactionPolicy()
    full = _BEARER.sub(lambda m: f"{m[1]} {REDACTED}", text)
    full = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", full)
    full = policy._pairs.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", full)
    assert policy.redact_text(text) == full


def test_remembered_keys_follow_the_policy_in_force() -> None:
    """A key judged once by one policy is judged again by a newly configured one."""
    assert redact({"ssn": "1"}) == {"ssn": "1"}
    try:
        configure_redaction(extra=[r"^ssn$"])
        assert redact({"ssn": "1"}) == {"ssn": REDACTED}
    finally:
        configure_redaction()
    assert redact({"ssn": "1"}) == {"ssn": "1"}


def test_policy_is_configurable() -> None:
    """Extra key patterns are redacted once configured; the defaults still apply."""
    try:
        configure_redaction(extra=[r"^ssn$"])
        assert redact({"ssn": "1", "password": "p", "name": "n"}) == {
            "ssn": REDACTED,
            "password": REDACTED,
            "name": "n",
        }
    finally:
        configure_redaction()
    assert redact({"ssn": "1"}) == {"ssn": "1"}


def test_bad_pattern_is_named() -> None:
    """An invalid pattern is refused with the pattern list."""
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        RedactionPolicy(("(",))


def _leaky_registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("login")
    async def login() -> None:
        raise RuntimeError(f"login failed for ada password={SECRET}")

    return registry


async def test_exception_secrets_never_reach_state_audit_or_json(make_orch: Any) -> None:
    """A secret in an exception message is hidden in the run error, the audit trail and --json."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    orch = make_orch(_leaky_registry())
    workflow = AdvancedWorkflow.from_dict(
        {"name": "leak", "steps": [{"step_id": "login", "action": "login"}]}
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "login failed" in run.error["message"]
    assert SECRET not in json.dumps(run.error)
    assert SECRET not in json.dumps(run.step_results)
    assert SECRET not in json.dumps(await orch.audit_trail(run.run_id), default=str)
    assert SECRET not in json.dumps(run.to_json())
    assert SECRET not in stream.getvalue()


async def test_pending_approval_summary_is_redacted_in_json(make_orch: Any) -> None:
    """`--json`'s pending_approval.summary hides secret-looking inputs."""
    orch = make_orch(ActionRegistry())
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "ask",
            "steps": [
                {
                    "step_id": "ok",
                    "step_type": "human_approval",
                    "input_mapping": {"x-api-key": "input.key", "amount": "input.amount"},
                    "approval": {"approvers": ["ada"]},
                }
            ],
        }
    )
    run = await orch.execute_workflow(workflow, {"key": SECRET, "amount": 5})
    shown = run.to_json()["pending_approval"]
    assert shown["summary"] == {"x-api-key": REDACTED, "amount": 5}


class _Hop(BaseHTTPRequestHandler):
    """Redirects `/start` to the other server; records headers; `/big` streams a large body."""

    seen: list[dict[str, str]]
    target: str

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", f"{type(self).target}/end")
            self.end_headers()
            return
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for _ in range(2000):  # up to 128 MB, no Content-Length: read until we stop
                    self.wfile.write(b" " * 65536)
            except (BrokenPipeError, ConnectionResetError):
                type(self).seen.append({"aborted": "yes"})
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


def _serve(host: str, seen: list[dict[str, str]], target: str = "") -> ThreadingHTTPServer:
    handler = type("Hop", (_Hop,), {"seen": seen, "target": target})
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def two_origins() -> Iterator[tuple[str, list[dict[str, str]], list[dict[str, str]]]]:
    """Server A (127.0.0.1) redirecting to server B (127.0.0.2); the headers each saw."""
    seen_b: list[dict[str, str]] = []
    b = _serve("127.0.0.2", seen_b)
    seen_a: list[dict[str, str]] = []
    a = _serve("127.0.0.1", seen_a, target=f"http://127.0.0.2:{b.server_port}")
    yield f"http://127.0.0.1:{a.server_port}", seen_a, seen_b
    for server in (a, b):
        server.shutdown()
        server.server_close()


async def test_custom_credential_header_stays_with_its_origin(
    make_orch: Any, two_origins: tuple[str, list[dict[str, str]], list[dict[str, str]]]
) -> None:
    """`X-Api-Key` reaches the origin the step names, never the origin it redirects to."""
    base, seen_a, seen_b = two_origins
    orch = make_orch(ActionRegistry(), webhook_allow_hosts=["127.0.0.1", "127.0.0.2"])
    headers = {"X-Api-Key": SECRET, "X-Session-Token": SECRET, "X-Trace": "t-1"}
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "hop",
            "steps": [
                {
                    "step_id": "h",
                    "step_type": "webhook",
                    "webhook": {"url": f"{base}/start", "method": "GET", "headers": headers},
                }
            ],
        }
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert seen_a[0]["x-api-key"] == SECRET
    assert "x-api-key" not in seen_b[0]
    assert "x-session-token" not in seen_b[0]
    assert seen_b[0]["x-trace"] == "t-1"


async def test_webhook_reply_over_limit_stops_reading(
    make_orch: Any, two_origins: tuple[str, list[dict[str, str]], list[dict[str, str]]]
) -> None:
    """A reply over `max_webhook_response_bytes` fails the step; reading stops at the limit."""
    base, _, _ = two_origins
    orch = make_orch(
        ActionRegistry(),
        {"limits": {"max_webhook_response_bytes": 1_000_000}},
        webhook_allow_hosts=["127.0.0.1"],
    )
    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "big",
            "steps": [
                {
                    "step_id": "h",
                    "step_type": "webhook",
                    "webhook": {"url": f"{base}/big", "method": "GET", "timeout": 60},
                }
            ],
        }
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "larger than 1000000 bytes" in run.error["message"]
    assert run.step_results["h"]["attempts"] == 1  # not retried: it would only read again
