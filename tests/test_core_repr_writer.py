"""The upstream console line shows event_data as repr() does; the C writer
for exact dicts/lists/tuples must agree with CPython character for
character, including cycles, subclasses, foreign reprs and odd strings."""

import collections
import datetime
import decimal
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import querybook_eventlog as qe


class Capture:
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)


def shown(event_data):
    """What the upstream line shows after 'event_data='."""
    capture = Capture()
    qe.ConsoleEventLogger(logger=capture, color=False).log(1, "CLICK", event_data, 0)
    return capture.messages[0].split(", event_data=", 1)[1]


STRINGS = [
    "", "plain", "it's", 'say "hi"', "both ' and \"", "back\\slash", "tab\tnl\ncr\r",
    "\x00\x01\x1b\x7f", "\x80\x85\x9f\xa0\xad\xff", "é ü 日本 🎉", "\u2028\u2029\u200b\ufeff",
    "\ud800 lone", "\udfff", "\U000e0001 tag", "\U0010ffff", "\U0001f600", "\u0378",
    "x" * 5000,
]


@pytest.mark.parametrize("text", STRINGS, ids=range(len(STRINGS)))
def test_strings(text):
    assert shown({"k": text, text: [text]}) == repr({"k": text, text: [text]})


NUMBERS = [0, -1, 1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**40, -(10**40), 0.0, -0.0,
           1.5, 1e16, 1e-7, 123456789.123, 1e300, float("inf"), float("-inf"), float("nan"),
           5e-324, True, False, None]


def test_numbers_and_constants():
    assert shown(NUMBERS) == repr(NUMBERS)
    assert shown(tuple(NUMBERS)) == repr(tuple(NUMBERS))


def test_containers():
    for value in ([], (), {}, [()], [(1,)], ((1,),), (1, 2), {"a": {}}, [[[]]],
                  {1: "int key", 2.5: "float", None: 0, (1, 2): "tuple key", False: 1}):
        assert shown([value]) == repr([value])
        if isinstance(value, (dict, list, tuple)):
            assert shown(value) == repr(value)


def test_cycles():
    data = {"a": 1}
    data["self"] = data
    items = [1]
    items.append(items)
    data["list"] = items
    nested = [items, (items,)]
    for value in (data, items, nested):
        assert shown(value) == repr(value)


class Point:
    def __init__(self, x):
        self.x = x

    def __repr__(self):
        return f"Point({self.x!r})"


class MyDict(dict):
    def __repr__(self):
        return "MyDict!"


class MyStr(str):
    def __repr__(self):
        return "MyStr!"


class MyInt(int):
    pass


def test_foreign_objects_use_their_own_repr():
    value = {
        "point": Point([1, "x"]),
        "mydict": MyDict(a=1),
        "mystr": MyStr("s"),
        "myint": MyInt(5),
        "ordered": collections.OrderedDict(a=1),
        "when": datetime.datetime(2023, 11, 14, 22, 13, 20),
        "decimal": decimal.Decimal("1.10"),
        "set": {1},
        "bytes": b"\x00x",
    }
    assert shown(value) == repr(value)


def test_cycle_through_a_foreign_repr():
    class Back:
        def __repr__(self):
            return f"Back({self.target!r})"

    back = Back()
    data = {"back": back}
    back.target = data
    assert shown(data) == repr(data)


def test_foreign_repr_with_lone_surrogate_falls_back():
    class Odd:
        def __repr__(self):
            return "odd\ud800"

    assert shown({"o": Odd()}) == repr({"o": Odd()})


def test_foreign_repr_mutating_the_dict():
    def make():
        data = {}

        class Mutator:
            def __repr__(self):
                data.clear()
                data["new"] = 1
                return "M"

        data.update(a=Mutator(), b=[2], c="3")
        return data

    assert shown(make()) == repr(make())


def test_foreign_repr_errors_propagate():
    class Broken:
        def __repr__(self):
            raise KeyError("broken repr")

    capture = Capture()
    with pytest.raises(KeyError, match="broken repr"):
        qe.ConsoleEventLogger(logger=capture).log(1, "CLICK", [Broken()], 0)
    assert capture.messages == []


@pytest.mark.parametrize("extra", [100, 100_000])
def test_deep_nesting_like_repr(extra):
    """RecursionError where repr() raises it (3.12 counts C recursion apart
    from the Python limit), the same text where it does not."""
    deep = []
    for _ in range(sys.getrecursionlimit() + extra):
        deep = [deep]
    try:
        expected = repr(deep)
    except RecursionError:
        with pytest.raises(RecursionError):
            shown(deep)
    else:
        assert shown(deep) == expected


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.characters().map(str),
    lambda children: st.lists(children, max_size=5)
    | st.tuples(children) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(values, max_size=4) | st.dictionaries(st.text(), values, max_size=4))
def test_agrees_with_repr(value):
    assert shown(value) == repr(value)
