"""DBEventLogger benchmark against a private MariaDB (tests/mariadb_server.py),
side by side in one run.  Run from the repo root: python3 bench/bench_db.py [--quick] [--memory-only]

Every side gets its own fresh, varied Querybook-shaped events
(bench/qb_events.py; uids 1..100, the users the schema holds), built before
its timer starts, on an emptied table.  RUNS interleaved runs: in each run
every ingest baseline, in an order that rotates from run to run, is paired
with a run of ours right next to it (ours first in even runs, second in odd
ones), so a pair sees the same machine; then the ORM.  Figures are medians
over the runs with min-max; a ratio is the median of the per-pair ratios,
and a target is met or not met by that median.

  caller   DBEventLogger.log() as the caller sees it, median ns per call over
           blocks of 100 calls, taken during the ingest runs below (the writer
           thread draining concurrently; per run, the median of its runs), vs upstream's SQLAlchemy ORM path:
           add, commit, refresh per event (SQLAlchemy + PyMySQL), ORM_ROWS
           events per run.                 targets: <= 1 us; >= 500x
  ingest   rows/s from the first log() to flush() returning (all committed),
           DBEventLogger with its DEFAULT options (batch_size 2000,
           max_queue_bytes 64 MiB), vs
             - orjson + MySQLdb executemany x1000 from a thread, one commit
               per batch (encoding in the caller)         target >= 2.5x
             - orjson + the mariadb connector's executemany x1000 from a
               thread (that connector binds arrays: MariaDB's bulk protocol)
             - LOAD DATA LOCAL INFILE of the same rows, pre-encoded to a
               file before the timer starts               target >= 0.8x
             - the ceiling: bench/bulk_ceiling.c, compiled now against
               Connector/C: one connection, pre-encoded rows, the writer's
               own statement and bulk array binding (STMT_ATTR_ARRAY_SIZE),
               2000 rows per execute and commit, nothing else.
  memory   in a FRESH subprocess, MEMORY_EVENTS fresh events logged with
           max_queue_bytes 32 MiB while the server is down: peak RSS growth
           vs max_queue_bytes, what was spooled and dropped, and the RSS
           growth left once memory is released: (a) server unreachable,
           after close(timeout=0); (b) the server started after the fill,
           after flush() drained the queue and again after close().
           --memory-only prints this table alone.
"""

import gc
import json
import os
import queue
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

from _common import HERE, QUICK, fresh_events  # first: it sets up the import path

import querybook_eventlog as qe

RUNS = 3 if QUICK else 9
INGEST_ROWS = 30_000 if QUICK else 100_000
ORM_ROWS = 100 if QUICK else 300
CALLER_BLOCK = 100
PYTHON_BATCH = 1000
CEILING_BATCH = 2000  # DBEventLogger's default batch_size
MEMORY_EVENTS = 300_000
MEMORY_QUEUE = 32 << 20
INSERT_COLUMNS = "(created_at, uid, event_type, event_data)"


def fresh_rows(seed, count):
    """[(uid, EventType, event_data)], new objects on every call."""
    return [(uid, qe.EventType[event_type], data)
            for uid, event_type, data in fresh_events(seed, count)]


def utc_now_text():
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


# ---- the sides ---------------------------------------------------------------


def ingest_ours(server, rows, spool):
    """(rows/s, median ns per log() over blocks, stats)."""
    logger = qe.DBEventLogger(server.url, spool_dir=spool)  # default options
    logger.log(1, qe.EventType.CLICK, {"warm": 1})
    assert logger.flush(timeout=60)
    server.reset_events()
    log = logger.log
    clock = time.perf_counter_ns
    blocks = []
    gc.collect()
    t0 = time.perf_counter()
    for start in range(0, len(rows), CALLER_BLOCK):
        block = rows[start:start + CALLER_BLOCK]
        b0 = clock()
        for uid, event_type, data in block:
            log(uid, event_type, data)
        blocks.append((clock() - b0) / len(block))
    assert logger.flush(timeout=300)
    elapsed = time.perf_counter() - t0
    stats = logger.stats()
    logger.close()
    assert server.count_events() == len(rows), server.count_events()
    return len(rows) / elapsed, statistics.median(blocks), stats


def orm_caller(server, rows):
    """Median ns per event of upstream's path: ORM add, commit, refresh."""
    try:
        import pymysql  # noqa: F401
        import sqlalchemy as sa
        from sqlalchemy.orm import Session, declarative_base
    except ImportError:
        return None
    import datetime

    Base = declarative_base()

    class EventLog(Base):  # Querybook's models/event_log.py, in effect
        __tablename__ = "event_log"
        id = sa.Column(sa.Integer, primary_key=True, autoincrement=True)
        created_at = sa.Column(sa.DateTime)
        uid = sa.Column(sa.Integer)
        event_type = sa.Column(sa.Enum("API", "WEBSOCKET", "VIEW", "CLICK"))
        event_data = sa.Column(sa.JSON)

    engine = sa.create_engine(server.url)
    samples = []
    with Session(engine) as session:
        session.execute(sa.text("SELECT 1"))  # connect before timing
        gc.collect()
        for uid, event_type, data in rows:
            t0 = time.perf_counter_ns()
            row = EventLog(created_at=datetime.datetime.utcnow(), uid=uid,  # noqa: DTZ003
                           event_type=event_type.value, event_data=data)
            session.add(row)
            session.commit()
            session.refresh(row)
            samples.append(time.perf_counter_ns() - t0)
    engine.dispose()
    assert server.count_events() == len(rows)
    return statistics.median(samples)


def threaded_writer(server, rows, connect, sql):
    """Encode in the caller (orjson), a thread drains a queue with
    executemany in batches of PYTHON_BATCH, one commit per batch."""
    import orjson

    connection = connect()
    pending = queue.SimpleQueue()

    def drain():
        cursor = connection.cursor()
        batch = []
        while True:
            item = pending.get()
            if item is not None:
                batch.append(item)
            if batch and (item is None or len(batch) >= PYTHON_BATCH):
                cursor.executemany(sql, batch)
                connection.commit()
                batch = []
            if item is None:
                return

    thread = threading.Thread(target=drain)
    thread.start()
    dumps, put = orjson.dumps, pending.put
    gc.collect()
    t0 = time.perf_counter()
    for uid, event_type, data in rows:
        put((utc_now_text(), uid, event_type.value, dumps(data)))
    put(None)
    thread.join()
    elapsed = time.perf_counter() - t0
    connection.close()
    assert server.count_events() == len(rows)
    return len(rows) / elapsed


def ingest_mysqldb(server, rows):
    try:
        import MySQLdb
        import orjson  # noqa: F401
    except ImportError:
        return None
    return threaded_writer(
        server, rows,
        lambda: MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                                password=server.password, database=server.database,
                                charset="utf8mb4"),
        f"INSERT INTO event_log {INSERT_COLUMNS} VALUES (%s, %s, %s, %s)")


def ingest_mariadb_connector(server, rows):
    try:
        import mariadb
        import orjson  # noqa: F401
    except ImportError:
        return None

    def connect():
        connection = mariadb.connect(host=server.host, port=server.port, user=server.user,
                                     password=server.password, database=server.database)
        connection.autocommit = False
        return connection

    return threaded_writer(server, rows, connect,
                           f"INSERT INTO event_log {INSERT_COLUMNS} VALUES (?, ?, ?, ?)")


def tsv_escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def ingest_load_data(server, rows, workdir):
    """LOAD DATA LOCAL INFILE of the same rows (file written before timing)."""
    try:
        import MySQLdb
    except ImportError:
        return None
    now = utc_now_text()
    path = os.path.join(workdir, "rows.tsv")
    with open(path, "w", encoding="utf-8") as out:
        for uid, event_type, data in rows:
            out.write(f"{now}\t{uid}\t{event_type.value}\t{tsv_escape(qe.dumps(data).decode())}\n")
    statement = (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE event_log "
                 "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' " + INSERT_COLUMNS)
    connection = MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                                 password=server.password, database=server.database,
                                 charset="utf8mb4", local_infile=1)
    cursor = connection.cursor()
    t0 = time.perf_counter()
    cursor.execute(statement)
    connection.commit()
    elapsed = time.perf_counter() - t0
    connection.close()
    os.unlink(path)
    assert server.count_events() == len(rows)
    return len(rows) / elapsed


def build_ceiling(workdir):
    """Compile bench/bulk_ceiling.c; None when there is no compiler or Connector/C."""
    try:
        flags = subprocess.run(["mariadb_config", "--cflags", "--libs"], capture_output=True,
                               text=True, check=True).stdout.split()
        binary = os.path.join(workdir, "bulk_ceiling")
        subprocess.run(["cc", "-O2", "-o", binary, os.path.join(HERE, "bulk_ceiling.c"), *flags],
                       check=True, capture_output=True, text=True)
        return binary
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"bench_db: no ceiling ({getattr(error, 'stderr', error)})", file=sys.stderr)
        return None


def ingest_ceiling(server, rows, binary, workdir):
    if binary is None:
        return None
    path = os.path.join(workdir, "rows.bin")
    with open(path, "wb") as out:
        for uid, event_type, data in rows:
            kind = event_type.value.encode()
            encoded = qe.dumps(data)
            out.write(struct.pack("<iB", uid, len(kind)) + kind
                      + struct.pack("<I", len(encoded)) + encoded)
    result = subprocess.run(
        [binary, server.host, str(server.port), server.user, server.database, path,
         str(CEILING_BATCH)],
        env={**os.environ, "BENCH_DB_PASSWORD": server.password},
        capture_output=True, text=True, check=True)
    os.unlink(path)
    count, seconds = result.stdout.split()
    assert int(count) == len(rows) == server.count_events()
    return len(rows) / float(seconds)


# ---- memory, in a fresh process ---------------------------------------------


def rss():
    """(VmRSS, RssAnon) in bytes."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0]) * 1024
    return values.get("VmRSS", 0), values.get("RssAnon", 0)


def settled_rss(seconds=2.0):
    """RSS once it stops falling (the writer thread gives memory back just
    after the queue empties), polled for at most `seconds`."""
    value = rss()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss()
        if now[0] >= value[0]:
            return now
        value = now
    return value


def memory_child(mode, spool):
    """Runs in a new interpreter: nothing but this happened in it before.
    mode "down": fill with the server unreachable, then close(timeout=0)
    (the queue goes to the spool).  mode "drain": the same with a private
    server that is stopped while filling, then started: flush() drains the
    queue and replays the spool, then close()."""
    server = None
    if mode == "drain":
        from mariadb_server import MariaDBServer

        server = MariaDBServer()  # not started yet: its port refuses connections
        server.start()
        server.stop()
        url = server.url
    else:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            url = f"mysql+pymysql://qbel:x@127.0.0.1:{probe.getsockname()[1]}/querybook"
    try:
        result = fill_and_release(url, spool, server)
    finally:
        if server is not None:
            server.cleanup()
    print(json.dumps(result))


def fill_and_release(url, spool, server):
    logger = qe.DBEventLogger(url, spool_dir=spool, max_queue_bytes=MEMORY_QUEUE)
    chunk_size, seed = 10_000, 1
    rows = fresh_rows(seed, chunk_size)
    before = rss()
    peak = list(before)
    peak_queue = 0
    logged = 0
    while logged < MEMORY_EVENTS:
        for uid, event_type, data in rows:
            logger.log(uid, event_type, data)
        logged += len(rows)
        now = rss()
        peak = [max(a, b) for a, b in zip(peak, now)]
        peak_queue = max(peak_queue, logger.stats()["queue_bytes"])
        seed += 1
        rows = None
        rows = fresh_rows(seed, min(chunk_size, MEMORY_EVENTS - logged))
    rows = None
    gc.collect()
    stats = logger.stats()
    drained = None
    if server is not None:
        server.start()
        assert logger.flush(timeout=600), logger.stats()
        drained = settled_rss()[0] - before[0]
        assert server.count_events() == logged, (server.count_events(), logged)
    logger.close(timeout=0 if server is None else 60)
    closed = settled_rss()[0] - before[0]
    return {"logged": logged, "rss_growth": peak[0] - before[0],
            "anon_growth": peak[1] - before[1], "peak_queue_bytes": peak_queue,
            "after_drain": drained, "after_close": closed,
            "spooled": stats["spooled"], "dropped": stats["dropped"],
            "enqueued": stats["enqueued"], "last_error": str(stats.get("last_error"))}


def memory_rows():
    """The memory child in both modes, each in a fresh interpreter."""
    results = {}
    for mode in ("down", "drain"):
        spool = tempfile.mkdtemp(prefix="qbel-bench-spool-")
        try:
            result = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child",
                                     mode, spool], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"memory child ({mode}) failed:\n{result.stderr}")
        finally:
            shutil.rmtree(spool, ignore_errors=True)
        results[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    return results


# ---- report -------------------------------------------------------------------


def spread(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def paired(ours, theirs):
    return [a / b for a, b in zip(ours, theirs) if a is not None and b is not None]


def verdict(ratios, target, higher=True):
    if not ratios:
        return "n/a"
    median = statistics.median(ratios)
    met = median >= target if higher else median <= target
    return (f"{median:.2f}× [{min(ratios):.2f}–{max(ratios):.2f}] "
            f"(target ≥ {target:g}×: **{'met' if met else 'NOT met'}**)")


def print_memory(memory):
    down, drain, limit = memory["down"], memory["drain"], MEMORY_QUEUE
    mib = lambda value: f"{value / 2**20:.1f} MiB"  # noqa: E731
    print("| memory, fresh process, max_queue_bytes 32 MiB | server unreachable "
          "| server down, then started |")
    print("|---|---:|---:|")
    print(f"| events logged | {down['logged']:,} | {drain['logged']:,} |")
    print(f"| peak RSS growth (anonymous part) | {mib(down['rss_growth'])} "
          f"({mib(down['anon_growth'])}) | {mib(drain['rss_growth'])} "
          f"({mib(drain['anon_growth'])}) |")
    print(f"| peak queue_bytes seen | {mib(down['peak_queue_bytes'])} "
          f"| {mib(drain['peak_queue_bytes'])} |")
    print(f"| **peak RSS growth ÷ max_queue_bytes** | {down['rss_growth'] / limit:.2f} "
          f"| {drain['rss_growth'] / limit:.2f} |")
    print(f"| RSS growth left after the queue drained | — | {mib(drain['after_drain'])} |")
    print(f"| RSS growth left after close() | {mib(down['after_close'])} "
          f"| {mib(drain['after_close'])} |")
    print(f"| spooled; dropped | {down['spooled']:,}; {down['dropped']:,} "
          f"| {drain['spooled']:,}; {drain['dropped']:,} |")


def main():
    if "--memory-child" in sys.argv:
        index = sys.argv.index("--memory-child")
        memory_child(sys.argv[index + 1], sys.argv[index + 2])
        return 0
    # the memory row first, while nothing else runs: its own fresh process
    memory = memory_rows()
    if "--memory-only" in sys.argv:
        print_memory(memory)
        return 0

    from mariadb_server import MariaDBServer

    started = time.perf_counter()
    server = MariaDBServer()
    server.start()
    workdir = tempfile.mkdtemp(prefix="qbel-bench-db-")
    baselines = ["mysqldb", "mariadb", "load", "ceiling"]
    # every baseline's sample has its own run of ours right next to it
    results = {name: [] for name in ["ours", "caller", "stats", "orm"] + baselines}
    paired_ours = {name: [] for name in baselines}
    caller_run = []  # per run: the median of ours' log() medians in that run
    try:
        binary = build_ceiling(workdir)
        spool = os.path.join(workdir, "spool")
        functions = {
            "ours": lambda rows: ingest_ours(server, rows, spool),
            "mysqldb": lambda rows: ingest_mysqldb(server, rows),
            "mariadb": lambda rows: ingest_mariadb_connector(server, rows),
            "load": lambda rows: ingest_load_data(server, rows, workdir),
            "ceiling": lambda rows: ingest_ceiling(server, rows, binary, workdir),
        }
        seed = 1_000_003

        def side(name):
            nonlocal seed
            seed += 1
            server.reset_events()
            rows = fresh_rows(seed, INGEST_ROWS)
            value = functions[name](rows)
            del rows
            if name != "ours":
                return value
            rate, caller_ns, stats = value
            results["ours"].append(rate)
            results["caller"].append(caller_ns)
            results["stats"].append(stats)
            return rate

        for run in range(RUNS):
            # baselines in a rotating order; within each pair, who goes first alternates
            order = baselines[run % len(baselines):] + baselines[:run % len(baselines)]
            for name in order:
                if run % 2 == 0:
                    ours_rate, theirs = side("ours"), side(name)
                else:
                    theirs, ours_rate = side(name), side("ours")
                results[name].append(theirs)
                paired_ours[name].append(ours_rate)
            server.reset_events()
            seed += 1
            results["orm"].append(orm_caller(server, fresh_rows(seed, ORM_ROWS)))
            caller_run.append(statistics.median(results["caller"][-len(order):]))
            print(f"run {run + 1}/{RUNS}: "
                  + ", ".join(f"ours {paired_ours[name][-1]:,.0f} / {name} {results[name][-1]:,.0f}"
                              for name in baselines if results[name][-1] is not None)
                  + f" rows/s; log() {caller_run[-1]:.0f} ns, ORM "
                  + (f"{results['orm'][-1] / 1000:,.0f} us" if results["orm"][-1] else "n/a"),
                  file=sys.stderr)
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    rate = lambda value: f"{value:,.0f}"  # noqa: E731
    spooled = sum(stats["spooled"] for stats in results["stats"])
    print(f"Python {sys.version.split()[0]}; private MariaDB "
          f"(innodb_flush_log_at_trx_commit=2, binlog off, buffer pool 256M) on this machine; "
          f"{RUNS} interleaved runs, {INGEST_ROWS:,} fresh events per side per run "
          f"({ORM_ROWS} for the ORM); in each run every baseline is paired with a run of "
          f"ours right next to it; median [min–max] over runs; ratios are medians of "
          f"the per-pair ratios\n")
    print("| caller side | DBEventLogger.log() | upstream ORM add/commit/refresh | speed-up |")
    print("|---|---:|---:|---|")
    caller_met = statistics.median(caller_run) <= 1000
    print(f"| ns per event | {spread(caller_run, lambda v: f'{v:,.0f}')} "
          f"(target ≤ 1,000: **{'met' if caller_met else 'NOT met'}**) "
          f"| {spread(results['orm'], lambda v: f'{v:,.0f}')} "
          f"| {verdict(paired(results['orm'], caller_run), 500)} |")
    print()
    print("| sustained ingest, log() to committed | rows/s | DBEventLogger ÷ this |")
    print("|---|---:|---|")
    print(f"| **DBEventLogger** (defaults: batch_size 2000, max_queue_bytes 64 MiB; "
          f"{len(results['ours'])} runs, {spooled} events spooled in all) "
          f"| {spread(results['ours'], rate)} | — |")
    rows = [
        ("orjson + MySQLdb executemany ×1000 from a thread", "mysqldb", 2.5),
        ("orjson + mariadb connector executemany ×1000 (bulk binding) from a thread",
         "mariadb", None),
        ("LOAD DATA LOCAL INFILE, file written beforehand", "load", 0.8),
        ("ceiling: C loop, pre-encoded rows, bulk binding ×2000, one connection",
         "ceiling", None),
    ]
    for label, name, target in rows:
        ratios = paired(paired_ours[name], results[name])
        if target is None:
            text = (f"{statistics.median(ratios):.2f}× [{min(ratios):.2f}–{max(ratios):.2f}]"
                    if ratios else "n/a")
        else:
            text = verdict(ratios, target)
        print(f"| {label} | {spread(results[name], rate)} | {text} |")
    print()
    print_memory(memory)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
