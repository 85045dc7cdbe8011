"""DESIGN.md's "complete definition" (purchase order) runs end to end as written."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator import ActionRegistry, load_workflow
from state import WorkflowStatus

DESIGN_YAML = (Path(__file__).parent / "fixtures" / "purchase_order.yaml").read_text(
    encoding="utf-8"
)


class _Supplier(BaseHTTPRequestHandler):
    orders: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.orders.append(body)
        reply = json.dumps({"supplier_order_id": f"SO-{len(self.orders)}"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_: Any) -> None:
        return None


@pytest.fixture
def supplier() -> Iterator[str]:
    """A supplier API on loopback that accepts orders."""
    _Supplier.orders = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Supplier)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _registry(log: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("parse_request")
    async def parse_request(request_id: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        total = sum(line["qty"] * line["price"] for line in lines)
        return {"request_id": request_id, "lines": lines, "total": total, "preapproved": False}

    @registry.action("check_budget")
    async def check_budget(order: dict[str, Any]) -> dict[str, bool]:
        return {"within_budget": order["total"] < 50_000}

    @registry.action("check_vendor")
    async def check_vendor(order: dict[str, Any]) -> dict[str, bool]:
        return {"vendor_ok": True}

    @registry.action("record_self_approval")
    async def record_self_approval() -> dict[str, str]:
        log.append("self_service")
        return {"approved_by": "policy"}

    @registry.action("cancel_supplier_order")
    async def cancel_supplier_order(supplier_order_id: str) -> None:
        log.append(f"cancel {supplier_order_id}")

    @registry.action("rewrite_confirmation")
    async def rewrite_confirmation(clarity: float | None) -> dict[str, Any]:
        better = round((clarity or 0.5) + 0.25, 2)
        return {"clarity": better, "text": f"Your order is placed (clarity {better})"}

    @registry.action("email_requester")
    async def email_requester() -> dict[str, bool]:
        log.append("email")
        return {"sent": True}

    return registry


def _workflow(tmp_path: Path, supplier: str) -> Any:
    path = tmp_path / "purchase.yaml"
    path.write_text(
        DESIGN_YAML.replace("https://suppliers.example.com", supplier), encoding="utf-8"
    )
    return load_workflow(path)


async def test_small_order_runs_through_self_service(
    make_orch: Any, tmp_path: Path, supplier: str
) -> None:
    """A small order skips the manager, places the order by webhook and loops the letter."""
    log: list[str] = []
    orch = make_orch(_registry(log), webhook_allow_hosts="127.0.0.1")
    lines = [{"sku": "pen", "qty": 10, "price": 2}]
    run = await orch.execute_workflow(
        _workflow(tmp_path, supplier), {"request_id": "R-1", "lines": lines}
    )
    assert run.status is WorkflowStatus.COMPLETED
    assert "manager" in run.skipped_steps
    assert _Supplier.orders == [{"request_id": "R-1", "lines": lines}]
    assert run.result is not None
    assert run.result["supplier_order"] == {"supplier_order_id": "SO-1"}
    assert run.result["clarity"] == 1.0
    assert run.result["vetting"]["success_rate"] == 1.0
    assert log == ["self_service", "email"]


async def test_large_order_waits_for_two_managers(
    make_orch: Any, tmp_path: Path, supplier: str
) -> None:
    """A large order waits for 2 of 3 managers, then completes; rollback cancels the order."""
    log: list[str] = []
    orch = make_orch(_registry(log), webhook_allow_hosts="127.0.0.1")
    lines = [{"sku": "laptop", "qty": 5, "price": 1500}]
    run = await orch.execute_workflow(
        _workflow(tmp_path, supplier), {"request_id": "R-2", "lines": lines}
    )
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    assert run.pending_approval is not None
    assert run.pending_approval["min_approvals"] == 2
    await orch.approve(run.run_id, approver="dana")
    run = await orch.approve(run.run_id, approver="kim")
    assert run.status is WorkflowStatus.COMPLETED
    assert "self_service" in run.skipped_steps
    rolled = await orch.rollback(run.run_id, to="place")
    assert rolled.status is WorkflowStatus.PAUSED
    assert "cancel SO-1" in log
