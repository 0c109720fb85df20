"""The connection is always utf8mb4 (issue 7, finding 10): `charset=latin1`
double-encoded non-ASCII text and `charset=utf8` dead-lettered rows with an
emoji.  Every text, in keys and values, lands as the same characters
whichever accepted charset the URL names; another charset is a ValueError
at construction."""

import json

import pytest

from querybook_eventlog import DBEventLogger

TEXTS = {
    "ascii": "plain",
    "latin1": "café crème ÿ ß",
    "bmp": "日本語 Ελληνικά ─",
    "emoji": "rocket 🚀 face 😀",
    "non_bmp_cjk": "𠀀𪚥",  # CJK extension B, 4 bytes in UTF-8
    "mixed": "é🚀𠀀\u00a0end",
}


def url_with_charset(db, charset):
    base = db.url.split("?", 1)[0]
    return base if charset is None else f"{base}?charset={charset}"


def stored_event_data(db):
    """Each row's event_data as the server holds it in utf8mb4, read as hex
    (no client decoding in between that could hide a double encoding)."""
    rows = db.sql("SELECT HEX(CONVERT(event_data USING utf8mb4)) FROM event_log ORDER BY id")
    return [json.loads(bytes.fromhex(row[0]).decode("utf-8")) for row in rows]


@pytest.mark.parametrize("charset", [None, "utf8mb4", "UTF8MB4", "utf8", "utf8mb3", "latin1"])
def test_every_text_round_trips_into_the_table(db, tmp_path, charset):
    logger = DBEventLogger(url_with_charset(db, charset), spool_dir=str(tmp_path))
    try:
        logger.log(uid=1, event_type="CLICK", event_data=dict(TEXTS))
        logger.log(uid=2, event_type="VIEW", event_data={"key 🚀 é": "value 😀 é"})
        assert logger.flush(timeout=30), logger.stats()["last_error"]
        stats = logger.stats()
    finally:
        logger.close(timeout=10)
    assert stats["dead_lettered"] == 0 and stats["dropped"] == 0
    assert stored_event_data(db) == [TEXTS, {"key 🚀 é": "value 😀 é"}]


@pytest.mark.parametrize("charset", ["ascii", "binary", "sjis", "utf16", "utf8mb4_bin", "foo"])
def test_another_charset_is_a_value_error_at_construction(db, tmp_path, charset):
    with pytest.raises(ValueError, match="connection is always utf8mb4"):
        DBEventLogger(url_with_charset(db, charset), spool_dir=str(tmp_path))


def test_a_hand_made_parts_dict_with_another_charset_is_refused(db, tmp_path):
    """The C core checks too: _replay_spool takes a parts dict directly."""
    from querybook_eventlog import _core
    from querybook_eventlog._url import parse_database_url

    parts = dict(parse_database_url(db.url), charset="latin1")
    with pytest.raises(ValueError, match="charset must be utf8mb4"):
        _core._replay_spool(parts, str(tmp_path), "event_log")
