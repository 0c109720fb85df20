"""Non-ASCII strings (csrc/encode_unicode.c) against json.dumps, byte for byte.

Text stored 1, 2 or 4 bytes a character goes 16 (AVX2) or 8 (SSSE3 +
SSE4.1) characters a step, a block that holds an escape, a surrogate or a
character beyond the BMP one character at a time, and the tail too.  So
every UTF-8 length boundary, every character to escape and every lone
surrogate is put at every position of a block, in strings of every length
up to 200 and across the 4096-character chunks; hypothesis mixes the rest.
Every instruction set this machine has is tested: the tests below run here
with the best one, and again in a child pytest for each lower one, capped
with QBEL_SIMD (test_every_simd_path).  Where qe escapes beyond RFC 8259
(C1 controls, U+2028/U+2029) the expected text is json's with those escaped.
"""

import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import querybook_eventlog as qe
from querybook_eventlog import _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRA_ESCAPES = re.compile("[\u0080-\u009f\u2028\u2029]")
SIMD_PATHS = ["none", "sse4.1", "avx2"]  # lowest first
# The path this process uses; without QBEL_SIMD, the best this CPU has.
ACTIVE_PATH = _core._unicode_simd_path()


def expected(obj):
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return EXTRA_ESCAPES.sub(lambda m: "\\u%04x" % ord(m.group()), text).encode()


def check(text):
    assert qe.dumps(text) == expected(text), ascii(text)


def check_in_containers(text):
    check(text)
    obj = {text: [text, 1], "k": text}
    assert qe.dumps(obj) == expected(obj), ascii(text)


# One character of each storage kind, to make the str that kind: Latin-1,
# UCS-2 (CJK), UCS-4 (an emoji).
KIND_MAKERS = {"latin1": "\u00e9", "ucs2": "\u65e5", "ucs4": "\U0001f600"}

# The characters on each side of a boundary of the encoder: ASCII/2 bytes,
# the C1 controls, 2/3 bytes, the surrogates, 3/4 bytes, U+2028/U+2029.
BOUNDARIES = ["\x7f", "\x80", "\x9f", "\xa0", "\xff", "\u0100", "\u07ff", "\u0800",
              "\u2027", "\u2028", "\u2029", "\u202a", "\ud7ff", "\ue000", "\uffff",
              "\U00010000", "\U0010ffff"]
ESCAPED = ['"', "\\", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "\x85", "\u2028", "\u2029"]
# Background text of each kind that needs no escape: mixed widths, so that
# blocks take the general (1, 2 and 3 bytes mixed) vector step.
BACKGROUNDS = {
    "latin1": "données café ÿ naïve über ",
    "ucs2": "查询 data 数据表 table é ü 日本語のテキスト search ",
    "ucs4": "查询 data 😀 é 数据表 🚀 tables ",
}


def background(kind, length):
    base = BACKGROUNDS[kind]
    return (base * (length // len(base) + 1))[:length]


def kind_of(text):
    width = max(map(ord, text), default=0)
    return "ascii" if width < 0x80 else "latin1" if width < 0x100 else \
        "ucs2" if width < 0x10000 else "ucs4"


def test_backgrounds_are_of_their_kind():
    for kind in BACKGROUNDS:
        assert kind_of(background(kind, 200)) == kind


def test_simd_path_is_the_one_asked():
    # QBEL_EXPECT_SIMD: set by test_every_simd_path for its child run
    assert ACTIVE_PATH in SIMD_PATHS
    assert ACTIVE_PATH == os.environ.get("QBEL_EXPECT_SIMD", ACTIVE_PATH)


@pytest.mark.parametrize("kind", sorted(BACKGROUNDS))
def test_every_length(kind):
    for length in range(0, 201):
        check_in_containers(background(kind, length))
        # the same length, the kind made by the last character only: ASCII
        # blocks, then the tail
        check(("abcdefghij" * 21)[:length] + KIND_MAKERS[kind])


@pytest.mark.parametrize("kind", ["latin1", "ucs2", "ucs4"])
def test_every_character_width_alone(kind):
    # all one width: all 2-byte (Latin-1 letters), all 3-byte (CJK), each in
    # every length across a few blocks
    for char in ["é", "ÿ", "ß", "日", "\u0800", "\uffff", "\U0001f600"]:
        for length in range(0, 50):
            text = char * length + KIND_MAKERS[kind]
            check(text)


@pytest.mark.parametrize("kind", sorted(BACKGROUNDS))
def test_boundaries_at_every_position(kind):
    for special in BOUNDARIES:
        if kind == "latin1" and ord(special) > 0xFF:
            continue
        if kind == "ucs2" and ord(special) > 0xFFFF:
            continue
        for length in (1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 50):
            for position in range(length):
                text = background(kind, length)
                check(text[:position] + special + text[position + 1:])
            check(special * length + KIND_MAKERS[kind])


@pytest.mark.parametrize("kind", sorted(BACKGROUNDS))
def test_escapes_at_every_position(kind):
    # a character to escape sends its block (of 8 or 16) one character at a
    # time: at every place in the block, and two of them, the rest must stay
    # right
    for special in ESCAPED:
        for length in (1, 8, 16, 17, 32, 40, 48):
            for position in range(length):
                text = background(kind, length)
                check(text[:position] + special + text[position + 1:])
                check(text[:position] + special + special + text[position:])
        check(special * 40 + KIND_MAKERS[kind])


@pytest.mark.parametrize("kind", sorted(BACKGROUNDS))
def test_specials_at_every_spacing(kind):
    # where a vector block stops, the characters up to the one that stopped
    # it go the scalar way and the blocks resume right after it, unaligned;
    # where they keep stopping (a special every few characters), 4 blocks'
    # worth go the scalar way at once: specials every 1 to 40 characters
    for special in ['"', "\n", "\x85", "\u2028", "\U0001f600"]:
        for spacing in range(1, 41):
            text = "".join(special if (k + 1) % spacing == 0 else ch
                           for k, ch in enumerate(background(kind, 300)))
            check(text)
    # and a lone surrogate found in either of those scalar stretches
    dense = "".join("\U0001f600" if k % 3 == 0 else ch
                    for k, ch in enumerate(background(kind, 200)))
    for position in range(0, 200, 7):
        text = dense[:position] + "\udfff" + dense[position + 1:]
        with pytest.raises(ValueError, match=f"lone surrogate U\\+DFFF at index {position},"):
            qe.dumps(text)


@pytest.mark.parametrize("kind", ["ucs2", "ucs4"])
@pytest.mark.parametrize("surrogate", ["\ud800", "\udbff", "\udc00", "\udfff"])
def test_lone_surrogate_at_every_position(kind, surrogate):
    # the same error as before the vector paths, naming the right index
    for length in (1, 8, 9, 16, 17, 33, 70):
        for position in range(length):
            text = background(kind, length)
            text = text[:position] + surrogate + text[position + 1:]
            if kind_of(text) != kind:  # keep the kind: the surrogate may replace its maker
                text += KIND_MAKERS[kind]
            message = (f"str contains a lone surrogate U+{ord(surrogate):04X} at index "
                       f"{position}, which cannot be encoded as UTF-8")
            with pytest.raises(ValueError, match=re.escape(message)):
                qe.dumps(text)
            with pytest.raises(ValueError, match=re.escape(message + ' (at $["k"][0])')):
                qe.dumps({"k": [text]})


@pytest.mark.parametrize("kind", ["ucs2", "ucs4"])
def test_lone_surrogate_across_chunks(kind):
    # the encoder hands the text over 4096 characters at a time: the index
    # is the whole string's
    for position in (4095, 4096, 4097, 8191, 8192, 10000):
        text = background(kind, 12000)
        text = text[:position] + "\udc80" + text[position + 1:]
        with pytest.raises(ValueError, match=f"lone surrogate U\\+DC80 at index {position},"):
            qe.dumps(text)


@pytest.mark.parametrize("kind", sorted(BACKGROUNDS))
def test_long_strings_across_chunks(kind):
    for length in (4095, 4096, 4097, 8192 + 5, 100_003):
        text = background(kind, length)
        check(text)
        for position in (4094, 4095, 4096, 4097, length - 1):
            if position < length:
                check(text[:position] + '"' + text[position + 1:])
                check(text[:position] + "\u2028" * 20 + text[position:])


def test_growing_output_buffer():
    # many non-ASCII strings in one document: each reserves its worst case
    # (6 bytes a character) a chunk at a time while the buffer grows
    obj = [background(kind, n) for n in range(0, 3000, 37) for kind in BACKGROUNDS]
    assert qe.dumps(obj) == expected(obj)


TEXT_CHARACTERS = st.one_of(
    st.characters(max_codepoint=0x7F),
    st.characters(min_codepoint=0x80, max_codepoint=0xFF),
    st.characters(min_codepoint=0x3040, max_codepoint=0x9FFF),
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from([c for c in BOUNDARIES + ESCAPED if not 0xD800 <= ord(c) <= 0xDFFF]),
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(TEXT_CHARACTERS, max_size=300).map("".join))
def test_random_text(text):
    check_in_containers(text)


@FUZZ
@given(st.lists(st.sampled_from(["é", "日本", "abc ", "x", "\u07ff", "\u0800", "\x9f", '"']),
                max_size=120).map("".join))
def test_random_mixed_runs(text):
    check(text + "日")
    check(text + "é")
    check(text + "\U0001f600")


@FUZZ
@given(st.text(min_size=1, max_size=60), st.integers(0, 60),
       st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]))
def test_random_text_with_a_lone_surrogate(text, position, surrogate):
    position = min(position, len(text))
    text = text.replace("\ud800", "x")  # st.text has no surrogates: be sure
    text = text[:position] + surrogate + text[position:]
    first = next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)
    with pytest.raises(ValueError, match=f"lone surrogate U\\+{ord(text[first]):04X} "
                                         f"at index {first},"):
        qe.dumps(text)


def test_pack_table_is_the_generators_output():
    generated = subprocess.run([sys.executable, "csrc/encode_unicode_table.py"], cwd=REPO,
                               check=True, capture_output=True, text=True).stdout
    with open(os.path.join(REPO, "csrc", "encode_unicode_table.h")) as committed:
        assert committed.read() == generated


# Every other instruction set, capped in a child pytest that runs this file
# again; a cap above what this CPU has gives what it has.
OTHER_PATHS = [path for path in SIMD_PATHS if path != ACTIVE_PATH]


@pytest.mark.parametrize("path", OTHER_PATHS)
def test_every_simd_path(path):
    expect = min(path, ACTIVE_PATH, key=SIMD_PATHS.index)
    environment = dict(os.environ, QBEL_SIMD=path, QBEL_EXPECT_SIMD=expect)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "-k", "not test_every_simd_path and not test_unknown_simd_cap",
         os.path.abspath(__file__)],
        cwd=REPO, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # (under the no-skip policy the summary also says "0 skip(s) failed the run")
    assert re.search(r"\b[1-9][0-9]* passed", result.stdout)
    assert not re.search(r"\b[0-9]+ (failed|errors?)\b", result.stdout)


def test_unknown_simd_cap_means_none():
    environment = dict(os.environ, QBEL_SIMD="mmx")
    result = subprocess.run(
        [sys.executable, "-c", "from querybook_eventlog import _core; "
         "print(_core._unicode_simd_path())"],
        cwd=REPO, env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "none"
