"""Command line: ``python -m querybook_eventlog {demo,replay,adopt}``.

adopt   Apply the one adoption edit to a Querybook checkout (see the README).

replay  Write spooled events (files a DBEventLogger left in its spool_dir
        while the database was unreachable) into the table, exactly once.
demo    Show the loggers at work.
"""

from __future__ import annotations

import argparse
import logging
import os
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
from ._url import parse_database_url, redacted_url


def replay(args: argparse.Namespace) -> int:
    """Replay every unclaimed spool file in --spool-dir into --url's table."""
    from . import _core

    if args.url:
        print("replay: warning: a URL on the command line shows its password to every user "
              "of this machine (ps); prefer DATABASE_CONN or --url-file", file=sys.stderr)
    url = args.url
    if not url and args.url_file:
        try:
            with open(args.url_file, encoding="utf-8") as source:
                url = source.read().strip()
        except OSError as error:
            print(f"replay: cannot read --url-file: {error}", file=sys.stderr)
            return 2
    url = url or os.environ.get("DATABASE_CONN")
    if not url:
        print("replay: set DATABASE_CONN, or pass --url-file (or --url)", file=sys.stderr)
        return 2
    try:
        parts = parse_database_url(url)
        rows = _core._replay_spool(parts, args.spool_dir, args.table)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 1
    print(f"replayed {rows} events from {args.spool_dir} into {redacted_url(url)} "
          f"table {args.table}")
    return 0


class DemoPlugin(BaseEventLogger):
    """A plugin written exactly as for upstream Querybook."""

    def __init__(self) -> None:
        self.seen: List[str] = []

    @property
    def logger_name(self) -> str:
        return "demo_plugin"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.seen.append(f"{event_type.name} by {uid}: {dumps(event_data).decode()}")


def _demo_database_url() -> tuple:
    """A URL to demo the DB logger against: DATABASE_CONN, or a private MariaDB."""
    url = os.environ.get("DATABASE_CONN")
    if url:
        return url, None
    tests_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    if not os.path.isdir(tests_dir):
        return None, None
    sys.path.insert(0, tests_dir)
    from mariadb_server import MariaDBServer  # type: ignore

    server = MariaDBServer()
    server.start()
    return server.url, server


def demo(args: argparse.Namespace) -> int:
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
                event_data={"path": "/datadoc/1/", "component": "DataDocNavigator",
                            "element": "create_button", "aux": {"note": "line\nbreak"}})
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

    print("== DB logger")
    url, server = _demo_database_url()
    if url is None:
        print("   skipped: set DATABASE_CONN")
        return 0
    try:
        with tempfile.TemporaryDirectory() as spool:
            db = DBEventLogger(url, spool_dir=spool, create_table=True)
            print("  ", repr(db))
            for i in range(1000):
                db.log(uid=1, event_type=EventType.CLICK, event_data={"i": i, "path": "/"})
            print("   flushed:", db.flush(timeout=30))
            stats = db.stats()
            print("   stats:", {k: stats[k] for k in ("enqueued", "written", "batches")})
            db.close()
            if server is not None:
                print("   rows in event_log:", server.count_events())
    finally:
        if server is not None:
            server.stop()
    return 0


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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m querybook_eventlog", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    replay_parser = commands.add_parser("replay", help="replay spooled events into the table")
    replay_parser.add_argument("--url-file", help="a file holding the database URL "
                               "(default: env DATABASE_CONN)")
    replay_parser.add_argument("--url", help="the database URL itself (visible in ps: prefer "
                               "DATABASE_CONN or --url-file)")
    replay_parser.add_argument("--spool-dir", required=True, help="the DBEventLogger's spool_dir")
    replay_parser.add_argument("--table", default="event_log", help="table (default event_log)")
    replay_parser.set_defaults(run=replay)
    demo_parser = commands.add_parser("demo", help="show the loggers at work")
    demo_parser.set_defaults(run=demo)
    adopt_parser = commands.add_parser(
        "adopt", help="make a Querybook checkout use this package (the one adoption edit)")
    adopt_parser.add_argument("root", help="the Querybook checkout (the folder holding querybook/)")
    adopt_parser.set_defaults(run=adopt)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
