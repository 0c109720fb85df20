"""`report` and `cleanup` on a big event_log, in a private MariaDB.

Run from the repo root:  python3 bench/bench_report.py [--rows N] [--quick]

Fills a private server's event_log with N Querybook-shaped rows (default 10
million) spread over 30 days, generated on the server by INSERT ... SELECT
from seq_1_to_N (API, WEBSOCKET, VIEW, CLICK in Querybook's shapes, search
views and clicks with aux.search/results/pos, 2,000 users), then times the
whole report (every section) and only the sections that answer the three
questions of Querybook's docs (search, feature_use, home_page: `report
--section ...`) for the last 1, 7 and 30 days:

  baseline   Querybook's schema as it is (only ix_event_log_event_type);
             --skip-baseline leaves it out (the slowest side)
  index      with the recommended index
             CREATE INDEX ix_event_log_created_at ON event_log (created_at, event_type, uid)
  generated  with that index and the report's generated columns and their
             index (_report.generated_columns_ddl()); asserts that both give
             the same sections

RUNS runs per side; baseline and index interleaved, generated after them
(adding the columns' index takes minutes).  Medians with min-max.  Also: the
cost of the ALTER, and the DB logger's insert rate into the big table
without the columns, with them, and without them again.  Then `cleanup` of
the oldest 23 days (about three quarters of the rows) in 5,000-row chunks,
against the upstream-style single DELETE on a second copy of the rows (the
same server, the same data) for the baseline.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # qb_events

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
# side -> (sections, scratch); "_q": only the 3 questions
SIDES = {"baseline": (None, True),
         "each": (None, False), "each_q": (QUESTIONS, False),
         "scratch": (None, True), "scratch_q": (QUESTIONS, True),
         "generated": (None, True), "generated_q": (QUESTIONS, True)}
INDEX_SIDES = ("baseline", "each", "each_q", "scratch", "scratch_q")
GENERATED_SIDES = ("generated", "generated_q")
INSERT_BATCHES = 25  # of the DB logger's default batch_size rows each, per insert measurement


def time_report(url: str, since, until, sections=None, scratch=True):
    """(seconds, the report)."""
    with connect(url) as connection:
        began = time.perf_counter()
        report = _report.build_report(connection, since, until, sections=sections,
                                      scratch=scratch)
        return time.perf_counter() - began, report


def median_range(values) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def set_created_at_index(server: MariaDBServer, wanted: bool) -> float:
    """Creates or drops the recommended index; seconds it took to create it (else 0)."""
    has_index = bool(server.sql("SHOW INDEX FROM event_log WHERE Key_name = "
                                "'ix_event_log_created_at'"))
    if wanted and not has_index:
        began = time.perf_counter()
        server.sql(_report.RECOMMENDED_INDEX_DDL, timeout=3600)
        return time.perf_counter() - began
    if not wanted and has_index:
        server.sql("DROP INDEX ix_event_log_created_at ON event_log")
    return 0.0


def insert_rate(server: MariaDBServer, seed: int, spool: str) -> float:
    """Rows/s of a DBEventLogger (default options) writing fresh Querybook-shaped
    events into the big event_log, from the first log() to flush()."""
    import random

    import querybook_eventlog as qe
    import qb_events

    rng = random.Random(seed)
    rows = [(rng.randint(1, USERS), qe.EventType[kind], data)
            for _, kind, data in qb_events.mix(rng, INSERT_BATCHES * 2000)]
    logger = qe.DBEventLogger(server.url, spool_dir=spool)
    try:
        logger.log(1, qe.EventType.CLICK, {"warm": 1})
        assert logger.flush(timeout=60)
        began = time.perf_counter()
        for uid, kind, data in rows:
            logger.log(uid, kind, data)
        assert logger.flush(timeout=600)
        return len(rows) / (time.perf_counter() - began)
    finally:
        logger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--buffer-pool", default="2G", help="innodb_buffer_pool_size")
    parser.add_argument("--quick", action="store_true", help="1 million rows, 1 run")
    parser.add_argument("--windows", default="1,7,30",
                        help="report ranges, days before now (default 1,7,30)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="no runs without the created_at index (the slowest side)")
    parser.add_argument("--skip-cleanup", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.runs = 1_000_000, 1
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    start = now - datetime.timedelta(days=SPAN_DAYS)
    server = MariaDBServer(extra_args=[f"--innodb-buffer-pool-size={args.buffer_pool}"])
    spool = tempfile.mkdtemp(prefix="bench_report_spool_")
    try:
        server.start()
        server.add_users(USERS)
        print(f"filling event_log with {args.rows:,} rows over {SPAN_DAYS} days "
              f"(buffer pool {args.buffer_pool})")
        fill_s = fill(server, "event_log", args.rows, start)
        print(f"filled in {fill_s:.0f} s ({args.rows / fill_s:,.0f} rows/s); "
              f"table {table_mib(server)} MiB")
        windows = [float(days) for days in args.windows.split(",")]
        timings = {(side, days): [] for side in INDEX_SIDES + GENERATED_SIDES for days in windows}
        reports = {}

        def run_side(side, run):
            sections, scratch = SIDES[side]
            for days in windows:
                seconds, report = time_report(server.url, now - datetime.timedelta(days=days),
                                              now, sections, scratch)
                timings[(side, days)].append(seconds)
                reports.setdefault((side, days), report)
            print(f"  run {run + 1} {side}: " + ", ".join(
                f"{days:g} d {timings[(side, days)][-1]:.2f} s" for days in windows), flush=True)

        index_s = 0.0
        for run in range(args.runs):
            for side in INDEX_SIDES[args.skip_baseline:]:
                index_s = set_created_at_index(server, side != "baseline") or index_s
                run_side(side, run)
        set_created_at_index(server, True)
        inserts = {"plain": [insert_rate(server, 1, spool)]}
        began = time.perf_counter()
        server.sql(_report.generated_columns_ddl(), timeout=7200)
        alter_s = time.perf_counter() - began
        print(f"generated columns and their index added in {alter_s:.0f} s; "
              f"table {table_mib(server)} MiB", flush=True)
        inserts["generated"] = [insert_rate(server, 2, spool)]
        for run in range(args.runs):
            for side in GENERATED_SIDES:
                run_side(side, run)
        for days in windows:  # the same figures every way
            for suffix in ("", "_q"):
                same = [reports[(side + suffix, days)]["sections"]
                        for side in ("each", "scratch", "generated")]
                assert same[0] == same[1] == same[2], (suffix, days)
            for side in SIDES:
                if (side, days) in reports:
                    assert reports[(side, days)]["json_fields"] == (
                        "json" if side.startswith("each") else side.split("_")[0].replace(
                            "baseline", "scratch")), side
        began = time.perf_counter()
        server.sql(_report.drop_generated_columns_ddl(), timeout=3600)
        drop_s = time.perf_counter() - began
        inserts["plain"].append(insert_rate(server, 3, spool))
        print_results(args, windows, timings, index_s, alter_s, drop_s, inserts)
        if not args.skip_cleanup:
            bench_cleanup(server, args.rows, start)
    finally:
        server.cleanup()
        shutil.rmtree(spool, ignore_errors=True)
    return 0


def table_mib(server: MariaDBServer) -> str:
    return server.sql("SELECT ROUND((data_length + index_length) / 1048576) FROM "
                      "information_schema.tables WHERE table_name = 'event_log'")[0][0]


def print_results(args, windows, timings, index_s, alter_s, drop_s, inserts) -> None:
    print(f"\nreport, {args.rows:,} rows over {SPAN_DAYS} days, medians of {args.runs} run(s) "
          f"with min-max; every section, or only the 3 questions "
          f"(--section search --section feature_use --section home_page)")
    print(f"creating ix_event_log_created_at took {index_s:.0f} s; adding the generated columns "
          f"and their index {alter_s:.0f} s; dropping them {drop_s:.1f} s")
    print("with the created_at index: a JSON pass per section (the previous report), one pass "
          "into a temporary table, the generated columns; all / the 3 questions")
    header = ["range", "rows in range", "no index, all", "per section, all", "3 q",
              "one pass, all", "3 q", "generated, all", "3 q"]
    print("  |  ".join(header))
    for days in windows:
        in_range = round(args.rows * min(days, SPAN_DAYS) / SPAN_DAYS)
        cells = [f"{days:g} d", f"{in_range:,}"] + [
            median_range(timings[(side, days)]) for side in INDEX_SIDES + GENERATED_SIDES]
        print("  |  ".join(cells))
        ratios = {side + suffix: statistics.median(timings[("each" + suffix, days)])
                  / statistics.median(timings[(side + suffix, days)])
                  for side in ("scratch", "generated") for suffix in ("", "_q")
                  if timings[(side + suffix, days)]}
        print("    faster than a pass per section: " + ", ".join(
            f"{side} {ratio:.1f}x" for side, ratio in ratios.items()))
    plain, generated = statistics.median(inserts["plain"]), inserts["generated"][0]
    print(f"\nDB logger insert rate into the {args.rows:,}-row table ({INSERT_BATCHES * 2000:,} "
          f"events): without the generated columns "
          f"{', '.join(f'{rate:,.0f}' for rate in inserts['plain'])} rows/s (before, after), "
          f"with them {generated:,.0f} rows/s: {generated / plain:.2f}x")


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
