"""DBEventLogger ingest on a 3-node MariaDB Galera cluster on loopback
(tests/galera_cluster.py) beside a standalone private MariaDB, in one run.
Run from the repo root as root: python3 bench/bench_galera.py [--quick]

Sides, each with its own fresh, varied Querybook-shaped events
(bench/qb_events.py, uids 1..100) built before its timer starts, on emptied
tables, with the logger's DEFAULT options:

  standalone     one logger writing to the standalone server
  galera 1 node  one logger writing to node 1 (a single-host URL)
  galera 3 nodes three loggers at once, one per node, a third of the events
                 each, from three threads
  galera 3-host  one logger with the three-host URL (writes to node 1; what
                 failover costs when nothing fails: nothing)

rows/s from the first log() to the last flush() returning (all committed on
the node written to; Galera applies on the others asynchronously, and the
lag column is how long after that every node held every row).  RUNS
interleaved runs, the side order rotating from run to run; medians with
min-max; a ratio is the median of per-run ratios to the standalone side of
the same run.  Three nodes and the standalone server share this machine's
cores: the cluster's numbers are a floor, not what separate machines give.
"""

import os
import statistics
import threading
import time

from _common import QUICK, fresh_events  # first: it sets up the import path
from galera_cluster import GaleraCluster, galera_available
from mariadb_server import MariaDBServer
from querybook_eventlog import DBEventLogger

RUNS = 3 if QUICK else 5
EVENTS = 8000 if QUICK else 30000


def ingest(urls, events):
    """rows/s through one logger per URL at once (events split evenly)."""
    loggers = [DBEventLogger(url, spool_dir=None) for url in urls]
    shares = [events[i::len(urls)] for i in range(len(urls))]

    def feed(logger, share):
        for uid, event_type, data in share:
            logger.log(uid=uid, event_type=event_type, event_data=data)
        if not logger.flush(timeout=600):
            raise RuntimeError(f"flush timed out: {logger.stats()}")

    threads = [threading.Thread(target=feed, args=pair) for pair in zip(loggers, shares)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    written = sum(logger.stats()["written"] for logger in loggers)
    for logger in loggers:
        logger.close()
    if written != len(events):
        raise RuntimeError(f"wrote {written} of {len(events)}")
    return len(events) / seconds


def replication_lag(cluster, total):
    """Seconds until every node holds `total` rows."""
    began = time.perf_counter()
    for node in cluster.nodes:
        while int(node.sql("SELECT COUNT(*) FROM event_log")[0][0]) < total:
            time.sleep(0.02)
    return time.perf_counter() - began


def main():
    why = galera_available()
    if why:
        raise SystemExit(f"bench_galera: {why}")
    standalone = MariaDBServer().start()
    cluster = GaleraCluster(3).start()
    print(f"cluster Synced in {cluster.start_seconds:.1f} s; {RUNS} runs of {EVENTS} events "
          f"per side (machine load: {os.getloadavg()[0]:.2f})")
    sides = {
        "standalone": lambda: [standalone.url],
        "galera 1 node": lambda: [cluster.nodes[0].url()],
        "galera 3 nodes": lambda: [node.url() for node in cluster.nodes],
        "galera 3-host": lambda: [cluster.url()],
    }
    rates = {name: [] for name in sides}
    lags = {name: [] for name in sides}
    ratios = {name: [] for name in sides}
    try:
        for run in range(RUNS):
            names = list(sides)
            order = names[run % len(names):] + names[:run % len(names)]
            this_run = {}
            for name in order:
                events = fresh_events(run * 100 + names.index(name), EVENTS)
                if name == "standalone":
                    standalone.reset_events()
                else:
                    cluster.reset_events()
                    cluster.wait_synced()
                this_run[name] = ingest(sides[name](), events)
                rates[name].append(this_run[name])
                if name != "standalone":
                    lags[name].append(replication_lag(cluster, EVENTS))
            for name in names:
                ratios[name].append(this_run[name] / this_run["standalone"])
    finally:
        cluster.cleanup()
        standalone.cleanup()
    print(f"{'side':16} {'rows/s median (min-max)':>30} {'vs standalone':>14} "
          f"{'lag to all nodes s':>19}")
    for name in sides:
        values = rates[name]
        lag = f"{statistics.median(lags[name]):.2f}" if lags[name] else "-"
        print(f"{name:16} {statistics.median(values):>12,.0f} ({min(values):,.0f}-"
              f"{max(values):,.0f}) {statistics.median(ratios[name]):>13.2f}x {lag:>19}")


if __name__ == "__main__":
    main()
