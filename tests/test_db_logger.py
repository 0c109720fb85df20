"""DBEventLogger against a real MariaDB (the `db` fixture): rows exactly as
upstream writes them, input validation, flush/close/stats, secrets, API
deny list, and many threads at once.  No mocks anywhere."""

import datetime
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import querybook_eventlog as qe
from querybook_eventlog import DBEventLogger, EventType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TS_MS = 1700000000123  # 2023-11-14 22:13:20.123 UTC


def rows(db, table="event_log"):
    """(created_at, uid, event_type, event_data dict) in insertion order.
    event_data is read as hex: the mariadb client's result charset may be
    utf8mb3, which would turn 4-byte characters into '?'."""
    out = []
    for created_at, uid, event_type, event_data in db.sql(
        f"SELECT created_at, uid, event_type, HEX(event_data) FROM `{table}` ORDER BY id"
    ):
        out.append((created_at, None if uid is None else int(uid), event_type,
                    None if event_data is None  # SQL NULL
                    else json.loads(bytes.fromhex(event_data).decode("utf-8"))))
    return out


@pytest.fixture
def make_logger(db, tmp_path):
    """DBEventLogger on the test server with a private spool dir; closed after."""
    made = []

    def make(**options):
        options.setdefault("spool_dir", str(tmp_path / "spool"))
        options.setdefault("flush_interval", 0.05)
        logger = DBEventLogger(options.pop("url", db.url), **options)
        made.append(logger)
        return logger

    yield make
    for logger in made:
        logger.close(timeout=10)


def test_rows_land_exactly_as_upstream_writes_them(db, make_logger):
    logger = make_logger()
    data = {"path": "/datadoc/1/", "component": "DataDocNavigator", "element": "create",
            "aux": {"n": 1, "f": 1.5, "none": None, "list": [1, "two", False]}}
    logger.log(uid=5, event_type=EventType.CLICK, event_data=data, timestamp=TS_MS)
    logger.log(uid=None, event_type="VIEW", event_data=None, timestamp=TS_MS + 1000)
    logger.log(uid=7, event_type=EventType.API, event_data={"route": "/x/"})
    assert logger.flush(timeout=30)
    got = rows(db)
    assert got[0] == ("2023-11-14 22:13:20", 5, "CLICK", data)
    assert got[1][:3] == ("2023-11-14 22:13:21", None, "VIEW")
    assert got[1][3] in ({}, None)  # None: SQL NULL once event_data=None encodes `null`
    created, uid, event_type, event_data = got[2]
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    logged_at = datetime.datetime.strptime(created, "%Y-%m-%d %H:%M:%S")
    assert abs((now - logged_at).total_seconds()) < 300  # UTC, not local time
    assert (uid, event_type, event_data) == (7, "API", {"route": "/x/"})
    assert len(got) == 3
    stats = logger.stats()
    assert stats["enqueued"] == 3 and stats["written"] == 3 and stats["batches"] >= 1
    assert stats["queue_bytes"] == 0 and stats["dropped"] == 0 and stats["last_error"] is None


def test_sql_and_quote_heavy_data_reads_back_verbatim(db, make_logger):
    logger = make_logger()
    nasty = [
        "'; DROP TABLE event_log; --",
        '" OR 1=1 --',
        "\\'\\\"\\\\",
        "back\\slash and \\n not a newline",
        "line\nbreak\ttab\r\x00nul",
        "ünïcödé — 雪 — 🎉",
        "%s %d {} ?",
        "`backticks`",
    ]
    data = {"values": nasty, **{f"k{i}'\"": value for i, value in enumerate(nasty)}}
    logger.log(uid=1, event_type=EventType.CLICK, event_data=data, timestamp=TS_MS)
    route = "/query/'; DELETE FROM user; --/\"x\"/"
    logger.log_api_request(uid=2, route=route, method="POST",
                           params={"q": "SELECT * FROM t WHERE a = 'b' -- \\"})
    logger.log_websocket_event(uid=3, route="/datadoc/'subscribe\"", args=["'", '"'],
                               kwargs={"x": "\\"})
    assert logger.flush(timeout=30)
    got = rows(db)
    assert got[0][3] == data
    assert got[1][2:] == ("API", {"method": "POST", "route": route,
                                  "params": {"q": "SELECT * FROM t WHERE a = 'b' -- \\"}})
    assert got[2][2:] == ("WEBSOCKET", {"route": "/datadoc/'subscribe\"", "args": ["'", '"'],
                                        "kwargs": {"x": "\\"}})
    assert db.count_events() == 3
    assert int(db.sql("SELECT COUNT(*) FROM `user`")[0][0]) == 100


@pytest.mark.parametrize(
    "bad, error",
    [
        ({"uid": True}, TypeError),
        ({"uid": 2**40}, (ValueError, OverflowError)),
        ({"uid": "5"}, TypeError),
        ({"event_type": "click"}, ValueError),
        ({"event_type": 3}, (TypeError, ValueError)),
        ({"event_data": object()}, TypeError),
        ({"event_data": {"x": object()}}, TypeError),
        ({"event_data": {"x": b"bytes"}}, TypeError),
        ({"timestamp": "now"}, TypeError),
        ({"timestamp": -1}, ValueError),
    ],
)
def test_bad_inputs_raise_and_write_nothing(db, make_logger, bad, error):
    logger = make_logger()
    call = {"uid": 1, "event_type": EventType.CLICK, "event_data": {"ok": 1}, **bad}
    with pytest.raises(error):
        logger.log(**call)
    assert logger.flush(timeout=10)
    assert db.count_events() == 0
    assert logger.stats()["enqueued"] == 0


def test_oversize_event_is_a_value_error(db, make_logger):
    logger = make_logger(max_event_bytes=1000)
    with pytest.raises(ValueError, match="max_event_bytes"):
        logger.log(uid=1, event_type="CLICK", event_data={"x": "y" * 2000})
    fits = {"x": "y" * (1000 - len('{"x":""}'))}
    logger.log(uid=1, event_type="CLICK", event_data=fits)
    assert logger.flush(timeout=10)
    assert [row[3] for row in rows(db)] == [fits]


def test_flush_close_and_stats(db, make_logger):
    logger = make_logger(batch_size=100)
    assert logger.flush(timeout=1)  # nothing logged yet
    for i in range(1050):
        logger.log(uid=1, event_type="VIEW", event_data={"i": i})
    assert logger.flush()
    stats = logger.stats()
    assert stats["written"] == 1050 and stats["enqueued"] == 1050
    assert stats["batches"] >= 11
    assert set(stats) == {"enqueued", "written", "batches", "retries", "reconnects", "spooled",
                          "replayed", "dead_lettered", "dropped", "queue_bytes", "last_error",
                          "last_error_at", "marker_table"}
    assert stats["last_error"] is None and stats["last_error_at"] is None
    assert stats["marker_table"] is True  # the fixture's schema has it
    logger.log(uid=1, event_type="VIEW", event_data={"i": "last"})
    logger.close()
    logger.close()  # idempotent
    assert logger.closed
    with pytest.raises(ValueError, match="closed"):
        logger.log(uid=1, event_type="VIEW", event_data={})
    assert db.count_events() == 1051  # close flushed what was pending


def test_sync_mode_writes_before_returning(db, make_logger):
    logger = make_logger(sync=True, flush_interval=60)
    logger.log(uid=3, event_type="CLICK", event_data={"sync": True})
    assert db.count_events() == 1


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_construct_without_connecting(tmp_path, durability):
    spool = tmp_path / "spool"
    # port 1 on loopback: refused at once, no DNS involved
    logger = DBEventLogger("mysql+pymysql://user:hunter2@127.0.0.1:1/qb",
                           spool_dir=str(spool), connect_timeout=1, backoff_max=0.2,
                           durability=durability)
    assert "hunter2" not in repr(logger)
    assert logger.stats()["enqueued"] == 0
    logger.log(uid=1, event_type="CLICK", event_data={"pending": 1})
    assert logger.flush(timeout=0.5) is False
    assert wait_for(lambda: logger.stats()["last_error"])
    logger.close(timeout=0)
    stats = logger.stats()
    assert stats["spooled"] == 1 and stats["dropped"] == 0
    assert stats["last_error"] and "hunter2" not in stats["last_error"]
    spooled = [name for name in os.listdir(spool) if name.endswith(".spool")]
    if durability == "process":  # kept in its journal chunk, not copied to a spool file
        from test_durable_journal import entries, journals

        assert spooled == []
        assert [found[4] for path in journals(str(spool)) for found in entries(path)] == [
            {"pending": 1}]
        return
    assert len(spooled) == 1
    line = json.loads(open(spool / spooled[0]).read())
    assert line["event_data"] == {"pending": 1} and line["uid"] == 1


def test_no_url_raises_at_log(monkeypatch):
    monkeypatch.delenv("DATABASE_CONN", raising=False)
    logger = DBEventLogger(spool_dir=None)
    with pytest.raises(RuntimeError, match="DATABASE_CONN"):
        logger.log(uid=1, event_type="CLICK", event_data={})
    assert logger.logger_name == "db"


def test_url_from_database_conn(db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_CONN", db.url)
    logger = DBEventLogger(spool_dir=str(tmp_path), sync=True)
    logger.log(uid=1, event_type="CLICK", event_data={"env": 1})
    logger.close()
    assert db.count_events() == 1


def test_bad_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError):
        DBEventLogger("postgres://u:p@h/db", spool_dir=None)
    with pytest.raises(ValueError, match="table"):
        DBEventLogger("mysql://u:p@h/db", table="event_log; DROP TABLE x", spool_dir=None)
    with pytest.raises(ValueError):
        DBEventLogger("mysql://u:p@h/db", batch_size=0, spool_dir=None)
    with pytest.raises(ValueError) as raised:
        DBEventLogger("mysql://u:s3cr3t@h:notaport/db", spool_dir=None)
    assert "s3cr3t" not in str(raised.value)


def test_password_never_shown(db, make_logger):
    logger = make_logger()
    assert db.password not in repr(logger) and db.password not in str(logger)
    assert repr(logger).startswith("<DBEventLogger mysql://qbel@127.0.0.1:")
    assert "table='event_log'" in repr(logger)
    wrong = db.url.replace("p%40ss", "wrong-p%40ss")
    assert wrong != db.url
    bad = make_logger(url=wrong, backoff_max=0.2)
    bad.log(uid=1, event_type="CLICK", event_data={})
    assert bad.flush(timeout=1) is False
    assert wait_for(lambda: bad.stats()["last_error"])
    stats = bad.stats()
    bad.close(timeout=0)
    assert "1045" in stats["last_error"]  # access denied, reported
    for text in (repr(bad), str(bad), str(stats)):
        assert db.password not in text and "wrong-p@ss" not in text


def test_log_api_request_uses_the_db_deny_list(db, make_logger):
    logger = make_logger()
    assert {"type": "prefix", "route": "/user", "method": "GET"} in logger._api_deny_list
    logger.log_api_request(uid=1, route="/user/5/", method="GET", params={})
    logger.log_api_request(uid=1, route="/admin/x/", method="POST", params={})
    logger.log_api_request(uid=1, route="/query_engine/", method="GET", params={})
    logger.log_api_request(uid=1, route="/user/5/", method="PUT", params={"a": "x" * 200})
    logger.log_api_request(uid=1, route="/datadoc/", method="POST", params={"n": {"s": "y" * 130}})
    assert logger.flush(timeout=10)
    got = [row[3] for row in rows(db)]
    assert got == [
        {"method": "PUT", "route": "/user/5/", "params": {"a": "x" * 128 + "..."}},
        {"method": "POST", "route": "/datadoc/", "params": {"n": {"s": "y" * 128 + "..."}}},
    ]


def test_many_threads_logging_at_once(db, make_logger):
    logger = make_logger(batch_size=500)
    threads, per_thread = 8, 2500
    barrier = threading.Barrier(threads)

    def work(t):
        barrier.wait()
        for i in range(per_thread):
            logger.log(uid=(i % 100) + 1, event_type="CLICK",
                       event_data={"t": t, "i": i, "pad": "x" * (i % 50)})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert logger.flush(timeout=60)
    assert db.count_events() == threads * per_thread
    distinct = db.sql("SELECT COUNT(DISTINCT JSON_VALUE(event_data, '$.t'), "
                      "JSON_VALUE(event_data, '$.i')) FROM event_log")
    assert int(distinct[0][0]) == threads * per_thread
    for _, uid, _, data in rows(db):  # none torn: every row parses and is consistent
        assert uid == data["i"] % 100 + 1 and data["pad"] == "x" * (data["i"] % 50)


def test_create_table_for_standalone_use(db, make_logger):
    db.sql("DROP TABLE IF EXISTS qbel_standalone; DROP TABLE IF EXISTS qbel_standalone_qbel_batches")
    logger = make_logger(table="qbel_standalone", create_table=True)
    logger.log(uid=12345, event_type="VIEW", event_data={"standalone": True}, timestamp=TS_MS)
    assert logger.flush(timeout=30)
    assert rows(db, "qbel_standalone") == [("2023-11-14 22:13:20", 12345, "VIEW",
                                            {"standalone": True})]
    db.sql("DROP TABLE qbel_standalone; DROP TABLE qbel_standalone_qbel_batches")


def test_exit_flushes_pending_events(db, tmp_path):
    script = f"""
import querybook_eventlog as qe
logger = qe.DBEventLogger({db.url!r}, spool_dir={str(tmp_path)!r}, flush_interval=60)
for i in range(300):
    logger.log(uid=1, event_type="CLICK", event_data={{"i": i}})
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=60,
                   env={**os.environ, "PYTHONPATH": REPO})
    assert db.count_events() == 300


def test_subclass_and_weakref(db, make_logger, tmp_path):
    import weakref

    class Mine(DBEventLogger):
        pass

    logger = Mine(db.url, spool_dir=str(tmp_path), sync=True)
    assert weakref.ref(logger)() is logger
    assert repr(logger).startswith("<Mine mysql://")
    logger.log(uid=1, event_type="CLICK", event_data={"sub": 1})
    logger.close()
    assert db.count_events() == 1
    assert isinstance(qe.get_event_logger_class("db"), DBEventLogger)


def test_housekeeping_prunes_old_markers_and_stale_temporaries(db, make_logger, tmp_path):
    """Once connected, the writer deletes batch markers older than 7 days and
    '.tmp-' spool files older than an hour that nobody holds locked."""
    import fcntl
    import time

    spool = tmp_path / "spool"
    spool.mkdir()
    old = time.time() - 2 * 3600
    stale, fresh, locked = (spool / f".tmp-qbel-{name}.spool" for name in ("a", "b", "c"))
    for path in (stale, fresh, locked):
        path.write_text("")
    os.utime(stale, (old, old))
    os.utime(locked, (old, old))
    holder = open(locked)
    fcntl.flock(holder, fcntl.LOCK_EX)
    logger = make_logger()
    logger.log(uid=1, event_type="CLICK", event_data={"first": True})
    assert logger.flush(timeout=30)
    db.sql("INSERT INTO event_log_qbel_batches VALUES "
           "('old-marker', UTC_TIMESTAMP() - INTERVAL 30 DAY), "
           "('recent-marker', UTC_TIMESTAMP() - INTERVAL 1 DAY)")
    # a new logger (a new writer thread) prunes right after connecting
    second = make_logger()
    second.log(uid=1, event_type="CLICK", event_data={"second": True})
    assert second.flush(timeout=30)
    markers = {row[0] for row in db.sql("SELECT batch_id FROM event_log_qbel_batches")}
    assert "old-marker" not in markers and "recent-marker" in markers
    assert not stale.exists()
    assert fresh.exists() and locked.exists()
    holder.close()


def test_idle_writer_wakes_for_a_new_event_without_flush(db, make_logger):
    """An idle writer must start the flush_interval clock on the first new
    event (it used to sleep until the next orphan scan, a minute later)."""
    logger = make_logger(flush_interval=0.05)
    logger.log(uid=1, event_type="CLICK", event_data={"n": 1})
    assert logger.flush(timeout=30)
    time.sleep(0.3)  # let the writer go idle
    logger.log(uid=1, event_type="CLICK", event_data={"n": 2})
    assert wait_for(lambda: db.count_events() == 2, timeout=20)
