"""event_data encoding: qe.dumps vs json, orjson and msgspec, side by side.

Run from the repo root: python3 bench/bench_dumps.py [--quick]

Data: fresh, varied Querybook-shaped events (bench/qb_events.py).  In every
repeat each encoder gets its own freshly built batch (same seed, so equal
content, but new objects), and encodes each event once and drops the result,
as a logger does.  The encoders' order rotates from repeat to repeat, and the
figure is the median over repeats of ns per event.

Baselines, each producing UTF-8 bytes as a logger needs:
  json     ONE json.JSONEncoder(separators=(",", ":"), ensure_ascii=False),
           built once; .encode(obj).encode("utf-8")
  orjson   orjson.dumps(obj)
  msgspec  msgspec.json.Encoder().encode(obj), one encoder built once
A missing baseline prints n/a.
"""

import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import querybook_eventlog as qe  # noqa: E402
import qb_events  # noqa: E402

try:
    import orjson
except ImportError:
    orjson = None
try:
    import msgspec
except ImportError:
    msgspec = None

QUICK = "--quick" in sys.argv
REPEATS = 7 if QUICK else 25
BATCH = 500 if QUICK else 1500

_json_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_bytes(obj, _encode=_json_encode):
    return _encode(obj).encode("utf-8")


ENCODERS = [("qe", qe.dumps), ("json", json_bytes)]
if orjson is not None:
    ENCODERS.append(("orjson", orjson.dumps))
if msgspec is not None:
    ENCODERS.append(("msgspec", msgspec.json.Encoder().encode))

ROWS = list(qb_events.KINDS) + ["mix", "float-heavy", "20 full floats", "20 short floats"]
LABELS = {"mix": "**weighted mix** (4 click : 3 view : 1 API POST : 2 API GET : 1 websocket)",
          "float-heavy": "float-heavy (search VIEW: 10-20 scores + 4 timings)",
          "api POST": "API POST (a pruned 131-char query)",
          "20 full floats": "20 floats of 15-17 digits (rng.random() * 5000)",
          "20 short floats": "the same 20 floats rounded to 1 decimal"}


def ns_per_event(encode, events):
    start = time.perf_counter_ns()
    for event in events:
        encode(event)  # dropped at once, as a logger drops its encoded bytes
    return (time.perf_counter_ns() - start) / len(events)


def check_agreement():
    """The encoders must produce the same JSON before their speed means anything."""
    for kind in ROWS:
        for event in qb_events.batch(kind, 1, 200):
            expected = json.loads(json_bytes(event))
            for name, encode in ENCODERS:
                assert json.loads(encode(event)) == expected, (name, kind, event)


def measure(kind):
    samples = {name: [] for name, _ in ENCODERS}
    sizes = []
    for repeat in range(REPEATS + 1):  # repeat 0 warms up
        seed = 1000 * repeat + ROWS.index(kind)
        order = ENCODERS[repeat % len(ENCODERS):] + ENCODERS[:repeat % len(ENCODERS)]
        for name, encode in order:
            events = qb_events.batch(kind, seed, BATCH)  # fresh objects for each encoder
            value = ns_per_event(encode, events)
            if repeat:
                samples[name].append(value)
            if name == "qe" and repeat == 1:
                sizes = [len(qe.dumps(event)) for event in events]
            del events
    return {name: statistics.median(values) for name, values in samples.items()}, \
        statistics.mean(sizes)


def cell(value):
    return f"{value:,.0f}" if value is not None else "n/a"


def ratio(theirs, ours):
    return f"{theirs / ours:.2f}×" if theirs is not None else "n/a"


def main():
    check_agreement()
    started = time.perf_counter()
    versions = (f"orjson {orjson.__version__ if orjson else 'n/a'}, "
                f"msgspec {msgspec.__version__ if msgspec else 'n/a'}")
    print(f"Python {sys.version.split()[0]}, {versions}; {BATCH} fresh events per encoder per "
          f"repeat, encoders in rotating order, median of {REPEATS} repeats, ns/event "
          f"(lower is better); ratios > 1 mean qe.dumps is faster\n")
    print("| event | bytes | qe.dumps | json (1 encoder) | orjson | msgspec "
          "| qe vs json (target ≥ 5×) | qe vs orjson (target ≥ 1.0×) | qe vs msgspec |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ROWS:
        medians, size = measure(kind)
        ours = medians["qe"]
        print(f"| {LABELS.get(kind, kind)} | {size:.0f} | {ours:,.0f} | {cell(medians['json'])} "
              f"| {cell(medians.get('orjson'))} | {cell(medians.get('msgspec'))} "
              f"| {ratio(medians['json'], ours)} | {ratio(medians.get('orjson'), ours)} "
              f"| {ratio(medians.get('msgspec'), ours)} |")
        sys.stdout.flush()
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
