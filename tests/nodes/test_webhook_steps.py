"""Webhook steps through the public contract, against real HTTP servers on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import RecordingSleep

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from state import AdvancedWorkflow, WorkflowStatus

FAST_RETRY = {"max_attempts": 3, "initial_delay": 0.1, "max_delay": 1.0, "jitter": 0}


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class LoopbackServer:
    """A real HTTP server on a loopback address that records requests and plays replies.

    `script[path]` is a list of replies used in order; the last one repeats. Paths without a
    script get `200 {"ok": true}`.
    """

    def __init__(self, host: str) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[Reply]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        """`http://host:port` of this server."""
        return f"http://{self.host}:{self.port}"

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        return [r.path for r in self.requests]

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self.script.get(path)
            if not replies:
                return Reply()
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                server.requests.append(
                    Received(
                        method=self.command,
                        path=parts.path,
                        query=parse_qs(parts.query),
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                    )
                )
                reply = server._next_reply(parts.path)
                if reply.delay:
                    server._stop.wait(reply.delay)
                data = (
                    json.dumps(reply.body).encode()
                    if reply.content_type == "application/json"
                    else str(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test); nothing to answer

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PUT(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A recording HTTP server on 127.0.0.1."""
    with LoopbackServer("127.0.0.1") as srv:
        yield srv


@pytest.fixture
def other_server() -> Iterator[LoopbackServer]:
    """A second recording HTTP server, on another loopback host (127.0.0.2)."""
    with LoopbackServer("127.0.0.2") as srv:
        yield srv


def _workflow(webhook: dict[str, Any], **step: Any) -> AdvancedWorkflow:
    workflow: dict[str, Any] = {
        "name": "hook",
        "retry_policy": step.pop("retry_policy", FAST_RETRY),
        "global_variables": step.pop("global_variables", {}),
        "steps": [{"step_id": "call", "step_type": "webhook", "webhook": webhook, **step}],
    }
    return AdvancedWorkflow.from_dict(workflow)


def _orch(make_orch: Any, hosts: Any = ("127.0.0.1",)) -> EnterpriseWorkflowOrchestrator:
    orch: EnterpriseWorkflowOrchestrator = make_orch(ActionRegistry(), webhook_allow_hosts=hosts)
    return orch


async def test_allowed_host_gets_mapped_inputs_and_returns_json(
    make_orch: Any, server: LoopbackServer
) -> None:
    """An allowed host receives the mapped inputs as JSON; its JSON reply is the output."""
    server.script["/orders"] = [Reply(status=201, body={"order_id": "S-9", "accepted": True})]
    wf = _workflow(
        {"url": f"{server.base}/orders", "headers": {"X-Team": "buyers"}},
        input_mapping={"request_id": "input.request_id", "lines": "context.lines"},
        output_mapping={"supplier_order": "@", "supplier_id": "order_id"},
    )
    run = await _orch(make_orch).execute_workflow(
        wf, input_data={"request_id": "R-1", "lines": [{"sku": "A", "qty": 2}]}
    )
    assert run.status is WorkflowStatus.COMPLETED
    (request,) = server.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-team"] == "buyers"
    assert request.body == {"request_id": "R-1", "lines": [{"sku": "A", "qty": 2}]}
    assert run.result is not None
    assert run.result["supplier_order"] == {"order_id": "S-9", "accepted": True}
    assert run.result["supplier_id"] == "S-9"


async def test_url_placeholders_are_filled_from_globals_input_and_context(
    make_orch: Any, server: LoopbackServer
) -> None:
    """`{path}` placeholders come from globals (base url), input and context, path-encoded."""
    wf = _workflow(
        {"url": "{globals.api}/orders/{input.order_id}/lines/{context.line}"},
        global_variables={"api": server.base},
    )
    run = await _orch(make_orch).execute_workflow(wf, input_data={"order_id": "A/1", "line": 7})
    assert run.status is WorkflowStatus.COMPLETED
    assert server.paths() == ["/orders/A%2F1/lines/7"]


async def test_get_sends_mapped_inputs_as_query_parameters(
    make_orch: Any, server: LoopbackServer
) -> None:
    """A GET webhook sends the mapped inputs as query parameters and no body."""
    wf = _workflow(
        {"url": f"{server.base}/lookup", "method": "get"},
        input_mapping={"sku": "input.sku", "qty": "input.qty"},
        output_mapping={"found": "ok"},
    )
    run = await _orch(make_orch).execute_workflow(wf, input_data={"sku": "A B&C", "qty": 3})
    assert run.status is WorkflowStatus.COMPLETED
    (request,) = server.requests
    assert request.method == "GET"
    assert request.query == {"sku": ["A B&C"], "qty": ["3"]}
    assert request.body is None
    assert run.result is not None
    assert run.result["found"] is True


async def test_host_not_allowed_by_default_fails_without_a_request(
    make_orch: Any, server: LoopbackServer, sleep: RecordingSleep
) -> None:
    """With no allow-list the run fails at its start, names the host and setting, sends nothing."""
    wf = _workflow({"url": f"{server.base}/orders"})
    run = await make_orch(ActionRegistry()).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["step_id"] == "call"
    assert run.error["error_type"] == "WebhookNotAllowedError"
    assert "127.0.0.1" in run.error["message"]
    assert "webhook_allow_hosts" in run.error["message"]
    assert "ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS" in run.error["message"]
    assert run.step_results["call"]["attempts"] == 0  # refused before any step ran
    assert sleep.delays == []
    assert server.requests == []


async def test_redirect_to_an_allowed_host_is_followed(
    make_orch: Any, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """A 307 redirect to another allowed host is followed with the same method and body."""
    server.script["/start"] = [Reply(status=307, headers={"Location": f"{other_server.base}/end"})]
    other_server.script["/end"] = [Reply(body={"handled_by": "other"})]
    wf = _workflow(
        {"url": f"{server.base}/start"},
        input_mapping={"n": "input.n"},
        output_mapping={"reply": "@"},
    )
    run = await _orch(make_orch, "127.0.0.1, 127.0.0.2").execute_workflow(wf, input_data={"n": 1})
    assert run.status is WorkflowStatus.COMPLETED
    assert server.paths() == ["/start"]
    (request,) = other_server.requests
    assert (request.method, request.path, request.body) == ("POST", "/end", {"n": 1})
    assert run.result is not None
    assert run.result["reply"] == {"handled_by": "other"}


async def test_redirect_to_a_host_not_allowed_is_refused(
    make_orch: Any, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """A redirect to a host outside the allow-list fails the run; the target gets nothing."""
    server.script["/start"] = [Reply(status=302, headers={"Location": f"{other_server.base}/x"})]
    wf = _workflow({"url": f"{server.base}/start"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookNotAllowedError"
    assert "redirected" in run.error["message"]
    assert "127.0.0.2" in run.error["message"]
    assert server.paths() == ["/start"]
    assert other_server.requests == []


async def test_redirect_to_another_name_for_an_allowed_address_is_refused(
    make_orch: Any, server: LoopbackServer
) -> None:
    """Hosts are matched by name: allowing 127.0.0.1 does not allow a redirect to localhost."""
    target = f"http://localhost:{server.port}/elsewhere"
    server.script["/start"] = [Reply(status=308, headers={"Location": target})]
    wf = _workflow({"url": f"{server.base}/start"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookNotAllowedError"
    assert "localhost" in run.error["message"]
    assert server.paths() == ["/start"]


async def test_see_other_redirect_turns_a_post_into_a_get(
    make_orch: Any, server: LoopbackServer
) -> None:
    """A 303 answer to a POST is followed with a GET and no body."""
    server.script["/submit"] = [Reply(status=303, headers={"Location": "/status/1"})]
    server.script["/status/1"] = [Reply(body={"state": "queued"})]
    wf = _workflow(
        {"url": f"{server.base}/submit"},
        input_mapping={"n": "input.n"},
        output_mapping={"state": "state"},
    )
    run = await _orch(make_orch).execute_workflow(wf, input_data={"n": 1})
    assert run.status is WorkflowStatus.COMPLETED
    assert [(r.method, r.path, r.body) for r in server.requests] == [
        ("POST", "/submit", {"n": 1}),
        ("GET", "/status/1", None),
    ]
    assert run.result is not None
    assert run.result["state"] == "queued"


async def test_a_chain_of_five_redirects_is_followed(
    make_orch: Any, server: LoopbackServer
) -> None:
    """Up to five redirects in a row are followed to the final answer."""
    for hop in range(5):
        server.script[f"/r{hop}"] = [Reply(status=307, headers={"Location": f"/r{hop + 1}"})]
    server.script["/r5"] = [Reply(body={"hops": 5})]
    wf = _workflow({"url": f"{server.base}/r0"}, output_mapping={"hops": "hops"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.COMPLETED, run.error
    assert run.result is not None
    assert run.result["hops"] == 5


async def test_too_many_redirects_fail_with_webhook_error(
    make_orch: Any, server: LoopbackServer
) -> None:
    """A sixth redirect in a row fails the step with WebhookError and is not followed."""
    for hop in range(6):
        server.script[f"/r{hop}"] = [Reply(status=307, headers={"Location": f"/r{hop + 1}"})]
    wf = _workflow({"url": f"{server.base}/r0"}, retry_policy={"max_attempts": 1})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookError"
    assert "redirected more than 5 times" in run.error["message"]
    assert "/r6" not in server.paths()


async def test_authorization_is_not_sent_to_another_host_on_redirect(
    make_orch: Any, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """Credentials in headers stay with the original host when a redirect changes host."""
    server.script["/start"] = [Reply(status=307, headers={"Location": f"{other_server.base}/end"})]
    wf = _workflow({"url": f"{server.base}/start", "headers": {"Authorization": "Bearer s3cr3t"}})
    run = await _orch(make_orch, ["127.0.0.1", "127.0.0.2"]).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.COMPLETED
    assert server.requests[0].headers["authorization"] == "Bearer s3cr3t"
    (request,) = other_server.requests
    assert "authorization" not in request.headers
    assert "idempotency-key" in request.headers


async def test_server_errors_are_retried_with_the_policy_delays(
    make_orch: Any, server: LoopbackServer, sleep: RecordingSleep
) -> None:
    """HTTP 500 twice then 200: the run completes on attempt 3 after backoff delays."""
    server.script["/flaky"] = [Reply(status=500), Reply(status=500), Reply(body={"done": 1})]
    wf = _workflow({"url": f"{server.base}/flaky"}, output_mapping={"done": "done"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.step_results["call"]["attempts"] == 3
    assert sleep.delays == [0.1, 0.2]
    assert len(server.requests) == 3
    assert run.result is not None
    assert run.result["done"] == 1


async def test_idempotency_key_is_the_same_across_retries(
    make_orch: Any, server: LoopbackServer
) -> None:
    """Every attempt carries the same Idempotency-Key header, tied to the run."""
    server.script["/flaky"] = [Reply(status=502), Reply(status=503), Reply()]
    wf = _workflow({"url": f"{server.base}/flaky"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.COMPLETED
    keys = {r.headers.get("idempotency-key") for r in server.requests}
    assert len(server.requests) == 3
    assert len(keys) == 1
    (key,) = keys
    assert key is not None
    assert run.run_id in key


async def test_a_server_that_always_fails_fails_the_run_with_webhook_error(
    make_orch: Any, server: LoopbackServer, sleep: RecordingSleep
) -> None:
    """When every attempt gets a 5xx the run fails with WebhookError naming the status."""
    server.script["/down"] = [Reply(status=503, body={"error": "maintenance"})]
    wf = _workflow({"url": f"{server.base}/down"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookError"
    assert "HTTP 503" in run.error["message"]
    assert run.failed_steps == ["call"]
    assert run.step_results["call"]["attempts"] == 3
    assert len(server.requests) == 3
    assert sleep.delays == [0.1, 0.2]


async def test_non_json_response_becomes_status_code_and_text(
    make_orch: Any, server: LoopbackServer
) -> None:
    """A reply that is not JSON becomes the output `{status_code, text}`."""
    server.script["/plain"] = [Reply(status=202, body="accepted", content_type="text/plain")]
    wf = _workflow({"url": f"{server.base}/plain"}, output_mapping={"reply": "@"})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.COMPLETED
    assert run.result is not None
    assert run.result["reply"] == {"status_code": 202, "text": "accepted"}


async def test_a_request_slower_than_the_webhook_timeout_fails(
    make_orch: Any, server: LoopbackServer
) -> None:
    """A server slower than `webhook.timeout` fails the step with WebhookError naming it."""
    server.script["/slow"] = [Reply(delay=5.0)]
    # 1.5 s, not less: on a loaded machine the request must reach the server before it times out
    wf = _workflow({"url": f"{server.base}/slow", "timeout": 1.5}, retry_policy={"max_attempts": 1})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookError"
    assert "timed out" in run.error["message"]
    assert "1.5" in run.error["message"]
    assert len(server.requests) == 1


async def test_an_unreachable_server_fails_with_webhook_error_after_retries(
    make_orch: Any, sleep: RecordingSleep
) -> None:
    """A refused connection is a WebhookError naming the URL, retried like any other failure."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wf = _workflow({"url": f"http://127.0.0.1:{port}/gone"}, retry_policy={**FAST_RETRY})
    run = await _orch(make_orch).execute_workflow(wf, input_data={})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookError"
    assert f"127.0.0.1:{port}/gone" in run.error["message"]
    assert run.step_results["call"]["attempts"] == 3
    assert sleep.delays == [0.1, 0.2]


def _cli_run(tmp_path: Path, yaml_text: str, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    (tmp_path / "hook_actions.py").write_text(
        "from orchestrator import ActionRegistry\n\nregistry = ActionRegistry()\n"
    )
    path = tmp_path / "hook.yaml"
    path.write_text(yaml_text)
    db = tmp_path / "cli.sqlite"
    args = ["run", str(path), "--json", "--db", f"sqlite:///{db}", "--input", '{"n": 4}']
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _cli_yaml(server: LoopbackServer, *, actions: bool = True) -> str:
    return (
        "name: cli hook\n"
        + ("actions: hook_actions\n" if actions else "")
        + "retry_policy: {max_attempts: 1}\n"
        "steps:\n"
        "  - step_id: call\n"
        "    step_type: webhook\n"
        f"    webhook: {{url: '{server.base}/cli', method: POST, timeout: 5}}\n"
        "    input_mapping: {n: input.n}\n"
        "    output_mapping: {reply: '@'}\n"
    )


def _allowing(hosts: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS"}
    return env if hosts is None else {**env, "ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS": hosts}


def test_cli_runs_a_webhook_to_a_host_allowed_by_the_environment(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """The CLI allows hosts from ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS: exit 0, status completed."""
    server.script["/cli"] = [Reply(body={"seen": True})]
    code, out = _cli_run(tmp_path, _cli_yaml(server), _allowing("example.org, 127.0.0.1"))
    assert (code, out["status"]) == (0, "completed")
    assert out["result"]["reply"] == {"seen": True}
    assert [r.body for r in server.requests] == [{"n": 4}]


def test_cli_refuses_a_webhook_host_when_the_environment_allows_none(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """Without ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS the CLI run fails with exit 1, sending nothing."""
    code, out = _cli_run(tmp_path, _cli_yaml(server), _allowing(None))
    assert (code, out["status"]) == (1, "failed")
    assert out["error"]["error_type"] == "WebhookNotAllowedError"
    assert "ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS" in out["error"]["message"]
    assert server.requests == []


def test_cli_runs_a_webhook_only_workflow_without_an_actions_module(
    tmp_path: Path, server: LoopbackServer
) -> None:
    """A workflow of webhook steps needs no `actions:` module to run from the CLI."""
    code, out = _cli_run(tmp_path, _cli_yaml(server, actions=False), _allowing("127.0.0.1"))
    assert (code, out["status"]) == (0, "completed")
