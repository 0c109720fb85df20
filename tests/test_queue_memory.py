"""The DB logger's queue: its byte bound counts what the allocator really
takes, nothing is lost or written twice when 16 threads overflow a full
queue into the spool (through the in-memory overflow the writer thread
spools, and the callers' own slow path when that is full too), and memory
goes back to the system once the queue is emptied."""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

import querybook_eventlog as qe
from querybook_eventlog import DBEventLogger

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# event_record's header (next, created_at, uid, flags, json_length) and the NUL
RECORD_HEADER = 32 + 1


def unreachable_url():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return f"mysql://qbel:x@127.0.0.1:{probe.getsockname()[1]}/querybook"


def test_queue_bytes_counts_the_allocator_overhead(tmp_path):
    data = {"path": "/datadoc/1/", "note": "x" * 100}
    json_length = len(qe.dumps(data))
    count = 500
    # "memory": with "process" the queue holds stubs (see test_durable_journal)
    logger = DBEventLogger(unreachable_url(), spool_dir=str(tmp_path), max_queue_bytes=1 << 24,
                           backoff_initial=5, backoff_max=5, durability="memory")
    try:
        for _ in range(count):
            logger.log(uid=1, event_type="CLICK", event_data=data)
        stats = logger.stats()
        requested = count * (RECORD_HEADER + json_length)
        # every block costs at least its size plus the allocator's 8-byte
        # header, rounded to 16: never more than 32 bytes over the request
        assert stats["queue_bytes"] >= requested + 8 * count, (stats, requested)
        assert stats["queue_bytes"] <= requested + 32 * count, (stats, requested)
        assert stats["spooled"] == 0 and stats["dropped"] == 0
    finally:
        logger.close(timeout=0)
    assert logger.stats()["spooled"] == count


def test_queue_bytes_never_exceed_max_queue_bytes(tmp_path):
    limit = 64 << 10
    logger = DBEventLogger(unreachable_url(), spool_dir=str(tmp_path), max_queue_bytes=limit,
                           backoff_initial=5, backoff_max=5)
    try:
        peak = 0
        for i in range(3000):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": i, "pad": "y" * (i % 300)})
            peak = max(peak, logger.stats()["queue_bytes"])
        assert 0 < peak <= limit
        assert logger.flush(timeout=0) is False
    finally:
        logger.close(timeout=0)
    stats = logger.stats()
    assert stats["spooled"] == 3000 and stats["dropped"] == 0, stats


def test_sixteen_threads_overflowing_lose_and_double_nothing(db, tmp_path):
    """The server is down while 16 threads log into a 32 KiB queue (almost
    everything overflows: most into the in-memory overflow the writer thread
    spools, some through the callers' own appends when it is full); then
    it comes back: every event is in the table exactly once."""
    threads, per_thread = 16, 400
    db.stop()
    logger = DBEventLogger(db.url, spool_dir=str(tmp_path), max_queue_bytes=32 << 10,
                           backoff_initial=0.05, backoff_max=0.2, connect_timeout=2)
    failures = []

    def work(index):
        try:
            for i in range(per_thread):
                logger.log(uid=1, event_type="CLICK",
                           event_data={"seq": index * per_thread + i, "pad": "z" * (i % 200)})
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    try:
        workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not failures
        middle = logger.stats()
        assert middle["spooled"] > 0 and middle["dropped"] == 0, middle
        db.restart()
        assert logger.flush(timeout=120), logger.stats()
    finally:
        logger.close(timeout=30)
        db.ensure_running()
    stats = logger.stats()
    total = threads * per_thread
    assert stats["dropped"] == 0 and stats["enqueued"] == total, stats
    rows = db.sql("SELECT JSON_EXTRACT(event_data, '$.seq') FROM event_log")
    seqs = sorted(int(row[0]) for row in rows)
    assert seqs == list(range(total))


RSS_CHILD = r"""
import json, socket, sys, time
import querybook_eventlog as qe

def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

def settled():
    value = rss()
    for _ in range(20):
        time.sleep(0.1)
        now = rss()
        if now >= value:
            return now
        value = now
    return value

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    url = f"mysql://qbel:x@127.0.0.1:{probe.getsockname()[1]}/querybook"
limit = int(sys.argv[2]) << 20
logger = qe.DBEventLogger(url, spool_dir=sys.argv[1], max_queue_bytes=limit,
                          backoff_initial=5, backoff_max=5, durability=sys.argv[3])
pad = "p" * 150
before = rss()
peak = before
for i in range(400_000):
    logger.log(uid=1, event_type="CLICK", event_data={"seq": i, "pad": pad})
    if i % 10_000 == 0:
        peak = max(peak, rss())
peak = max(peak, rss())
queued = logger.stats()["queue_bytes"]
held = 400_000 - logger.stats()["spooled"]
logger.close(timeout=0)
print(json.dumps({"before": before, "peak": peak, "after_close": settled(), "queued": queued,
                  "held": held, "json_length": len(qe.dumps({"seq": 399_999, "pad": pad})),
                  "spooled": logger.stats()["spooled"], "dropped": logger.stats()["dropped"]}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
@pytest.mark.parametrize("durability", ["memory", "process"])
def test_rss_goes_back_after_close_and_stays_under_the_bound(tmp_path, durability):
    """A fresh process fills a 48 MiB queue with the server unreachable:
    RSS grows by no more than the bound plus a few MiB, and close(timeout=0)
    (the queue goes to the spool) gives most of it back to the system.
    With durability="process" the journal's mapped chunks count in RSS too:
    they take 3/4 of the bound, the queue's stubs (headers only) the rest."""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("ASan's quarantine and shadow memory make RSS meaningless")
    limit_mib = 48
    result = subprocess.run([sys.executable, "-c", RSS_CHILD, str(tmp_path), str(limit_mib),
                             durability],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth = figures["peak"] - figures["before"]
    left = figures["after_close"] - figures["before"]
    assert figures["dropped"] == 0 and figures["spooled"] == 400_000, figures
    # the queue did fill: it held at least half the bound's worth of events
    # (with "process" its stubs hold the headers only: queue_bytes is small)
    assert figures["held"] * figures["json_length"] > (limit_mib << 20) // 2, figures
    if durability == "memory":
        assert figures["queued"] > (limit_mib << 20) // 2, figures
    assert growth <= (limit_mib + 8) << 20, figures
    assert left <= growth // 4, figures
