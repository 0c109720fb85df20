"""Loggers benchmark: querybook_eventlog's C loggers vs upstream-equivalent
pure-Python loggers, side by side in one run on a fixed Querybook-like event
mix.  Prints a Markdown table of median per-event times and ratios.

    python3 bench/bench_loggers.py [--quick]

Rows:
  console   ConsoleEventLogger.log  vs  upstream's console logger (utcnow +
            strftime + f-string with the dict repr + logging.info through a
            StreamHandler with Querybook's formatter); both write to os.devnull.
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
from querybook_eventlog import EventType

# ---- the event mix ----------------------------------------------------------

LONG_SQL = (
    "SELECT u.id, u.username, count(*) AS query_count FROM query_execution qe "
    "JOIN user u ON u.id = qe.uid WHERE qe.created_at > now() - interval 7 day "
    "GROUP BY u.id, u.username ORDER BY query_count DESC LIMIT 100"
)


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
                "aux": {"cell_index": rng.randint(0, 40), "tab": "results"},
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


def upstream_logger(stream):
    """Querybook's lib.logger.get_logger, on `stream`."""
    log = logging.getLogger("bench.upstream_console_event_logger")
    log.handlers.clear()
    log.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter(
            fmt='[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"',
            datefmt="%Y-%m-%d %a %H:%M:%S",
        )
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log


class UpstreamConsoleEventLogger(UpstreamBaseEventLogger):
    def __init__(self, stream):
        self.LOG = upstream_logger(stream)

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


def time_per_item(function, items, rounds):
    """Median over `rounds` of the time per item of function(items)."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        function(items)
        samples.append((time.perf_counter_ns() - start) / len(items))
    return statistics.median(samples)


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


def measure(rounds, events, api_calls, devnull_ours, devnull_theirs):
    """Rows of (label, their label, ours ns, theirs ns, ratio, target)."""
    pairs = [
        (
            "console: ConsoleEventLogger.log (text, to os.devnull)",
            "upstream console logger",
            run_log(qe.ConsoleEventLogger(devnull_ours)),
            run_log(UpstreamConsoleEventLogger(devnull_theirs)),
            events,
            10.0,
        ),
        (
            "console: ConsoleEventLogger.log (jsonl, to os.devnull)",
            "upstream console logger",
            run_log(qe.ConsoleEventLogger(devnull_ours, format="jsonl")),
            run_log(UpstreamConsoleEventLogger(devnull_theirs)),
            events,
            10.0,
        ),
        (
            "null: NullEventLogger.log (validates)",
            "Python log() doing nothing",
            run_log(qe.NullEventLogger()),
            run_log(UpstreamNullEventLogger()),
            events,
            None,
        ),
        (
            "plugin: Python subclass .log_api_request (C base)",
            "same subclass on upstream's Python base",
            run_api(plugin_class(qe.BaseEventLogger)()),
            run_api(plugin_class(UpstreamBaseEventLogger)()),
            api_calls,
            None,
        ),
        (
            "builtin: NullEventLogger.log_api_request",
            "upstream NullEventLogger.log_api_request",
            run_api(qe.NullEventLogger()),
            run_api(UpstreamNullEventLogger()),
            api_calls,
            None,
        ),
    ]
    rows = []
    for label, their_label, ours, theirs, items, target in pairs:
        ours(items), theirs(items)  # warm up
        ours_samples, theirs_samples = [], []
        for _ in range(rounds):  # interleaved, so drift hits both sides alike
            ours_samples.append(time_per_item(ours, items, 1))
            theirs_samples.append(time_per_item(theirs, items, 1))
        mine, upstream = statistics.median(ours_samples), statistics.median(theirs_samples)
        rows.append((label, their_label, mine, upstream, upstream / mine, target))
    return rows


def main():
    quick = "--quick" in sys.argv
    rounds = 5 if quick else 25
    events, api_calls = make_event_mix()
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull_ours, open(os.devnull, "w") as devnull_theirs:
        rows = measure(rounds, events, api_calls, devnull_ours, devnull_theirs)

    print(
        f"Python {sys.version.split()[0]}, {len(events)} events "
        f"(45% CLICK, 30% VIEW, 15% API, 10% WEBSOCKET) / {len(api_calls)} API calls, "
        f"median of {rounds} interleaved rounds\n"
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
            f"| {label} | {their_label} | {mine:,.0f} | {upstream:,.0f} | {ratio:.1f}× | {verdict} |"
        )
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
