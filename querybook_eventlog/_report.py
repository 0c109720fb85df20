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


def _json(path: str) -> str:
    return f"JSON_UNQUOTE(JSON_EXTRACT(event_data, '{path}'))"


COMPONENT = _json("$.component")
ELEMENT = _json("$.element")
SEARCH = _json("$.aux.search")
# the clicked result: aux.results[aux.pos] (the web app sends both)
CLICKED_RESULT = ("JSON_UNQUOTE(JSON_EXTRACT(event_data, CONCAT('$.aux.results[', "
                  "CAST(JSON_EXTRACT(event_data, '$.aux.pos') AS UNSIGNED), ']')))")
RANGE = "created_at >= %s AND created_at < %s"

# name -> (title, columns, SQL with {table}, {range} and {limit}, uses top-N limit)
QUERIES = {
    "events_per_day": (
        "Events per day and type", ["day", "event_type", "events"],
        "SELECT DATE(created_at), event_type, COUNT(*) FROM {table} WHERE {range} "
        "GROUP BY DATE(created_at), event_type ORDER BY 1, 2"),
    "feature_use": (
        "Feature use: clicks per component and element",
        ["component", "element", "clicks", "users", "clicks_per_user"],
        f"SELECT {COMPONENT} c, {ELEMENT} e, COUNT(*) n, COUNT(DISTINCT uid) u, "
        "ROUND(COUNT(*) / GREATEST(COUNT(DISTINCT uid), 1), 2) FROM {table} "
        "WHERE event_type = 'CLICK' AND {range} GROUP BY c, e ORDER BY n DESC, c, e"),
    "feature_use_per_day": (
        "Feature use per day", ["day", "component", "element", "clicks", "users"],
        f"SELECT DATE(created_at) d, {COMPONENT} c, {ELEMENT} e, COUNT(*), COUNT(DISTINCT uid) "
        "FROM {table} WHERE event_type = 'CLICK' AND {range} GROUP BY d, c, e ORDER BY d, c, e"),
    "feature_use_per_user": (
        "Feature use per user (top {limit})",
        ["uid", "username", "component", "element", "clicks"],
        "SELECT f.uid, u.username, f.c, f.e, f.n FROM ("
        f"SELECT uid, {COMPONENT} c, {ELEMENT} e, COUNT(*) n FROM {{table}} "
        "WHERE event_type = 'CLICK' AND {range} GROUP BY uid, c, e "
        "ORDER BY n DESC, uid, c, e LIMIT {limit}) f LEFT JOIN `user` u ON u.id = f.uid "
        "ORDER BY f.n DESC, f.uid, f.c, f.e"),
    "views_per_day": (
        "Page views per day", ["day", "component", "views", "users"],
        f"SELECT DATE(created_at) d, {COMPONENT} c, COUNT(*), COUNT(DISTINCT uid) FROM {{table}} "
        "WHERE event_type = 'VIEW' AND {range} GROUP BY d, c ORDER BY d, c"),
    "search_views": (
        "Searches: results shown", ["search", "result_type", "views", "users"],
        f"SELECT {SEARCH} s, {ELEMENT} e, COUNT(*) n, COUNT(DISTINCT uid) FROM {{table}} "
        f"WHERE event_type = 'VIEW' AND {{range}} AND {COMPONENT} = 'SEARCH_MODAL' "
        f"AND {SEARCH} IS NOT NULL GROUP BY s, e ORDER BY n DESC, s, e"),
    "search_clicks": (
        "Searches: the result clicked", ["search", "result_type", "result_id", "clicks", "users"],
        f"SELECT {SEARCH} s, {ELEMENT} e, {CLICKED_RESULT} r, COUNT(*) n, COUNT(DISTINCT uid) "
        f"FROM {{table}} WHERE event_type = 'CLICK' AND {{range}} "
        f"AND {COMPONENT} = 'SEARCH_MODAL' AND {SEARCH} IS NOT NULL "
        "GROUP BY s, e, r ORDER BY s, e, n DESC, r"),
    "top_routes": (
        "Top API and websocket routes (top {limit})",
        ["event_type", "method", "route", "events", "users"],
        f"SELECT event_type, {_json('$.method')} m, {_json('$.route')} r, COUNT(*) n, "
        "COUNT(DISTINCT uid) FROM {table} WHERE event_type IN ('API', 'WEBSOCKET') AND {range} "
        "GROUP BY event_type, m, r ORDER BY n DESC, event_type, m, r LIMIT {limit}"),
    "active_users": (
        "Most active users (top {limit})",
        ["uid", "username", "events", "views", "clicks", "api", "websocket", "active_days"],
        "SELECT a.uid, u.username, a.n, a.v, a.c, a.a, a.w, a.d FROM ("
        "SELECT uid, COUNT(*) n, SUM(event_type = 'VIEW') v, SUM(event_type = 'CLICK') c, "
        "SUM(event_type = 'API') a, SUM(event_type = 'WEBSOCKET') w, "
        "COUNT(DISTINCT DATE(created_at)) d FROM {table} WHERE {range} AND uid IS NOT NULL "
        "GROUP BY uid ORDER BY n DESC, uid LIMIT {limit}) a "
        "LEFT JOIN `user` u ON u.id = a.uid ORDER BY a.n DESC, a.uid"),
}

# Sections computed in Python from the queries' rows.
DERIVED = {
    "home_page": ("Home page (LANDING_PAGE) per day",
                  ["day", "views", "viewers", "clicks", "home_button_clicks"]),
    "search": ("Search: per search string, results shown and the result clicked",
               ["search", "result_type", "views", "clicks", "click_rate", "top_result",
                "top_result_clicks"]),
}

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
        if clicks > row[6]:
            row[5], row[6] = result, clicks
    for row in rows.values():
        row[4] = round(row[3] / row[2], 3) if row[2] else None
    return sorted(rows.values(), key=lambda row: (-row[2], -row[3], row[0], row[1] or ""))


def build_report(connection: Connection, since: datetime.datetime, until: datetime.datetime, *,
                 table: str = "event_log", top: int = 20, progress=None) -> Dict[str, Any]:
    """Every section of the report for [since, until), as plain data."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, not {top!r}")
    quoted = check_table_name(table)
    sections: Dict[str, dict] = {}
    for step, (name, (title, columns, sql)) in enumerate(QUERIES.items()):
        statement = sql.format(table=quoted, range=RANGE, limit=top)
        rows = connection.query(statement, (since, until))
        sections[name] = {"title": title.format(limit=top), "columns": columns,
                          "rows": [[_plain(value) for value in row] for row in rows]}
        if progress is not None:
            progress(step + 1, len(QUERIES))
    sections["home_page"] = {"title": DERIVED["home_page"][0], "columns": DERIVED["home_page"][1],
                             "rows": _home_page(sections)}
    sections["search"] = {"title": DERIVED["search"][0], "columns": DERIVED["search"][1],
                          "rows": _search(sections)}
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
        "sections": {name: sections[name] for name in SECTION_ORDER},
    }

