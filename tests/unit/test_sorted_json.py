"""The audit trail's and the SLA subjects' JSON (`transcoder.sorted_json`: the C
encoder made once) is `json.dumps(..., sort_keys=True)`'s text exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fieldledger.application.transcoder import sorted_json

VALUES: list[Any] = [
    {},
    [],
    {"b": 1, "a": [1, 2.5, None, True, False], "c": {"z": "", "y": {"x": []}}},
    {"name": "王先生", "note": "不制冷\n\t\"quoted\" \\ back", "emoji": "\U0001f600"},
    {"lone": "\ud800", "nul": "a\x00b", "ctl": "\x1f\x7f"},
    {"floats": [0.1, 1e300, -0.0, 1.0, float("nan"), float("inf"), -float("inf")]},
    {"ints": [0, -1, 2**70], "nested": [[{"k": [1]}], {"k2": {"k3": None}}]},
    {"1": "one", "10": "ten", "2": "two", "B": 1, "a": 2, "é": 3},
    "just text",
    42,
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_the_text_is_json_dumps_with_sorted_keys(value: Any, ensure_ascii: bool) -> None:
    encode = sorted_json(ensure_ascii=ensure_ascii)
    expected = json.dumps(value, sort_keys=True, ensure_ascii=ensure_ascii)
    assert encode(value) == expected
    assert encode(value) == expected  # made once, used again


def test_what_json_refuses_it_refuses() -> None:
    encode = sorted_json(ensure_ascii=False)
    with pytest.raises(TypeError):
        encode({"when": object()})
    with pytest.raises(TypeError):
        encode({1: "a", "b": 2})  # keys that cannot be sorted together
