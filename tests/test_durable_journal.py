"""The journal behind durability="process" (csrc/durable_journal.h): torn
entries, chunk reuse, a kill between COMMIT and a chunk's release, and the
option itself.  Real MariaDB; chunk files read and damaged by hand with the
layout durable_journal.h documents."""

import glob
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from querybook_eventlog import DBEventLogger, _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO}

HEADER_SIZE = 4096
ENTRY = struct.Struct("<IIIIqiBB2x")  # commit, length, batch_count, json_length, ...


def journals(spool):
    return sorted(glob.glob(os.path.join(spool, "qbel-*.journal")))


def entries(path):
    """(offset, commit, length, batch_count, event_data) of each complete entry."""
    with open(path, "rb") as file:
        data = file.read()
    generation = struct.unpack_from("<I", data, 12)[0]
    found, offset = [], HEADER_SIZE
    while offset + ENTRY.size <= len(data):
        commit, length, batch_count, json_length, *_ = ENTRY.unpack_from(data, offset)
        if commit != generation or length < ENTRY.size + json_length:
            break
        body = data[offset + ENTRY.size: offset + ENTRY.size + json_length]
        found.append((offset, commit, length, batch_count, json.loads(body)))
        offset += length
    return found


def seqs_in_table(server):
    return sorted(json.loads(row[0])["seq"] for row in server.sql("SELECT event_data FROM event_log"))


def run_and_kill(script, *args, ready_marker="ready"):
    """Run `script`, wait for it to print `ready_marker`, SIGKILL it."""
    child = subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPO, env=ENV,
                             stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.strip() == ready_marker, line
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()


def replay(server, spool):
    result = subprocess.run([sys.executable, "-m", "querybook_eventlog", "replay", "--spool-dir",
                             spool], cwd=REPO, env={**ENV, "DATABASE_CONN": server.url},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


# Queues `count` events it never sends (batch_size and flush_interval too
# large), then waits to be killed.
HOLD = r"""
import sys
import querybook_eventlog as qe
url, spool, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
logger = qe.DBEventLogger(url, spool_dir=spool, durability="process", batch_size=100000,
                          flush_interval=3600)
for seq in range(count):
    logger.log(uid=1, event_type="VIEW", event_data={"seq": seq, "tab": "x" * (seq % 50)})
print("ready", flush=True)
sys.stdin = None
import time
time.sleep(3600)
"""


def log_one_more_with_a_new_logger(db, spool, seq, durability):
    """A new logger on `spool` logs event `seq` (so that it connects, and
    replays what it finds) and is closed once the table holds seq + 1 rows."""
    second = DBEventLogger(db.url, spool_dir=spool, durability=durability, flush_interval=0.01)
    second.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    deadline = time.monotonic() + 60
    while len(seqs_in_table(db)) < seq + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    second.close()


def test_torn_last_entry_is_left_out_and_the_rest_replayed(db, tmp_path):
    spool = str(tmp_path / "spool")
    run_and_kill(HOLD, db.url, spool, "300")
    [chunk] = [path for path in journals(spool) if entries(path)]
    found = entries(chunk)
    assert [entry[4]["seq"] for entry in found] == list(range(300))
    assert all(entry[3] == 0 for entry in found)  # never sent: no batch marked
    # a kill in the middle of the last copy: half its bytes, no commit word
    offset, _, length, _, _ = found[-1]
    with open(chunk, "r+b") as file:
        file.seek(offset)
        file.write(b"\0" * 4)  # the commit word, stored last, never came
        file.seek(offset + ENTRY.size + 5)
        file.write(b"\xff" * (length - ENTRY.size - 5))  # the rest of the copy torn
    assert len(entries(chunk)) == 299
    out = replay(db, spool)
    assert "replayed 299 events" in out, out
    assert seqs_in_table(db) == list(range(299))
    assert not journals(spool)


def test_garbage_after_a_stale_commit_word_is_never_read(db, tmp_path):
    spool = str(tmp_path / "spool")
    run_and_kill(HOLD, db.url, spool, "50")
    [chunk] = [path for path in journals(spool) if entries(path)]
    found = entries(chunk)
    offset, _, length, _, _ = found[10]
    with open(chunk, "r+b") as file:  # entry 10 from an older use of the chunk
        file.seek(offset)
        file.write(struct.pack("<I", 0xDEAD))
    out = replay(db, spool)
    assert "replayed 10 events" in out, out
    assert seqs_in_table(db) == list(range(10))


# Logs `count` events, flushes (every batch committed, its marker written),
# then waits to be killed: the chunk still holds them all, marked.
COMMITTED = r"""
import sys
import querybook_eventlog as qe
url, spool, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
logger = qe.DBEventLogger(url, spool_dir=spool, durability="process", batch_size=64,
                          flush_interval=0.01)
for seq in range(count):
    logger.log(uid=1, event_type="API", event_data={"seq": seq})
assert logger.flush(timeout=60)
print("ready", flush=True)
import time
time.sleep(3600)
"""


def test_kill_between_commit_and_release_writes_nothing_twice(db, tmp_path):
    spool = str(tmp_path / "spool")
    run_and_kill(COMMITTED, db.url, spool, "500")
    assert seqs_in_table(db) == list(range(500))
    found = [entry for path in journals(spool) for entry in entries(path)]
    assert len(found) == 500  # the chunk is still there: it was never released
    marked = [entry[3] for entry in found if entry[3]]
    assert sum(marked) == 500 and max(marked) <= 64
    out = replay(db, spool)
    assert "replayed 0 events" in out, out
    assert seqs_in_table(db) == list(range(500))
    assert not journals(spool)


def test_chunks_are_reused_not_multiplied(db, tmp_path):
    spool = str(tmp_path / "spool")
    # a 64 KiB bound: three chunks of 16 KiB, within its 3/4
    logger = DBEventLogger(db.url, spool_dir=spool, durability="process", batch_size=50,
                           flush_interval=0.005, max_queue_bytes=65536)
    seen = set()
    count = 6000
    for seq in range(count):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "y" * 80})
        if seq % 500 == 0:
            seen.update(journals(spool))
            assert logger.flush(timeout=60)
    assert logger.flush(timeout=60)
    seen.update(journals(spool))
    stats = logger.stats()
    logger.close()
    # ~900 KB of entries went through files of 64 KiB: the same few, reused
    assert 1 <= len(seen) <= 3, seen
    assert seqs_in_table(db) == list(range(count))
    assert stats["dropped"] == 0
    assert not journals(spool)  # everything settled: nothing left at close


def test_close_leaves_unsent_events_in_the_journal_for_the_next_logger(db, tmp_path):
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(db.url, spool_dir=spool, durability="process", batch_size=100000,
                           flush_interval=3600)
    for seq in range(200):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    logger.close(timeout=0)
    assert logger.stats()["spooled"] == 200
    assert sum(len(entries(path)) for path in journals(spool)) == 200
    assert not glob.glob(os.path.join(spool, "qbel-*.spool"))  # not written twice
    log_one_more_with_a_new_logger(db, spool, 200, durability="process")
    assert seqs_in_table(db) == list(range(201))
    assert not journals(spool)


def test_durability_option(tmp_path, monkeypatch):
    url = "mysql://u@127.0.0.1:1/db"
    monkeypatch.delenv("QBEL_DURABILITY", raising=False)
    assert _core._db_defaults()["durability"] == "process"
    with pytest.raises(ValueError, match="durability must be 'memory' or 'process'"):
        DBEventLogger(url, spool_dir=str(tmp_path), durability="disk")
    with pytest.raises(TypeError, match="durability must be a str"):
        DBEventLogger(url, spool_dir=str(tmp_path), durability=1)
    with pytest.raises(ValueError, match="spool_dir=None"):
        DBEventLogger(url, spool_dir=None, durability="process")
    monkeypatch.setenv("QBEL_DURABILITY", "nonsense")
    with pytest.raises(ValueError, match="'nonsense'"):
        DBEventLogger(url, spool_dir=str(tmp_path))
    monkeypatch.setenv("QBEL_DURABILITY", "Process")
    DBEventLogger(url, spool_dir=str(tmp_path)).close()
    DBEventLogger(url, spool_dir=None).close()  # spooling off: the environment yields
    monkeypatch.delenv("QBEL_DURABILITY")
    DBEventLogger(url, spool_dir=str(tmp_path), durability="memory").close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_fork_child_never_touches_the_parents_chunks(db, tmp_path):
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(db.url, spool_dir=spool, durability="process", flush_interval=3600,
                           batch_size=100000)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": -1})
    assert logger.flush(timeout=30)
    for seq in range(300):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    parent_chunks = set(journals(spool))
    before = {path: entries(path) for path in parent_chunks}
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for seq in range(1000, 1100):
                logger.log(uid=1, event_type="VIEW", event_data={"seq": seq})
            code = 0 if logger.flush(timeout=60) and logger.stats()["written"] == 100 else 2
            logger.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's chunks are as they were: the child made and removed its own
    assert {path: entries(path) for path in parent_chunks} == before
    assert sum(len(found) for found in before.values()) == 301  # -1 (settled) too
    assert logger.flush(timeout=60)
    logger.close()
    assert seqs_in_table(db) == [-1, *range(300), *range(1000, 1100)]
    assert not journals(spool)


def test_queue_holds_stubs_and_batches_get_every_event_back_intact(db, tmp_path):
    """With durability="process" an event is stored once, in the journal:
    the queue holds its header alone (queue_bytes stays a few dozen bytes an
    event, whatever its size) and the writer thread copies event_data back
    from the chunk into each batch.  Varied sizes, None, non-ASCII and
    every event type come back exactly as logged."""
    spool = str(tmp_path / "spool")
    db.stop()
    logger = DBEventLogger(db.url, spool_dir=spool, durability="process", batch_size=37,
                           backoff_initial=0.05, backoff_max=0.2, connect_timeout=2)
    types = ["API", "WEBSOCKET", "VIEW", "CLICK"]
    logged = []
    for seq in range(3000):
        data = None if seq % 97 == 0 else {"seq": seq, "pad": "é☃" * (seq % 700), "n": [seq] * (seq % 5)}
        uid = None if seq % 89 == 0 else seq % 100 + 1
        logger.log(uid=uid, event_type=types[seq % 4], event_data=data)
        logged.append((uid, types[seq % 4], data))
    stats = logger.stats()
    assert stats["spooled"] == 0 and stats["dropped"] == 0, stats
    # ~1.4 MB of event_data, but only headers on the heap (48 bytes a stub)
    assert stats["queue_bytes"] <= 3000 * 64, stats
    try:
        db.restart()
        assert logger.flush(timeout=120), logger.stats()
    finally:
        logger.close(timeout=30)
        db.ensure_running()
    assert logger.stats()["dead_lettered"] == 0
    rows = db.sql("SELECT uid, event_type, event_data FROM event_log ORDER BY id")
    assert [(None if uid is None else int(uid), event_type, None if data is None else json.loads(data))
            for uid, event_type, data in rows] == logged
    assert not journals(spool)


def test_when_no_chunk_can_be_made_events_wait_in_memory_not_dropped(db, tmp_path):
    """A spool dir where no journal chunk can be made (a full filesystem):
    events are queued whole, in memory only, as with durability="memory",
    instead of going to a spool file in the same failing dir (dropped)."""
    from test_sink_no_silent_loss import unwritable_dir

    with unwritable_dir(tmp_path / "spool") as (spool, _):
        logger = DBEventLogger(db.url, spool_dir=spool, durability="process", flush_interval=0.01)
        try:
            for seq in range(200):
                logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
            assert logger.flush(timeout=60)
            stats = logger.stats()
        finally:
            logger.close(timeout=5)
    assert (stats["written"], stats["dropped"], stats["spooled"]) == (200, 0, 0), stats
    assert seqs_in_table(db) == list(range(200))


def test_close_spools_the_events_queued_while_no_chunk_could_be_made(db, tmp_path):
    """The same with the server down: those events are in no chunk, so
    close() writes them to a spool file (once the dir has room again), and
    the next logger replays them: none lost, none doubled."""
    from test_sink_no_silent_loss import unwritable_dir

    with unwritable_dir(tmp_path / "spool") as (spool, make_writable):
        db.stop()
        try:
            logger = DBEventLogger(db.url, spool_dir=spool, durability="process",
                                   connect_timeout=1, backoff_initial=5, backoff_max=5)
            for seq in range(300):
                logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
            middle = logger.stats()
            assert middle["dropped"] == 0 and middle["spooled"] == 0, middle
            assert middle["queue_bytes"] > 300 * 48, middle  # whole records, not stubs
            make_writable()
            logger.close(timeout=0)
            stats = logger.stats()
            assert stats["spooled"] == 300 and stats["dropped"] == 0, stats
            assert glob.glob(os.path.join(spool, "qbel-*.spool")) and not journals(spool)
        finally:
            db.ensure_running()
        log_one_more_with_a_new_logger(db, spool, 300, durability="memory")
    assert seqs_in_table(db) == list(range(301))


def unreachable_url():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return f"mysql://qbel:x@127.0.0.1:{probe.getsockname()[1]}/querybook"


def smallest_bound():
    """durable_journal_smallest_bound(): three chunks of two pages (the
    header page and one page of entries) in 3/4 of the bound."""
    return 3 * (HEADER_SIZE + os.sysconf("SC_PAGE_SIZE")) * 4 // 3


def test_default_durability_journals_from_the_first_log_and_nothing_before(tmp_path, monkeypatch):
    """No durability= and no QBEL_DURABILITY: "process".  Constructing
    creates nothing; the first log() makes the spool dir and a chunk
    holding the event (no spool file); close() with the server unreachable
    leaves it there, in the journal, for the next process."""
    monkeypatch.delenv("QBEL_DURABILITY", raising=False)
    spool = tmp_path / "not" / "yet"
    logger = DBEventLogger(unreachable_url(), spool_dir=str(spool), connect_timeout=1,
                           backoff_initial=5, backoff_max=5)
    assert not spool.exists()
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    [chunk] = journals(str(spool))
    assert [found[4] for found in entries(chunk)] == [{"seq": 0}]
    logger.close(timeout=0)
    assert logger.stats()["spooled"] == 1
    assert [found[4] for found in entries(chunk)] == [{"seq": 0}]
    assert not glob.glob(str(spool / "qbel-*.spool"))


@pytest.mark.parametrize("how", ["default", "environment"])
def test_default_process_yields_to_memory_without_a_spool_dir(tmp_path, monkeypatch, how):
    """spool_dir=None with "process" coming from the default or from
    QBEL_DURABILITY: the in-memory queue (no error, nothing on disk), as
    an explicit durability="process" would refuse (test_durability_option)."""
    if how == "environment":
        monkeypatch.setenv("QBEL_DURABILITY", "process")
    else:
        monkeypatch.delenv("QBEL_DURABILITY", raising=False)
    monkeypatch.chdir(tmp_path)
    logger = DBEventLogger(unreachable_url(), spool_dir=None, backoff_initial=5, backoff_max=5)
    for seq in range(100):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "x" * 100})
    # whole records in the queue (stubs would be under 64 bytes each)
    assert logger.stats()["queue_bytes"] > 100 * 150, logger.stats()
    logger.close(timeout=0)
    assert logger.stats()["dropped"] == 100  # no spool dir: nowhere to keep them
    assert os.listdir(tmp_path) == []


def journal_bytes(spool):
    """What the journal maps: every chunk file is mapped whole."""
    total = 0
    for path in journals(spool):
        try:
            total += os.path.getsize(path)
        except FileNotFoundError:  # released meanwhile
            pass
    return total


@pytest.mark.parametrize("limit_kib", [32, 48, 64, 100, 200, 256])
def test_small_bounds_hold_with_the_journal_chunks_counted(tmp_path, limit_kib):
    """max_queue_bytes bounds the journal's mapped chunks plus the queue's
    stubs at small sizes too: chunks shrink (down to two pages) so that
    three of them fit in 3/4 of the bound.  (Chunks used to be 64 KiB at
    least, three of them whatever the bound: up to 192 KiB past it.)
    The server is unreachable: the journal fills, the rest is spooled."""
    limit = limit_kib << 10
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(unreachable_url(), spool_dir=spool, durability="process",
                           max_queue_bytes=limit, backoff_initial=5, backoff_max=5)
    count = 3000
    try:
        peak = 0
        for seq in range(count):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "y" * (seq % 300)})
            if seq % 20 == 0:
                peak = max(peak, journal_bytes(spool) + logger.stats()["queue_bytes"])
        peak = max(peak, journal_bytes(spool) + logger.stats()["queue_bytes"])
        held = sum(len(entries(path)) for path in journals(spool))
        middle = logger.stats()
    finally:
        logger.close(timeout=0)
    assert journals(spool) and held > 0, (journals(spool), held)
    assert middle["spooled"] > 0 and middle["dropped"] == 0, middle  # the journal did fill
    assert 0 < peak <= limit, (peak, limit)
    stats = logger.stats()
    assert stats["spooled"] == count and stats["dropped"] == 0, stats


def test_below_the_smallest_bound_process_is_refused_and_the_default_yields(tmp_path, monkeypatch):
    """Below durable_journal_smallest_bound() (32 KiB with 4 KiB pages) no
    three chunks fit in the bound: an explicit durability="process" is a
    ValueError naming the minimum; "process" by default yields to the
    in-memory queue, which keeps the bound."""
    small = smallest_bound() - 4096
    with pytest.raises(ValueError, match=f"max_queue_bytes >= {smallest_bound()}"):
        DBEventLogger(unreachable_url(), spool_dir=str(tmp_path), durability="process",
                      max_queue_bytes=small)
    DBEventLogger(unreachable_url(), spool_dir=str(tmp_path), durability="process",
                  max_queue_bytes=smallest_bound()).close()
    monkeypatch.delenv("QBEL_DURABILITY", raising=False)
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(unreachable_url(), spool_dir=spool, max_queue_bytes=small,
                           backoff_initial=5, backoff_max=5)
    try:
        peak = 0
        for seq in range(500):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "z" * 100})
            peak = max(peak, logger.stats()["queue_bytes"])
        assert not journals(spool)
        assert 0 < peak <= small
    finally:
        logger.close(timeout=0)
    stats = logger.stats()
    assert stats["spooled"] == 500 and stats["dropped"] == 0, stats
