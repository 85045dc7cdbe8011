"""The id-list reducer: first-seen order without duplicates, on short and long lists alike."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from state._reducers import append_unique

_IDS = st.text(alphabet="abcdef", min_size=1, max_size=3)


def _reference(base: list[str], writes: list[list[str]]) -> list[str]:
    out = list(base)
    for item in (i for write in writes for i in write):
        if item not in out:
            out.append(item)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=400),
    st.lists(st.lists(st.lists(_IDS, max_size=6), max_size=3), min_size=1, max_size=8),
)
def test_chained_and_forked_merges_equal_the_plain_rule(
    start: int, batches: list[list[list[str]]]
) -> None:
    """Each list built from the one before, and a fork from an earlier list, dedupe in order."""
    base = [f"s{i}" for i in range(start)]
    current, history = base, [base]
    for writes in batches:
        expected = _reference(current, writes)
        current = append_unique(current, writes)
        assert current == expected
        history.append(current)
    assert append_unique(current, [["q"]]) == _reference(current, [["q"]])
    assert append_unique(current, [["q"]]) == _reference(current, [["q"]])  # same list again
    for earlier in history[:-1]:  # another history from an earlier list: no ids leak into it
        assert append_unique(earlier, [["zz"], ["s0"]]) == _reference(earlier, [["zz"], ["s0"]])
