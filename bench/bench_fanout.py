"""Fan-out benchmark: EVENT_LOGGER_NAME "db,kafka" as the caller sees it,
the shared encoding (FanOutEventLogger.log: one validation and one encoding
per event, each writer-backed member queues a copy) against the per-member
path it replaced (each member's own log(): validation and encoding twice),
side by side in one run, against a private MariaDB (tests/mariadb_server.py)
and a private Tansu broker (tests/kafka_broker.py).  Run from the repo root:
python3 bench/bench_fanout.py [--quick]

Each side gets a fresh DBEventLogger and KafkaEventLogger (default options,
a fresh 3-partition topic) and its own fresh events built before its timer
starts; the two sides of a pair run back to back, the order alternating.

  caller   ns per fan-out log() call: the median over blocks of 100 calls,
           then the median over RUNS runs (min-max); the ratio is the median
           of per-pair ratios per-member / shared (> 1: the shared encoding
           is cheaper).  Both sides then flush and every event is checked in
           the table and in the Kafka member's stats (written).
  rows     "qb mix": Querybook-shaped events (bench/qb_events.py, about
           200-600 bytes of JSON); "20 KB": events of about 20 KB of JSON,
           where encoding dominates; "log_api_request": Querybook's API
           requests (qb_events' GET and POST shapes) through
           log_api_request, each member's rules applied (both log these
           routes); per-member: each member's own log_api_request.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import uuid

from _common import QUICK, fresh_events  # first: it sets up the import path

import qb_events  # noqa: E402
from kafka_broker import KafkaBroker  # noqa: E402
from querybook_eventlog import DBEventLogger, KafkaEventLogger  # noqa: E402
from querybook_eventlog._fanout import FanOutEventLogger  # noqa: E402

RUNS = 3 if QUICK else 7
EVENTS = 5_000 if QUICK else 20_000
BLOCK = 100


class PerMemberFanOut(FanOutEventLogger):
    """The fan-out before the shared encoding: each member's own log()."""

    def log(self, uid, event_type, event_data, timestamp=None):
        self._log_each_member(uid, event_type, event_data, timestamp)

    def log_api_request(self, uid, route, method, params):
        for member in self._members:
            member.log_api_request(uid=uid, route=route, method=method, params=params)


def large_events(seed, count):
    """Fresh events of about 20 KB of JSON each."""
    return [(None, "VIEW", {"seq": seed * count + i, "cells": [
        {"id": j, "query": f"SELECT {j} FROM t_{seed}_{i} WHERE x = 'é{j}'", "score": j / 7}
        for j in range(250)]}) for i in range(count)]


def api_requests(seed, count):
    """Fresh log_api_request calls: ("API", {method, route, params})."""
    rng = random.Random(seed)
    return [(None, "API", (qb_events.api_post if rng.random() < 0.5 else qb_events.api_get)(rng))
            for _ in range(count)]


def side(kind, server, broker, spool, events):
    topic = f"fan_{uuid.uuid4().hex[:12]}"
    broker.create_topic(topic, partitions=3)
    server.reset_events()
    db = DBEventLogger(server.url, spool_dir=os.path.join(spool, "db"))
    kafka = KafkaEventLogger(broker.bootstrap, topic, spool_dir=os.path.join(spool, "kafka"))
    fan_out = kind([db, kafka])
    log = fan_out.log
    clock = time.perf_counter_ns
    blocks = []
    for start in range(0, len(events), BLOCK):
        t0 = clock()
        for uid, event_type, data in events[start:start + BLOCK]:
            if event_type == "API":
                fan_out.log_api_request(uid, data["route"], data["method"], data["params"])
            else:
                log(uid, event_type, data)
        blocks.append((clock() - t0) / BLOCK)
    assert fan_out.flush(timeout=600)
    stats = fan_out.stats()
    fan_out.close()
    assert stats["member_failures"] == {"db": 0, "kafka": 0}, stats
    assert stats["members"]["kafka"]["written"] == len(events), stats
    assert server.count_events() == len(events), server.count_events()
    return statistics.median(blocks)


def main():
    from mariadb_server import MariaDBServer

    rows = {"qb mix": lambda seed: [(None, t, d) for _, t, d in fresh_events(seed, EVENTS)],
            "20 KB": lambda seed: large_events(seed, EVENTS // 10),
            "log_api_request": lambda seed: api_requests(seed, EVENTS)}
    results = {(row, kind): [] for row in rows for kind in ("shared", "per-member")}
    ratios = {row: [] for row in rows}
    server = MariaDBServer()
    server.start()
    started = time.perf_counter()
    try:
        with KafkaBroker() as broker, tempfile.TemporaryDirectory() as spool:
            seed = 7_000_001
            for run in range(RUNS):
                for row, make in rows.items():
                    pair = {}
                    order = ["shared", "per-member"] if run % 2 == 0 else ["per-member", "shared"]
                    for name in order:
                        seed += 1
                        events = make(seed)
                        kind = FanOutEventLogger if name == "shared" else PerMemberFanOut
                        pair[name] = side(kind, server, broker, spool, events)
                        del events
                        results[(row, name)].append(pair[name])
                    ratios[row].append(pair["per-member"] / pair["shared"])
                print(f"run {run + 1}/{RUNS}: " + ", ".join(
                    f"{row}: shared {results[(row, 'shared')][-1]:,.0f} ns / per-member "
                    f"{results[(row, 'per-member')][-1]:,.0f} ns" for row in rows),
                    file=sys.stderr)
    finally:
        server.cleanup()
    load = os.getloadavg()
    print(f"\nfan-out db,kafka: ns per log() call, median of {RUNS} runs (min-max); "
          f"{EVENTS:,} qb-mix and API / {EVENTS // 10:,} 20 KB events per side; "
          f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores; "
          f"{time.perf_counter() - started:.0f} s")
    print("| events | shared encoding (ns) | per-member (ns) | per-member / shared |")
    print("|---|---|---|---|")

    def cell(values):
        return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

    for row in rows:
        print(f"| {row} | {cell(results[(row, 'shared')])} | {cell(results[(row, 'per-member')])} "
              f"| {statistics.median(ratios[row]):.2f}x ({min(ratios[row]):.2f}-"
              f"{max(ratios[row]):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
