"""DBEventLogger benchmark, side by side in one run against a private MariaDB
(tests/mariadb_server.py).  Run from the repo root: python3 bench/bench_db.py

  caller    median ns per DBEventLogger.log() on the event mix, vs an
            upstream-equivalent SQLAlchemy ORM path (add, commit, refresh per
            event; needs sqlalchemy + pymysql)                 target >= 500x
  ingest    rows/s from log() to committed (flush), vs the ceiling LOAD DATA
            LOCAL INFILE of the same rows (target >= 0.8x) and a careful
            pure-Python writer: orjson + MySQLdb executemany in batches of
            1000 from a thread (needs mysqlclient + orjson) (target >= 2.5x)
  memory    RSS growth while the server is down stays under max_queue_bytes
            plus a small constant
"""

import datetime
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]

import querybook_eventlog as qe  # noqa: E402
from mariadb_server import MariaDBServer  # noqa: E402

INGEST_ROWS = 200_000
CALLER_ROWS = 200_000
ORM_ROWS = 400
CALLER_BLOCK = 100


def event_mix(count, seed=7):
    """Querybook-like events: clicks/views, API calls, websocket events."""
    rng = random.Random(seed)
    components = ["DataDocNavigator", "QueryEditor", "SearchBar", "BoardItem", "TableView"]
    events = []
    for _ in range(count):
        kind = rng.random()
        uid = rng.randint(1, 100)
        if kind < 0.6:
            events.append((uid, qe.EventType.CLICK if kind < 0.4 else qe.EventType.VIEW, {
                "path": f"/datadoc/{rng.randint(1, 5000)}/",
                "component": rng.choice(components),
                "element": rng.choice(["run_button", "title", "cell", None]),
                "aux": {"cell_id": rng.randint(1, 1e6), "mode": "edit"},
            }))
        elif kind < 0.9:
            events.append((uid, qe.EventType.API, {
                "method": rng.choice(["GET", "POST", "PUT"]),
                "route": f"/datadoc/{rng.randint(1, 5000)}/cell/",
                "params": {"query": "SELECT * FROM logs WHERE dt = '2023-11-14' " * 2,
                           "engine_id": rng.randint(1, 9), "limit": 100},
            }))
        else:
            events.append((uid, qe.EventType.WEBSOCKET, {
                "route": "/datadoc/subscribe", "args": [rng.randint(1, 5000)], "kwargs": {},
            }))
    return events


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def caller_side(server, events, spool):
    logger = qe.DBEventLogger(server.url, spool_dir=spool, max_queue_bytes=1 << 30)
    log = logger.log
    samples = []
    clock = time.perf_counter_ns
    for start in range(0, len(events), CALLER_BLOCK):
        block = events[start:start + CALLER_BLOCK]
        t0 = clock()
        for uid, event_type, data in block:
            log(uid, event_type, data)
        samples.append((clock() - t0) / len(block))
    logger.flush(timeout=120)
    logger.close()
    return statistics.median(samples)


def orm_side(server, events):
    try:
        import sqlalchemy as sa
        from sqlalchemy.orm import Session, declarative_base
    except ImportError:
        return None
    try:
        import pymysql  # noqa: F401
    except ImportError:
        return None
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
        for uid, event_type, data in events:
            t0 = time.perf_counter_ns()
            row = EventLog(created_at=datetime.datetime.utcnow(), uid=uid,
                           event_type=event_type.value, event_data=data)
            session.add(row)
            session.commit()
            session.refresh(row)
            samples.append(time.perf_counter_ns() - t0)
    engine.dispose()
    return statistics.median(samples)


def ingest_ours(server, events, spool):
    server.reset_events()
    logger = qe.DBEventLogger(server.url, spool_dir=spool, max_queue_bytes=1 << 30,
                              batch_size=2000)
    logger.log(1, "CLICK", {"warm": 1})
    logger.flush(timeout=60)
    server.reset_events()
    log = logger.log
    t0 = time.perf_counter()
    for uid, event_type, data in events:
        log(uid, event_type, data)
    assert logger.flush(timeout=300)
    elapsed = time.perf_counter() - t0
    logger.close()
    assert server.count_events() == len(events)
    return len(events) / elapsed


def tsv_escape(text):
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def ingest_load_data(server, events):
    """The ceiling: LOAD DATA LOCAL INFILE of the same rows (file prepared
    beforehand, so only the load is timed)."""
    server.reset_events()
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    fd, path = tempfile.mkstemp(suffix=".tsv")
    with os.fdopen(fd, "w") as out:
        for uid, event_type, data in events:
            out.write(f"{now}\t{uid}\t{event_type.value}\t"
                      f"{tsv_escape(qe.dumps(data).decode())}\n")
    statement = (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE event_log "
                 "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' "
                 "(created_at, uid, event_type, event_data)")
    try:
        try:
            import MySQLdb
        except ImportError:
            MySQLdb = None
        if MySQLdb is not None:
            connection = MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                                         password=server.password, database=server.database,
                                         charset="utf8mb4", local_infile=1)
            cursor = connection.cursor()
            t0 = time.perf_counter()
            cursor.execute(statement)
            connection.commit()
            elapsed = time.perf_counter() - t0
            connection.close()
        else:
            command = ["mariadb", "--no-defaults", "--local-infile=1", "-h", server.host,
                       "-P", str(server.port), "--protocol=TCP", "-u", server.user,
                       server.database, "-e", statement]
            env = {**os.environ, "MYSQL_PWD": server.password}
            t0 = time.perf_counter()
            subprocess.run(command, check=True, env=env)
            elapsed = time.perf_counter() - t0
    finally:
        os.unlink(path)
    assert server.count_events() == len(events)
    return len(events) / elapsed


def ingest_python(server, events):
    """A careful pure-Python writer: encode in the caller, a thread drains
    a queue with executemany in batches of 1000, one commit per batch."""
    try:
        import MySQLdb
        import orjson
    except ImportError:
        return None
    server.reset_events()
    connection = MySQLdb.connect(host=server.host, port=server.port, user=server.user,
                                 password=server.password, database=server.database,
                                 charset="utf8mb4")
    pending = queue.SimpleQueue()
    sql = ("INSERT INTO event_log (created_at, uid, event_type, event_data) "
           "VALUES (%s, %s, %s, %s)")

    def drain():
        cursor = connection.cursor()
        batch = []
        while True:
            item = pending.get()
            if item is not None:
                batch.append(item)
            if batch and (item is None or len(batch) >= 1000):
                cursor.executemany(sql, batch)
                connection.commit()
                batch = []
            if item is None:
                return

    thread = threading.Thread(target=drain)
    thread.start()
    t0 = time.perf_counter()
    for uid, event_type, data in events:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        pending.put((created, uid, event_type.value, orjson.dumps(data)))
    pending.put(None)
    thread.join()
    elapsed = time.perf_counter() - t0
    connection.close()
    assert server.count_events() == len(events)
    return len(events) / elapsed


def memory_while_down(server, events, spool):
    """RSS growth while the server is down and far more than max_queue_bytes
    is logged (the rest overflows to the spool)."""
    limit = 32 << 20
    server.kill()
    logger = qe.DBEventLogger(server.url, spool_dir=spool, max_queue_bytes=limit,
                              connect_timeout=1, backoff_max=0.5)
    before = rss_bytes()
    peak = before
    logged = 0
    for _ in range(3):
        for uid, event_type, data in events:
            logger.log(uid, event_type, data)
            logged += 1
            if logged % 20000 == 0:
                peak = max(peak, rss_bytes())
    peak = max(peak, rss_bytes())
    stats = logger.stats()
    logger.close(timeout=0)
    server.start()
    return limit, peak - before, stats


def main():
    events = event_mix(max(INGEST_ROWS, CALLER_ROWS))
    server = MariaDBServer()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as spool:
            ours_ns = caller_side(server, events[:CALLER_ROWS], spool)
            orm_ns = orm_side(server, events[:ORM_ROWS])
            ours_rate = ingest_ours(server, events[:INGEST_ROWS], spool)
            load_rate = ingest_load_data(server, events[:INGEST_ROWS])
            python_rate = ingest_python(server, events[:INGEST_ROWS])
            limit, growth, stats = memory_while_down(server, events[:100_000], spool)
    finally:
        server.cleanup()

    def ratio(value, target):
        if value is None:
            return "n/a"
        verdict = "met" if value >= target else "NOT met"
        return f"{value:.2f}x (target >= {target}x: {verdict})"

    print("\n| measure | DBEventLogger | baseline | ratio |")
    print("|---|---|---|---|")
    print(f"| caller-side log() median | {ours_ns:.0f} ns | "
          f"{'n/a' if orm_ns is None else f'{orm_ns / 1000:.0f} us'} (SQLAlchemy ORM add/commit/refresh) | "
          f"{ratio(None if orm_ns is None else orm_ns / ours_ns, 500)} |")
    print(f"| sustained ingest, log() to committed | {ours_rate:,.0f} rows/s | "
          f"{load_rate:,.0f} rows/s (LOAD DATA LOCAL INFILE, ceiling) | "
          f"{ours_rate / load_rate:.2f}x (target >= 0.8x) |")
    python_ratio = None if python_rate is None else ours_rate / python_rate
    print(f"| sustained ingest | {ours_rate:,.0f} rows/s | "
          f"{'n/a' if python_rate is None else f'{python_rate:,.0f} rows/s'} "
          f"(orjson + MySQLdb executemany x1000, thread) | {ratio(python_ratio, 2.5)} |")
    print(f"| RSS growth, server down, {3 * 100_000:,} events logged | "
          f"{growth / 2**20:.1f} MiB | max_queue_bytes {limit / 2**20:.0f} MiB | "
          f"{'under' if growth < limit + (16 << 20) else 'OVER'} limit + 16 MiB "
          f"(spooled {stats['spooled']:,}, dropped {stats['dropped']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
