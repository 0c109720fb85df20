"""DBEventLogger when user code re-enters it: __init__ or close() called from
inside log()'s encoding (a date subclass's isoformat, a dict subclass's
items(), a dataclass field's value), from another thread while flush() waits,
and close() racing log()/flush() from other threads.  The writer is never
freed under a running call: __init__ refuses once a writer exists, close()
only stops and spools, and only dealloc frees."""

import dataclasses
import datetime
import glob
import json
import os
import threading
import time

import pytest

from querybook_eventlog import DBEventLogger

UNREACHABLE = "mysql://u:p@127.0.0.1:1/db"


def seqs_in_table(db):
    return [int(row[0]) for row in db.sql(
        "SELECT JSON_VALUE(event_data, '$.seq') FROM event_log")]


def hostile_values(action):
    """event_data values whose encoding runs `action()` (user code)."""

    class Date(datetime.date):
        def isoformat(self):
            action()
            return "2020-01-01"

    class Items(dict):
        def items(self):
            action()
            return super().items()

    @dataclasses.dataclass
    class Fields:
        value: int

        def __getattribute__(self, name):
            if name == "value":
                action()
            return object.__getattribute__(self, name)

    return {
        "date_isoformat": {"d": Date(2020, 1, 1)},
        "dict_items": {"d": Items(a=1)},
        "dataclass_field": {"d": Fields(value=1)},
    }


@pytest.mark.parametrize("kind", ["date_isoformat", "dict_items", "dataclass_field"])
def test_reinit_during_encoding_is_refused(tmp_path, kind):
    logger = DBEventLogger(UNREACHABLE, spool_dir=str(tmp_path), backoff_initial=5,
                           backoff_max=5)
    calls = []

    def reinit():
        calls.append(1)
        logger.__init__(url=None)

    data = hostile_values(reinit)[kind]
    with pytest.raises(TypeError, match="already initialised"):
        logger.log(uid=1, event_type="CLICK", event_data=data)
    assert calls
    # still the same, working logger
    logger.log(uid=1, event_type="CLICK", event_data={"after": True})
    assert logger.stats()["enqueued"] == 1
    assert "127.0.0.1:1" in repr(logger)
    logger.close(timeout=0)


def test_reinit_is_refused_but_allowed_without_a_writer(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_CONN", raising=False)
    logger = DBEventLogger(spool_dir=str(tmp_path))  # no URL: no writer yet
    logger.__init__(UNREACHABLE, spool_dir=str(tmp_path), backoff_initial=5, backoff_max=5)
    with pytest.raises(TypeError, match="already initialised"):
        logger.__init__(UNREACHABLE, spool_dir=str(tmp_path))
    logger.close(timeout=0)


@pytest.mark.parametrize("kind", ["date_isoformat", "dict_items", "dataclass_field"])
def test_close_during_encoding_raises_closed(tmp_path, kind):
    logger = DBEventLogger(UNREACHABLE, spool_dir=str(tmp_path), backoff_initial=5,
                           backoff_max=5)
    data = hostile_values(lambda: logger.close(timeout=0))[kind]
    with pytest.raises(ValueError, match="closed"):
        logger.log(uid=1, event_type="CLICK", event_data=data)
    assert logger.closed
    assert logger.stats()["enqueued"] == 0


def wait_for(predicate, timeout, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_reinit_from_another_thread_while_flush_waits(fresh_mariadb, tmp_path):
    """__init__ from another thread is refused, and log() keeps working, while
    flush() waits on a hung server; nothing freed under the waiting flush()."""
    server = fresh_mariadb
    spool = str(tmp_path)
    # only a flush() takes events out of the queue: batch_size and
    # flush_interval are never reached
    logger = DBEventLogger(server.url, spool_dir=spool, batch_size=100000, flush_interval=3600,
                           read_timeout=30, write_timeout=30, backoff_initial=5, backoff_max=5)
    logger.log(uid=1, event_type="CLICK", event_data={"i": -1})
    assert logger.flush(timeout=30)  # connected, and idle from here on
    server.pause()
    try:
        for i in range(10):
            logger.log(uid=1, event_type="CLICK", event_data={"i": i})
        assert logger.stats()["queue_bytes"] > 0
        about_to_flush = threading.Barrier(2)
        results = []

        def flush():
            about_to_flush.wait()
            results.append(logger.flush(timeout=3))

        thread = threading.Thread(target=flush)
        thread.start()
        about_to_flush.wait(10)
        # flush() is in and waiting: it had the writer take the queue (nothing
        # else would), the batch hangs on the paused server, and flush() has
        # not returned
        assert wait_for(lambda: logger.stats()["queue_bytes"] == 0, timeout=30), logger.stats()
        assert not results
        refused = 0
        for _ in range(20):
            try:
                logger.__init__(UNREACHABLE, spool_dir=spool)
            except TypeError:
                refused += 1
            logger.log(uid=1, event_type="CLICK", event_data={})
            junk = [bytearray(4096) for _ in range(200)]  # reuse freed memory, if any
            del junk
        assert not results and thread.is_alive()  # flush() waited through all of it
        thread.join(30)
        assert refused == 20
        assert results == [False]  # the server hangs
        stats = logger.stats()
        assert (stats["enqueued"], stats["written"]) == (31, 1)
        logger.close(timeout=0)
        assert logger.stats()["spooled"] == 30  # the hung batch and the 20 since
    finally:
        server.resume()


def test_close_racing_log_and_flush_loses_nothing(db, tmp_path):
    """Threads log and flush while another closes: every log() either raises
    ValueError (closed) or its event ends up in the table or the spool; a
    later logger on the same spool_dir writes the spooled ones, once."""
    spool = str(tmp_path)
    logger = DBEventLogger(db.url, spool_dir=spool, batch_size=50, flush_interval=0.01,
                           max_queue_bytes=8192)
    accepted = [[] for _ in range(4)]
    start = threading.Barrier(6)

    def produce(index):
        start.wait()
        for n in range(3000):
            seq = index * 100000 + n
            try:
                logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
            except ValueError:
                return
            accepted[index].append(seq)

    def flush():
        start.wait()
        while not logger.closed:
            logger.flush(timeout=0.05)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=flush))
    for thread in threads:
        thread.start()
    start.wait()
    while sum(map(len, accepted)) < 2000 and any(t.is_alive() for t in threads[:4]):
        threading.Event().wait(0.001)
    logger.close(timeout=0)
    for thread in threads:
        thread.join()
    stats = logger.stats()
    assert stats["dropped"] == 0
    expected = sorted(seq for part in accepted for seq in part)
    assert stats["enqueued"] == len(expected)

    with DBEventLogger(db.url, spool_dir=spool, flush_interval=0.01) as replayer:
        replayer.log(uid=1, event_type="CLICK", event_data={"seq": -1})
        assert replayer.flush(timeout=60)
    assert not glob.glob(os.path.join(spool, "qbel-2*.spool"))
    seqs = seqs_in_table(db)
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == sorted([-1, *expected])


def test_close_spools_valid_lines(tmp_path):
    """A logger closed while the server is unreachable leaves readable spool
    lines (durability "memory": with "process" the queue stays in its
    journal chunks, see test_durable_journal)."""
    spool = str(tmp_path)
    logger = DBEventLogger(UNREACHABLE, spool_dir=spool, backoff_initial=5, backoff_max=5,
                           durability="memory")
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 7})
    logger.close(timeout=0)
    lines = [json.loads(line) for path in glob.glob(os.path.join(spool, "qbel-*.spool"))
             for line in open(path)]
    assert [line["event_data"] for line in lines] == [{"seq": 7}]
