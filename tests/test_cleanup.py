"""Retention: clean_up_event_logs / `cleanup --days N` against the real
server: exactly the old rows go, in chunks, while a logger keeps writing."""

import datetime
import json
import os
import subprocess
import sys
import textwrap

import pytest

import querybook_eventlog as qe
from querybook_eventlog._cleanup import cutoff_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def insert_aged(db, ages_days, uid=1):
    """One CLICK row per age (days before now, UTC); None -> created_at NULL."""
    values = ", ".join(
        "(NULL, {uid}, 'CLICK', '{{}}')".format(uid=uid) if age is None else
        f"(UTC_TIMESTAMP() - INTERVAL {int(age * 86400)} SECOND, {uid}, 'CLICK', '{{}}')"
        for age in ages_days)
    db.sql(f"INSERT INTO event_log (created_at, uid, event_type, event_data) VALUES {values}")


def test_deletes_exactly_the_rows_older_than_days_to_keep(db):
    insert_aged(db, [30, 8, 7.01, 6.99, 1, 0, None] * 3)
    deleted = qe.clean_up_event_logs(days_to_keep=7, url=db.url)
    assert deleted == 9
    remaining = db.sql("SELECT COUNT(*), SUM(created_at IS NULL), "
                       "MIN(created_at) > UTC_TIMESTAMP() - INTERVAL 7 DAY FROM event_log")
    assert remaining == [["12", "3", "1"]]


def test_small_chunks_still_delete_everything_and_count_exactly(db):
    insert_aged(db, [10] * 103 + [1] * 5)
    db.sql("DELETE FROM event_log WHERE id % 7 = 0")  # gaps in the ids
    old = int(db.sql("SELECT COUNT(*) FROM event_log WHERE created_at < UTC_TIMESTAMP() "
                     "- INTERVAL 7 DAY")[0][0])
    seen = []
    deleted = qe.clean_up_event_logs(7, db.url, chunk_rows=4,
                                     progress=lambda done, total: seen.append((done, total)))
    assert deleted == old > 80
    assert db.count_events() == 108 - 15 - old
    assert len(seen) >= old // 4  # one call per chunk of at most 4 rows
    assert seen[-1][0] == seen[-1][1]


def test_minus_one_keeps_everything(db):
    insert_aged(db, [400, 30])
    assert qe.clean_up_event_logs(days_to_keep=-1, url=db.url) == 0
    assert db.count_events() == 2


def test_zero_days_deletes_everything_created_before_now(db):
    insert_aged(db, [1, 0.001, None])
    assert qe.clean_up_event_logs(0, db.url) == 2
    assert db.count_events() == 1


@pytest.mark.parametrize("days, error", [(True, TypeError), (7.5, TypeError), ("7", TypeError),
                                         (-2, ValueError)])
def test_bad_days_raise(db, days, error):
    insert_aged(db, [30])
    with pytest.raises(error, match="days_to_keep"):
        qe.clean_up_event_logs(days, db.url)
    assert db.count_events() == 1


def test_bad_table_and_chunk_raise(db):
    with pytest.raises(ValueError, match="table name"):
        qe.clean_up_event_logs(7, db.url, table="event_log; DROP TABLE user")
    with pytest.raises(ValueError, match="chunk_rows"):
        qe.clean_up_event_logs(7, db.url, chunk_rows=0)


def test_url_defaults_to_database_conn(db, monkeypatch):
    insert_aged(db, [9, 1])
    monkeypatch.setenv("DATABASE_CONN", db.url)
    assert qe.clean_up_event_logs(7) == 1


def test_unreachable_database_raises_without_the_password(db):
    from querybook_eventlog._sqlclient import DatabaseError

    with pytest.raises(DatabaseError) as caught:
        qe.clean_up_event_logs(7, "mysql+pymysql://qbel:S3cretPw@127.0.0.1:1/querybook")
    assert "S3cretPw" not in str(caught.value)
    assert "cannot connect" in str(caught.value)


def test_cutoff_is_utc_days_before_now():
    now = datetime.datetime(2026, 3, 10, 12, 30, 15, 999)
    assert cutoff_for(7, now) == datetime.datetime(2026, 3, 3, 12, 30, 15)


WRITER = textwrap.dedent("""
    import json, sys, threading, time
    from querybook_eventlog import DBEventLogger, EventType
    url, spool = sys.argv[1], sys.argv[2]
    logger = DBEventLogger(url, spool_dir=spool, batch_size=200, flush_interval=0.05)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    sent = 0
    while not stop.is_set():
        logger.log(uid=1 + sent % 100, event_type=EventType.CLICK,
                   event_data={"path": "/", "component": "LANDING_PAGE", "n": sent})
        sent += 1
        if sent == 400:
            assert logger.flush(timeout=60)
            print("ready", flush=True)
        if sent % 100 == 0:
            time.sleep(0.01)
    assert logger.flush(timeout=120)
    stats = logger.stats()
    logger.close()
    print(json.dumps({"sent": sent, **{k: stats[k] for k in
          ("written", "dropped", "dead_lettered", "spooled", "retries", "last_error")}}))
""")


def test_a_million_old_rows_go_while_another_process_keeps_logging(db, tmp_path):
    db.sql("INSERT INTO event_log (created_at, uid, event_type, event_data) "
           "SELECT UTC_TIMESTAMP() - INTERVAL 30 DAY + INTERVAL seq SECOND, 1 + seq % 100, "
           "ELT(1 + seq % 4, 'API', 'WEBSOCKET', 'VIEW', 'CLICK'), "
           "JSON_OBJECT('path', '/x/', 'i', seq) FROM seq_1_to_1000000",
           timeout=300)
    env = {**os.environ, "PYTHONPATH": REPO}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, db.url, str(tmp_path / "spool")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "ready"
        deleted = qe.clean_up_event_logs(7, db.url, chunk_rows=5000)
        written_meanwhile = db.count_events()
    finally:
        writer.stdin.write("stop\n")
        writer.stdin.flush()
        out, _ = writer.communicate(timeout=300)
    assert writer.returncode == 0, out
    stats = json.loads(out.splitlines()[-1])
    assert deleted == 1_000_000
    assert written_meanwhile > 400  # the writer kept writing while cleanup ran
    assert stats["written"] == stats["sent"]
    assert (stats["dropped"], stats["dead_lettered"], stats["spooled"]) == (0, 0, 0)
    assert stats["retries"] == 0 and stats["last_error"] is None, stats  # no lock wait timeout
    assert db.sql("SELECT COUNT(*), COUNT(DISTINCT JSON_VALUE(event_data, '$.n')), "
                  "SUM(created_at < UTC_TIMESTAMP() - INTERVAL 7 DAY) FROM event_log") == [
        [str(stats["sent"]), str(stats["sent"]), "0"]]
