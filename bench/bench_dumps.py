"""qe.dumps vs json.dumps (compact) vs orjson.dumps on a Querybook-like event mix.

Run from the repo root: python3 bench/bench_dumps.py
Prints a Markdown table of median ns/event and speed-ups, measured side by
side in one run (the encoders alternate inside each repeat, so drift in the
machine's speed affects all of them alike).
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import querybook_eventlog as qe  # noqa: E402

try:
    import orjson
except ImportError:  # the table says n/a
    orjson = None

PRUNED = ("SELECT * FROM default.events WHERE dt = '2024-05-06' AND uid = 42 " * 3)[:128] + "..."

CLICK = {
    "path": "/datadoc/123/",
    "component": "DataDocNavigator",
    "element": "create_button",
    "aux": {"tab": "recent", "count": 3},
}
VIEW = {
    "path": "/query_execution/98765/",
    "component": "QueryView",
    "element": "",
    "aux": {"referrer": "/search/?q=events", "is_new": False},
}
API = {
    "method": "POST",
    "route": "/query_execution/",
    "params": {
        "query": PRUNED,
        "engine_id": 7,
        "data_cell_id": 4031,
        "metadata": {"tags": ["adhoc", "daily"], "sample_rate": 0.5, "limit": None},
        "statement_ids": [10293, 10294, 10295],
    },
}
API_GET = {
    "method": "GET",
    "route": "/datadoc/<int:doc_id>/",
    "params": {"doc_id": 123, "environment_id": 1},
}
WEBSOCKET = {
    "route": "/datadoc/subscribe/",
    "args": [123, "f8a1c2d4-0b7e-4e9a-9d8f-5a6b7c8d9e0f"],
    "kwargs": {"originator": "sid-2c9f", "cursor": {"line": 12, "ch": 4}, "emoji": "🚀 été"},
}

REPEATS = 61

MIX = [
    ("click", CLICK, 4),
    ("view", VIEW, 3),
    ("api POST", API, 1),
    ("api GET", API_GET, 2),
    ("websocket", WEBSOCKET, 1),
]


def json_compact(obj, _dumps=json.dumps):
    # json's defaults (ensure_ascii) and a str result: its fastest path, so
    # the ratios are conservative
    return _dumps(obj, separators=(",", ":"))


ENCODERS = [("qe", qe.dumps), ("json", json_compact), ("orjson", orjson.dumps if orjson else None)]


def time_per_event(encode, events, loops):
    start = time.perf_counter_ns()
    for _ in range(loops):
        for event in events:
            encode(event)
    return (time.perf_counter_ns() - start) / (loops * len(events))


def measure(events, loops, repeats):
    samples = {name: [] for name, encode in ENCODERS if encode}
    for _ in range(repeats):
        for name, encode in ENCODERS:
            if encode:
                samples[name].append(time_per_event(encode, events, loops if name != "json" else loops // 8))
    return {name: statistics.median(values) for name, values in samples.items()}


def ratio(slow, fast):
    return f"{slow / fast:.2f}×" if slow and fast else "n/a"


def main():
    # the encoders must agree before their speed means anything
    for _, event, _ in MIX:
        assert json.loads(qe.dumps(event)) == json.loads(json.dumps(event))
    rows = [(name, [event], 4000) for name, event, _ in MIX]
    mix = [event for _, event, weight in MIX for _ in range(weight)]
    rows.append(("mix (weighted)", mix, 4000 // len(mix)))
    print(f"Python {sys.version.split()[0]}, orjson {orjson.__version__ if orjson else 'n/a'}; "
          f"median of {REPEATS} interleaved repeats, ns/event\n")
    print("| event | qe.dumps | json.dumps | orjson.dumps | qe vs json | qe vs orjson |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, events, loops in rows:
        medians = measure(events, loops, repeats=REPEATS)
        qe_ns, json_ns, orjson_ns = medians["qe"], medians["json"], medians.get("orjson")
        print(f"| {name} | {qe_ns:.0f} | {json_ns:.0f} | {f'{orjson_ns:.0f}' if orjson_ns else 'n/a'} "
              f"| {ratio(json_ns, qe_ns)} | {ratio(orjson_ns, qe_ns)} |")


if __name__ == "__main__":
    main()
