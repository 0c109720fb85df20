"""qe.dumps: strict compact JSON, json.dumps-compatible where json accepts the
input, the documented extensions, and precise errors (type, path)."""

import collections
import dataclasses
import datetime
import decimal
import enum
import gc
import json
import math
import sys
import uuid

import pytest
from hypothesis import given, settings, strategies as st

import querybook_eventlog as qe


# qe escapes the C1 controls and U+2028/U+2029 (line breaks to splitlines()
# and to terminals); json writes them raw.  Both are the same JSON text.
EXTRA_ESCAPES = {code: "\\u%04x" % code for code in [*range(0x80, 0xA0), 0x2028, 0x2029]}


def compact(obj):
    """What qe.dumps writes, as json.dumps would write it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).translate(EXTRA_ESCAPES)


def roundtrip(obj):
    return json.loads(qe.dumps(obj))


# ---- property tests against json -------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(max_codepoint=0x1F))
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",), min_codepoint=0x80))
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children, max_size=6),
    max_leaves=40,
)


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_matches_json(value):
    encoded = qe.dumps(value)
    assert isinstance(encoded, bytes)
    text = encoded.decode("utf-8", errors="strict")
    assert json.loads(text) == json.loads(json.dumps(value))
    # json itself parses strictly: no NaN/Infinity, no control characters in strings
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-RFC constant {name}"), strict=True)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_compact_and_byte_identical_to_json_without_floats(value):
    # no separators with spaces: when no str holds a space, no space at all
    encoded = qe.dumps(value)
    if " " not in repr(value):
        assert b" " not in encoded
    # json prints floats and everything else the same way: identical text
    assert encoded == compact(value).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_strings_identical_to_json(text):
    assert qe.dumps(text) == compact(text).encode("utf-8")
    assert qe.dumps({text: text}) == compact({text: text}).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(number):
    assert qe.dumps(number) == repr(number).encode()
    assert roundtrip(number) == number
    assert math.copysign(1, roundtrip(number)) == math.copysign(1, number)


def test_line_breaking_and_c1_characters_escaped():
    nasty = "a\x85b\u2028c\u2029d\x9b[31m\x80\x9f\xa0é"
    encoded = qe.dumps({"k": nasty})
    assert encoded == b'{"k":"a\\u0085b\\u2028c\\u2029d\\u009b[31m\\u0080\\u009f\xc2\xa0\xc3\xa9"}'
    assert len(encoded.decode().splitlines()) == 1
    assert json.loads(encoded) == {"k": nasty}
    for kind_widener in ("", "中", "\U0001F600"):  # UCS1, UCS2, UCS4 strings
        text = nasty + kind_widener
        assert json.loads(qe.dumps(text)) == text
        assert len(qe.dumps(text).decode().splitlines()) == 1


def test_escapes_match_json():
    text = "".join(chr(c) for c in range(0x80)) + "é\u2028\u2029\U0001F600\u4e2d\x7f"
    assert qe.dumps(text) == compact(text).encode("utf-8")
    assert qe.dumps("\n\r\t\b\f\x00\x1f\"\\") == rb'"\n\r\t\b\f\u0000\u001f\"\\"'
    # long strings cross the chunk boundaries of every string kind
    for unit in ("a\n", "é\n", "中\n", "\U0001F600\n", "abcdefg\"", "x" * 100):
        long_text = unit * 3000
        assert qe.dumps(long_text) == compact(long_text).encode("utf-8")


def test_an_escape_at_every_position():
    # ASCII text is copied 64, 16 and 8 bytes a step, the last step
    # overlapping: a character to escape must be found wherever it sits
    for length in range(1, 200):
        for position in range(length):
            for special in ('"', "\\", "\n", "\x1f", "\x00"):
                text = "a" * position + special + "b" * (length - position - 1)
                assert qe.dumps(text) == compact(text).encode(), (length, position, special)
                assert qe.dumps({text: [text]}) == compact({text: [text]}).encode()


def test_example_event():
    event = {
        "path": "/datadoc/123/",
        "component": "DataDocNavigator",
        "element": "create_button",
        "aux": {"tab": "recent", "count": 3},
    }
    assert qe.dumps(event) == (
        b'{"path":"/datadoc/123/","component":"DataDocNavigator",'
        b'"element":"create_button","aux":{"tab":"recent","count":3}}'
    )


def test_key_order_kept():
    data = {"z": 1, "a": 2, "m": 3}
    assert qe.dumps(data) == b'{"z":1,"a":2,"m":3}'
    assert list(roundtrip(data)) == ["z", "a", "m"]


# ---- numbers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [0, 1, -1, 9, 10, 99, 100, -100, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**100, -(2**70)],
)
def test_ints_exact(number):
    assert qe.dumps(number) == str(number).encode()
    assert roundtrip(number) == number


def int_boundaries():
    """Where the int writer changes method: each power of ten and its
    neighbours (digit counts, the 2-digit pairs, the 8-digit blocks), the
    compact-int limit 2^30, and the long long limits."""
    edges = {0, 2**30, 2**30 - 1, 2**30 + 1, 2**63 - 1, 2**63}
    for exponent in range(21):
        edges.update({10**exponent - 1, 10**exponent, 10**exponent + 1})
    return sorted(edges | {-edge for edge in edges})


def test_ints_at_every_digit_count():
    numbers = int_boundaries()
    for number in numbers:
        assert qe.dumps(number) == str(number).encode(), number
    # in containers too: the writer appends the ',' after the digits itself
    assert qe.dumps(numbers) == json.dumps(numbers, separators=(",", ":")).encode()
    mapping = {str(number): number for number in numbers}
    assert qe.dumps(mapping) == json.dumps(mapping, separators=(",", ":")).encode()


@given(st.lists(st.integers(min_value=-(2**64), max_value=2**64), max_size=30))
def test_int_lists_identical_to_json(numbers):
    assert qe.dumps(numbers) == json.dumps(numbers, separators=(",", ":")).encode()


@pytest.mark.parametrize("number", [0.1, 1e300, -0.0, 0.0, 5e-324, 1e16, 1e15, -123.0, 1.5e-7, 2.5])
def test_float_repr(number):
    assert qe.dumps(number) == repr(number).encode()
    assert roundtrip(number) == number


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_null(number):
    assert qe.dumps(number) == b"null"
    assert qe.dumps([number]) == b"[null]"


def test_bool_is_not_int():
    assert qe.dumps([True, False, None, 1, 0]) == b"[true,false,null,1,0]"


def test_non_str_keys_as_json_converts_them():
    data = {1: "a", 1.5: "b", True: "c", None: "d", -7: "e", 10**30: "f", 2.0: "g"}  # noqa: F601
    # True == 1 shares a slot with 1; json and qe agree regardless
    assert qe.dumps(data) == compact(data).encode()
    assert qe.dumps({False: 0, None: 1}) == b'{"false":0,"null":1}'
    assert qe.dumps({math.nan: 1, math.inf: 2, -math.inf: 3}) == compact(
        {math.nan: 1, math.inf: 2, -math.inf: 3}
    ).encode()


# ---- subclasses and extensions ---------------------------------------------


class MyInt(int):
    def __repr__(self):
        return "not-an-int"

    __str__ = __repr__


class MyStr(str):
    def __str__(self):
        return "not-the-content"


class MyFloat(float):
    def __repr__(self):
        return "not-a-float"


class MyDict(dict):
    pass


class MyList(list):
    pass


class Color(enum.Enum):
    RED = "red"
    NESTED = {"a": [1, 2]}


class Level(enum.IntEnum):
    HIGH = 3


class Name(str, enum.Enum):
    ALICE = "alice"


def test_subclasses_use_builtin_semantics():
    values = [MyInt(5), MyInt(10**40), MyStr("hé"), MyFloat(1.25), MyDict(a=1), MyList([1, 2])]
    assert qe.dumps(values) == compact(values).encode()
    assert qe.dumps({MyStr("k"): 1, MyInt(2): 2, MyFloat(0.5): 3}) == b'{"k":1,"2":2,"0.5":3}'


def test_dict_subclasses_follow_items_order():
    ordered = collections.OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    ordered.move_to_end("a")
    assert qe.dumps(ordered) == compact(ordered).encode() == b'{"b":2,"c":3,"a":1}'
    counts = collections.Counter("aab")
    assert qe.dumps(counts) == b'{"a":2,"b":1}'
    assert qe.dumps(collections.defaultdict(list, x=[1])) == b'{"x":[1]}'
    assert qe.dumps(MyDict()) == b"{}"


def test_enums():
    assert qe.dumps(Level.HIGH) == compact(Level.HIGH).encode() == b"3"
    assert qe.dumps(Name.ALICE) == compact(Name.ALICE).encode() == b'"alice"'
    assert qe.dumps(Color.RED) == b'"red"'
    assert qe.dumps([Color.NESTED]) == b'[{"a":[1,2]}]'
    assert qe.dumps({Name.ALICE: Level.HIGH, Level.HIGH: 1}) == b'{"alice":3,"3":1}'
    assert qe.dumps(qe.EventType.CLICK) == b'"CLICK"'


def test_datetimes_uuid():
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    values = [
        moment,
        datetime.datetime(2024, 5, 6, 7, 8, 9),
        datetime.date(2024, 5, 6),
        datetime.time(7, 8, 9, 5),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ]
    assert roundtrip(values) == [
        "2024-05-06T07:08:09.123456+00:00",
        "2024-05-06T07:08:09",
        "2024-05-06",
        "07:08:09.000005",
        "12345678-1234-5678-1234-567812345678",
    ]


def test_tuples_sets_arrays():
    assert qe.dumps((1, "a", (2,))) == b'[1,"a",[2]]'
    assert qe.dumps(collections.namedtuple("P", "x y")(1, 2)) == b"[1,2]"
    assert sorted(roundtrip({3, 1, 2})) == [1, 2, 3]
    assert roundtrip(frozenset(["x"])) == ["x"]
    assert qe.dumps(set()) == b"[]"
    assert qe.dumps(()) == b"[]"


def test_decimal():
    assert qe.dumps(decimal.Decimal("1.10")) == b"1.10"
    assert qe.dumps([decimal.Decimal("-0"), decimal.Decimal("1E+2")]) == b"[-0,1E+2]"
    assert roundtrip(decimal.Decimal("123456789012345678901234567890.5")) == pytest.approx(
        1.2345678901234568e29
    )
    for non_finite in ("NaN", "sNaN", "Infinity", "-Infinity"):
        assert qe.dumps(decimal.Decimal(non_finite)) == b"null"


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str = "p"
    hidden: dataclasses.InitVar[int] = 0

    def __post_init__(self, hidden):
        pass


@dataclasses.dataclass
class Shape:
    name: str
    points: list
    origin: Point


def test_dataclasses():
    shape = Shape("tri", [Point(1, 2.5), Point(3, 4.0, "q")], Point(0, 0.0))
    assert qe.dumps(shape) == (
        b'{"name":"tri","points":[{"x":1,"y":2.5,"label":"p"},{"x":3,"y":4.0,"label":"q"}],'
        b'"origin":{"x":0,"y":0.0,"label":"p"}}'
    )
    # the class itself is not an instance
    with pytest.raises(TypeError, match="Object of type type is not JSON serializable"):
        qe.dumps(Point)


# ---- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, kind, message",
    [
        (b"x", TypeError, r"Object of type bytes is not JSON serializable \(at \$\)"),
        (bytearray(b"x"), TypeError, r"Object of type bytearray is not JSON serializable"),
        (object(), TypeError, r"Object of type object is not JSON serializable \(at \$\)"),
        (
            {"params": {"files": ["a", "b", b"c"]}},
            TypeError,
            r'Object of type bytes is not JSON serializable \(at \$\["params"\]\["files"\]\[2\]\)',
        ),
        (
            {"a": [{(1, 2): 3}]},
            TypeError,
            r'keys must be str, int, float, bool or None, not tuple \(at \$\["a"\]\[0\]\)',
        ),
        ({"s": {b"x"}}, TypeError, r'Object of type bytes .*\(at \$\["s"\]\[0\]\)'),
        ({Color.RED: 1}, TypeError, r"keys must be .* not Color \(at \$\)"),
        ({1: [b""]}, TypeError, r'bytes .*\(at \$\["1"\]\[0\]\)'),
        ({"é\n": b""}, TypeError, r'bytes .*\(at \$\["é\\n"\]\)'),
        ([Point(1, b"")], TypeError, r'bytes .*\(at \$\[0\]\["y"\]\)'),
        ([Color.NESTED, Level.HIGH, {1j}], TypeError, r"complex .*\(at \$\[2\]\[0\]\)"),
    ],
)
def test_type_errors_name_type_and_path(value, kind, message):
    with pytest.raises(kind, match=message):
        qe.dumps(value)


def nested_lists(levels):
    value = 1
    for _ in range(levels):
        value = [value]
    return value


def nested_dicts(levels):
    value = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_depth_limit():
    assert qe.MAX_JSON_DEPTH == 256
    assert roundtrip(nested_lists(256)) == nested_lists(256)
    assert roundtrip(nested_dicts(256)) == nested_dicts(256)
    for too_deep in (nested_lists(257), nested_dicts(257), nested_lists(10000)):
        with pytest.raises(ValueError, match="nested deeper than 256 levels"):
            qe.dumps(too_deep)


def test_cycles_raise_value_error():
    looped_list = []
    looped_list.append(looped_list)
    looped_dict = {}
    looped_dict["self"] = looped_dict
    mutual = {"a": []}
    mutual["a"].append(mutual)
    for cyclic in (looped_list, looped_dict, mutual, (looped_list,)):
        with pytest.raises(ValueError, match=r"circular reference\) \(at \$"):
            qe.dumps(cyclic)
    for cyclic in (looped_list, looped_dict, mutual):
        cyclic.clear()


def test_lone_surrogates_raise():
    with pytest.raises(ValueError, match=r'lone surrogate U\+D800 .*\(at \$\["a"\]\[1\]\)'):
        qe.dumps({"a": ["ok", "x\ud800"]})
    with pytest.raises(ValueError, match=r"lone surrogate U\+DC80 .*\(at \$\['k\\udc80'\]\)"):
        qe.dumps({"k\udc80": 1})
    with pytest.raises(ValueError, match="lone surrogate"):
        qe.dumps("\U0001F600\udfff")  # UCS4 string
    with pytest.raises(ValueError, match="lone surrogate"):
        qe.dumps(MyStr("\ud83d"))


def test_error_paths_in_long_paths_are_abbreviated():
    with pytest.raises(ValueError) as raised:
        qe.dumps(nested_lists(300))
    assert "..." in str(raised.value)
    assert len(str(raised.value)) < 400


def test_errors_in_user_code_propagate_unchanged():
    class Boom(Exception):
        pass

    @dataclasses.dataclass
    class Lazy:
        x: int

        def __getattribute__(self, name):
            if name == "x":
                raise Boom("no x")
            return object.__getattribute__(self, name)

    with pytest.raises(Boom, match="^no x$"):
        qe.dumps({"a": Lazy(1)})


def test_int_digits_follow_the_running_pythons_limit():
    """Python's int-to-decimal digit limit (3.11; 3.9.14 and 3.10.7 have it
    too) applies to dumps as to str(): ValueError beyond it, exact digits up
    to it, and exact digits of any length when it is off or absent."""
    big = -(10**5000) - 7  # 5001 digits
    get_limit = getattr(sys, "get_int_max_str_digits", None)
    if get_limit is None:  # a CPython from before the limit
        assert qe.dumps(big) == str(big).encode()
        return
    previous = get_limit()
    try:
        sys.set_int_max_str_digits(1000)
        with pytest.raises(ValueError, match="digits"):
            qe.dumps(10**1000)  # 1001 digits
        with pytest.raises(ValueError, match="digits"):
            qe.dumps({"k": [-(10**1000)]})
        assert qe.dumps(10**1000 - 1) == b"9" * 1000  # exactly at the limit
        assert qe.dumps([-(10**999)]) == b"[-1" + b"0" * 999 + b"]"
        sys.set_int_max_str_digits(0)  # no limit
        assert qe.dumps(big) == str(big).encode()
        assert json.loads(qe.dumps({"n": big})) == {"n": big}
    finally:
        sys.set_int_max_str_digits(previous)


# ---- references ------------------------------------------------------------


def test_no_reference_leaks():
    event = {
        "route": "/ds/query_execution/",
        "params": {"ids": [1, 2, 10**40], "q": "é" * 10, "f": 1.5, "t": (1,), "u": uuid.uuid4()},
        MyStr("k"): MyInt(1),
        3: Level.HIGH,
    }
    leaves = list(event["params"].values()) + [event["params"]]
    before = [sys.getrefcount(x) for x in leaves] + [sys.getrefcount(event)]
    for _ in range(2000):
        qe.dumps(event)
    after = [sys.getrefcount(x) for x in leaves] + [sys.getrefcount(event)]
    assert before == after


def test_error_paths_do_not_leak():
    key = "k" + "ey" * 3
    bad = {key: [1, {"x": b"no"}]}
    looped = [[]]
    looped[0].append(looped)
    surrogate_key = "k\udc80" + "x"
    surrogate = {surrogate_key: 1}
    watched = (key, bad, looped, surrogate, surrogate_key)
    before = [sys.getrefcount(x) for x in watched]
    for _ in range(2000):
        for value in (bad, looped, surrogate):
            with pytest.raises((TypeError, ValueError)):
                qe.dumps(value)
    del value
    gc.collect()
    after = [sys.getrefcount(x) for x in watched]
    assert before == after
    looped[0].clear()


def test_error_path_memory_is_bounded():
    import tracemalloc

    bad = {"a": {"b": [object()]}}
    for _ in range(100):
        with pytest.raises(TypeError):
            qe.dumps(bad)
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        for _ in range(5000):
            with pytest.raises(TypeError):
                qe.dumps(bad)
        gc.collect()
        grown = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(first, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024


def test_large_output_leaves_the_inline_block():
    big = {"k%d" % i: ["v" * 50, i, {"x": "é" * 20}] for i in range(5000)}
    assert roundtrip(big) == big
    assert qe.dumps(big) == compact(big).encode()


def test_outputs_around_the_inline_block_size():
    # dumps writes into a 4 KiB block, then into the bytes object it returns
    for size in range(4060, 4120):
        for value in (["x" * size], {"k": "é" * (size // 2)}, [[1] * (size // 2)],
                      "y" * (size - 2)):
            encoded = qe.dumps(value)
            assert encoded == compact(value).encode(), size
            assert sys.getrefcount(encoded) == 2  # ours alone: nothing kept a reference
    for size in (1 << 16, (1 << 20) + 3, 5 << 20):
        text = "z" * size
        assert qe.dumps(text) == b'"' + text.encode() + b'"'
        assert qe.dumps([text, text, 1.5]) == compact([text, text, 1.5]).encode()


def test_list_shrinking_while_encoding_is_safe():
    target = [1, 2, 3]

    class Shrinker(enum.Enum):
        A = 1

        @property
        def value(self):
            target.clear()
            return 7

    target.insert(0, Shrinker.A)
    assert qe.dumps(target) == b"[7]"


def test_list_growing_while_encoding_is_safe():
    # the storage moves when the list grows: the walk must read it again
    target = [1, 2.5, 3]

    class Grower(enum.Enum):
        A = 1

        @property
        def value(self):
            target.extend(range(1000))
            return 7

    target.insert(1, Grower.A)
    expected = "[1,7,2.5,3," + ",".join(map(str, range(1000))) + "]"
    assert qe.dumps(target) == expected.encode()


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=-(2**53), max_value=2**53), st.integers(min_value=0, max_value=20))
def test_decimal_looking_floats_print_as_repr(mantissa, decimals):
    # the short-decimal fast path must agree with repr digit for digit
    number = mantissa / 10**decimals
    assert qe.dumps(number) == repr(number).encode()
    nudged = math.nextafter(number, math.inf)
    assert qe.dumps(nudged) == repr(nudged).encode()


def test_dict_mutated_while_encoding_is_safe():
    outer = {"a": 1, "b": None, "c": [1, 2], "d": "x" * 50}

    class Clearer(enum.Enum):
        A = 1

        @property
        def value(self):
            outer.clear()
            outer.update({"new%d" % i: i for i in range(50)})
            return "cleared"

    outer["b"] = Clearer.A
    # no crash, no half document: a RuntimeError, as json.dumps raises
    with pytest.raises(RuntimeError, match="changed size"):
        qe.dumps(outer)
    assert len(outer) == 50
