"""Loggers benchmark: querybook_eventlog's C loggers vs upstream-equivalent
pure-Python loggers, side by side in one run on a Querybook-like event mix.
Prints a Markdown table of median per-event times and ratios.

    python3 bench/bench_loggers.py [--quick]

Every round builds fresh events (new objects: different uids, event types,
nested dicts with ids, floats and long strings), separately for each side,
so neither side profits from anything cached on a repeated object.

Rows:
  upstream  ConsoleEventLogger() as Querybook gets it by default (format
            'upstream': upstream's message through logging.Logger.info, the
            logger looked up per event via _settings.console_logger()), and
            ConsoleEventLogger(logger=LOG)  vs  a faithful reimplementation of
            upstream's ConsoleEventLogger.log (utcfromtimestamp/utcnow +
            strftime + f-string with the dict repr + LOG.info).  Each side's
            logger is set up as Querybook's lib.logger does: one StreamHandler
            with Querybook's Formatter, writing to its own line-buffered
            os.devnull (open(os.devnull, "w", buffering=1)); the handler
            flushes after every record, as upstream's does.
  floor     logging.Logger.info(message) alone, with the message precomputed:
            what any implementation that logs through logging pays.
  text/jsonl  ConsoleEventLogger(stream, format=...) writing to a line-buffered
            os.devnull (one write reaching the OS per event, as upstream's
            handler does)  vs  the same upstream reimplementation.
  null      NullEventLogger.log (validates)  vs  a Python log() that does nothing.
  plugin    log_api_request of a Python plugin subclass (same class body) on the
            C BaseEventLogger  vs  on a Python re-implementation of upstream's
            BaseEventLogger (ABC, allow/deny rules, pruning).
"""

import abc
import datetime
import logging
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import querybook_eventlog as qe
from querybook_eventlog import EventType, _settings

# ---- the event mix ----------------------------------------------------------

LONG_SQL = (
    "SELECT u.id, u.username, count(*) AS query_count FROM query_execution qe "
    "JOIN user u ON u.id = qe.uid WHERE qe.created_at > now() - interval 7 day "
    "GROUP BY u.id, u.username ORDER BY query_count DESC LIMIT 100"
)


TITLE_WORDS = ["weekly", "active", "users", "revenue", "by", "region", "dashboard", "cohort",
               "retention", "funnel", "experiment", "signups", "über", "日次"]


def make_event_mix(count=2000, seed=20231114):
    """(kind, uid, event_type, event_data) for log(), and API calls
    (uid, route, method, params) for log_api_request(), like Querybook's
    traffic: mostly clicks and views from the browser, then API calls and
    websocket events."""
    rng = random.Random(seed)
    components = ["datadoc", "query_editor", "board", "table_detail", "search"]
    elements = ["run_button", "cell_title", "tab", "share_button", "schedule_toggle"]
    api_routes = [
        ("/datadoc/<int:doc_id>/", "GET", lambda: {"doc_id": rng.randint(1, 10**5)}),
        (
            "/query_execution/",
            "POST",
            lambda: {"query": LONG_SQL, "engine_id": 3, "data_cell_id": rng.randint(1, 10**6)},
        ),
        (
            "/search/tables/",
            "GET",
            lambda: {
                "keywords": "user events",
                "filters": [["schema", "prod"]],
                "limit": 10,
                "sort_key": "importance_score",
            },
        ),
        (
            "/datadoc/<int:doc_id>/cell/",
            "PUT",
            lambda: {
                "doc_id": 12,
                "cell_type": "query",
                "context": LONG_SQL * 2,
                "meta": {"title": "weekly users", "engine": 3},
            },
        ),
        ("/admin/query_engine/", "GET", dict),
        ("/board/<int:board_id>/", "GET", lambda: {"board_id": 7}),
    ]
    events, api_calls = [], []
    for i in range(count):
        uid = rng.randint(1, 5000)
        roll = rng.random()
        if roll < 0.75:
            event_type = EventType.CLICK if roll < 0.45 else EventType.VIEW
            data = {
                "path": f"/datadoc/{rng.randint(1, 10**5)}/",
                "component": rng.choice(components),
                "element": rng.choice(elements),
                "aux": {
                    "cell_index": rng.randint(0, 40),
                    "tab": "results",
                    "cell_id": rng.randint(1, 10**7),
                    "elapsed_ms": rng.random() * 5000,
                    "title": " ".join(rng.choice(TITLE_WORDS)
                                      for _ in range(rng.randint(3, 40))),
                    "results": [rng.randint(1, 10**6) for _ in range(rng.randint(0, 8))],
                },
            }
            events.append((uid, event_type, data, 1700000000000 + i * 137))
        elif roll < 0.9:
            route, method, params = rng.choice(api_routes)
            params = params()
            api_calls.append((uid, route, method, params))
            pruned = {
                k: (v[:128] + "..." if isinstance(v, str) and len(v) > 128 else v)
                for k, v in params.items()
            }
            events.append(
                (uid, EventType.API, {"method": method, "route": route, "params": pruned}, None)
            )
        else:
            events.append(
                (
                    uid,
                    EventType.WEBSOCKET,
                    {
                        "route": "/datadoc/subscribe",
                        "args": [rng.randint(1, 10**5)],
                        "kwargs": {"originator": "abc123"},
                    },
                    None,
                )
            )
    while len(api_calls) < count // 4:
        route, method, params = rng.choice(api_routes)
        api_calls.append((rng.randint(1, 5000), route, method, params()))
    return events, api_calls


# ---- upstream-equivalent pure-Python loggers --------------------------------

MAX_STR_PARAM_LENGTH = 128


class UpstreamBaseEventLogger(abc.ABC):
    """A Python re-implementation of Querybook's BaseEventLogger."""

    @property
    @abc.abstractmethod
    def logger_name(self):
        raise NotImplementedError()

    @property
    def _api_allow_list(self):
        return None

    @property
    def _api_deny_list(self):
        return [
            {"type": "prefix", "route": "/admin", "method": "*"},
            {"type": "exact", "route": "/login/", "method": "POST"},
            {"type": "exact", "route": "/signup/", "method": "POST"},
        ]

    def _should_log_api_request(self, route, method):
        if self._api_allow_list is not None:
            for rule in self._api_allow_list:
                if self.__match_filter_rule(rule, route, method):
                    return True
            return False
        if self._api_deny_list is not None:
            for rule in self._api_deny_list:
                if self.__match_filter_rule(rule, route, method):
                    return False
        return True

    @abc.abstractmethod
    def log(self, uid, event_type, event_data, timestamp=None):
        raise NotImplementedError()

    def log_api_request(self, uid, route, method, params):
        if not self._should_log_api_request(route, method):
            return
        params = self.__prune_api_request_params(params)
        event_data = {"method": method, "route": route, "params": params}
        self.log(uid=uid, event_type=EventType.API, event_data=event_data)

    def __match_filter_rule(self, rule, route, method):
        route_matched = (
            route.startswith(rule["route"]) if rule["type"] == "prefix" else rule["route"] == route
        )
        method_matched = rule["method"] == "*" or rule["method"] == method
        return route_matched and method_matched

    def __prune_api_request_params(self, params):
        new_params = {}
        for key, value in params.items():
            if isinstance(value, str) and len(value) > MAX_STR_PARAM_LENGTH:
                new_params[key] = value[:MAX_STR_PARAM_LENGTH] + "..."
                continue
            if isinstance(value, dict):
                new_params[key] = self.__prune_api_request_params(value)
            else:
                new_params[key] = value
        return new_params


COLOR_YELLOW, COLOR_RESET = "\x1b[33;20m", "\x1b[0m"


QUERYBOOK_FORMAT = '[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"'
QUERYBOOK_DATE_FORMAT = "%Y-%m-%d %a %H:%M:%S"


def upstream_logger(stream, name="bench.upstream_console_event_logger"):
    """Querybook's lib.logger.get_logger, on `stream`."""
    log = logging.getLogger(name)
    log.handlers.clear()
    log.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt=QUERYBOOK_FORMAT, datefmt=QUERYBOOK_DATE_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log


class UpstreamConsoleEventLogger(UpstreamBaseEventLogger):
    def __init__(self, log):
        self.LOG = log

    @property
    def logger_name(self):
        return "console"

    def log(self, uid, event_type, event_data, timestamp=None):
        created_at = (
            datetime.datetime.utcfromtimestamp(timestamp / 1000)  # noqa: DTZ004 (upstream's)
            if timestamp is not None
            else datetime.datetime.utcnow()  # noqa: DTZ003 (upstream's)
        )
        now = created_at.strftime("%Y-%m-%d %H:%M:%S")
        event = f"created_at: {now}, uid={uid}, event_type={event_type}, event_data={event_data}"
        self.LOG.info(f"{COLOR_YELLOW}{self.__class__.__name__} - {event}{COLOR_RESET}")


class UpstreamNullEventLogger(UpstreamBaseEventLogger):
    @property
    def logger_name(self):
        return "null"

    def log(self, uid, event_type, event_data, timestamp=None):
        pass


def plugin_class(base):
    """The same plugin body on either base: counts what it is asked to log."""

    class CountingPlugin(base):
        def __init__(self):
            self.count = 0

        @property
        def logger_name(self):
            return "counting"

        def log(self, uid, event_type, event_data, timestamp=None):
            self.count += 1

    return CountingPlugin


# ---- timing -----------------------------------------------------------------


def run_log(logger):
    log = logger.log

    def run(events):
        for uid, event_type, data, timestamp in events:
            log(uid, event_type, data, timestamp)

    return run


def run_api(logger):
    log_api_request = logger.log_api_request

    def run(calls):
        for uid, route, method, params in calls:
            log_api_request(uid, route, method, params)

    return run


def run_info(log):
    """The floor: LOG.info of precomputed upstream messages."""
    info = log.info

    def run(messages):
        for message in messages:
            info(message)

    return run


def upstream_messages(events):
    stub = UpstreamConsoleEventLogger(None)
    messages = []
    stub.LOG = type("Capture", (), {"info": staticmethod(messages.append)})
    run_log(stub)(events)
    return messages


def per_item_ns(function, items):
    start = time.perf_counter_ns()
    function(items)
    return (time.perf_counter_ns() - start) / len(items)


def line_buffered_devnull():
    return open(os.devnull, "w", buffering=1)


def default_console_logger(stream):
    """Make ConsoleEventLogger()'s default target (_settings.console_logger(),
    standalone) write to `stream` with Querybook's handler setup."""
    name = _settings.console_logger().name
    return upstream_logger(stream, name)


def build_pairs(streams):
    """(label, their label, ours, theirs, input kind, target) rows."""
    default_log = default_console_logger(streams["default"])
    our_log = upstream_logger(streams["ours"], "bench.qbel_console")
    their_log = upstream_logger(streams["theirs"])
    upstream = run_log(UpstreamConsoleEventLogger(their_log))
    return [
        ("upstream: ConsoleEventLogger() (the default)", "upstream console logger",
         run_log(qe.ConsoleEventLogger()), upstream, "events", 3.0),
        ("upstream: ConsoleEventLogger(logger=LOG)", "upstream console logger",
         run_log(qe.ConsoleEventLogger(logger=our_log)), upstream, "events", 3.0),
        ("floor: LOG.info(precomputed message) alone", "upstream console logger",
         run_info(default_log), upstream, "messages", None),
        ("text: ConsoleEventLogger(stream, format='text')", "upstream console logger",
         run_log(qe.ConsoleEventLogger(streams["text"], format="text")), upstream, "events",
         10.0),
        ("jsonl: ConsoleEventLogger(stream, format='jsonl')", "upstream console logger",
         run_log(qe.ConsoleEventLogger(streams["text"], format="jsonl")), upstream, "events",
         10.0),
        ("null: NullEventLogger.log (validates)", "Python log() doing nothing",
         run_log(qe.NullEventLogger()), run_log(UpstreamNullEventLogger()), "events", None),
        ("plugin: Python subclass .log_api_request (C base)",
         "same subclass on upstream's Python base",
         run_api(plugin_class(qe.BaseEventLogger)()),
         run_api(plugin_class(UpstreamBaseEventLogger)()), "api", None),
        ("builtin: NullEventLogger.log_api_request", "upstream NullEventLogger.log_api_request",
         run_api(qe.NullEventLogger()), run_api(UpstreamNullEventLogger()), "api", None),
    ]


def fresh_inputs(kind, seed, count):
    events, api_calls = make_event_mix(count, seed)
    if kind == "api":
        return api_calls
    if kind == "messages":
        return upstream_messages(events)
    return events


def measure(rounds, count, streams):
    """Rows of (label, their label, ours ns, theirs ns, ratio, target)."""
    pairs = build_pairs(streams)
    samples = {label: ([], []) for label, *_ in pairs}
    for round_index in range(rounds + 1):  # round 0 warms up
        seed = 20231114 + round_index
        for label, _their_label, ours, theirs, kind, _target in pairs:
            # fresh objects for each side; who goes first alternates
            ours_items = fresh_inputs(kind, seed, count)
            theirs_items = fresh_inputs("events" if kind == "messages" else kind, seed, count)
            if round_index % 2:
                theirs_ns, ours_ns = per_item_ns(theirs, theirs_items), per_item_ns(ours, ours_items)
            else:
                ours_ns, theirs_ns = per_item_ns(ours, ours_items), per_item_ns(theirs, theirs_items)
            if round_index:
                samples[label][0].append(ours_ns)
                samples[label][1].append(theirs_ns)
    rows = []
    for label, their_label, _ours, _theirs, _kind, target in pairs:
        mine, upstream = (statistics.median(side) for side in samples[label])
        rows.append((label, their_label, mine, upstream, upstream / mine, target))
    return rows


def main():
    quick = "--quick" in sys.argv
    rounds, count = (5, 1000) if quick else (25, 2000)
    started = time.perf_counter()
    names = ("default", "ours", "theirs", "text")
    streams = {name: line_buffered_devnull() for name in names}
    try:
        rows = measure(rounds, count, streams)
    finally:
        for stream in streams.values():
            stream.close()

    print(
        f"Python {sys.version.split()[0]}, {count} fresh events per round and side "
        f"(45% CLICK, 30% VIEW, 15% API, 10% WEBSOCKET; API calls for the log_api_request "
        f"rows), median of {rounds} interleaved rounds; every stream is "
        f"open(os.devnull, 'w', buffering=1)\n"
    )
    print(
        "| what (ours) | vs (pure Python) | ours ns/event | theirs ns/event | speed-up | target |"
    )
    print("|---|---|---:|---:|---:|---|")
    for label, their_label, mine, upstream, ratio, target in rows:
        verdict = (
            "" if target is None else (f"≥ {target:g}× {'met' if ratio >= target else 'MISSED'}")
        )
        print(
            f"| {label} | {their_label} | {mine:,.0f} | {upstream:,.0f} | {ratio:.2f}× | {verdict} |"
        )
    by_label = {row[0]: row for row in rows}
    floor = by_label["floor: LOG.info(precomputed message) alone"][2]
    default = by_label["upstream: ConsoleEventLogger() (the default)"]
    print(
        f"\nlogging's share: LOG.info alone costs {floor:,.0f} ns/event; beyond it, ours "
        f"spends {default[2] - floor:,.0f} ns and upstream {default[3] - floor:,.0f} ns "
        f"({(default[3] - floor) / max(default[2] - floor, 1):.1f}× on the part we control)."
    )
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
