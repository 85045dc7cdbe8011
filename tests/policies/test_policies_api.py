"""The public surface of `policies`: the contract names and their docs."""

from __future__ import annotations

import inspect

import pytest

import policies
import state


def test_contract_names_are_exported() -> None:
    """RetryPolicy, CircuitBreaker and CircuitOpenError import from policies (DESIGN section 8)."""
    from policies import CircuitBreaker, CircuitOpenError, RetryPolicy

    assert RetryPolicy is state.RetryPolicy
    assert CircuitOpenError is state.CircuitOpenError
    assert CircuitBreaker.__module__ == "policies._circuit"


def test_all_lists_exactly_the_public_names() -> None:
    """Every name in __all__ exists, and every public attribute is in __all__."""
    public = {name for name in vars(policies) if not name.startswith("_")}
    assert set(policies.__all__) == public


@pytest.mark.parametrize("name", policies.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    """Each exported class and function carries a docstring."""
    assert inspect.getdoc(getattr(policies, name))
