"""The float formatter (csrc/float_format.c): its C check against glibc on
millions of values (tests/c/test_float_format.c, plain and under ASan +
UBSan), and qe.dumps against repr on the values where formatting is hard.

FLOAT_FORMAT_TEST_COUNT=50000000 runs the C check on that many random bit
patterns instead of the default two million; FLOAT_FORMAT_TEST_QUICK_COUNT
sets how many more get the cheaper check (ten million by default)."""

import json
import math
import os
import random
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

import querybook_eventlog as qe

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZER_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


# ---- the C check ------------------------------------------------------------


def build_and_run(tmp_path, extra_flags, count, quick_count=0):
    binary = tmp_path / "test_float_format"
    command = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O2", "-g",
               *extra_flags, "tests/c/test_float_format.c", "-lm", "-o", str(binary)]
    # The sanitizer pass preloads ASan with leak checks into every child: gcc
    # must not get it (its cc1 crashes or reports its own leaks), nor the check.
    env = {k: v for k, v in os.environ.items() if k not in SANITIZER_ENV}
    build = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr
    env.setdefault("FLOAT_FORMAT_TEST_COUNT", str(count))
    env.setdefault("FLOAT_FORMAT_TEST_QUICK_COUNT", str(quick_count))
    run = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=3600)
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    assert "all checks passed" in run.stdout


def test_c_float_format(tmp_path):
    # 2 million values checked in full (shortest, closest, reads back), then
    # 10 million more for round trip and shortness at ~1 us each
    build_and_run(tmp_path, [], 2_000_000, 10_000_000)


def test_c_float_format_sanitized(tmp_path):
    # the sanitizers look for UB in the formatter's paths, which a smaller
    # sample covers as well as a large one
    build_and_run(tmp_path, ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"], 300_000)


def test_c_float_format_without_int128(tmp_path):
    # the schoolbook 64x64 -> 128-bit product used where there is no __int128
    build_and_run(tmp_path, ["-U__SIZEOF_INT128__"], 200_000)


def test_c_float_format_portable_layout(tmp_path):
    # the layout for targets without little-endian digit words (the byte
    # order left undefined selects it)
    build_and_run(tmp_path, ["-U__BYTE_ORDER__"], 200_000)


def test_table_is_the_generators_output():
    generated = subprocess.run([sys.executable, "csrc/float_format_table.py"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout
    with open(os.path.join(REPO, "csrc", "float_format_table.h")) as committed:
        assert committed.read() == generated


# ---- qe.dumps against repr --------------------------------------------------


def float_from_bits(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def assert_like_repr(values):
    mismatches = []
    for x in values:
        for value in (x, -x):
            if qe.dumps(value) != repr(value).encode():
                mismatches.append((value, qe.dumps(value), repr(value)))
            if qe.dumps({value: 1}) != b'{"%s":1}' % repr(value).encode():
                mismatches.append(("key", value, qe.dumps({value: 1})))
    assert not mismatches[:20]


def with_neighbours(values):
    for x in values:
        yield x
        yield math.nextafter(x, -math.inf)
        if x != sys.float_info.max:
            yield math.nextafter(x, math.inf)


def test_powers_of_two():
    assert_like_repr(with_neighbours([math.ldexp(1.0, e) for e in range(-1074, 1024)]))


def test_powers_of_ten():
    assert_like_repr(with_neighbours([float("1e%d" % e) for e in range(-323, 309)]))


def test_subnormals():
    assert_like_repr(float_from_bits(bits) for bits in range(1, 20000))
    assert_like_repr(float_from_bits(bits) for bits in range(2**52 - 10000, 2**52 + 10000))
    rng = random.Random(10)
    assert_like_repr(float_from_bits(rng.randrange(1, 2**52)) for _ in range(100_000))


def test_extremes():
    tiny, largest, smallest_normal = 5e-324, sys.float_info.max, sys.float_info.min
    assert qe.dumps(tiny) == b"5e-324"
    assert qe.dumps(largest) == b"1.7976931348623157e+308"
    assert qe.dumps(smallest_normal) == b"2.2250738585072014e-308"
    assert qe.dumps(-0.0) == b"-0.0"
    assert qe.dumps(0.0) == b"0.0"
    assert_like_repr([tiny, largest, smallest_normal, 0.0])


def test_integral_floats_around_2_53():
    base = 2.0**53
    values = []
    for i in range(-1000, 1001):
        values.append(base + 2 * i)  # above 2^53 the step is 2
        values.append(base + i / 2)  # below it, 1 (and halves below 2^52)
        values.append(2.0**52 + i / 2)
    assert_like_repr(values)


def test_layout_switch_region():
    # 1e15..1e17: repr goes from "1234567890123456.0" to "1.2345678901234568e+16"
    rng = random.Random(11)
    values = [rng.uniform(1e15, 1e17) for _ in range(50_000)]
    values += [float(rng.randrange(10**15, 10**17)) for _ in range(50_000)]
    values += [float(10**16 + i) for i in range(-2000, 2000)]
    assert_like_repr(with_neighbours(values))


def test_exponent_switch_region():
    # repr's fixed notation stops below 1e-4
    rng = random.Random(12)
    assert_like_repr(with_neighbours([rng.uniform(1e-6, 1e-3) for _ in range(50_000)]))
    assert_like_repr(with_neighbours([0.0001, 0.00001, 0.00011, 0.000099999]))


def test_decimal_looking_values():
    values = [0.1, 0.2, 0.30000000000000004, 1.005, 2.675, 0.5, 1.5, 2.5, 100.25, 1e-4, 1e-5]
    rng = random.Random(13)
    values += [rng.randrange(0, 10**7) / 100 for _ in range(50_000)]  # prices
    values += [rng.randrange(0, 10**9) / 10**rng.randrange(0, 12) for _ in range(50_000)]
    assert_like_repr(with_neighbours(values))


def test_point_after_every_digit():
    # "d.ddd" to "ddddddddddddddd.d": each place of the point (the layout has
    # one path up to 7 integer digits and another from 8 to 15) for each
    # length of the digits, and Unix timestamps with fractions (10 digits)
    rng = random.Random(15)
    values = []
    for decpt in range(1, 17):
        for length in range(decpt + 1, 18):
            values += [rng.randrange(10 ** (length - 1), 10**length) / 10 ** (length - decpt)
                       for _ in range(300)]
    values += [rng.uniform(1.7e9, 1.8e9) for _ in range(20_000)]
    assert {len(repr(x).split(".")[0]) for x in values} == set(range(1, 17))
    assert_like_repr(with_neighbours(values))


def test_random_bit_patterns():
    rng = random.Random(14)
    values = (float_from_bits(rng.getrandbits(64)) for _ in range(200_000))
    assert_like_repr(x for x in values if math.isfinite(x))


def test_dumps_equals_json_on_floats_in_containers():
    values = [0.1, -0.0, 1e16, 5e-324, 123.0, 1.5e-07, 2.0**60, 0.30000000000000004]
    assert qe.dumps(values) == json.dumps(values, separators=(",", ":")).encode()
    keyed = {x: x for x in values}
    assert qe.dumps(keyed) == json.dumps(keyed, separators=(",", ":")).encode()


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_as_json(x):
    assert qe.dumps([x]) == json.dumps([x], separators=(",", ":")).encode()
    assert qe.dumps({x: x}) == json.dumps({x: x}, separators=(",", ":")).encode()
    assert json.loads(qe.dumps(x)) == x


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_non_finite_unchanged(x):
    assert qe.dumps(x) == b"null"
    assert qe.dumps({x: 1}) == json.dumps({x: 1}, separators=(",", ":")).encode()
