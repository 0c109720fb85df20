"""qe.dumps' fast paths against json.dumps, byte for byte.

Strings are copied 16 bytes a step and checked word-wise, so escapes are put
at every position around those boundaries; ints go through a digit-pair
itoa below 2**63 and int.__repr__ beyond it, so every power-of-ten and
64-bit edge is checked.  Where qe escapes beyond RFC 8259 (C1 controls,
U+2028/U+2029) the expected text is json's with those escaped too.
"""

import json
import re

import pytest

import querybook_eventlog as qe

EXTRA_ESCAPES = re.compile("[\u0080-\u009f\u2028\u2029]")


def expected(obj):
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return EXTRA_ESCAPES.sub(lambda m: "\\u%04x" % ord(m.group()), text).encode()


def check(obj):
    assert qe.dumps(obj) == expected(obj), obj


ESCAPED = ['"', "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "\x7f"]


@pytest.mark.parametrize("length", range(0, 71))
def test_clean_ascii_every_length(length):
    text = "".join(chr(32 + (i * 7) % 95) for i in range(length)).replace('"', "a")
    text = text.replace("\\", "b")
    check(text)
    check({text: text})
    check([text, text])


@pytest.mark.parametrize("length", range(1, 71))
def test_escape_at_every_position(length):
    for char in ESCAPED:
        for position in range(length):
            text = "x" * position + char + "y" * (length - position - 1)
            check(text)
        check(char * length)


@pytest.mark.parametrize("length", [63, 64, 65, 127, 128, 129, 191, 200, 255, 256, 257, 320])
def test_escape_at_every_position_across_wide_blocks(length):
    # the 64-byte vector blocks (encode_ascii.c) must stop at the block that
    # holds the escape, wherever it sits, and leave the rest to the tail steps
    for char in ['"', "\\", "\n", "\x00", "\x1f"]:
        for position in range(length):
            text = "x" * position + char + "y" * (length - position - 1)
            check(text)
            check([text, 1])
    check("z" * length + "\u00e9")  # ASCII blocks ahead of a non-ASCII tail take the slow path


def test_every_control_char_alone_and_embedded():
    for code in range(0x20):
        char = chr(code)
        check(char)
        check("a" * 15 + char + "b" * 20)
        check("a" * 16 + char)
        check({char: char * 17})


@pytest.mark.parametrize(
    "char",
    [
        "é",
        "ÿ",
        "\u0100",
        "日",
        "\uffff",
        "🚀",
        "\U0010ffff",
        "\u0080",
        "\u009f",
        "\u00a0",
        "\u2028",
        "\u2029",
    ],
)
def test_non_ascii_around_boundaries(char):
    for length in range(0, 40):
        for position in range(0, length + 1, max(1, length // 7)):
            base = "a" * length
            check(base[:position] + char + base[position:])
            check(base[:position] + char + '"' + base[position:])


@pytest.mark.parametrize("kind_char", ["\u00e9", "\u65e5", "\U0001f680"])
def test_wide_text_every_special_at_every_position(kind_char):
    # text of each storage kind (Latin-1, UCS-2, UCS-4) goes 8 characters a
    # step while they are clean ASCII: whatever stops a step (an escape, a
    # C1 control, U+2028, any non-ASCII character) must be found at every
    # place in the 8, and what follows it, ASCII or not, written right
    specials = ['"', "\\", "\n", "\x00", "\x1f", "\x85", "\u00ff", kind_char]
    if kind_char != "\u00e9":
        specials += ["\u2028", "\u0800", "\uffff"]
    if kind_char == "\U0001f680":
        specials += ["\U0010ffff", "\U00010000"]
    for length in range(0, 26):
        for special in specials:
            for position in range(length + 1):
                base = "abcdefghijklmnopqrstuvwxyz"[:length]
                check(kind_char + base[:position] + special + base[position:])
                check(base[:position] + special + special + kind_char + base[position:])


def test_one_megabyte_strings():
    check("abcdefgh" * 131072)
    check("abcdefgh" * 131071 + 'a"\\\n\x01xyz')
    check("é" * (1 << 20))
    check("日本" * (1 << 19))
    check("🚀a" * (1 << 18))
    check(("x" * 1000 + '"') * 1000)


@pytest.mark.parametrize("surrogate", ["\ud800", "\udbff", "\udc00", "\udfff"])
def test_lone_surrogates_raise_value_error(surrogate):
    for text in (surrogate, "a" * 20 + surrogate, "é" + surrogate, "日" * 17 + surrogate):
        with pytest.raises(ValueError, match="lone surrogate"):
            qe.dumps(text)
        with pytest.raises(ValueError, match="lone surrogate"):
            qe.dumps({"k": [text]})


def int_edges():
    values = {
        0,
        1,
        -1,
        2**63 - 1,
        -(2**63),
        2**63,
        -(2**63) - 1,
        2**64 - 1,
        2**64,
        -(2**64),
        10**30,
        -(10**30),
        2**200,
    }
    for exponent in range(0, 25):
        for base in (10**exponent, 2 ** (exponent * 3)):
            values.update({base - 1, base, base + 1, -base + 1, -base, -base - 1})
    return sorted(values)


def test_ints_at_every_edge():
    values = int_edges()
    for value in values:
        check(value)
    check(values)
    check({str(v): v for v in values})


def test_int_keys_and_subclasses_as_before():
    class MyInt(int):
        def __repr__(self):
            return "nope"

    check({1: 2, -(2**63): 2**63})
    assert qe.dumps(MyInt(12345678901234567890)) == b"12345678901234567890"
    assert qe.dumps([True, False, None]) == b"[true,false,null]"


def test_nested_containers():
    document = {
        "a": [1, "two", 3.5, None, True, {"b": [[], {}, [{}]]}],
        "c": {"d": {"e": {"f": ["g" * 100] * 3}}},
        "": "",
    }
    check(document)
    check([document] * 50)
    check({"k%d" % i: [i, str(i) * i] for i in range(300)})


def test_db_logger_records_around_the_inline_block_and_large(db, tmp_path):
    """log() encodes after room for the record header and hands a heap block
    over as the record: every size around the 2 KiB stack block, and large."""
    import json as json_module

    from querybook_eventlog import DBEventLogger

    sizes = list(range(1960, 2060, 3)) + [100_000, 3_000_000]
    logger = DBEventLogger(db.url, spool_dir=str(tmp_path / "spool"), flush_interval=0.05)
    try:
        sent = []
        for i, size in enumerate(sizes):
            data = {"i": i, "pad": "é\n" * 3 + "x" * (size - 30)}
            sent.append(data)
            logger.log(uid=i + 1, event_type="VIEW", event_data=data, timestamp=1700000000000)
        assert logger.flush(timeout=60)
        got = [
            json_module.loads(bytes.fromhex(hex_data).decode())
            for (hex_data,) in db.sql("SELECT HEX(event_data) FROM event_log ORDER BY id")
        ]
        assert got == sent
    finally:
        logger.close(timeout=10)


def test_db_logger_max_event_bytes_counts_only_the_json(db, tmp_path):
    from querybook_eventlog import DBEventLogger

    limit = 5000
    logger = DBEventLogger(db.url, spool_dir=str(tmp_path / "spool"), max_event_bytes=limit)
    try:
        fits = "x" * (limit - 2)  # '"' + text + '"'
        logger.log(uid=1, event_type="VIEW", event_data=fits)
        with pytest.raises(ValueError, match="5001 bytes of JSON"):
            logger.log(uid=1, event_type="VIEW", event_data=fits + "y")
    finally:
        logger.close(timeout=10)
