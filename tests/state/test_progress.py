"""`progress`: packing a step's fields into one channel, and reading them back."""

from __future__ import annotations

from state import EnterpriseWorkflowState, unpack
from state._progress import merge_progress


def test_node_state_shares_what_grows_instead_of_copying_it() -> None:
    """Building the state a node sees takes the growing values as they are (no per-item work)."""
    completed = [f"s{i}" for i in range(1000)]
    results = {sid: {"status": "completed"} for sid in completed}
    packed = EnterpriseWorkflowState(
        progress={"completed_steps": completed, "step_results": results}
    )
    assert packed.completed_steps is completed
    assert packed.step_results is results
    plain = EnterpriseWorkflowState(completed_steps=completed, intermediate_results=results)
    assert plain.completed_steps is completed
    assert plain.intermediate_results is results


def test_unpacking_merges_the_old_layout_with_packed_writes() -> None:
    """Values stored before packing and values written since read as one field each."""
    values = {
        "completed_steps": ["a"],
        "stored_bytes": 10,
        "error_counts": {"KeyError": 1},
        "progress": {
            "completed_steps": ["b"],
            "stored_bytes": 5,
            "error_counts": {"KeyError": 2},
            "audit_head": "h2",
        },
    }
    out = unpack(values)
    assert out["completed_steps"] == ["a", "b"]
    assert (out["stored_bytes"], out["error_counts"], out["audit_head"]) == (
        15,
        {"KeyError": 3},
        "h2",
    )


def test_the_routing_copy_and_the_channel_share_one_merge() -> None:
    """A node's writes merged into the state copy for routing and then into the channel are
    merged once: the second merge reuses the first's containers."""
    current = {"completed_steps": [f"s{i}" for i in range(1000)], "step_results": {"s0": {}}}
    write = {"completed_steps": ["next"], "step_results": {"next": {"status": "completed"}}}
    for_routing = merge_progress(dict(current), [write])
    for_channel = merge_progress(current, [write])
    assert for_channel["completed_steps"] is for_routing["completed_steps"]
    assert for_channel["step_results"] is for_routing["step_results"]
    assert for_channel["completed_steps"][-1] == "next"
    other = merge_progress(current, [{"completed_steps": ["else"]}])
    assert other["completed_steps"][-1] == "else"
