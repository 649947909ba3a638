"""The encoder's whole-column writers equal the reference text (issue 8).

`_float_column` and `_json_column` let msgspec write a batch's floats and data
JSON in one call when its text is provably repr()'s and json.dumps()'s; these
tests hold them to that on the boundaries of that claim and on random input.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.encode import _float_column, _json_column


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


BOUNDARY_FLOATS = [
    0.0, -0.0, 1.0, 45, -180, 1e-4, -1e-4, math.nextafter(1e-4, 0.0), 9.99e-5, 3.67e-5,
    1e-5, 1e-7, 5e-324, math.nextafter(1e16, 0.0), 1e16, -1e16, 1e15, 1.5e300,
    1.7976931348623157e308, 48.1375, 11.79, -30.03, 0.1 + 0.2,
]


def test_float_column_is_repr_across_the_notation_boundaries() -> None:
    assert _float_column(BOUNDARY_FLOATS) == [repr(float(v)) for v in BOUNDARY_FLOATS]
    in_range = [v for v in BOUNDARY_FLOATS if v == 0 or 1e-4 <= abs(v) < 1e16]
    assert _float_column(in_range) == [repr(float(v)) for v in in_range]
    assert _float_column([]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=50))
def test_float_column_is_repr_for_any_finite_bits(bits: list[int]) -> None:
    floats = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    floats = [f for f in floats if math.isfinite(f)]
    assert _float_column(floats) == [repr(f) for f in floats]


def test_json_column_escapes_every_code_point_as_json_dumps() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    datas = [{"s": text}, {text[:300]: 1}]
    assert _json_column(datas) == [dumps(d) for d in datas]


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@pytest.mark.parametrize(
    "datas",
    [
        [{}],
        [{"icao": "4840d6", "speed_mps": 231.5, "alt_ref": "msl", "n": 3, "ok": True,
          "none": None, "neg": -0.0, "big": 2**70, "neg_big": -(2**80)}],
        [{"tiny": 1e-05}, {"huge": 1e16}, {"exp": 1.5e300}, {"min": 5e-324}],
        [{"nested": {"a": [1, 2.5, None]}}, {"x": 1}],
        [{"tuple": (1, 2)}],
        [{3: "int key"}, {"x": 1.5}],
        [{"level": Level.HIGH, "name": Name("n")}],
        [{"lone": "\ud800"}],
    ],
    ids=["empty", "flat", "exponents", "nested", "tuple", "int-key", "subclasses", "surrogate"],
)
def test_json_column_equals_json_dumps(datas: list[dict[Any, Any]]) -> None:
    assert _json_column(datas) == [dumps(d) for d in datas]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_column_refuses_non_finite_floats_like_json_dumps(bad: float) -> None:
    with pytest.raises(ValueError):
        _json_column([{"ok": 1.0}, {"bad": bad}])


def test_json_column_refuses_what_json_dumps_cannot_write() -> None:
    with pytest.raises(TypeError):
        _json_column([{"ok": 1}, {"set": {1, 2}}])


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), scalars, max_size=6), max_size=20))
def test_json_column_equals_json_dumps_on_flat_dicts(datas: list[dict[str, Any]]) -> None:
    assert _json_column(datas) == [dumps(d) for d in datas]
