"""KafkaEventLogger benchmark against a private Tansu broker
(tests/kafka_broker.py, through the ApiVersions shim both sides use), side by
side in one run.  Run from the repo root: python3 bench/bench_kafka.py [--quick]

The baseline is the best a Python user would write: confluent_kafka.Producer
(librdkafka 2.16 from its wheel) with acks=all and idempotence, the same
envelope {created_at, uid, event_type, event_data} encoded with orjson, the
uid as key and an event_id header, produce() in a plain loop (poll() on a
full queue, else every 1000 messages; one delivery callback for all) and
flush() at the end.  Ours: KafkaEventLogger with its default
options (Debian's librdkafka 2.0.2).  Every side gets its own fresh, varied
Querybook-shaped events (bench/qb_events.py), built before its timer starts,
to a fresh 3-partition topic.  RUNS runs; in each the two sides run back to
back, the order alternating, so a pair sees the same machine.  Figures are
medians over the runs (min-max); a ratio is the median of the per-pair
ratios.

  caller   ns per log() / per (orjson.dumps + produce()) call as the caller
           sees it: median over blocks of 100 calls, during the throughput
           run below.                                  target: >= 2x lower
  ingest   events/s from the first call until flush() returns (every
           message acknowledged by the broker).        target: >= 1.0x
  txn      KafkaEventLogger(transactional_id=...) (each batch one
           transaction) beside the idempotent default, in the same pairs:
           caller cost and ingest, ratio default / transactional.
  memory   in a FRESH subprocess, MEMORY_EVENTS events logged while the
           broker is down (nothing listens on the port) with
           max_queue_bytes 32 MiB: peak RSS growth vs max_queue_bytes, and
           how many events went to the spool.
"""

from __future__ import annotations

import datetime
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import orjson  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

import qb_events  # noqa: E402
from kafka_broker import KafkaBroker  # noqa: E402
from querybook_eventlog import KafkaEventLogger  # noqa: E402

QUICK = "--quick" in sys.argv
RUNS = 3 if QUICK else 5
EVENTS = 20_000 if QUICK else 100_000
MEMORY_EVENTS = 200_000 if QUICK else 500_000
BLOCK = 100
PRODUCER_CONFIG = {"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                   "message.timeout.ms": 30000, "log_level": 0}


def fresh_events(seed):
    rng = random.Random(seed)
    return [(rng.randint(1, 100), event_type, data)
            for _, event_type, data in qb_events.mix(rng, EVENTS)]


def median_block_ns(block_ns):
    return statistics.median(block_ns) / BLOCK


def run_ours(broker, topic, events, spool, **options):
    logger = KafkaEventLogger(broker.bootstrap, topic, spool_dir=spool, **options)
    log = logger.log
    blocks = []
    clock = time.perf_counter_ns
    began = time.perf_counter()
    for start in range(0, len(events), BLOCK):
        t0 = clock()
        for uid, event_type, data in events[start:start + BLOCK]:
            log(uid, event_type, data)
        blocks.append(clock() - t0)
    assert logger.flush(timeout=300)
    elapsed = time.perf_counter() - began
    stats = logger.stats()
    logger.close()
    assert stats["written"] == len(events), stats
    return median_block_ns(blocks), len(events) / elapsed


def run_baseline(broker, topic, events):
    failures = []

    def on_delivery(error, message):
        if error is not None:
            failures.append(error)

    # one delivery callback for all messages (no per-message closure), and
    # poll() only every 1000 messages or when the local queue is full
    producer = Producer({"bootstrap.servers": broker.bootstrap, "on_delivery": on_delivery,
                         **PRODUCER_CONFIG})

    produce, poll, dumps = producer.produce, producer.poll, orjson.dumps
    now = datetime.datetime.now
    utc = datetime.timezone.utc
    prefix = uuid.uuid4().hex
    blocks = []
    clock = time.perf_counter_ns
    sequence = 0
    began = time.perf_counter()
    for start in range(0, len(events), BLOCK):
        t0 = clock()
        for uid, event_type, data in events[start:start + BLOCK]:
            value = dumps({"created_at": now(utc).isoformat(), "uid": uid,
                           "event_type": event_type, "event_data": data})
            sequence += 1
            while True:
                try:
                    produce(topic, value, str(uid).encode(),
                            headers=[("event_id", f"{prefix}-{sequence}")])
                    break
                except BufferError:
                    poll(0.01)
            if sequence % 1000 == 0:
                poll(0)
        blocks.append(clock() - t0)
    assert producer.flush(300) == 0
    elapsed = time.perf_counter() - began
    assert not failures, failures[:3]
    return median_block_ns(blocks), len(events) / elapsed


MEMORY_SCRIPT = r"""
import os, random, socket, sys, tempfile
sys.path[:0] = [{root!r}, {here!r}]
import qb_events
from querybook_eventlog import KafkaEventLogger

def rss_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])

rng = random.Random(7)
events = [(rng.randint(1, 100), t, d) for _, t, d in qb_events.mix(rng, {count})]
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
probe.close()  # nothing listens there: the broker is down
spool = tempfile.mkdtemp()
logger = KafkaEventLogger(f"127.0.0.1:{{port}}", "events", spool_dir=spool,
                          max_queue_bytes=32 * 1024 * 1024, connect_timeout=1)
base = rss_kib("VmRSS")
for uid, event_type, data in events:
    logger.log(uid, event_type, data)
peak = rss_kib("VmHWM")
stats = logger.stats()
logger.close(timeout=0)
print(base, peak, stats["spooled"], stats["dropped"], stats["enqueued"])
"""


def memory_bound():
    script = MEMORY_SCRIPT.format(root=ROOT, here=HERE, count=MEMORY_EVENTS)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    base, peak, spooled, dropped, enqueued = map(int, result.stdout.split())
    return (peak - base) / 1024, spooled, dropped, enqueued


def spread(values, unit_format):
    return (f"{unit_format(statistics.median(values))} "
            f"({unit_format(min(values))}-{unit_format(max(values))})")


def main():
    print(f"bench_kafka: {RUNS} runs x {EVENTS} events, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Tansu broker via the shim")
    ours_ns, base_ns, ours_rate, base_rate, caller_ratio, rate_ratio = [], [], [], [], [], []
    txn_ns, txn_rate, txn_caller_ratio, txn_rate_ratio = [], [], [], []
    with KafkaBroker() as broker, tempfile.TemporaryDirectory() as spool:
        os.chmod(spool, 0o700)
        for run in range(RUNS):
            pair = {}
            sides = ["ours", "baseline", "txn"]
            sides = sides if run % 2 == 0 else sides[::-1]
            for side in sides:
                topic = f"bench_{side}_{run}_{uuid.uuid4().hex[:8]}"
                broker.create_topic(topic, partitions=3)
                events = fresh_events(1000 * run + sides.index(side) + 1)
                if side == "ours":
                    pair[side] = run_ours(broker, topic, events, spool)
                elif side == "txn":
                    pair[side] = run_ours(broker, topic, events, spool,
                                          transactional_id=f"bench-{topic}")
                else:
                    pair[side] = run_baseline(broker, topic, events)
            t_ns, t_rate = pair["txn"]
            txn_ns.append(t_ns)
            txn_rate.append(t_rate)
            (o_ns, o_rate), (b_ns, b_rate) = pair["ours"], pair["baseline"]
            ours_ns.append(o_ns)
            base_ns.append(b_ns)
            ours_rate.append(o_rate)
            base_rate.append(b_rate)
            caller_ratio.append(b_ns / o_ns)
            rate_ratio.append(o_rate / b_rate)
            txn_caller_ratio.append(t_ns / o_ns)
            txn_rate_ratio.append(o_rate / t_rate)
            print(f"  run {run + 1}: caller {o_ns:.0f} vs {b_ns:.0f} ns (txn {t_ns:.0f}), "
                  f"ingest {o_rate:,.0f} vs {b_rate:,.0f} ev/s (txn {t_rate:,.0f})")
    ns = lambda v: f"{v:,.0f} ns"  # noqa: E731
    rate = lambda v: f"{v:,.0f}/s"  # noqa: E731
    caller_median = statistics.median(caller_ratio)
    rate_median = statistics.median(rate_ratio)
    print()
    print("| measure | KafkaEventLogger | confluent_kafka.Producer + orjson | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| caller cost per event | {spread(ours_ns, ns)} | {spread(base_ns, ns)} | "
          f"{caller_median:.2f}x lower | >= 2x lower: {'met' if caller_median >= 2 else 'NOT met'} |")
    print(f"| sustained ingest (first call to all acked) | {spread(ours_rate, rate)} | "
          f"{spread(base_rate, rate)} | {rate_median:.2f}x | "
          f">= 1.0x: {'met' if rate_median >= 1.0 else 'NOT met'} |")
    print()
    print("| transactional_id= (each batch one transaction) | transactional | idempotent default "
          "| cost |")
    print("|---|---|---|---|")
    print(f"| caller cost per event | {spread(txn_ns, ns)} | {spread(ours_ns, ns)} | "
          f"{statistics.median(txn_caller_ratio):.2f}x the default's |")
    print(f"| sustained ingest | {spread(txn_rate, rate)} | {spread(ours_rate, rate)} | "
          f"{statistics.median(txn_rate_ratio):.2f}x slower |")
    growth, spooled, dropped, enqueued = memory_bound()
    print()
    print(f"memory, broker down: {enqueued:,} events logged with max_queue_bytes 32 MiB: peak RSS "
          f"growth {growth:.1f} MiB; {spooled:,} spooled, {dropped} dropped")


if __name__ == "__main__":
    main()
