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
table); with ``ix_event_log_created_at (created_at, event_type, uid)`` each
reads only the index range of the period, checks event_type in the index
(index condition pushdown) and fetches just the matching rows; `events per
day` and `active users` are answered from the index alone.  The same index
serves `cleanup`.

Wide ranges are then bound by parsing each row's JSON.  The optional
generated columns (generated_columns_ddl: VIRTUAL, so only their index takes
space) hold the JSON fields the report reads, computed by the very
expressions the queries use otherwise; with them and their index
``ix_event_log_qbel_report`` every section is answered from indexes alone.
The report uses them when the table has them (information_schema), so the
figures are the same either way.

Times are UTC, as the loggers stamp created_at; days are UTC days.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from ._sqlclient import Connection, DatabaseError, check_table_name

RECOMMENDED_INDEX = "ix_event_log_created_at"
RECOMMENDED_INDEX_DDL = (
    "CREATE INDEX ix_event_log_created_at ON event_log (created_at, event_type, uid)"
)


def index_ddl(table: str = "event_log") -> str:
    """The recommended index for `table`."""
    check_table_name(table)
    if table == "event_log":
        return RECOMMENDED_INDEX_DDL
    return f"CREATE INDEX ix_{table}_created_at ON `{table}` (created_at, event_type, uid)"


# The JSON fields the report reads, each read once per row and cut to a short
# string: grouping on the LONGTEXT that JSON functions return sends MariaDB's
# temporary table to disk, and the memory temporary table stores each value
# at its full declared width (Querybook's component and element names are
# short).  Each is also an optional generated column with the same expression
# (generated_columns_ddl): with the columns and their index the report reads
# the values from the index instead of parsing each row's JSON.
# key -> (column, length, the event types it is read for, JSON path)
FIELDS = {
    "c": ("qbel_component", 64, ("VIEW", "CLICK"), "'$.component'"),
    "e": ("qbel_element", 64, ("VIEW", "CLICK"), "'$.element'"),
    "s": ("qbel_search", 255, ("VIEW", "CLICK"), "'$.aux.search'"),
    "clicked": ("qbel_result", 64, ("CLICK",),
                "CONCAT('$.aux.results[', JSON_EXTRACT(event_data, '$.aux.pos'), ']')"),
    "m": ("qbel_method", 16, ("API", "WEBSOCKET"), "'$.method'"),
    "r": ("qbel_route", 255, ("API", "WEBSOCKET"), "'$.route'"),
}
# The clicked result is aux.results[aux.pos] (the web app sends both), read
# only for an integer pos inside the list: a negative one would count from the
# end (MariaDB 10.9+), one past 2**63 wraps around, and anything else would
# warn, and a warning fails a strict-mode INSERT into a table with the column.
CLICKED_POS = ("JSON_TYPE(JSON_EXTRACT(event_data, '$.aux.pos')) = 'INTEGER' "
               "AND JSON_EXTRACT(event_data, '$.aux.pos') >= 0 "
               "AND JSON_EXTRACT(event_data, '$.aux.pos') < JSON_LENGTH(event_data, '$.aux.results')")
JSON_VALUE = "JSON_VALUE(event_data, {path})"
JSON_EXTRACT = "JSON_UNQUOTE(JSON_EXTRACT(event_data, {path}))"
# Binary and NO PAD, so that 'Users', 'users' and 'users ' stay three search
# strings (the connection's utf8mb4_general_ci would merge them); MySQL has
# utf8mb4_0900_bin instead of MariaDB's utf8mb4_nopad_bin; the last resort pads.
COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")
GENERATED_INDEX_COLUMNS = ("event_type", "created_at", "qbel_component", "qbel_element",
                           "qbel_search", "qbel_result", "qbel_method", "qbel_route", "uid")


def field_value(key: str, json_value: bool = True) -> str:
    """Field `key` of a row's event_data, as its generated column computes it
    (NULL for the event types it is not read for)."""
    _column, length, types, path = FIELDS[key]
    condition = "event_type IN ({})".format(", ".join(f"'{kind}'" for kind in types))
    if key == "clicked":
        condition += " AND " + CLICKED_POS
    read = (JSON_VALUE if json_value else JSON_EXTRACT).format(path=path)
    return f"IF({condition}, LEFT({read}, {length}), NULL)"


def generated_index_name(table: str = "event_log") -> str:
    return f"ix_{table}_qbel_report"


def generated_columns_ddl(table: str = "event_log", collation: str = COLLATIONS[0],
                          json_value: bool = True) -> str:
    """One ALTER TABLE adding the report's VIRTUAL generated columns and the
    index that covers every JSON-reading query of the report."""
    quoted = check_table_name(table)
    if collation not in COLLATIONS:
        raise ValueError(f"collation must be one of {COLLATIONS}, not {collation!r}")
    lines = [f"ALTER TABLE {quoted}"]
    for key, (column, length, _types, _path) in FIELDS.items():
        lines.append(f"  ADD COLUMN {column} VARCHAR({length}) CHARACTER SET utf8mb4 COLLATE "
                     f"{collation} AS ({field_value(key, json_value)}) VIRTUAL,")
    lines.append(f"  ADD INDEX {generated_index_name(table)} "
                 f"({', '.join(GENERATED_INDEX_COLUMNS)})")
    return "\n".join(lines)


def drop_generated_columns_ddl(table: str = "event_log") -> str:
    """The ALTER TABLE that removes what generated_columns_ddl adds."""
    quoted = check_table_name(table)
    drops = [f"DROP INDEX {generated_index_name(table)}"]
    drops += [f"DROP COLUMN {column}" for column, *_rest in FIELDS.values()]
    return f"ALTER TABLE {quoted} " + ", ".join(drops)


# Room for the groups in memory (session only; the server's default is 16 MiB).
SESSION_SETUP = ("SET SESSION tmp_table_size = 268435456, max_heap_table_size = 268435456",)
RANGE = "created_at >= %s AND created_at < %s"
# The click and view sections read {clicks}/{views}, count with {count} and
# take the day from {day}: event_log's rows (one per event), or the scratch
# table's groups (SCRATCH_DDL).
EVENT_ROWS = {"clicks": "FROM {table} WHERE event_type = 'CLICK' AND {range}",
              "views": "FROM {table} WHERE event_type = 'VIEW' AND {range}",
              "count": "COUNT(*)", "day": "DATE(created_at)"}
SCRATCH = "qbel_report_scratch"
SCRATCH_GROUPS = {"clicks": f"FROM {SCRATCH} WHERE k = 'CLICK'",
                  "views": f"FROM {SCRATCH} WHERE k = 'VIEW'", "count": "SUM(n)", "day": "d"}
# LIKE first (when parsing JSON): a substring test is far cheaper than parsing the JSON of every
# click and view (JSON.stringify and dumps never escape ASCII letters).
LIKE_SEARCH_MODAL = "event_data LIKE '%%SEARCH_MODAL%%' AND "
SEARCHES = "AND {like}{c} = 'SEARCH_MODAL' AND {s} IS NOT NULL"
# Without the generated columns: one pass over the range's clicks and views
# parses each row's JSON once, grouped by everything their sections group by
# (far fewer groups than rows); those sections then read this table.
SCRATCH_DDL = (
    "CREATE TEMPORARY TABLE " + SCRATCH + " AS SELECT DATE(created_at) d, event_type k, uid, "
    "{c} c, {e} e, IF(" + LIKE_SEARCH_MODAL + "{c} = 'SEARCH_MODAL', {s}, NULL) s, "
    "IF(" + LIKE_SEARCH_MODAL + "{c} = 'SEARCH_MODAL', {clicked}, NULL) r, COUNT(*) n "
    "FROM {table} WHERE event_type IN ('VIEW', 'CLICK') AND {range} GROUP BY d, k, uid, c, e, s, r")

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
        "SELECT {c} c, {e} e, uid, {count} n {clicks} GROUP BY c, e, uid) f "
        "GROUP BY c, e ORDER BY t DESC, c, e"),
    "feature_use_per_day": (
        "Feature use per day", ["day", "component", "element", "clicks", "users"],
        "SELECT d, c, e, SUM(n), COUNT(uid) FROM ("
        "SELECT {day} d, {c} c, {e} e, uid, {count} n {clicks}"
        " GROUP BY d, c, e, uid) f GROUP BY d, c, e ORDER BY d, c, e"),
    "feature_use_per_user": (
        "Feature use per user (top {limit})",
        ["uid", "username", "component", "element", "clicks"],
        "SELECT f.uid, u.username, f.c, f.e, f.n FROM ("
        "SELECT uid, {c} c, {e} e, {count} n {clicks} GROUP BY uid, c, e "
        "ORDER BY n DESC, uid, c, e LIMIT {limit}) f LEFT JOIN `user` u ON u.id = f.uid "
        "ORDER BY f.n DESC, f.uid, f.c, f.e"),
    "views_per_day": (
        "Page views per day", ["day", "component", "views", "users"],
        "SELECT d, c, SUM(n), COUNT(uid) FROM ("
        "SELECT {day} d, {c} c, uid, {count} n {views}"
        " GROUP BY d, c, uid) f GROUP BY d, c ORDER BY d, c"),
    "search_views": (
        "Searches: results shown", ["search", "result_type", "views", "users"],
        "SELECT s, e, SUM(n) t, COUNT(uid) FROM ("
        "SELECT {s} s, {e} e, uid, {count} n {views} " + SEARCHES +
        " GROUP BY s, e, uid) f GROUP BY s, e ORDER BY t DESC, s, e"),
    "search_clicks": (
        "Searches: the result clicked", ["search", "result_type", "result_id", "clicks", "users"],
        "SELECT s, e, r, SUM(n) t, COUNT(uid) FROM ("
        "SELECT {s} s, {e} e, {clicked} r, uid, {count} n {clicks} " + SEARCHES +
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


# The sections that can read the scratch table.
SCRATCH_SECTIONS = ("feature_use", "feature_use_per_day", "feature_use_per_user",
                    "views_per_day", "search_views", "search_clicks")


def query_text(name: str, table: str = "`event_log`", limit: int = 20, json_value: bool = True,
               collation: str = COLLATIONS[0], source: str = "json") -> str:
    """The statement of section `name`, reading the fields from `source`:
    "json" (parsing event_data), "generated" (the generated columns) or
    "scratch" (SCRATCH's groups, for the click and view sections).  Parameters:
    since, until, unless it reads the scratch table."""
    rows = SCRATCH_GROUPS if source == "scratch" and name in SCRATCH_SECTIONS else EVENT_ROWS
    if rows is SCRATCH_GROUPS:
        fields = {"c": "c", "e": "e", "s": "s", "clicked": "r"}
    elif source == "generated":
        fields = {key: column for key, (column, *_rest) in FIELDS.items()}
    else:
        fields = _parsed_fields(json_value, collation)
    parts = {key: text.format(table=table, range=RANGE) for key, text in rows.items()}
    return QUERIES[name][2].format(table=table, range=RANGE, limit=limit,
                                   like=LIKE_SEARCH_MODAL if source == "json" else "",
                                   **parts, **fields)


def _parsed_fields(json_value: bool, collation: str) -> Dict[str, str]:
    return {key: f"CONVERT({field_value(key, json_value)} USING utf8mb4) COLLATE {collation}"
            for key in FIELDS}


def scratch_ddl(table: str = "`event_log`", json_value: bool = True,
                collation: str = COLLATIONS[0]) -> str:
    """The statement filling SCRATCH from [since, until) of `table`."""
    return SCRATCH_DDL.format(table=table, range=RANGE, **_parsed_fields(json_value, collation))


def has_json_value(connection: Connection) -> bool:
    """JSON_VALUE (MariaDB 10.2.3+, MySQL 8.0.21+) parses less than JSON_EXTRACT."""
    try:
        return connection.query("SELECT JSON_VALUE('{\"a\": \"b\"}', '$.a')")[0][0] == "b"
    except DatabaseError:
        return False


def binary_collation(connection: Connection) -> str:
    """The server's binary NO PAD utf8mb4 collation (else plain utf8mb4_bin)."""
    for collation in COLLATIONS[:-1]:
        if connection.query("SHOW COLLATION LIKE %s", (collation,)):
            return collation
    return COLLATIONS[-1]


def has_generated_columns(connection: Connection, table: str = "event_log") -> bool:
    """Whether `table` has every generated column of generated_columns_ddl."""
    rows = connection.query(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = %s AND column_name IN ({}) AND COALESCE(generation_expression, '') "
        "<> ''".format(", ".join(["%s"] * len(FIELDS))),
        [table] + [column for column, *_rest in FIELDS.values()])
    return int(rows[0][0]) == len(FIELDS)


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
                 progress=None, scratch: bool = True) -> Dict[str, Any]:
    """The report for [since, until), as plain data: every section, or only
    `sections` (then only the queries those need run).  The JSON fields come
    from the generated columns when the table has them, else from one pass
    into a temporary table (`scratch`, when allowed and more than one section
    reads clicks or views), else from each section's own pass."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, not {top!r}")
    wanted = SECTION_ORDER if not sections else [name for name in SECTION_ORDER if name in sections]
    unknown = set(sections or ()) - set(SECTION_ORDER)
    if unknown:
        raise ValueError(f"unknown report sections {sorted(unknown)}; known: {SECTION_ORDER}")
    quoted = check_table_name(table)
    needed = [name for name in QUERIES
              if any(name in NEEDS.get(section, (section,)) for section in wanted)]
    json_value = has_json_value(connection)
    collation = binary_collation(connection)
    source = "generated" if has_generated_columns(connection, table) else "json"
    for statement in SESSION_SETUP:
        connection.execute(statement)
    notes = []
    steps = len(needed)
    if source == "json" and scratch and len(set(needed) & set(SCRATCH_SECTIONS)) > 1:
        steps += 1
        source = _fill_scratch(connection, scratch_ddl(quoted, json_value, collation),
                               since, until, notes)
        if progress is not None:
            progress(1, steps)
    results = {}
    for name in needed:
        statement = query_text(name, quoted, top, json_value, collation, source)
        reads_scratch = source == "scratch" and name in SCRATCH_SECTIONS
        rows = connection.query(statement, None if reads_scratch else (since, until))
        title, columns, _sql = QUERIES[name]
        results[name] = {"title": title.format(limit=top), "columns": columns,
                         "rows": [[_plain(value) for value in row] for row in rows]}
        if progress is not None:
            progress(steps - len(needed) + len(results), steps)
    if source == "scratch":  # (after an error, the connection's end drops it)
        connection.execute(f"DROP TEMPORARY TABLE {SCRATCH}")
    for name, build in (("home_page", _home_page), ("search", _search)):
        if name in wanted:
            results[name] = {"title": DERIVED[name][0], "columns": DERIVED[name][1],
                             "rows": build(results)}
    index_rows = connection.query(f"SHOW INDEX FROM {quoted}")
    if not any(row[3] == 1 and row[4] == "created_at" for row in index_rows):
        notes.insert(0, f"{table} has no index starting with created_at: each section reads "
                        f"every row of its event type. Recommended: {index_ddl(table)}")
    return {
        "table": table,
        "since": since.isoformat(sep=" "),
        "until": until.isoformat(sep=" "),
        "indexes": sorted({row[2] for row in index_rows}),
        "generated_columns": source == "generated",
        "json_fields": source,
        "notes": notes,
        "sections": {name: results[name] for name in wanted},
    }


def _fill_scratch(connection: Connection, statement: str, since, until, notes: List[str]) -> str:
    """"scratch" once SCRATCH holds the range's clicks and views; "json" (and
    a note) when the server refuses the temporary table."""
    connection.execute(f"DROP TEMPORARY TABLE IF EXISTS {SCRATCH}")  # left by a failed report
    try:
        connection.execute(statement, (since, until))
    except DatabaseError as error:
        notes.append(f"one pass into a temporary table was refused ({error}); each section "
                     "parsed the JSON of its rows itself (grant CREATE TEMPORARY TABLES, or "
                     "add the generated columns)")
        return "json"
    return "scratch"
