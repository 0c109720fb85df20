"""DBEventLogger ingest on a 3-node MariaDB Galera cluster on loopback
(tests/galera_cluster.py) beside a standalone private MariaDB, in one run.
Run from the repo root as root: python3 bench/bench_galera.py [--quick] [--failover-only]

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

Then the failover part (alone with --failover-only): a logger logs a fresh
event every 2 ms (never waiting on anything), the node it writes to is
killed with SIGKILL, and a watcher polls the survivors (one pymysql
connection each) for (a) when Galera dropped the dead node
(wsrep_cluster_size 2 on every survivor), (b) when the first event logged
after the kill is committed on a survivor (polled by id); (c) is the
longest log() call from the kill until the producer stops (log() must never
block; beside it the longest in the second before the kill).  (b)-(a) is
how soon after Galera dropped the dead node the logger writes to another
one.  The killed node rejoins between runs (a full state
transfer).  For contrast, the same with a single-host URL: the node is
started again at once, the logger holds the events meanwhile (its queue,
the spool past its bound) and writes again once it
is back (its backoff decides how soon after the node is Synced).  Every run
then counts its ids on a node: none lost, none doubled, or the bench fails.
"""

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid

import pymysql

from _common import QUICK, fresh_events  # first: it sets up the import path
from galera_cluster import GaleraCluster, galera_available
from mariadb_server import MariaDBServer
from querybook_eventlog import DBEventLogger

RUNS = 3 if QUICK else 5
EVENTS = 8000 if QUICK else 30000
FAILOVER_ONLY = "--failover-only" in sys.argv
LOG_EVERY_S = 0.002
WAIT_S = 120.0


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


class Producer:
    """A thread logging a fresh event every LOG_EVERY_S, each with its id
    ($.n) and this run's tag ($.run); it records when each log() call began
    and how long it took."""

    def __init__(self, logger, tag, seed):
        self.logger, self.tag = logger, tag
        self.events = fresh_events(seed, 5000)
        self.began = []      # monotonic start of log() call n
        self.took = []       # its duration, s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce)
        self._thread.start()

    def _produce(self):
        n = 0
        while not self._stop.is_set() and n < 1_000_000:
            uid, event_type, data = self.events[n % len(self.events)]
            began = time.monotonic()
            self.logger.log(uid=uid, event_type=event_type,
                            event_data={"run": self.tag, "n": n, "event": data})
            self.took.append(time.monotonic() - began)
            self.began.append(began)
            n += 1
            time.sleep(LOG_EVERY_S)

    def first_after(self, moment):
        """The id of the first log() call that began after `moment` (waits
        for one)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for n in range(len(self.began) - 1, -1, -1):
                if self.began[n] <= moment:
                    if n + 1 < len(self.began):
                        return n + 1
                    break
            time.sleep(0.01)
        raise RuntimeError("the producer logged nothing after the kill")

    def longest_call(self, since, until=float("inf")):
        return max(took for began, took in zip(self.began, self.took) if since <= began < until)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return len(self.took)


class Watch:
    """A root connection over a node's socket, made again after an error;
    query() answers None while the node is down."""

    def __init__(self, node):
        self.node, self.connection = node, None

    def query(self, statement):
        try:
            if self.connection is None:
                self.connection = pymysql.connect(unix_socket=self.node.socket, user="root",
                                                  database="querybook", autocommit=True,
                                                  connect_timeout=2, read_timeout=5)
            with self.connection.cursor() as cursor:
                cursor.execute(statement)
                return cursor.fetchall()
        except pymysql.err.Error:
            self.close()
            return None

    def close(self):
        if self.connection is not None:
            try:
                self.connection.close()
            except pymysql.err.Error:
                pass
            self.connection = None


def committed(watch, tag, n):
    rows = watch.query(f"SELECT COUNT(*) FROM event_log WHERE JSON_VALUE(event_data, '$.n') = {n}"
                       f" AND JSON_VALUE(event_data, '$.run') = '{tag}'")
    return rows is not None and rows[0][0] > 0


def cluster_size(watch):
    rows = watch.query("SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
    return int(rows[0][1]) if rows else None


def check_exactly_once(node, tag, produced):
    counts = node.count_ids(run=tag)
    missing = produced - len(counts)
    doubled = sum(1 for seen in counts.values() if seen > 1)
    if (missing, doubled) != (0, 0) or set(counts) != set(range(produced)):
        raise RuntimeError(f"{node.name}: {missing} ids missing, {doubled} doubled")


def failover_run(cluster, run, single_host):
    """One kill -9 of the node in use; the timings of this run, s."""
    cluster.ensure_all_synced()
    cluster.reset_events()
    cluster.wait_synced()
    victim = cluster.nodes[0]
    survivors = [node for node in cluster.nodes if node is not victim]
    watches = [Watch(node) for node in ([victim] if single_host else survivors)]
    tag = uuid.uuid4().hex[:12]
    spool = tempfile.mkdtemp(prefix="qbel-bench-spool-")
    logger = DBEventLogger(victim.url() if single_host else cluster.url(), spool_dir=spool)
    producer = Producer(logger, tag, seed=1000 + run * 2 + single_host)
    result = {}
    try:
        victim_watch = Watch(victim)
        deadline = time.monotonic() + WAIT_S
        while not committed(victim_watch, tag, 0):  # the logger writes to the first host
            if time.monotonic() > deadline:
                raise RuntimeError("nothing committed on the first node")
            time.sleep(0.05)
        victim_watch.close()
        steady_from = time.monotonic()
        time.sleep(1.0)  # a steady state before the kill, its log() calls the baseline
        killed_at = time.monotonic()
        victim.kill()
        if single_host:
            victim.start()  # rejoins while the logger spools
        first = producer.first_after(killed_at)
        dropped_at = synced_at = landed_at = None
        deadline = killed_at + WAIT_S
        while landed_at is None or (dropped_at is None and not single_host) or (
                single_host and synced_at is None):
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"run {run}: not within {WAIT_S:.0f} s of the kill "
                                   f"(dropped {dropped_at}, landed {landed_at}): "
                                   f"{logger.stats()}")
            if not single_host and dropped_at is None and all(
                    cluster_size(watch) == 2 for watch in watches):
                dropped_at = now
            if single_host and synced_at is None and victim.is_synced():
                synced_at = now
            if landed_at is None and any(committed(watch, tag, first) for watch in watches):
                landed_at = now
            time.sleep(0.02)
        time.sleep(0.5)
    finally:
        produced = producer.stop()
        for watch in watches:
            watch.close()
    if not logger.flush(timeout=WAIT_S):
        raise RuntimeError(f"flush timed out: {logger.stats()}")
    stats = logger.stats()
    logger.close()
    result["longest log() ms, 1 s before the kill"] = (
        producer.longest_call(steady_from, killed_at) * 1000)
    result["longest log() ms, after the kill (c)"] = producer.longest_call(killed_at) * 1000
    result["spooled"] = stats["spooled"]
    if single_host:
        result["node Synced again"] = synced_at - killed_at
        result["first post-kill event committed"] = landed_at - killed_at
        result["written again after Synced"] = landed_at - synced_at
    else:
        result["Galera dropped the dead node (a)"] = dropped_at - killed_at
        result["first post-kill event committed (b)"] = landed_at - killed_at
        result["(b)-(a)"] = landed_at - dropped_at
        rejoin_began = time.monotonic()
        cluster.restart(victim)
        result["rejoin (state transfer)"] = time.monotonic() - rejoin_began
    check_exactly_once(survivors[0] if not single_host else victim, tag, produced)
    return result


def failover(cluster):
    print(f"\nfailover: kill -9 of the node in use while a logger logs an event every "
          f"{LOG_EVERY_S * 1000:.0f} ms, {RUNS} runs per URL (machine load: "
          f"{os.getloadavg()[0]:.2f}); seconds after the kill unless said")
    for single_host, title in ((False, "three-host URL"), (True, "single-host URL (restarted "
                                                                "at once)")):
        results = [failover_run(cluster, run, single_host) for run in range(RUNS)]
        print(f"  {title}:")
        for name in results[0]:
            values = [result[name] for result in results]
            digits = 0 if name == "spooled" else 2
            print(f"    {name:40} {statistics.median(values):>9.{digits}f} "
                  f"({min(values):.{digits}f}-{max(values):.{digits}f})")
    print(f"  machine load at the end: {os.getloadavg()[0]:.2f}")


def main():
    why = galera_available()
    if why:
        raise SystemExit(f"bench_galera: {why}")
    if FAILOVER_ONLY:
        cluster = GaleraCluster(3).start()
        print(f"cluster Synced in {cluster.start_seconds:.1f} s")
        try:
            failover(cluster)
        finally:
            cluster.cleanup()
        return
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
        standalone.cleanup()
        print(f"{'side':16} {'rows/s median (min-max)':>30} {'vs standalone':>14} "
              f"{'lag to all nodes s':>19}")
        for name in sides:
            values = rates[name]
            lag = f"{statistics.median(lags[name]):.2f}" if lags[name] else "-"
            print(f"{name:16} {statistics.median(values):>12,.0f} ({min(values):,.0f}-"
                  f"{max(values):,.0f}) {statistics.median(ratios[name]):>13.2f}x {lag:>19}")
        failover(cluster)
    finally:
        cluster.cleanup()
        standalone.cleanup()


if __name__ == "__main__":
    main()
