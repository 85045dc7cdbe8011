"""Mappings: JMESPath paths, input and output mappings, URL placeholders."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import check_path, fill_placeholders, map_inputs, map_outputs, resolve_path
from state import MappingError

NS: dict[str, Any] = {
    "input": {"applicant_id": "A-1", "amount": 250},
    "context": {"order": {"id": "O/7 x", "total": 150, "lines": [{"sku": "a"}, {"sku": "b"}]}},
    "results": {"credit-check": {"score": 710}, "1st": "first"},
    "globals": {"supplier_api": "https://supplier.example.com/v2", "host": "api.example.com:8443"},
}


def test_resolves_nested_paths() -> None:
    """A dotted path reads nested mappings."""
    assert resolve_path("context.order.total", NS) == 150


def test_resolves_indexes_and_projections() -> None:
    """Indexes and projections work as in JMESPath."""
    assert resolve_path("context.order.lines[0].sku", NS) == "a"
    assert resolve_path("context.order.lines[*].sku", NS) == ["a", "b"]


def test_at_is_the_whole_data() -> None:
    """`@` returns the data itself."""
    assert resolve_path("@", NS) is NS


def test_missing_path_is_none() -> None:
    """A path that finds nothing gives None."""
    assert resolve_path("context.order.missing.deeper", NS) is None


def test_quoted_keys_with_dashes() -> None:
    """Keys with dashes or a leading digit are read with double quotes."""
    assert resolve_path('results."credit-check".score', NS) == 710
    assert resolve_path('results."1st"', NS) == "first"


def test_functions_work() -> None:
    """JMESPath built-in functions are available."""
    assert resolve_path("length(context.order.lines)", NS) == 2


def test_invalid_path_names_it_and_suggests_quotes() -> None:
    """An unquoted dashed key is refused with the bad path and the quoted fix."""
    with pytest.raises(
        MappingError, match=r'invalid path `results.credit-check`: .*write `results."credit-check"`'
    ):
        resolve_path("results.credit-check", NS)


def test_invalid_path_without_an_obvious_fix_gets_an_example() -> None:
    """A malformed path gets a generic example of valid paths."""
    with pytest.raises(MappingError, match=r"invalid path `context\.\.total`.*such as"):
        resolve_path("context..total", NS)


def test_unknown_function_is_refused() -> None:
    """A call to a function JMESPath does not have is refused before running."""
    with pytest.raises(MappingError, match=r"unknown function `shout\(\)`"):
        resolve_path("shout(input.applicant_id)", NS)


def test_empty_path_is_refused() -> None:
    """An empty path is refused with an example."""
    with pytest.raises(MappingError, match="path is empty"):
        resolve_path("  ", NS)


def test_type_errors_at_runtime_become_mapping_errors() -> None:
    """A function applied to the wrong type raises MappingError naming the path."""
    with pytest.raises(MappingError, match=r"path `abs\(input.applicant_id\)` failed"):
        resolve_path("abs(input.applicant_id)", NS)


def test_check_path_accepts_valid_paths() -> None:
    """check_path returns None for a valid path."""
    assert check_path('results."credit-check".score') is None


def test_check_path_explains_invalid_paths() -> None:
    """check_path returns the problem for an invalid path instead of raising."""
    problem = check_path("results.credit-check")
    assert problem is not None
    assert 'results."credit-check"' in problem


@settings(max_examples=150, database=None)
@given(path=st.text(max_size=40))
def test_check_path_never_raises(path: str) -> None:
    """check_path returns a message or None for any text."""
    assert check_path(path) is None or isinstance(check_path(path), str)


def test_map_inputs_resolves_each_parameter() -> None:
    """map_inputs resolves each {param: path} over the namespace."""
    mapping = {"applicant_id": "input.applicant_id", "score": 'results."credit-check".score'}
    assert map_inputs(mapping, NS) == {"applicant_id": "A-1", "score": 710}


def test_map_inputs_missing_value_is_none() -> None:
    """A parameter whose path finds nothing is None."""
    assert map_inputs({"note": "context.note"}, NS) == {"note": None}


def test_map_inputs_error_names_the_parameter() -> None:
    """An invalid input path names the parameter it was for."""
    with pytest.raises(MappingError, match="input mapping for parameter 'score'"):
        map_inputs({"score": "results.credit-check.score"}, NS)


def test_map_outputs_reads_from_the_output() -> None:
    """map_outputs resolves each {context_key: path} over the step output; `@` is all of it."""
    output = {"decision": "approve", "limits": {"max": 5000}}
    mapping = {"decision": "decision", "max_limit": "limits.max", "raw": "@"}
    assert map_outputs(mapping, output) == {
        "decision": "approve",
        "max_limit": 5000,
        "raw": output,
    }


def test_map_outputs_of_a_scalar() -> None:
    """For a scalar output, `@` is the value and field paths are None."""
    assert map_outputs({"value": "@", "field": "x"}, 42) == {"value": 42, "field": None}


def test_map_outputs_error_names_the_context_key() -> None:
    """An invalid output path names the context key it was for."""
    with pytest.raises(MappingError, match="output mapping for context key 'bad'"):
        map_outputs({"bad": "a[["}, {})


def test_fill_placeholders_keeps_the_base_and_encodes_the_rest() -> None:
    """A leading base URL is inserted as is; later values are percent-encoded."""
    url = fill_placeholders("{globals.supplier_api}/orders/{context.order.id}", NS)
    assert url == "https://supplier.example.com/v2/orders/O%2F7%20x"


def test_fill_placeholders_keeps_the_host_verbatim() -> None:
    """A placeholder in scheme://host:port is inserted as is."""
    url = fill_placeholders("https://{globals.host}/applicants/{input.applicant_id}", NS)
    assert url == "https://api.example.com:8443/applicants/A-1"


def test_fill_placeholders_encodes_query_values() -> None:
    """Query values cannot add parameters: `&` and `=` are encoded."""
    ns = {"context": {"q": "a&b=c"}}
    url = fill_placeholders("https://example.com/search?q={context.q}", ns)
    assert url == "https://example.com/search?q=a%26b%3Dc"


def test_fill_placeholders_formats_values_with_str() -> None:
    """Non-string values are inserted with str()."""
    assert fill_placeholders("/orders?total={context.order.total}", NS) == "/orders?total=150"


def test_template_without_placeholders_is_unchanged() -> None:
    """A template with no placeholders comes back as it is."""
    assert fill_placeholders("https://example.com/health", NS) == "https://example.com/health"


def test_missing_placeholder_names_it() -> None:
    """A placeholder that finds nothing raises MappingError naming it."""
    with pytest.raises(MappingError, match=r"placeholder \{context.order.ref\} .* found nothing"):
        fill_placeholders("{globals.supplier_api}/orders/{context.order.ref}", NS)


def test_invalid_placeholder_path_names_it() -> None:
    """A placeholder with an invalid path raises MappingError naming it."""
    with pytest.raises(MappingError, match=r'placeholder \{results.credit-check\}.*"credit-check"'):
        fill_placeholders("https://example.com/{results.credit-check}", NS)
