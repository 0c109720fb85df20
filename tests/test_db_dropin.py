"""DBEventLogger as a drop-in inside Querybook: a DML-only database user (no
DDL at runtime; the marker table is the operator's, with a loud warning and
at-least-once delivery while it is missing), event_data of any JSON value
(None -> SQL NULL), the server's max_allowed_packet instead of a 1 MiB limit,
and construction that resolves, parses and creates nothing.  Real MariaDB
servers throughout (tests/mariadb_server.py), no mocks."""

import glob
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from mariadb_server import MariaDBServer, marker_table_ddl
from querybook_eventlog import DBEventLogger, _settings
from querybook_eventlog._url import parse_database_url

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNREACHABLE = "mysql://u:hunter2@127.0.0.1:1/db"
MARKER = "event_log_qbel_batches"
MIB = 1 << 20


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def tables(server):
    return sorted(row[0] for row in server.sql("SHOW TABLES"))


def seq_counts(server, table="event_log"):
    """{seq: number of rows} of event_data.seq."""
    return {int(seq): int(count) for seq, count in server.sql(
        f"SELECT JSON_VALUE(event_data, '$.seq'), COUNT(*) FROM `{table}` "
        f"WHERE JSON_VALUE(event_data, '$.seq') IS NOT NULL GROUP BY 1")}


def marker_warnings(caplog):
    return [record for record in caplog.records
            if record.levelno == logging.WARNING and MARKER in record.getMessage()]


def kill_connections(server, user):
    for (connection_id,) in server.sql(
            f"SELECT id FROM information_schema.processlist WHERE user = '{user}'"):
        try:
            server.sql(f"KILL {connection_id}")
        except Exception:  # noqa: BLE001 - it may have gone by itself
            pass


@pytest.fixture
def dml_server(fresh_mariadb):
    """A private server whose schema lacks the marker table, and a URL for a
    user with Querybook's production grants (SELECT, INSERT, UPDATE, DELETE)."""
    fresh_mariadb.sql(f"DROP TABLE {MARKER}")
    return fresh_mariadb, fresh_mariadb.dml_only_url()


# ---- 1. no DDL at runtime -------------------------------------------------


def test_marker_table_ddl_is_exported_and_matches_the_fixture_schema(db):
    ddl = DBEventLogger.marker_table_ddl()
    assert ddl == DBEventLogger.marker_table_ddl("event_log") == marker_table_ddl()
    assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS `{MARKER}` (")
    for part in ("batch_id VARCHAR(64) NOT NULL", "committed_at DATETIME NOT NULL",
                 "PRIMARY KEY (batch_id)", "INDEX ix_event_log_qbel_batches_committed_at "
                 "(committed_at)", "ENGINE=InnoDB", "CHARSET=ascii"):
        assert part in ddl
    assert "`t_qbel_batches`" in DBEventLogger.marker_table_ddl(table="t")
    with pytest.raises(ValueError):
        DBEventLogger.marker_table_ddl("x; DROP TABLE event_log")
    # the schema the tests' server was made with has exactly these columns
    columns = db.sql(f"SELECT column_name, column_type, is_nullable FROM "
                     f"information_schema.columns WHERE table_schema = DATABASE() AND "
                     f"table_name = '{MARKER}' ORDER BY ordinal_position")
    assert columns == [["batch_id", "varchar(64)", "NO"], ["committed_at", "datetime", "NO"]]


def test_dml_only_user_delivers_without_marker_table_and_warns_once(dml_server, tmp_path,
                                                                     caplog):
    server, url = dml_server
    before = tables(server)
    assert MARKER not in before
    caplog.set_level(logging.WARNING, logger="querybook_eventlog")
    logger = DBEventLogger(url, spool_dir=str(tmp_path), flush_interval=0.01, batch_size=100)
    assert logger.stats()["marker_table"] is None  # not connected yet
    for seq in range(500):
        logger.log(uid=seq % 100 + 1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=60)
    stats = logger.stats()
    assert stats["written"] == 500 and stats["marker_table"] is False
    # the startup pruning of old markers tolerated the missing table
    assert stats["last_error"] is None and stats["dropped"] == 0 and stats["spooled"] == 0
    assert seq_counts(server) == {seq: 1 for seq in range(500)}
    for _ in range(3):
        logger.log(uid=1, event_type="CLICK", event_data={"more": True})
        assert logger.flush(timeout=30)
        logger.stats()
    assert tables(server) == before  # no DDL ran, none could
    warnings = marker_warnings(caplog)
    assert len(warnings) == 1, [record.getMessage() for record in caplog.records]
    message = warnings[0].getMessage()
    assert marker_table_ddl() in message  # the one statement to run
    assert "at-least-once" in message and "dml:p@ss" not in message

    # the operator creates it; the next connection finds it: exactly-once again
    server.sql(marker_table_ddl())
    kill_connections(server, "qbel_dml")
    for seq in range(500, 600):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=60)
    assert wait_for(lambda: logger.stats()["marker_table"] is True)
    assert int(server.sql(f"SELECT COUNT(*) FROM {MARKER}")[0][0]) >= 1
    assert seq_counts(server) == {seq: 1 for seq in range(600)}
    logger.close(timeout=10)
    assert len(marker_warnings(caplog)) == 1


def test_without_marker_an_ambiguous_commit_is_retried_then_exactly_once(dml_server, tmp_path,
                                                                        monkeypatch, caplog):
    """No marker: every batch whose COMMIT reply is lost is written again
    (at-least-once: nothing lost, duplicates possible).  Once the table
    exists, the reconnect after the next cut finds it: exactly-once."""
    server, url = dml_server
    caplog.set_level(logging.WARNING, logger="querybook_eventlog")
    monkeypatch.setenv("QBEL_TEST_DROP_AFTER_COMMIT", "2")
    logger = DBEventLogger(url, spool_dir=str(tmp_path), batch_size=50, flush_interval=0.01,
                           backoff_initial=0.01, backoff_max=0.1)
    monkeypatch.delenv("QBEL_TEST_DROP_AFTER_COMMIT")
    for seq in range(1000):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=120)
    counts = seq_counts(server)
    assert set(counts) == set(range(1000))  # every event delivered
    assert all(count >= 1 for count in counts.values())
    assert logger.stats()["marker_table"] is False

    server.sql(marker_table_ddl())
    for seq in range(1000, 2000):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=120)
    # the first cut after the table appeared may still retry one batch that
    # went without a marker; wait until batches carry markers, then check a
    # range written entirely with them
    assert wait_for(lambda: logger.stats()["marker_table"] is True)
    for seq in range(2000, 3000):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq})
    assert logger.flush(timeout=120)
    counts = seq_counts(server)
    assert {seq: counts.get(seq) for seq in range(2000, 3000)} == {
        seq: 1 for seq in range(2000, 3000)}
    assert logger.stats()["reconnects"] >= 2
    logger.close(timeout=10)
    assert len(marker_warnings(caplog)) == 1


def test_writer_never_creates_a_marker_table_without_create_table(db, tmp_path, caplog):
    """Even a user allowed to create tables gets none created: the schema is
    the operator's."""
    db.sql("DROP TABLE IF EXISTS other_events_qbel_batches; DROP TABLE IF EXISTS other_events; "
           "CREATE TABLE other_events LIKE event_log")
    try:
        caplog.set_level(logging.WARNING, logger="querybook_eventlog")
        logger = DBEventLogger(db.url, table="other_events", spool_dir=str(tmp_path), sync=True)
        logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
        assert "other_events_qbel_batches" not in tables(db)
        assert logger.stats()["marker_table"] is False
        logger.close()
        assert db.count_events("other_events") == 1
        assert len([r for r in caplog.records if "other_events_qbel_batches" in r.getMessage()]) == 1
    finally:
        db.sql("DROP TABLE IF EXISTS other_events")


def test_create_table_creates_both_tables_with_the_exported_ddl(db, tmp_path):
    db.sql("DROP TABLE IF EXISTS qbel_alone; DROP TABLE IF EXISTS qbel_alone_qbel_batches")
    try:
        logger = DBEventLogger(db.url, table="qbel_alone", create_table=True,
                               spool_dir=str(tmp_path), sync=True)
        logger.log(uid=123456, event_type="VIEW", event_data={"seq": 1})
        assert logger.stats()["marker_table"] is True
        logger.close()
        indexes = db.sql("SELECT DISTINCT index_name FROM information_schema.statistics WHERE "
                         "table_schema = DATABASE() AND table_name = 'qbel_alone_qbel_batches' "
                         "ORDER BY 1")
        assert indexes == [["ix_qbel_alone_qbel_batches_committed_at"], ["PRIMARY"]]
        assert db.count_events("qbel_alone_qbel_batches") == 1
    finally:
        db.sql("DROP TABLE IF EXISTS qbel_alone; DROP TABLE IF EXISTS qbel_alone_qbel_batches")


def test_replay_without_marker_table_still_delivers(dml_server, tmp_path):
    server, url = dml_server
    from querybook_eventlog import _core

    line = ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":1,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n')
    with open(tmp_path / "qbel-20200101000000-1-00000000000000aa.spool", "w") as out:
        out.writelines(line % seq for seq in range(1500))
    assert _core._replay_spool(parse_database_url(url), str(tmp_path), "event_log") == 1500
    assert seq_counts(server) == {seq: 1 for seq in range(1500)}
    assert MARKER not in tables(server)


# ---- 2. event_data of any JSON value; None -> SQL NULL ----------------------


def spool_line(uid, data, batch=""):
    return ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":%s,"event_type":"VIEW",'
            '"batch":"%s","event_data":%s}\n' % (json.dumps(uid), batch, data))


def stored(server, table="event_log"):
    """(uid, event_data as JSON text or None for SQL NULL) in id order."""
    return [(None if uid is None else int(uid),
             None if data is None else json.loads(bytes.fromhex(data).decode()))
            for uid, data in server.sql(f"SELECT uid, HEX(event_data) FROM `{table}` ORDER BY id")]


@pytest.mark.parametrize("path", ["bulk", "text"])
def test_replayed_null_event_data_is_sql_null_in_every_insert_path(db, tmp_path, monkeypatch,
                                                                  path):
    """Spool lines keep `null`; the insert maps it to SQL NULL: in the bulk
    binding, the multi-row text INSERT, and the row-by-row retry that a
    rejected row (uid 999 is not a user) forces; the dead letter keeps null."""
    from querybook_eventlog import _core

    if path == "text":
        monkeypatch.setenv("QBEL_TEST_TEXT_INSERT", "1")
    values = ["null", "[1,\"two\",null]", "\"just a string\"", "42", "1.5e3", "true",
              "{\"nested\":{\"x\":null}}", "null"]
    spool = tmp_path / "spool"
    spool.mkdir()
    with open(spool / "qbel-20200101000000-1-00000000000000ab.spool", "w") as out:
        out.writelines(spool_line(1, value) for value in values)
    with open(spool / "qbel-20200101000001-1-00000000000000ac.spool", "w") as out:
        out.writelines(spool_line(2, value) for value in values)
        out.write(spool_line(999, "null"))  # rejected: forces the row-by-row retry
    assert _core._replay_spool(parse_database_url(db.url), str(spool), "event_log") == 16
    expected = [json.loads(value) for value in values]
    got = stored(db)
    assert got == [(1, value) for value in expected] + [(2, value) for value in expected]
    assert int(db.sql("SELECT COUNT(*) FROM event_log WHERE event_data IS NULL")[0][0]) == 4
    letters = [json.loads(line) for name in glob.glob(str(spool / "qbel-dead-*.jsonl"))
               for line in open(name)]
    assert len(letters) == 1 and letters[0]["uid"] == 999 and letters[0]["event_data"] is None
    assert "1452" in letters[0]["reason"]


@pytest.mark.parametrize("path", ["bulk", "text"])
def test_logged_values_of_any_json_type_and_none_as_sql_null(db, tmp_path, monkeypatch, path):
    if path == "text":
        monkeypatch.setenv("QBEL_TEST_TEXT_INSERT", "1")
    logger = DBEventLogger(db.url, spool_dir=str(tmp_path), flush_interval=0.01)
    try:
        values = [None, [1, "two"], "a string", 7, 2.5, False, {"k": None}]
        for value in values:
            logger.log(uid=1, event_type="VIEW", event_data=value)
        logger.log(uid=999, event_type="VIEW", event_data=None)  # row-by-row retry
        assert logger.flush(timeout=30)
        assert [data for _, data in stored(db)] == values
        assert logger.stats()["dead_lettered"] == 1
        letters = [json.loads(line) for name in glob.glob(str(tmp_path / "qbel-dead-*.jsonl"))
                   for line in open(name)]
        assert [letter["event_data"] for letter in letters] == [None]
    finally:
        logger.close(timeout=10)


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_spooled_null_event_data_replays_as_sql_null(db, tmp_path, durability):
    """close() with the server unreachable spools `null` ("memory": into a
    spool file; "process": it stays in the journal chunk); a later replay
    writes SQL NULL."""
    from querybook_eventlog import _core

    logger = DBEventLogger(UNREACHABLE, spool_dir=str(tmp_path), connect_timeout=1,
                           backoff_max=0.2, durability=durability)
    logger.log(uid=1, event_type="VIEW", event_data=["first"])
    logger.log(uid=1, event_type="VIEW", event_data=None)
    logger.close(timeout=0)
    assert logger.stats()["spooled"] == 2
    lines = [json.loads(line) for name in glob.glob(str(tmp_path / "qbel-*.spool"))
             for line in open(name)]
    if durability == "memory":
        assert [line["event_data"] for line in lines] == [["first"], None]
    else:
        assert lines == [] and glob.glob(str(tmp_path / "qbel-*.journal"))
    # written for UNREACHABLE, replayed into `db` on purpose: adopt_all
    assert _core._replay_spool(parse_database_url(db.url), str(tmp_path), "event_log", True) == 2
    assert [data for _, data in stored(db)] == [["first"], None]


# ---- 3. the server's max_allowed_packet, not a 1 MiB limit -------------------


@pytest.fixture
def small_packet_server():
    if os.environ.get("QBEL_TEST_MYSQL_URL"):
        pytest.skip("needs a private MariaDB server; QBEL_TEST_MYSQL_URL is set")
    server = MariaDBServer(extra_args=["--max-allowed-packet=1M"])
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize("path", ["bulk", "text"])
def test_batches_split_to_fit_max_allowed_packet(small_packet_server, tmp_path, monkeypatch,
                                                 path):
    server = small_packet_server
    assert server.sql("SELECT @@global.max_allowed_packet") == [[str(MIB)]]
    if path == "text":
        monkeypatch.setenv("QBEL_TEST_TEXT_INSERT", "1")
    logger = DBEventLogger(server.url, spool_dir=str(tmp_path), flush_interval=0.05)
    pad = "x" * int(0.4 * MIB)
    for seq in range(12):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq, "pad": pad})
    logger.log(uid=1, event_type="VIEW", event_data={"seq": 99, "pad": "y" * (2 * MIB)})
    for seq in range(12, 15):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq, "pad": pad})
    assert logger.flush(timeout=60)
    stats = logger.stats()
    logger.close(timeout=10)
    assert seq_counts(server) == {seq: 1 for seq in range(15)}
    lengths = server.sql("SELECT DISTINCT LENGTH(JSON_VALUE(event_data, '$.pad')) FROM event_log")
    assert lengths == [[str(len(pad))]]
    assert stats["written"] == 15 and stats["dead_lettered"] == 1
    assert stats["retries"] == 0 and stats["reconnects"] == 0 and stats["dropped"] == 0
    letters = [json.loads(line) for name in glob.glob(str(tmp_path / "qbel-dead-*.jsonl"))
               for line in open(name)]
    assert len(letters) == 1
    assert letters[0]["event_data"]["seq"] == 99
    assert len(letters[0]["event_data"]["pad"]) == 2 * MIB
    assert "max_allowed_packet" in letters[0]["reason"] and "1153" in letters[0]["reason"]


def test_event_bigger_than_the_old_1_mib_limit_is_stored(db, tmp_path):
    packet = int(db.sql("SELECT @@global.max_allowed_packet")[0][0])
    assert packet >= 8 * MIB  # MariaDB's default (16 MiB) or more
    logger = DBEventLogger(db.url, spool_dir=str(tmp_path), sync=True)
    pad = "z" * (3 * MIB)
    logger.log(uid=1, event_type="VIEW", event_data={"seq": 1, "pad": pad})
    logger.close()
    assert db.sql("SELECT LENGTH(event_data) FROM event_log") == [[str(len(pad) + 18)]]


def test_event_bigger_than_the_queue_bound_is_queued_alone(db):
    """An empty queue takes one event of any size, so a big event needs no
    spool (here there is none: it would have been dropped)."""
    logger = DBEventLogger(db.url, spool_dir=None, max_queue_bytes=4096, sync=True)
    logger.log(uid=1, event_type="VIEW", event_data={"seq": 1, "pad": "q" * 100_000})
    stats = logger.stats()
    logger.close()
    assert stats["written"] == 1 and stats["dropped"] == 0 and stats["spooled"] == 0
    assert seq_counts(db) == {1: 1}


def test_max_event_bytes_argument():
    with pytest.raises(ValueError, match="max_event_bytes"):
        DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes=10)
    with pytest.raises(ValueError, match="max_event_bytes"):
        DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes=(1 << 30) + 1)
    with pytest.raises(ValueError, match="max_event_bytes"):
        DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes=1 << 80)
    with pytest.raises(TypeError, match="max_event_bytes"):
        DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes="1M")
    DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes=None).close(timeout=0)
    DBEventLogger(UNREACHABLE, spool_dir=None, max_event_bytes=1 << 30).close(timeout=0)


# ---- 4. construction resolves, parses and creates nothing -------------------


@pytest.fixture
def counted_database_conn(monkeypatch):
    """Replace _settings.database_conn (what Querybook's DATABASE_CONN comes
    through) with one that counts its calls and returns `value[0]`."""
    calls = []
    value = [None]

    def database_conn():
        calls.append(1)
        return value[0]

    monkeypatch.setattr(_settings, "database_conn", database_conn)
    return calls, value


def test_no_url_resolves_nothing_until_first_log(db, tmp_path, counted_database_conn):
    calls, value = counted_database_conn
    spool = tmp_path / "not" / "yet"
    logger = DBEventLogger(spool_dir=str(spool), flush_interval=0.01)
    assert calls == [] and not spool.exists()
    assert "DATABASE_CONN" in repr(logger)
    assert logger.flush(timeout=1) is True and logger.stats()["enqueued"] == 0
    assert logger.stats()["marker_table"] is None
    assert calls == []
    with pytest.raises(RuntimeError, match="DATABASE_CONN"):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    assert len(calls) == 1
    value[0] = db.url  # set later (Querybook's config loaded after import)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    assert len(calls) == 2
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 2})
    assert len(calls) == 2  # resolved once
    assert logger.flush(timeout=30)
    assert seq_counts(db) == {1: 1, 2: 1}
    assert repr(logger).startswith("<DBEventLogger mysql://qbel@127.0.0.1:")
    # nothing needed spooling (durability "process", the default, made the
    # dir for its journal chunks at the first log(), and removes them once
    # every event in them is committed)
    assert not glob.glob(str(spool / "qbel-*.spool"))
    logger.close(timeout=10)
    assert not spool.exists() or os.listdir(spool) == []


@pytest.mark.parametrize("url, scheme", [
    ("sqlite:///querybook.db", "sqlite"),
    ("postgresql://qb:s3cr3t-pw@db.example/querybook", "postgresql"),
    ("postgresql+psycopg2://qb:s3cr3t-pw@db.example:5432/querybook", "postgresql+psycopg2"),
])
def test_non_mysql_database_conn_raises_value_error_at_log(counted_database_conn, url, scheme):
    calls, value = counted_database_conn
    value[0] = url
    logger = DBEventLogger(spool_dir=None)  # never raises for these
    with pytest.raises(ValueError) as raised:
        logger.log(uid=1, event_type="CLICK", event_data={})
    message = str(raised.value)
    assert repr(scheme) in message and "DATABASE_CONN" in message
    assert "s3cr3t-pw" not in message and "s3cr3t-pw" not in repr(logger)
    assert logger.stats()["enqueued"] == 0
    logger.close()


def test_explicit_url_is_still_parsed_at_construction(tmp_path):
    with pytest.raises(ValueError):
        DBEventLogger("sqlite:///x.db", spool_dir=None)
    with pytest.raises(ValueError) as raised:
        DBEventLogger("mysql://u:s3cr3t@h:notaport/db", spool_dir=None)
    assert "s3cr3t" not in str(raised.value)
    spool = tmp_path / "explicit"
    DBEventLogger(UNREACHABLE, spool_dir=spool).close(timeout=0)  # a PathLike
    assert not spool.exists()  # nothing to spool: never created


@pytest.mark.parametrize("durability, kept_in", [("memory", "qbel-*.spool"),
                                                   ("process", "qbel-*.journal")])
def test_spool_dir_created_on_first_spool_write(tmp_path, durability, kept_in):
    """Not at construction: "memory" makes the dir for its first spool
    file (here at close), "process" for its first journal chunk (the
    first log()); 0700 either way, and the event is in that one file."""
    spool = tmp_path / "a" / "b"
    logger = DBEventLogger(UNREACHABLE, spool_dir=str(spool), connect_timeout=1,
                           backoff_max=0.2, durability=durability)
    assert not spool.exists()
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    assert spool.exists() == (durability == "process")
    logger.close(timeout=0)
    assert spool.is_dir() and oct(spool.stat().st_mode & 0o777) == "0o700"
    assert len(glob.glob(str(spool / kept_in))) == 1
    assert sorted(os.listdir(spool)) == sorted(os.path.basename(path)
                                               for path in glob.glob(str(spool / kept_in)))
    assert logger.stats()["spooled"] == 1


def test_uncreatable_spool_dir_is_a_counted_runtime_failure(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    spool = blocker / "spool"  # under a regular file: ENOTDIR
    logger = DBEventLogger(UNREACHABLE, spool_dir=str(spool), connect_timeout=1,
                           backoff_max=0.2)  # constructing is fine
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    logger.close(timeout=0)
    stats = logger.stats()
    assert stats["dropped"] == 1 and stats["spooled"] == 0
    assert "spool" in stats["last_error"] and "directory" in stats["last_error"].lower()
    assert "hunter2" not in stats["last_error"]


def test_import_and_construction_touch_nothing(tmp_path):
    """A fresh interpreter: with DATABASE_CONN a sqlite URL and an
    uncreatable default spool dir, importing the package (which builds the
    db logger) and constructing more work; log() is where it fails."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    script = """
import querybook_eventlog as qe
logger = qe.get_event_logger_class("db")
assert logger.logger_name == "db"
mine = qe.DBEventLogger()
try:
    mine.log(uid=1, event_type="CLICK", event_data={})
except ValueError as error:
    assert "'sqlite'" in str(error), error
else:
    raise AssertionError("no ValueError")
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": REPO, "DATABASE_CONN": "sqlite:///" + str(tmp_path / "q.db"),
           "QBEL_SPOOL_DIR": str(blocker / "spool")}
    result = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert sorted(os.listdir(tmp_path)) == ["a-file"]  # no spool dir, no sqlite file
