"""event_data encoding: qe.dumps vs json, orjson and msgspec, side by side.

Run from the repo root: python3 bench/bench_dumps.py [--quick] [--no-sizes]
  --quick     7 repeats of 500 events (default: 25 of 1,500)
  --no-sizes  skip the per-size table (long ASCII and non-ASCII strings,
              nested dicts)

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


SIZES = [100, 1_000, 10_000, 100_000, 1_000_000]
SIZE_BUDGET = (2 if QUICK else 8) << 20  # bytes of JSON per encoder per repeat


def long_string(rng, size):
    """One fresh str of about `size` bytes of JSON, nothing to escape."""
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789-_/.:"
    word = "".join(rng.choice(alphabet) for _ in range(64))
    return (word * (size // 64 + 1))[:size - 2]


NON_ASCII_WORDS = ["查询结果", "数据表", "search", "日本語のテキスト", "table", "用户", "données"]


def long_text_non_ascii(rng, size):
    """One fresh str of about `size` bytes of UTF-8: CJK words between
    ASCII ones (stored 2 bytes a character), nothing to escape."""
    words = " ".join(rng.choice(NON_ASCII_WORDS) for _ in range(24))
    text = words * (size // len(words.encode()) + 1)
    return text[:max(1, size // 2)]  # about 2 bytes of UTF-8 a character


def _leaf(rng, i):
    # about 100 bytes of JSON: ints, a str, a random float, a list
    return {"id": rng.randint(1, 10**9), "name": f"item {i} {rng.choice(qb_events.WORDS)}",
            "score": rng.random() * 100, "ok": rng.random() < 0.5,
            "tags": [rng.randint(0, 999), rng.randint(0, 999)]}


def nested_dicts(rng, size):
    """Fresh dicts of about `size` bytes of JSON: groups of 8 leaves, nested."""
    leaves = max(1, round(size / 110))
    if leaves == 1:
        return _leaf(rng, 0)
    out, group = {}, {}
    for i in range(leaves):
        group[f"k{i}"] = _leaf(rng, i)
        if len(group) == 8:
            out[f"g{i}"] = {"meta": {"n": i}, "items": group}
            group = {}
    if group:
        out["rest"] = group
    return out


def measure_size(generate, size):
    import random
    count = max(3, min(2000, SIZE_BUDGET // size))
    samples = {name: [] for name, _ in ENCODERS}
    repeats = max(3, REPEATS // 3) if size >= 100_000 else REPEATS
    for repeat in range(repeats + 1):
        order = ENCODERS[repeat % len(ENCODERS):] + ENCODERS[:repeat % len(ENCODERS)]
        for name, encode in order:
            if name == "json" and size >= 100_000:
                continue
            rng = random.Random(size * 1000 + repeat)
            objects = [generate(rng, size) for _ in range(count)]
            value = ns_per_event(encode, objects)
            if repeat:
                samples[name].append(value)
            del objects
    return {name: statistics.median(v) if v else None for name, v in samples.items()}


def main_sizes():
    print("\nPer size (fresh objects, encode-then-drop; json skipped from 100 KB):\n")
    print("| data | size | qe.dumps ns | orjson ns | msgspec ns | qe vs the faster |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, generate in (("one long string", long_string),
                            ("one long non-ASCII string (CJK words)", long_text_non_ascii),
                            ("nested dicts", nested_dicts)):
        for size in SIZES:
            medians = measure_size(generate, size)
            ours = medians["qe"]
            peers = [v for k, v in medians.items() if k in ("orjson", "msgspec") and v]
            print(f"| {label} | {size:,} B | {ours:,.0f} | {cell(medians.get('orjson'))} "
                  f"| {cell(medians.get('msgspec'))} "
                  f"| {ratio(min(peers), ours) if peers else 'n/a'} |")
            sys.stdout.flush()


def main():
    if "--help" in sys.argv or "-h" in sys.argv:
        print(__doc__)
        return
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
    if "--no-sizes" not in sys.argv:
        main_sizes()
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
