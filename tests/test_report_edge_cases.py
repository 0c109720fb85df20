"""The report on rows the web app never sends, and on an empty range: no
crash, every format renders, text is escaped in the HTML page."""

import datetime
import json

from querybook_eventlog import _report, _report_format
from querybook_eventlog._sqlclient import connect

SINCE, UNTIL = datetime.datetime(2026, 11, 20), datetime.datetime(2026, 11, 22)


def rows(report, name):
    return report["sections"][name]["rows"]


def test_odd_rows_and_an_empty_range_do_not_break_the_report(db):
    """Rows the web app never sends but a table may hold: NULL uid, data and
    type, aux that is not an object, positions outside the results, a search
    string that needs escaping."""
    db.sql("INSERT INTO event_log (created_at, uid, event_type, event_data) VALUES "
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
