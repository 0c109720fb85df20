"""`report` and `cleanup` on a big event_log, in a private MariaDB.

Run from the repo root:  python3 bench/bench_report.py [--rows N] [--quick]

Fills a private server's event_log with N Querybook-shaped rows (default 10
million) spread over 30 days, generated on the server by INSERT ... SELECT
from seq_1_to_N (API, WEBSOCKET, VIEW, CLICK in Querybook's shapes, search
views and clicks with aux.search/results/pos, 2,000 users), then times the
whole report (every section: one query each) for the last 1, 7 and 30 days:

  baseline  Querybook's schema as it is (only ix_event_log_event_type)
  ours      with the recommended index
            CREATE INDEX ix_event_log_created_at ON event_log (created_at, event_type)

and, with the index, only the sections that answer the three questions of
Querybook's docs (search, feature_use, home_page: `report --section ...`).
RUNS runs per side, interleaved; medians with min-max; the ratio is
baseline / ours (how many times faster the index makes it).  Then `cleanup`
of the oldest 23 days (about three quarters of the rows) in 5,000-row chunks,
against the upstream-style single DELETE on a second copy of the rows (the
same server, the same data) for the baseline.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from querybook_eventlog import _report  # noqa: E402
from querybook_eventlog._cleanup import clean_up_event_logs, cutoff_for  # noqa: E402
from querybook_eventlog._sqlclient import connect  # noqa: E402
from querybook_eventlog.testing import MariaDBServer  # noqa: E402

SPAN_DAYS = 30
USERS = 2000
CHUNK = 1_000_000

# One row per seq: its type from seq % 10, its shape from (seq DIV 10) % k.
GENERATE = """
INSERT INTO {table} (created_at, uid, event_type, event_data)
SELECT created_at, uid, event_type,
  CASE event_type
    WHEN 'API' THEN JSON_OBJECT('method', ELT(1 + k % 3, 'GET', 'POST', 'GET'),
        'route', ELT(1 + k % 6, '/datadoc/<int:id>/', '/query_execution/', '/search/tables/',
                     '/datadoc/', '/query_execution/<int:query_execution_id>/', '/search/datadoc/'),
        'params', JSON_OBJECT('id', k % 5000))
    WHEN 'WEBSOCKET' THEN JSON_OBJECT('route', ELT(1 + k % 2, '/datadoc/subscribe',
        '/query_execution/subscribe'), 'args', JSON_ARRAY(k % 5000), 'kwargs', JSON_OBJECT())
    WHEN 'VIEW' THEN IF(k % 4 = 0,
        JSON_OBJECT('path', '/prod/search/', 'component', 'SEARCH_MODAL',
                    'element', 'TABLE_RESULT_ITEM',
                    'aux', JSON_OBJECT('nlp', FALSE, 'search', CONCAT('table_', k % 500),
                                       'results', JSON_ARRAY(k % 97, k % 89, k % 83), 'page', 1)),
        JSON_OBJECT('path', '/prod/', 'component', ELT(1 + k % 3, 'LANDING_PAGE', 'DATADOC_PAGE',
                                                      'ADHOC_QUERY')))
    ELSE IF(k % 5 = 0,
        JSON_OBJECT('path', '/prod/search/', 'component', 'SEARCH_MODAL',
                    'element', 'TABLE_RESULT_ITEM',
                    'aux', JSON_OBJECT('nlp', FALSE, 'search', CONCAT('table_', k % 500),
                                       'results', JSON_ARRAY(k % 97, k % 89, k % 83), 'page', 1,
                                       'pos', k % 3)),
        JSON_OBJECT('path', '/prod/datadoc/7/',
                    'component', ELT(1 + k % 4, 'DATADOC_QUERY_CELL', 'LEFT_SIDEBAR',
                                     'LANDING_PAGE', 'ADHOC_QUERY'),
                    'element', ELT(1 + k % 6, 'RUN_QUERY_BUTTON', 'FORMAT_BUTTON', 'HOME_BUTTON',
                                   'RECENT_DATADOC', 'RESULT_EXPORT_BUTTON', 'FORMAT_BUTTON')))
  END
FROM (
  SELECT TIMESTAMP('{start}') + INTERVAL (seq * {seconds_per_row}) SECOND AS created_at,
         1 + (seq * 7919) % {users} AS uid,
         ELT(1 + seq % 10, 'API', 'API', 'API', 'WEBSOCKET', 'VIEW', 'VIEW', 'VIEW',
             'CLICK', 'CLICK', 'CLICK') AS event_type,
         seq DIV 10 AS k
  FROM seq_{first}_to_{last}) generated
"""


def fill(server: MariaDBServer, table: str, rows: int, start: datetime.datetime) -> float:
    began = time.perf_counter()
    seconds_per_row = SPAN_DAYS * 86400 / rows
    for first in range(1, rows + 1, CHUNK):
        last = min(first + CHUNK - 1, rows)
        server.sql(GENERATE.format(table=table, start=start.isoformat(sep=" "), users=USERS,
                                   seconds_per_row=f"{seconds_per_row:.6f}", first=first, last=last),
                   timeout=3600)
        print(f"  {table}: {last:,} rows, {time.perf_counter() - began:.0f} s", flush=True)
    return time.perf_counter() - began


QUESTIONS = ["search", "feature_use", "home_page"]  # the three of Querybook's docs


def time_report(url: str, since, until, sections=None) -> float:
    with connect(url) as connection:
        began = time.perf_counter()
        _report.build_report(connection, since, until, sections=sections)
        return time.perf_counter() - began


def median_range(values) -> str:
    return f"{statistics.median(values):7.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--buffer-pool", default="2G", help="innodb_buffer_pool_size")
    parser.add_argument("--quick", action="store_true", help="1 million rows, 1 run")
    parser.add_argument("--windows", default="1,7,30",
                        help="report ranges, days before now (default 1,7,30)")
    parser.add_argument("--skip-cleanup", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.runs = 1_000_000, 1
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    start = now - datetime.timedelta(days=SPAN_DAYS)
    server = MariaDBServer(extra_args=[f"--innodb-buffer-pool-size={args.buffer_pool}"])
    try:
        server.start()
        server.add_users(USERS)
        print(f"filling event_log with {args.rows:,} rows over {SPAN_DAYS} days "
              f"(buffer pool {args.buffer_pool})")
        fill_s = fill(server, "event_log", args.rows, start)
        size = server.sql("SELECT ROUND((data_length + index_length) / 1048576) FROM "
                          "information_schema.tables WHERE table_name = 'event_log'")[0][0]
        print(f"filled in {fill_s:.0f} s ({args.rows / fill_s:,.0f} rows/s); table {size} MiB")
        windows = [float(days) for days in args.windows.split(",")]
        sides = ("baseline", "ours", "questions")
        timings = {(side, days): [] for side in sides for days in windows}
        index_s = None
        for run in range(args.runs):
            for side in sides:
                has_index = bool(server.sql("SHOW INDEX FROM event_log WHERE Key_name = "
                                            "'ix_event_log_created_at'"))
                if side != "baseline" and not has_index:
                    began = time.perf_counter()
                    server.sql(_report.RECOMMENDED_INDEX_DDL, timeout=3600)
                    index_s = index_s or time.perf_counter() - began
                elif side == "baseline" and has_index:
                    server.sql("DROP INDEX ix_event_log_created_at ON event_log")
                for days in windows:
                    since = now - datetime.timedelta(days=days)
                    timings[(side, days)].append(time_report(
                        server.url, since, now, QUESTIONS if side == "questions" else None))
                print(f"  run {run + 1} {side}: " + ", ".join(
                    f"{days} d {timings[(side, days)][-1]:.2f} s" for days in windows), flush=True)
        print(f"\nreport, every section, {args.rows:,} rows over {SPAN_DAYS} days, medians of "
              f"{args.runs} run(s) (creating the index took {index_s:.0f} s)")
        print(f"{'range':>8}  {'rows in range':>14}  {'baseline (no index)':>26}  "
              f"{'ours (recommended index)':>26}  {'ratio':>6}  {'the 3 questions, index':>26}")
        for days in windows:
            in_range = round(args.rows * min(days, SPAN_DAYS) / SPAN_DAYS)
            base, ours = timings[("baseline", days)], timings[("ours", days)]
            print(f"{days:>6g} d  {in_range:>14,}  {median_range(base):>26}  {median_range(ours):>26}  "
                  f"{statistics.median(base) / statistics.median(ours):5.1f}x  "
                  f"{median_range(timings[('questions', days)]):>26}")
        if not args.skip_cleanup:
            bench_cleanup(server, args.rows, start)
    finally:
        server.cleanup()
    return 0


def bench_cleanup(server: MariaDBServer, rows: int, start: datetime.datetime) -> None:
    keep_days = 7
    old = int(server.sql(f"SELECT COUNT(*) FROM event_log WHERE created_at < "
                         f"'{cutoff_for(keep_days).isoformat(sep=' ')}'")[0][0])
    print(f"\ncleanup --days {keep_days}: {old:,} of {rows:,} rows to delete "
          "(the recommended index present)")
    began = time.perf_counter()
    deleted = clean_up_event_logs(keep_days, server.url, chunk_rows=5000)
    ours = time.perf_counter() - began
    print("  baseline: the same rows again, one unbounded DELETE (upstream's task)")
    server.sql("CREATE TABLE event_log_copy LIKE event_log")
    fill(server, "event_log_copy", rows, start)
    cutoff = cutoff_for(keep_days).isoformat(sep=" ")
    began = time.perf_counter()
    server.sql(f"DELETE FROM event_log_copy WHERE created_at < '{cutoff}'", timeout=7200)
    upstream = time.perf_counter() - began
    print(f"{'':>8}  {'rows deleted':>14}  {'time':>10}  {'longest transaction':>22}")
    print(f"{'ours':>8}  {deleted:>14,}  {ours:>8.1f} s  {'5,000 rows':>22}")
    print(f"{'upstream':>8}  {old:>14,}  {upstream:>8.1f} s  {f'{old:,} rows':>22}")


if __name__ == "__main__":
    sys.exit(main())
