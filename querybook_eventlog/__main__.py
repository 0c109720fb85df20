"""Command line: ``python -m querybook_eventlog`` (installed as ``querybook-eventlog``).

demo     A synthetic Querybook day written through the DB logger into a
         throwaway MariaDB, then its report (text, and an HTML page).
report   What the event logs say: feature use, search, home page, events
         per day, top routes, most active users, for a time range.
cleanup  Delete rows older than N days, in short chunks (retention).
replay   Write spooled events (files a DBEventLogger left in its spool_dir
         while the database was unreachable) into the table, exactly once.
adopt    Apply the one adoption edit to a Querybook checkout (see the README).

The database URL of report, cleanup and replay: --url-file FILE, else env
DATABASE_CONN, else Querybook's config yaml ($QUERYBOOK_CONFIG_PATH or
$QUERYBOOK_ROOT); --url URL works too but shows the password in ps.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import tempfile
from typing import List, Optional

from . import (
    BaseEventLogger,
    ConsoleEventLogger,
    DBEventLogger,
    EventType,
    NullEventLogger,
    dumps,
)
from ._progress import Activity, Progress
from ._url import parse_database_url, redacted_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure the command reports in one line (exit status 1, or 2 for usage)."""

    def __init__(self, message: str, status: int = EXIT_FAILED):
        super().__init__(message)
        self.status = status


def _database_url(args: argparse.Namespace) -> str:
    """--url, --url-file, DATABASE_CONN or Querybook's yaml, in that order."""
    from ._sqlclient import DatabaseError, resolve_url

    if getattr(args, "url", None):
        print(f"{args.command}: warning: a URL on the command line shows its password to every "
              "user of this machine (ps); prefer DATABASE_CONN or --url-file", file=sys.stderr)
    try:
        url = resolve_url(args.url, args.url_file)
        parse_database_url(url)
    except (DatabaseError, ValueError) as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    return url


def replay(args: argparse.Namespace) -> int:
    """Replay every unclaimed spool file in --spool-dir into the table."""
    from . import _core

    url = _database_url(args)
    try:
        rows = _core._replay_spool(parse_database_url(url), args.spool_dir, args.table,
                                   args.adopt_all)
    except (ValueError, OSError) as error:
        raise CommandError(str(error)) from None
    except RuntimeError as error:
        message = str(error)
        if "in the spool directory" in message:
            raise CommandError(
                f"{message}; the other spool files were replayed. Move the odd entries out of "
                f"{args.spool_dir} (they are not spool files this package wrote) and run replay "
                "again") from None
        raise CommandError(message) from None
    print(f"replayed {rows} events from {args.spool_dir} into {redacted_url(url)} "
          f"table {args.table}")
    return EXIT_OK


class DemoPlugin(BaseEventLogger):
    """A plugin written exactly as for upstream Querybook."""

    def __init__(self) -> None:
        self.seen: List[str] = []

    @property
    def logger_name(self) -> str:
        return "demo_plugin"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.seen.append(f"{event_type.name} by {uid}: {dumps(event_data).decode()}")


def _loggers_tour() -> None:
    """The builtin loggers and a plugin, writing to stdout."""
    print("== null logger: validates, writes nothing")
    NullEventLogger().log(uid=1, event_type=EventType.VIEW, event_data={"path": "/"})

    print("== console logger, the default: upstream's exact line through logging")
    demo_log = logging.getLogger("querybook_eventlog.demo")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"',
                                           "%Y-%m-%d %a %H:%M:%S"))
    demo_log.addHandler(handler)
    demo_log.setLevel(logging.INFO)
    demo_log.propagate = False
    ConsoleEventLogger(logger=demo_log).log(
        uid=5, event_type=EventType.CLICK, timestamp=1700000000000,
        event_data={"path": "/datadoc/1/", "component": "DATADOC_QUERY_CELL",
                    "element": "FORMAT_BUTTON", "aux": None})

    print("== console logger, text (one line per event, event_data as JSON)")
    console = ConsoleEventLogger(stream=sys.stdout, color=False)
    console.log(uid=5, event_type=EventType.CLICK, timestamp=1700000000000,
                event_data={"path": "/datadoc/1/", "component": "LEFT_SIDEBAR",
                            "element": "DOCS_BUTTON", "aux": {"note": "line\nbreak"}})
    console.log_api_request(uid=5, route="/datadoc/", method="POST",
                            params={"title": "x" * 140, "environment_id": 1})
    console.log_api_request(uid=5, route="/admin/user/", method="GET", params={})
    print("   (the /admin request above was skipped by the default deny list)")
    console.log_websocket_event(uid=5, route="/datadoc/subscribe", args=[1], kwargs={})

    print("== console logger, jsonl")
    ConsoleEventLogger(stream=sys.stdout, format="jsonl").log(
        uid=None, event_type="VIEW", event_data={"path": "/"}, timestamp=1700000000123)

    print("== a Python plugin subclassing the C BaseEventLogger")
    plugin = DemoPlugin()
    plugin.log_api_request(uid=7, route="/query/", method="GET", params={"q": "select 1"})
    print("  ", plugin.seen)

    print("== bad input raises and writes nothing")
    for bad in ({"uid": True}, {"event_type": "click"}, {"event_data": {"at": object()}}):
        call = {"uid": 1, "event_type": EventType.CLICK, "event_data": {}, **bad}
        try:
            console.log(**call)
        except (TypeError, ValueError) as error:
            print(f"   {type(error).__name__}: {error}")


def _log_synthetic_day(url: str, users: int, spool_dir: str) -> int:
    """The synthetic day (the last 24 hours) through a DBEventLogger; events written."""
    from ._demo_day import DAY_MS, synthetic_day

    now_ms = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    events = list(synthetic_day(users=users, start_ms=now_ms - DAY_MS))
    logger = DBEventLogger(url, spool_dir=spool_dir)
    try:
        with Progress("logging", len(events)) as progress:
            for count, (uid, event_type, data, timestamp) in enumerate(events, 1):
                logger.log(uid=uid, event_type=event_type, event_data=data, timestamp=timestamp)
                if count % 2000 == 0:
                    progress.update(count, f"{count} events")
            if not logger.flush(timeout=300):
                raise CommandError(f"the DB logger did not flush within 300 s: {logger.stats()}")
        stats = logger.stats()
    finally:
        logger.close()
    print(f"   logged {len(events)} events of {users} users through {logger!r}: "
          f"{stats['written']} written in {stats['batches']} batches")
    return stats["written"]


def demo(args: argparse.Namespace) -> int:
    from ._report import RECOMMENDED_INDEX_DDL

    if args.tour:
        _loggers_tour()
        print("== DB logger: a synthetic Querybook day")
    server = None
    try:
        if args.url or args.url_file:
            url = _database_url(args)
        else:
            from .testing import MariaDBServer

            print("   starting a throwaway MariaDB (mariadbd --no-defaults in a temporary folder)")
            try:
                with Activity("starting MariaDB"):
                    server = MariaDBServer().start()
            except RuntimeError as error:
                raise CommandError(str(error)) from None
            server.add_users(args.users)
            server.sql(RECOMMENDED_INDEX_DDL)
            print(f"   Querybook's user and event_log tables, {args.users} users, and the "
                  f"recommended index: {RECOMMENDED_INDEX_DDL}")
            url = server.url
        with tempfile.TemporaryDirectory(prefix="qbel-demo-spool-") as spool:
            _log_synthetic_day(url, args.users, spool)
        # the report of the last day, every section, as text (and the HTML page)
        day = argparse.Namespace(**{**vars(args), "days": 1, "since": None, "until": None,
                                    "format": "text", "section": None})
        return _print_report(day, url)
    finally:
        if server is not None:
            server.cleanup()


def _print_report(args: argparse.Namespace, url: str) -> int:
    from . import _report, _report_format
    from ._sqlclient import DatabaseError, connect

    try:
        since, until = _report.time_range(args.since, args.until, args.days)
    except ValueError as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    try:
        with connect(url) as connection, Progress("report", len(_report.QUERIES)) as progress:
            report = _report.build_report(
                connection, since, until, table=args.table, top=args.top, sections=args.section,
                progress=lambda done, total: progress.update(done, total=total))
    except (DatabaseError, ValueError) as error:
        raise CommandError(str(error)) from None
    render = {"text": _report_format.to_text, "json": _report_format.to_json,
              "csv": _report_format.to_csv}[args.format]
    sys.stdout.write(render(report))
    if args.html:
        try:
            with open(args.html, "w", encoding="utf-8") as page:
                page.write(_report_format.to_html(report, args.top))
        except OSError as error:
            raise CommandError(f"cannot write the HTML page: {error}") from None
        print(f"wrote {args.html}", file=sys.stderr)
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    return _print_report(args, _database_url(args))


def cleanup(args: argparse.Namespace) -> int:
    from ._cleanup import clean_up_event_logs, cutoff_for
    from ._sqlclient import DatabaseError

    if args.days == -1:
        print("cleanup: --days -1: retention disabled, nothing deleted")
        return EXIT_OK
    url = _database_url(args)
    try:
        with Progress("cleanup", 1) as progress:
            deleted = clean_up_event_logs(
                args.days, url, table=args.table, chunk_rows=args.chunk_rows,
                progress=lambda done, total: progress.update(done, f"ids {done}/{total}", total))
    except (DatabaseError, ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    print(f"deleted {deleted} rows of {args.table} created before {cutoff_for(args.days)} UTC "
          f"({args.days} days kept) from {redacted_url(url)}")
    return EXIT_OK


def adopt(args: argparse.Namespace) -> int:
    """Apply the adoption edit to the Querybook checkout at args.root."""
    from .querybook.adoption import adopt as adopt_checkout

    try:
        written = adopt_checkout(args.root)
    except (OSError, RuntimeError) as error:
        print(f"adopt: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"{args.root} is already adopted; nothing to do")
    return 0


def _add_url_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url-file", metavar="FILE",
                        help="a file holding the database URL (default: env DATABASE_CONN, then "
                        "Querybook's config yaml)")
    parser.add_argument("--url", help="the database URL itself (visible in ps: prefer "
                        "DATABASE_CONN or --url-file)")
    parser.add_argument("--table", default="event_log", help="the table (default event_log)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return value


def _days_to_keep(text: str) -> int:
    value = int(text)
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be >= 0, or -1 to disable; not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ._report import RECOMMENDED_INDEX_DDL, SECTION_ORDER

    parser = argparse.ArgumentParser(prog="python -m querybook_eventlog", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo_parser = commands.add_parser(
        "demo", help="a synthetic Querybook day through the DB logger, then its report",
        description="Start a throwaway MariaDB (the machine's mariadbd, Debian package "
        "mariadb-server), create Querybook's user and event_log tables, log a synthetic "
        "Querybook day through the DB logger, and print its report; also writes the "
        "report's HTML page.")
    demo_parser.add_argument("--users", type=_positive_int, default=300,
                             help="how many users the day has (default 300)")
    demo_parser.add_argument("--html", metavar="FILE", default="event_log_demo_report.html",
                             help="where the HTML page goes (default %(default)s; '' for none)")
    demo_parser.add_argument("--top", type=_positive_int, default=20, metavar="N",
                             help="rows of the top-N sections (default 20)")
    demo_parser.add_argument("--no-tour", dest="tour", action="store_false",
                             help="skip the tour of the null, console and plugin loggers")
    demo_parser.add_argument("--url-file", metavar="FILE", help="write the day into this "
                             "database instead (its user table must hold ids 1..--users)")
    demo_parser.add_argument("--url", help="as --url-file, the URL itself (visible in ps)")
    demo_parser.add_argument("--table", default="event_log", help=argparse.SUPPRESS)
    demo_parser.set_defaults(run=demo)

    report_parser = commands.add_parser(
        "report", help="feature use, search, home page, events per day, routes, users",
        description="Aggregate an event_log table over a time range (UTC): feature use "
        "(clicks per component and element, per day and per user), search (per search string: "
        "results shown and the result clicked), the home page per day, events per day and "
        "type, top API and websocket routes, most active users. For big tables create "
        f"the index the report uses: {RECOMMENDED_INDEX_DDL}")
    _add_url_options(report_parser)
    window = report_parser.add_argument_group("time range (default: the last 7 days)")
    window.add_argument("--since", help="start, an ISO date or date-time (UTC)")
    window.add_argument("--until", help="end (exclusive), an ISO date or date-time (default now)")
    window.add_argument("--days", type=float, help="the DAYS before --until, or after --since")
    report_parser.add_argument("--format", choices=("text", "json", "csv"), default="text",
                               help="stdout format (default text)")
    report_parser.add_argument("--section", action="append", choices=SECTION_ORDER,
                               help="only this section (repeatable); only its queries run")
    report_parser.add_argument("--top", type=_positive_int, default=20, metavar="N",
                               help="rows of the top-N sections (routes, users; default 20)")
    report_parser.add_argument("--html", metavar="FILE",
                               help="also write one self-contained HTML page with charts to FILE")
    report_parser.set_defaults(run=report)

    cleanup_parser = commands.add_parser(
        "cleanup", help="delete rows older than N days, in short chunks",
        description="Delete the rows whose created_at is more than --days days old, in chunks "
        "of --chunk-rows rows by primary key, each its own short transaction: safe while "
        "loggers write. -1 disables, like Querybook's days_to_keep_event_logs. Also callable "
        "as querybook_eventlog.clean_up_event_logs(days_to_keep, url).")
    cleanup_parser.add_argument("--days", type=_days_to_keep, required=True,
                                help="days to keep (-1: keep everything)")
    cleanup_parser.add_argument("--chunk-rows", type=_positive_int, default=5000, metavar="N",
                                help="rows per DELETE (default 5000)")
    _add_url_options(cleanup_parser)
    cleanup_parser.set_defaults(run=cleanup)

    replay_parser = commands.add_parser(
        "replay", help="replay spooled events into the table",
        description="Write the spool files a DBEventLogger left in its spool_dir into the "
        "table, exactly once. Only lines spooled for this URL's server and table are written "
        "(and lines of versions that did not record a target), unless --adopt-all. Exits 1 when "
        "the directory holds entries that are not spool files (after replaying the others).")
    _add_url_options(replay_parser)
    replay_parser.add_argument("--spool-dir", required=True, help="the DBEventLogger's spool_dir")
    replay_parser.add_argument(
        "--adopt-all", action="store_true",
        help="write every line into this table, whatever target it was spooled for (to move a "
        "spool directory to another server on purpose); by default a line written for another "
        "server or table is left for that target's logger")
    replay_parser.set_defaults(run=replay)

    adopt_parser = commands.add_parser(
        "adopt", help="make a Querybook checkout use this package (the one adoption edit)",
        description="Apply the adoption edit to a Querybook checkout; idempotent.")
    adopt_parser.add_argument("root", help="the Querybook checkout (the folder holding querybook/)")
    adopt_parser.set_defaults(run=adopt)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print(f"{args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
