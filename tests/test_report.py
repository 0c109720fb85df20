"""The report against a real table: every figure checked against the same
numbers computed independently (in Python from the events logged, and by
plain SQL), in every output format, and the queries on the index the report
recommends."""

import csv
import datetime
import html.parser
import io
import json
from collections import Counter, defaultdict

import pytest

from querybook_eventlog import DBEventLogger
from querybook_eventlog import _report, _report_format
from querybook_eventlog._demo_day import synthetic_day
from querybook_eventlog._sqlclient import connect

DAY = datetime.datetime(2026, 11, 20)
DAY_MS = int(DAY.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
SINCE, UNTIL = DAY, DAY + datetime.timedelta(days=2)


@pytest.fixture(scope="module")
def logged_day(mariadb, tmp_path_factory):
    """100 users' synthetic day written through the DB logger (module-wide)."""
    mariadb.ensure_running()
    mariadb.reset_events()
    events = list(synthetic_day(users=100, start_ms=DAY_MS, seed=7))
    # one event just outside each end of the range: the report must leave them out
    events.append((1, events[0][1], {"path": "/x/"}, DAY_MS - 1000))
    events.append((1, events[0][1], {"path": "/x/"}, DAY_MS + 2 * 86400 * 1000))
    logger = DBEventLogger(mariadb.url, spool_dir=str(tmp_path_factory.mktemp("spool")))
    for uid, event_type, data, timestamp in events:
        logger.log(uid=uid, event_type=event_type, event_data=data, timestamp=timestamp)
    assert logger.flush(timeout=120)
    logger.close()
    assert mariadb.count_events() == len(events)
    return [event for event in events if DAY_MS <= event[3] < DAY_MS + 2 * 86400 * 1000]


@pytest.fixture(scope="module")
def report(mariadb, logged_day):
    with connect(mariadb.url) as connection:
        return _report.build_report(connection, SINCE, UNTIL, top=10000)


def day_of(timestamp_ms):
    return datetime.datetime.fromtimestamp(timestamp_ms // 1000, datetime.timezone.utc).date().isoformat()


def rows(report, name):
    return report["sections"][name]["rows"]


def test_events_per_day_and_type(report, logged_day, mariadb):
    expected = Counter((day_of(ts), kind.name) for _uid, kind, _data, ts in logged_day)
    assert {(day, kind): n for day, kind, n in rows(report, "events_per_day")} == expected
    plain = mariadb.sql("SELECT DATE(created_at), event_type, COUNT(*) FROM event_log "
                        "WHERE created_at BETWEEN '2026-11-20' AND '2026-11-21 23:59:59' "
                        "GROUP BY 1, 2")
    assert {(day, kind): int(n) for day, kind, n in plain} == expected


def clicks(logged_day):
    return [(uid, data, ts) for uid, kind, data, ts in logged_day if kind.name == "CLICK"]


def test_feature_use_per_element_day_and_user(report, logged_day):
    per_feature, users = Counter(), defaultdict(set)
    per_day, day_users = Counter(), defaultdict(set)
    per_user = Counter()
    for uid, data, ts in clicks(logged_day):
        key = (data["component"], data.get("element"))
        per_feature[key] += 1
        users[key].add(uid)
        per_day[(day_of(ts),) + key] += 1
        day_users[(day_of(ts),) + key].add(uid)
        per_user[(uid,) + key] += 1
    assert {(c, e): (n, u, r) for c, e, n, u, r in rows(report, "feature_use")} == {
        key: (n, len(users[key]), round(n / len(users[key]), 2)) for key, n in per_feature.items()}
    counts = [row[2] for row in rows(report, "feature_use")]
    assert counts == sorted(counts, reverse=True)
    assert {tuple(row[:3]): tuple(row[3:]) for row in rows(report, "feature_use_per_day")} == {
        key: (n, len(day_users[key])) for key, n in per_day.items()}
    assert {(row[0], row[2], row[3]): row[4] for row in rows(report, "feature_use_per_user")} == \
        dict(per_user)
    assert all(row[1] == f"user{row[0]}" for row in rows(report, "feature_use_per_user"))
    assert per_feature[("DATADOC_QUERY_CELL", "FORMAT_BUTTON")] > 0  # the docs' first question


def test_search_results_shown_and_result_clicked(report, logged_day):
    views, shown_clicks, results = Counter(), Counter(), Counter()
    for _uid, kind, data, _ts in logged_day:
        if data.get("component") != "SEARCH_MODAL" or "aux" not in data:
            continue
        key = (data["aux"]["search"], data["element"])
        if kind.name == "VIEW":
            views[key] += 1
        elif kind.name == "CLICK":
            shown_clicks[key] += 1
            results[key + (str(data["aux"]["results"][data["aux"]["pos"]]),)] += 1
    assert {(s, e): n for s, e, n, _u in rows(report, "search_views")} == dict(views)
    assert {(s, e, r): n for s, e, r, n, _u in rows(report, "search_clicks")} == dict(results)
    summary = {(row[0], row[1]): row[2:] for row in rows(report, "search")}
    assert set(summary) == set(views)
    for key, (n_views, n_clicks, rate, top, top_clicks) in summary.items():
        assert (n_views, n_clicks) == (views[key], shown_clicks[key])
        assert rate == round(n_clicks / n_views, 3)
        best = max(n for (s, e, _r), n in results.items() if (s, e) == key)
        assert top_clicks == best and results[key + (top,)] == best
    # the most clicked result of "dim_users" is the one the synthetic users prefer
    assert summary[("dim_users", "TABLE_RESULT_ITEM")][3] == "5"


def test_home_page_views_and_clicks_per_day(report, logged_day):
    expected = defaultdict(lambda: [0, set(), 0, 0])
    for uid, kind, data, ts in logged_day:
        day = expected[day_of(ts)]
        if kind.name == "VIEW" and data.get("component") == "LANDING_PAGE":
            day[0] += 1
            day[1].add(uid)
        elif kind.name == "CLICK" and data.get("component") == "LANDING_PAGE":
            day[2] += 1
        elif kind.name == "CLICK" and data.get("element") == "HOME_BUTTON":
            day[3] += 1
    assert rows(report, "home_page") == [
        [day, v, len(users), c, h] for day, (v, users, c, h) in sorted(expected.items())]


def test_top_routes_and_most_active_users(report, logged_day):
    routes, route_users = Counter(), defaultdict(set)
    activity = defaultdict(Counter)
    for uid, kind, data, ts in logged_day:
        activity[uid][kind.name] += 1
        activity[uid]["day " + day_of(ts)] = 1
        if kind.name in ("API", "WEBSOCKET"):
            key = (kind.name, data.get("method"), data["route"])
            routes[key] += 1
            route_users[key].add(uid)
    assert {tuple(row[:3]): tuple(row[3:]) for row in rows(report, "top_routes")} == {
        key: (n, len(route_users[key])) for key, n in routes.items()}
    got = {row[0]: row[1:] for row in rows(report, "active_users")}
    assert got == {uid: [f"user{uid}", sum(a[k] for k in ("API", "WEBSOCKET", "VIEW", "CLICK")),
                         a["VIEW"], a["CLICK"], a["API"], a["WEBSOCKET"],
                         sum(1 for k in a if k.startswith("day "))]
                   for uid, a in activity.items()}
    totals = [row[2] for row in rows(report, "active_users")]
    assert totals == sorted(totals, reverse=True)


def test_top_limits_the_top_sections(mariadb, logged_day):
    with connect(mariadb.url) as connection:
        small = _report.build_report(connection, SINCE, UNTIL, top=3)
    assert len(rows(small, "active_users")) == 3
    assert len(rows(small, "top_routes")) == 3
    assert len(rows(small, "feature_use_per_user")) == 3


def test_csv_and_json_carry_the_same_numbers(report):
    as_json = json.loads(_report_format.to_json(report))
    assert as_json["sections"]["search"]["rows"] == rows(report, "search")
    one = list(csv.reader(io.StringIO(_report_format.to_csv(report, ["feature_use"]))))
    assert one[0] == report["sections"]["feature_use"]["columns"]
    assert [[int(row[2]), int(row[3])] for row in one[1:]] == [
        row[2:4] for row in rows(report, "feature_use")]
    blocks = _report_format.to_csv(report).split("\n\n")
    assert len(blocks) == len(report["sections"])
    assert all(block.startswith("section,") for block in blocks)


def test_text_has_every_main_section_with_its_numbers(report):
    text = _report_format.to_text(report)
    for name in _report_format.TEXT_SECTIONS:
        assert report["sections"][name]["title"] in text
    top_feature = rows(report, "feature_use")[0]
    assert any(top_feature[0] in line and top_feature[1] in line and str(top_feature[2]) in line
               for line in text.splitlines())


class ChartReader(html.parser.HTMLParser):
    """The numbers written in each chart: {section: {series: [values]}}."""

    def __init__(self):
        super().__init__()
        self.charts, self.section, self.series, self.tags = {}, None, None, Counter()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] += 1
        if tag == "svg":
            self.section = attrs["data-section"]
            self.charts[self.section] = defaultdict(list)
        elif tag == "text" and attrs.get("class") == "value":
            self.series = attrs["data-series"]

    def handle_endtag(self, tag):
        if tag == "svg":
            self.section = None
        elif tag == "text":
            self.series = None

    def handle_data(self, data):
        if self.section and self.series:
            self.charts[self.section][self.series].append(int(data))


def test_html_page_is_self_contained_with_every_chart_and_its_numbers(report):
    page = _report_format.to_html(report, top=20)
    reader = ChartReader()
    reader.feed(page)
    assert reader.tags["script"] == 0 and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert set(reader.charts) == {"search", "feature_use", "home_page", "events_per_day",
                                  "top_routes", "active_users"}
    charts = reader.charts
    assert charts["search"]["views"] == [row[2] for row in rows(report, "search")[:20]]
    assert charts["search"]["clicks"] == [row[3] for row in rows(report, "search")[:20]]
    assert charts["feature_use"]["clicks"] == [row[2] for row in rows(report, "feature_use")[:20]]
    assert charts["home_page"]["views"] == [row[1] for row in rows(report, "home_page")]
    assert charts["home_page"]["clicks"] == [row[3] for row in rows(report, "home_page")]
    per_type = Counter()
    for _day, kind, n in rows(report, "events_per_day"):
        per_type[kind] += n
    assert {kind: sum(values) for kind, values in charts["events_per_day"].items()} == per_type
    assert charts["top_routes"]["events"] == [row[3] for row in rows(report, "top_routes")[:20]]
    assert charts["active_users"]["events"] == [row[2] for row in rows(report, "active_users")[:20]]
    assert reader.tags["table"] == len(report["sections"])


def test_without_the_created_at_index_the_report_recommends_it(mariadb, logged_day):
    with connect(mariadb.url) as connection:
        without = _report.build_report(connection, SINCE, UNTIL)
    assert without["notes"] and _report.RECOMMENDED_INDEX_DDL in without["notes"][0]
    mariadb.sql(_report.RECOMMENDED_INDEX_DDL)
    try:
        with connect(mariadb.url) as connection:
            with_index = _report.build_report(connection, SINCE, UNTIL)
            plan = connection.query(
                "EXPLAIN " + _report.query_text("feature_use"),
                (datetime.datetime(2026, 11, 21, 12), UNTIL))
    finally:
        mariadb.sql("DROP INDEX ix_event_log_created_at ON event_log")
    assert with_index["notes"] == []
    assert "ix_event_log_created_at" in with_index["indexes"]
    assert with_index["sections"] == without["sections"]
    # the key the CLICK query reads event_log by
    assert [row[5] for row in plan if row[2] == "event_log"] == ["ix_event_log_created_at"], plan


@pytest.mark.parametrize("kwargs, message", [
    ({"since": "2026-11-20", "until": "2026-11-22", "days": 2}, "not all three"),
    ({"since": "yesterday"}, "ISO"),
    ({"days": 0}, "positive"),
    ({"since": "2026-11-22", "until": "2026-11-20"}, "empty"),
])
def test_bad_time_ranges_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _report.time_range(**kwargs)


def test_time_range_defaults_and_timezones():
    now = datetime.datetime(2026, 11, 30, 12, 0, 0, 500)
    assert _report.time_range(now=now) == (datetime.datetime(2026, 11, 23, 12, 0, 1),
                                           datetime.datetime(2026, 11, 30, 12, 0, 1))
    assert _report.time_range(since="2026-11-20T01:00:00+01:00", until="2026-11-21") == (
        datetime.datetime(2026, 11, 20), datetime.datetime(2026, 11, 21))
    assert _report.time_range(since="2026-11-20", days=1.5) == (
        datetime.datetime(2026, 11, 20), datetime.datetime(2026, 11, 21, 12))
    assert _report.time_range(until="2026-11-20", days=1, now=now) == (
        datetime.datetime(2026, 11, 19), datetime.datetime(2026, 11, 20))


def test_bad_table_and_top_raise(mariadb):
    with connect(mariadb.url) as connection:
        with pytest.raises(ValueError, match="table name"):
            _report.build_report(connection, SINCE, UNTIL, table="event_log`; --")
        with pytest.raises(ValueError, match="top"):
            _report.build_report(connection, SINCE, UNTIL, top=0)


def test_chosen_sections_run_only_their_queries(mariadb, logged_day, report):
    steps = []
    with connect(mariadb.url) as connection:
        three = _report.build_report(connection, SINCE, UNTIL, top=10000,
                                     sections=["home_page", "search", "feature_use"],
                                     progress=lambda done, total: steps.append((done, total)))
    assert list(three["sections"]) == ["search", "feature_use", "home_page"]
    # the scratch table's one pass, then search_views, search_clicks, feature_use, views and
    # feature use per day
    assert steps == [(step, 6) for step in range(1, 7)]
    assert three["json_fields"] == "scratch"
    for name in three["sections"]:
        assert three["sections"][name] == report["sections"][name]
    text = _report_format.to_text(three)
    assert "Events per day" not in text and "Home page" in text
    page = _report_format.to_html(three)
    assert page.count("<svg") == 3
    with connect(mariadb.url) as connection:
        with pytest.raises(ValueError, match="unknown report sections"):
            _report.build_report(connection, SINCE, UNTIL, sections=["nope"])



def test_generated_columns_give_the_same_figures_from_the_index_alone(mariadb, logged_day, report):
    """The operator's optional migration: with the generated columns and their
    index every section is the same, and each JSON-reading query reads
    event_log from that index alone (no row, no JSON parsed)."""
    mariadb.sql(_report.RECOMMENDED_INDEX_DDL)
    mariadb.add_report_columns()
    try:
        with connect(mariadb.url) as connection:
            assert _report.has_generated_columns(connection)
            generated = _report.build_report(connection, SINCE, UNTIL, top=10000)
            collation = _report.binary_collation(connection)
            plans = {name: connection.query("EXPLAIN " + _report.query_text(
                name, collation=collation, source="generated"), (SINCE, UNTIL))
                for name in _report.QUERIES}
    finally:
        mariadb.drop_report_columns()
        mariadb.sql("DROP INDEX ix_event_log_created_at ON event_log")
    assert generated["generated_columns"] and not report["generated_columns"]
    assert generated["sections"] == report["sections"]
    assert "ix_event_log_qbel_report" in generated["indexes"]
    assert "from the generated columns" in _report_format.to_text(generated).splitlines()[0]
    assert "generated columns" not in _report_format.to_text(report)
    for name, plan in plans.items():
        (row,) = [row for row in plan if row[2] == "event_log"]
        assert "Using index" in row[9], (name, plan)
        expected = "ix_event_log_created_at" if name in ("events_per_day", "active_users") \
            else "ix_event_log_qbel_report"
        assert row[5] == expected, (name, plan)
    with connect(mariadb.url) as connection:
        assert not _report.has_generated_columns(connection)


def test_generated_columns_ddl_names_its_table_and_refuses_bad_input():
    ddl = _report.generated_columns_ddl("events_2026")
    assert ddl.startswith("ALTER TABLE `events_2026`") and "ix_events_2026_qbel_report" in ddl
    assert ddl.count("VIRTUAL") == len(_report.FIELDS)
    assert "JSON_UNQUOTE(JSON_EXTRACT" in _report.generated_columns_ddl(json_value=False)
    with pytest.raises(ValueError, match="table name"):
        _report.generated_columns_ddl("event_log`; DROP TABLE user; --")
    with pytest.raises(ValueError, match="collation"):
        _report.generated_columns_ddl(collation="latin1_swedish_ci")


def test_one_pass_or_a_pass_per_section_give_the_same_figures(mariadb, logged_day, report):
    """The report fixture took one pass over the clicks and views into a
    temporary table; each section parsing its own rows gives the same, and so
    does a user without CREATE TEMPORARY TABLES (Querybook's production
    grants), with a note saying why it did not take one pass."""
    assert report["json_fields"] == "scratch" and report["notes"]
    with connect(mariadb.url) as connection:
        per_section = _report.build_report(connection, SINCE, UNTIL, top=10000, scratch=False)
        one_section = _report.build_report(connection, SINCE, UNTIL, sections=["feature_use"])
        again = _report.build_report(connection, SINCE, UNTIL, top=10000)
        # the temporary table is gone after the report (the name is free on its connection)
        connection.execute(f"CREATE TEMPORARY TABLE {_report.SCRATCH} (a INT)")
    with connect(mariadb.dml_only_url()) as connection:
        refused = _report.build_report(connection, SINCE, UNTIL, top=10000)
    assert per_section["json_fields"] == one_section["json_fields"] == "json"
    assert refused["json_fields"] == "json"
    assert per_section["sections"] == refused["sections"] == again["sections"] == report["sections"]
    assert per_section["notes"] == report["notes"]  # only the index note
    assert refused["notes"][:-1] == report["notes"]
    assert "CREATE TEMPORARY TABLES" in refused["notes"][-1]
