"""What event logs are for: the report behind ``python -m querybook_eventlog report``.

Querybook's docs name the questions (how often query formatting is used,
which result gets clicked for a table search string, how often the home page
is viewed and clicked); upstream leaves them to hand-written SQL.  Each
section here is one aggregate query over a time range of ``event_log``; the
database does the counting and only the aggregates travel.

Indexes (see RECOMMENDED_INDEX_DDL): every query filters
``created_at >= since AND created_at < until``, most also ``event_type = …``.
Querybook's table has only ix_event_log_event_type, so without the
recommended index each query reads all rows of its event type (or the whole
table); with ``ix_event_log_created_at (created_at, event_type)`` each reads
only the index range of the period, checks event_type in the index (index
condition pushdown) and fetches just the matching rows; `events per day` is
answered from the index alone.  The same index serves `cleanup`.

Times are UTC, as the loggers stamp created_at; days are UTC days.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from ._sqlclient import Connection, check_table_name

RECOMMENDED_INDEX = "ix_event_log_created_at"
RECOMMENDED_INDEX_DDL = (
    "CREATE INDEX ix_event_log_created_at ON event_log (created_at, event_type)"
)


def index_ddl(table: str = "event_log") -> str:
    """The recommended index for `table`."""
    check_table_name(table)
    if table == "event_log":
        return RECOMMENDED_INDEX_DDL
    return f"CREATE INDEX ix_{table}_created_at ON `{table}` (created_at, event_type)"


# Each JSON field is read once per row and cast to a short string: grouping on
# the LONGTEXT that JSON functions return sends MariaDB's temporary table to
# disk.  Distinct users are counted in two levels (group by user first, then
# count the groups): COUNT(DISTINCT uid) sorts every row of the range.
# Lengths: Querybook's component and element names are short; the memory
# temporary table stores each at its full declared width.
FIELDS = {"c": ("$.component", 64), "e": ("$.element", 64), "s": ("$.aux.search", 255),
          "m": ("$.method", 16), "r": ("$.route", 255)}
JSON_VALUE = "CAST(JSON_VALUE(event_data, '{path}') AS CHAR({length}))"
JSON_EXTRACT = "CAST(JSON_UNQUOTE(JSON_EXTRACT(event_data, '{path}')) AS CHAR({length}))"
# the clicked result: aux.results[aux.pos] (the web app sends both)
CLICKED_RESULT = ("CAST(JSON_UNQUOTE(JSON_EXTRACT(event_data, CONCAT('$.aux.results[', "
                  "CAST(JSON_EXTRACT(event_data, '$.aux.pos') AS UNSIGNED), ']'))) AS CHAR(64))")
# Room for the groups in memory (session only; the server's default is 16 MiB).
SESSION_SETUP = ("SET SESSION tmp_table_size = 268435456, max_heap_table_size = 268435456",)
RANGE = "created_at >= %s AND created_at < %s"
CLICKS = "FROM {table} WHERE event_type = 'CLICK' AND {range}"
VIEWS = "FROM {table} WHERE event_type = 'VIEW' AND {range}"
# LIKE first: a substring test is far cheaper than parsing the JSON of every
# click and view (JSON.stringify and dumps never escape ASCII letters).
SEARCHES = "AND event_data LIKE '%%SEARCH_MODAL%%' AND {c} = 'SEARCH_MODAL' AND {s} IS NOT NULL"

# name -> (title, columns, SQL with {table}, {range}, {limit} and the fields)
QUERIES = {
    "events_per_day": (
        "Events per day and type", ["day", "event_type", "events"],
        "SELECT DATE(created_at), event_type, COUNT(*) FROM {table} WHERE {range} "
        "GROUP BY DATE(created_at), event_type ORDER BY 1, 2"),
    "feature_use": (
        "Feature use: clicks per component and element",
        ["component", "element", "clicks", "users", "clicks_per_user"],
        "SELECT c, e, SUM(n) t, COUNT(uid), ROUND(SUM(n) / GREATEST(COUNT(uid), 1), 2) FROM ("
        "SELECT {c} c, {e} e, uid, COUNT(*) n " + CLICKS + " GROUP BY c, e, uid) f "
        "GROUP BY c, e ORDER BY t DESC, c, e"),
    "feature_use_per_day": (
        "Feature use per day", ["day", "component", "element", "clicks", "users"],
        "SELECT d, c, e, SUM(n), COUNT(uid) FROM ("
        "SELECT DATE(created_at) d, {c} c, {e} e, uid, COUNT(*) n " + CLICKS +
        " GROUP BY d, c, e, uid) f GROUP BY d, c, e ORDER BY d, c, e"),
    "feature_use_per_user": (
        "Feature use per user (top {limit})",
        ["uid", "username", "component", "element", "clicks"],
        "SELECT f.uid, u.username, f.c, f.e, f.n FROM ("
        "SELECT uid, {c} c, {e} e, COUNT(*) n " + CLICKS + " GROUP BY uid, c, e "
        "ORDER BY n DESC, uid, c, e LIMIT {limit}) f LEFT JOIN `user` u ON u.id = f.uid "
        "ORDER BY f.n DESC, f.uid, f.c, f.e"),
    "views_per_day": (
        "Page views per day", ["day", "component", "views", "users"],
        "SELECT d, c, SUM(n), COUNT(uid) FROM ("
        "SELECT DATE(created_at) d, {c} c, uid, COUNT(*) n " + VIEWS +
        " GROUP BY d, c, uid) f GROUP BY d, c ORDER BY d, c"),
    "search_views": (
        "Searches: results shown", ["search", "result_type", "views", "users"],
        "SELECT s, e, SUM(n) t, COUNT(uid) FROM ("
        "SELECT {s} s, {e} e, uid, COUNT(*) n " + VIEWS + " " + SEARCHES +
        " GROUP BY s, e, uid) f GROUP BY s, e ORDER BY t DESC, s, e"),
    "search_clicks": (
        "Searches: the result clicked", ["search", "result_type", "result_id", "clicks", "users"],
        "SELECT s, e, r, SUM(n) t, COUNT(uid) FROM ("
        "SELECT {s} s, {e} e, {clicked} r, uid, COUNT(*) n " + CLICKS + " " + SEARCHES +
        " GROUP BY s, e, r, uid) f GROUP BY s, e, r ORDER BY s, e, t DESC, r"),
    "top_routes": (
        "Top API and websocket routes (top {limit})",
        ["event_type", "method", "route", "events", "users"],
        "SELECT k, m, r, SUM(n) t, COUNT(uid) FROM ("
        "SELECT event_type k, {m} m, {r} r, uid, COUNT(*) n FROM {table} "
        "WHERE event_type IN ('API', 'WEBSOCKET') AND {range} GROUP BY k, m, r, uid) f "
        "GROUP BY k, m, r ORDER BY t DESC, k, m, r LIMIT {limit}"),
    "active_users": (
        "Most active users (top {limit})",
        ["uid", "username", "events", "views", "clicks", "api", "websocket", "active_days"],
        "SELECT a.uid, u.username, a.n, a.v, a.c, a.a, a.w, a.d FROM ("
        "SELECT uid, SUM(n) n, SUM(v) v, SUM(c) c, SUM(a) a, SUM(w) w, COUNT(*) d FROM ("
        "SELECT uid, DATE(created_at) d, COUNT(*) n, SUM(event_type = 'VIEW') v, "
        "SUM(event_type = 'CLICK') c, SUM(event_type = 'API') a, SUM(event_type = 'WEBSOCKET') w "
        "FROM {table} WHERE {range} AND uid IS NOT NULL GROUP BY uid, d) per_day "
        "GROUP BY uid ORDER BY n DESC, uid LIMIT {limit}) a "
        "LEFT JOIN `user` u ON u.id = a.uid ORDER BY a.n DESC, a.uid"),
}


def query_text(name: str, table: str = "`event_log`", limit: int = 20,
               json_value: bool = True) -> str:
    """The statement of section `name` (parameters: since, until)."""
    read = JSON_VALUE if json_value else JSON_EXTRACT
    fields = {key: read.format(path=path, length=length) for key, (path, length) in FIELDS.items()}
    return QUERIES[name][2].format(table=table, range=RANGE, limit=limit, clicked=CLICKED_RESULT,
                                   **fields)


def has_json_value(connection: Connection) -> bool:
    """JSON_VALUE (MariaDB 10.2.3+, MySQL 8.0.21+) parses less than JSON_EXTRACT."""
    from ._sqlclient import DatabaseError

    try:
        return connection.query("SELECT JSON_VALUE('{\"a\": \"b\"}', '$.a')")[0][0] == "b"
    except DatabaseError:
        return False


# Sections computed in Python from the queries' rows.
DERIVED = {
    "home_page": ("Home page (LANDING_PAGE) per day",
                  ["day", "views", "viewers", "clicks", "home_button_clicks"]),
    "search": ("Search: per search string, results shown and the result clicked",
               ["search", "result_type", "views", "clicks", "click_rate", "top_result",
                "top_result_clicks"]),
}

# The queries a derived section is computed from.
NEEDS = {"home_page": ("views_per_day", "feature_use_per_day"),
         "search": ("search_views", "search_clicks")}

SECTION_ORDER = ["search", "feature_use", "home_page", "events_per_day", "top_routes",
                 "active_users", "feature_use_per_day", "feature_use_per_user", "views_per_day",
                 "search_views", "search_clicks"]


def _plain(value: Any) -> Any:
    """Database values as JSON-friendly Python: Decimal -> int/float, date -> ISO."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    integral = value.to_integral_value() if hasattr(value, "to_integral_value") else None
    if integral is not None and integral == value:
        return int(value)
    return float(value)


def parse_time(text: str) -> datetime.datetime:
    """An ISO date or date-time (UTC); ValueError otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return moment


def time_range(since: Optional[str] = None, until: Optional[str] = None,
               days: Optional[float] = None, now: Optional[datetime.datetime] = None):
    """[since, until) in UTC from the command line's options: --since/--until,
    or --days before --until (default now) or after --since; default 7 days to now."""
    if since and until and days is not None:
        raise ValueError("give two of --since, --until and --days, not all three")
    if days is not None and days <= 0:
        raise ValueError(f"--days must be positive, not {days}")
    span = datetime.timedelta(days=7 if days is None else days)
    if since and not until and days is not None:
        start = parse_time(since)
        return start, start + span
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    end = parse_time(until) if until else now.replace(microsecond=0) + datetime.timedelta(seconds=1)
    start = parse_time(since) if since else end - span
    if start >= end:
        raise ValueError(f"the range is empty: since {start} is not before until {end}")
    return start, end


def _home_page(sections: Dict[str, dict]) -> List[list]:
    days: Dict[str, list] = {}
    for day, component, views, users in sections["views_per_day"]["rows"]:
        if component == "LANDING_PAGE":
            days.setdefault(day, [day, 0, 0, 0, 0])[1:3] = [views, users]
    for day, component, element, clicks, _users in sections["feature_use_per_day"]["rows"]:
        if component == "LANDING_PAGE":
            days.setdefault(day, [day, 0, 0, 0, 0])[3] += clicks
        elif component == "LEFT_SIDEBAR" and element == "HOME_BUTTON":
            days.setdefault(day, [day, 0, 0, 0, 0])[4] += clicks
    return [days[day] for day in sorted(days)]


def _search(sections: Dict[str, dict]) -> List[list]:
    rows: Dict[tuple, list] = {}
    for search, result_type, views, _users in sections["search_views"]["rows"]:
        rows[(search, result_type)] = [search, result_type, views, 0, 0.0, None, 0]
    for search, result_type, result, clicks, _users in sections["search_clicks"]["rows"]:
        row = rows.setdefault((search, result_type), [search, result_type, 0, 0, 0.0, None, 0])
        row[3] += clicks
        if result is not None and clicks > row[6]:  # None: aux.pos outside aux.results
            row[5], row[6] = result, clicks
    for row in rows.values():
        row[4] = round(row[3] / row[2], 3) if row[2] else None
    return sorted(rows.values(), key=lambda row: (-row[2], -row[3], row[0], row[1] or ""))


def build_report(connection: Connection, since: datetime.datetime, until: datetime.datetime, *,
                 table: str = "event_log", top: int = 20, sections: Optional[List[str]] = None,
                 progress=None) -> Dict[str, Any]:
    """The report for [since, until), as plain data: every section, or only
    `sections` (then only the queries those need run)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, not {top!r}")
    wanted = SECTION_ORDER if not sections else [name for name in SECTION_ORDER if name in sections]
    unknown = set(sections or ()) - set(SECTION_ORDER)
    if unknown:
        raise ValueError(f"unknown report sections {sorted(unknown)}; known: {SECTION_ORDER}")
    quoted = check_table_name(table)
    needed = [name for name in QUERIES
              if any(name in NEEDS.get(section, (section,)) for section in wanted)]
    results: Dict[str, dict] = {}
    json_value = has_json_value(connection)
    for statement in SESSION_SETUP:
        connection.execute(statement)
    for step, name in enumerate(needed):
        title, columns, _sql = QUERIES[name]
        rows = connection.query(query_text(name, quoted, top, json_value), (since, until))
        results[name] = {"title": title.format(limit=top), "columns": columns,
                         "rows": [[_plain(value) for value in row] for row in rows]}
        if progress is not None:
            progress(step + 1, len(needed))
    for name, build in (("home_page", _home_page), ("search", _search)):
        if name in wanted:
            results[name] = {"title": DERIVED[name][0], "columns": DERIVED[name][1],
                             "rows": build(results)}
    index_rows = connection.query(f"SHOW INDEX FROM {quoted}")
    indexes = sorted({row[2] for row in index_rows})
    notes = []
    if not any(row[3] == 1 and row[4] == "created_at" for row in index_rows):
        notes.append(f"{table} has no index starting with created_at: each section reads every "
                     f"row of its event type. Recommended: {index_ddl(table)}")
    return {
        "table": table,
        "since": since.isoformat(sep=" "),
        "until": until.isoformat(sep=" "),
        "indexes": indexes,
        "notes": notes,
        "sections": {name: results[name] for name in wanted},
    }

