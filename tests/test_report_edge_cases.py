"""The report on rows the web app never sends, and on an empty range: no
crash, every format renders, text is escaped in the HTML page; the same rows
are accepted, and give the same report, with the optional generated columns."""

import datetime
import json

import pytest

from querybook_eventlog import DBEventLogger, EventType, _report, _report_format
from querybook_eventlog._sqlclient import connect

SINCE, UNTIL = datetime.datetime(2026, 11, 20), datetime.datetime(2026, 11, 22)


def rows(report, name):
    return report["sections"][name]["rows"]


ODD_ROWS = ("INSERT INTO event_log (created_at, uid, event_type, event_data) VALUES "
            "('2026-11-20 01:00:00', NULL, 'CLICK', NULL), "
            "('2026-11-20 01:00:01', 1, NULL, '{}'), "
            "('2026-11-20 01:00:02', 1, 'CLICK', '[1, 2]'), "
            "('2026-11-20 01:00:03', 1, 'CLICK', '{\"component\": \"SEARCH_MODAL\", \"aux\": 7}'), "
            "('2026-11-20 01:00:04', 2, 'CLICK', '{\"component\": \"SEARCH_MODAL\", "
            "\"element\": \"TABLE_RESULT_ITEM\", \"aux\": {\"search\": \"a\\\\\"b<c>\", "
            "\"results\": [4], \"pos\": -1}}'), "
            "('2026-11-20 01:00:05', 2, 'CLICK', '{\"component\": \"SEARCH_MODAL\", "
            "\"element\": \"TABLE_RESULT_ITEM\", \"aux\": {\"search\": \"a\\\\\"b<c>\", "
            "\"results\": [4], \"pos\": 9}}'), "
            "('2026-11-20 01:00:06', 2, 'VIEW', '{\"component\": \"SEARCH_MODAL\", "
            "\"element\": \"TABLE_RESULT_ITEM\", \"aux\": {\"search\": \"a\\\\\"b<c>\", "
            "\"results\": [4], \"page\": 1}}')")


def test_odd_rows_and_an_empty_range_do_not_break_the_report(db):
    """Rows the web app never sends but a table may hold: NULL uid, data and
    type, aux that is not an object, positions outside the results, a search
    string that needs escaping."""
    db.sql(ODD_ROWS)
    with connect(db.url) as connection:
        odd = _report.build_report(connection, SINCE, UNTIL)
        empty = _report.build_report(connection, datetime.datetime(2001, 1, 1),
                                     datetime.datetime(2001, 1, 2))
    assert rows(odd, "search") == [['a"b<c>', "TABLE_RESULT_ITEM", 1, 2, 2.0, None, 0]]
    assert sum(row[2] for row in rows(odd, "events_per_day")) == 7
    assert sum(row[2] for row in rows(odd, "feature_use")) == 5
    page = _report_format.to_html(odd)
    assert "a&quot;b&lt;c&gt;" in page and 'a"b<c>' not in page
    for report in (odd, empty):
        json.loads(_report_format.to_json(report))
        _report_format.to_text(report)
        _report_format.to_csv(report)
    assert all(not section["rows"] for section in empty["sections"].values())
    assert _report_format.to_html(empty).count("<svg") == 6
    assert "(none)" in _report_format.to_text(empty)


def search_event(kind, search, **aux):
    return (kind, {"component": "SEARCH_MODAL", "element": "TABLE_RESULT_ITEM",
                   "aux": {"search": search, "results": aux.pop("results", [4, 5]), **aux}})


# Odd values for every generated column: none may make an INSERT fail in
# strict mode (the server's default), and each counts as the JSON path counts it.
ODD_EVENTS = [
    search_event("VIEW", "Users"), search_event("VIEW", "users"), search_event("VIEW", "users "),
    search_event("VIEW", "users"), search_event("VIEW", True), search_event("VIEW", {"a": 1}),
    search_event("CLICK", "users", pos="0"), search_event("CLICK", "users", pos=1.5),
    search_event("CLICK", "users", pos=10 ** 30), search_event("CLICK", "users", pos=2 ** 64 - 1),
    search_event("CLICK", "users", pos=2 ** 63), search_event("CLICK", "users", pos=-2),
    search_event("CLICK", "users", pos=0, results=[[1, 2]]),
    search_event("CLICK", "users", pos=0, results={"0": 1}),
    search_event("CLICK", "Users", pos=0, results=["y" * 300]),
    search_event("CLICK", "users", pos=1),
    ("CLICK", {"component": "c" * 300, "element": {"a": 1}}),
    ("CLICK", {"component": "\u00e9\U0001f680", "element": "\u65e5\u6b21"}),
    ("CLICK", "a string"), ("VIEW", [1, 2]), ("CLICK", None), ("VIEW", 3),
    ("API", {"method": 5, "route": None}), ("API", {"method": "GET", "route": "r" * 300}),
    ("WEBSOCKET", {"route": ["x"]}), ("API", {}),
]


@pytest.mark.parametrize("writer", ["sql", "db_logger"])
def test_generated_columns_take_every_odd_row_and_give_the_same_report(db, tmp_path, writer):
    db.add_report_columns()
    try:
        if writer == "sql":
            db.sql(ODD_ROWS)
        else:
            logger = DBEventLogger(db.url, spool_dir=str(tmp_path))
            start_ms = int(datetime.datetime(2026, 11, 20, 2, tzinfo=datetime.timezone.utc)
                           .timestamp() * 1000)
            for i, (kind, data) in enumerate(ODD_EVENTS):
                logger.log(uid=1 + i % 3, event_type=EventType[kind], event_data=data,
                           timestamp=start_ms + i * 1000)
            assert logger.flush(timeout=60)
            logger.close()
            assert db.count_events() == len(ODD_EVENTS)
            assert not list(tmp_path.iterdir())  # nothing spooled or dead-lettered
        with connect(db.url) as connection:
            generated = _report.build_report(connection, SINCE, UNTIL)
    finally:
        db.drop_report_columns()
    with connect(db.url) as connection:
        parsed = _report.build_report(connection, SINCE, UNTIL)
        each = _report.build_report(connection, SINCE, UNTIL, scratch=False)
    assert (generated["json_fields"], parsed["json_fields"], each["json_fields"]) == (
        "generated", "scratch", "json")
    assert generated["sections"] == parsed["sections"] == each["sections"]
    if writer == "db_logger":
        views = {(row[0], row[1]): row[2] for row in rows(parsed, "search_views")}
        # as sent: neither case nor trailing spaces merge search strings
        assert views == {("Users", "TABLE_RESULT_ITEM"): 1, ("users", "TABLE_RESULT_ITEM"): 2,
                         ("users ", "TABLE_RESULT_ITEM"): 1, ("1", "TABLE_RESULT_ITEM"): 1}  # true: "1"
        clicked = {(row[0], row[2]): row[3] for row in rows(parsed, "search_clicks")}
        # a result only for a non-negative integer pos inside the results list
        assert clicked == {("users", None): 8, ("users", "5"): 1, ("Users", "y" * 64): 1}
        features = {(row[0], row[1]): row[2] for row in rows(parsed, "feature_use")}
        assert features[("c" * 64, None)] == 1
        assert features[("\u00e9\U0001f680", "\u65e5\u6b21")] == 1
