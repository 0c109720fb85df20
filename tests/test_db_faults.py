"""DBEventLogger under faults, against private MariaDB servers the tests
kill, pause and restart.  Every test ends by counting rows against what was
logged (a unique `seq` in event_data): none missing, none doubled."""

import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from querybook_eventlog import DBEventLogger

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO}


def assert_exactly(server, expected_seqs, table="event_log"):
    """Rows hold each seq in `expected_seqs` exactly once, and nothing else."""
    seqs = [int(row[0]) for row in server.sql(
        f"SELECT JSON_VALUE(event_data, '$.seq') FROM `{table}`")]
    doubled = len(seqs) - len(set(seqs))
    missing = set(expected_seqs) - set(seqs)
    extra = set(seqs) - set(expected_seqs)
    assert (doubled, len(missing), len(extra)) == (0, 0, 0), (
        f"doubled={doubled} missing={sorted(missing)[:10]} extra={sorted(extra)[:10]}")


def spool_files(spool):
    return sorted(glob.glob(os.path.join(spool, "qbel-*.spool")))


def journal_files(spool):
    return sorted(glob.glob(os.path.join(spool, "qbel-*.journal")))


def events_left(spool):
    """Seqs of the events a process left in `spool`: spool file lines and
    journal chunk entries (durability "process")."""
    from test_durable_journal import entries

    seqs = [json.loads(line)["event_data"]["seq"] for path in spool_files(spool)
            for line in open(path)]
    seqs += [found[4]["seq"] for path in journal_files(spool) for found in entries(path)]
    return seqs


def is_locked(path):
    """Does a writer (in any process, this one included) hold its flock?"""
    import fcntl

    try:
        with open(path, "rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
    except FileNotFoundError:
        return False


def spool_bytes(spool):
    total = 0
    for path in spool_files(spool):
        try:
            total += os.path.getsize(path)
        except FileNotFoundError:  # renamed or removed meanwhile
            pass
    return total


def pause_fully(server):
    """server.pause(), then wait until every thread of the server is stopped:
    SIGSTOP takes effect asynchronously, and on a loaded machine a batch
    sent right after kill() could still be committed."""
    server.pause()
    task_dir = f"/proc/{server.process.pid}/task"

    def stopped():
        for task in os.listdir(task_dir):
            with open(os.path.join(task_dir, task, "stat")) as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
        return True

    assert wait_for(stopped, timeout=30, interval=0.01)


def wait_for(predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# The slowest single log() allowed while the server hangs.  The calls take
# microseconds; the bound leaves room for a loaded machine (and the sanitizer
# build) yet stays far below the 1-2 s network timeouts a blocked call would wait.
MAX_LOG_CALL_S = 0.05


# Python 3.12+ warns at every fork() of a process with threads; these tests
# fork one on purpose (the writer thread is what they test).
FORKS_A_THREADED_PROCESS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")


def run_python(script, timeout=120, check=True):
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, timeout=timeout,
                          check=check, capture_output=True, text=True)


def test_kill_9_mid_stream_loses_and_doubles_nothing(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    logger = DBEventLogger(server.url, spool_dir=str(tmp_path), batch_size=200,
                           flush_interval=0.02, backoff_initial=0.05, backoff_max=0.5,
                           read_timeout=5, write_timeout=5, connect_timeout=2)
    total = 12000
    done = threading.Event()

    def produce():
        for seq in range(total):
            logger.log(uid=seq % 100 + 1, event_type="CLICK", event_data={"seq": seq})
            if seq % 200 == 0:
                time.sleep(0.005)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    kills = 0
    while not done.is_set() or kills < 3:
        time.sleep(0.3)
        server.kill()
        time.sleep(0.2)
        server.start()
        kills += 1
    producer.join()
    assert logger.flush(timeout=120)
    stats = logger.stats()
    assert stats["reconnects"] >= 1
    assert stats["written"] + stats["replayed"] == total
    logger.close()
    assert_exactly(server, range(total))


def test_queue_overflow_spools_then_replays(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    server.kill()
    spool = str(tmp_path)
    logger = DBEventLogger(server.url, spool_dir=spool, max_queue_bytes=8192,
                           backoff_initial=0.05, backoff_max=0.3, connect_timeout=1)
    total = 3000
    for seq in range(total):
        logger.log(uid=1, event_type="VIEW", event_data={"seq": seq, "pad": "p" * 40})
    stats = logger.stats()
    assert stats["spooled"] > 0 and stats["queue_bytes"] <= 8192 and stats["dropped"] == 0
    assert spool_files(spool)
    server.start()
    assert logger.flush(timeout=60)
    stats = logger.stats()
    assert stats["replayed"] == stats["spooled"]
    assert stats["written"] + stats["replayed"] == total
    # order survives: the queue first, then the spool, oldest first
    seqs = [int(row[0]) for row in server.sql(
        "SELECT JSON_VALUE(event_data, '$.seq') FROM event_log ORDER BY id")]
    assert seqs == sorted(seqs)
    logger.close()
    assert not spool_files(spool)
    assert_exactly(server, range(total))


@pytest.mark.parametrize("durability, max_queue_bytes", [("memory", 16384), ("process", 65536)])
def test_exit_with_events_pending_then_replay_cli_exactly_once(fresh_mariadb, tmp_path, durability,
                                                               max_queue_bytes):
    """What a process exiting with the server down leaves ("memory": spool
    files; "process": its journal chunks, and spool files for what the
    full journal could not take) is replayed once by the command."""
    server = fresh_mariadb
    spool = str(tmp_path / "spool")
    server.kill()
    run_python(f"""
import querybook_eventlog as qe
logger = qe.DBEventLogger({server.url!r}, spool_dir={spool!r}, exit_timeout=0.5,
                          connect_timeout=1, backoff_max=0.2, max_queue_bytes={max_queue_bytes},
                          durability={durability!r})
for seq in range(1500):
    logger.log(uid=1, event_type="CLICK", event_data={{"seq": seq}})
""")
    files = spool_files(spool)
    assert files, os.listdir(spool)
    assert bool(journal_files(spool)) == (durability == "process")
    assert sorted(events_left(spool)) == list(range(1500))
    keep = tmp_path / "copy"
    shutil.copytree(spool, keep)
    server.start()
    replay = [sys.executable, "-m", "querybook_eventlog", "replay", "--url", server.url,
              "--spool-dir", spool]
    first = subprocess.run(replay, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "replayed 1500 events" in first.stdout
    assert server.password not in first.stdout + first.stderr
    assert not spool_files(spool) and not journal_files(spool)
    assert_exactly(server, range(1500))
    # the same files again (a crash after commit, before unlink): nothing twice
    for path in glob.glob(str(keep / "qbel-*.spool")) + glob.glob(str(keep / "qbel-*.journal")):
        shutil.copy(path, spool)
    second = subprocess.run(replay, cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 0, second.stderr
    assert "replayed 0 events" in second.stdout
    assert not spool_files(spool) and not journal_files(spool)
    assert_exactly(server, range(1500))


@pytest.mark.parametrize("durability, left_in", [("memory", spool_files), ("process", journal_files)])
def test_next_process_loads_what_the_last_one_left(fresh_mariadb, tmp_path, durability, left_in):
    """A process exits with the server down ("memory": its queue goes to a
    spool file; "process": it stays in the journal chunks); the next process
    (default durability) replays it once the server is back."""
    server = fresh_mariadb
    spool = str(tmp_path)
    server.kill()
    run_python(f"""
import querybook_eventlog as qe
logger = qe.DBEventLogger({server.url!r}, spool_dir={spool!r}, exit_timeout=0.3,
                          connect_timeout=1, backoff_max=0.2, durability={durability!r})
for seq in range(700):
    logger.log(uid=1, event_type="CLICK", event_data={{"seq": seq}})
""")
    assert left_in(spool) and sorted(events_left(spool)) == list(range(700))
    server.start()
    result = run_python(f"""
import time
import querybook_eventlog as qe
logger = qe.DBEventLogger({server.url!r}, spool_dir={spool!r})
logger.log(uid=1, event_type="CLICK", event_data={{"seq": 700}})
assert logger.flush(timeout=60)
deadline = time.monotonic() + 60
while logger.stats()["replayed"] < 700 and time.monotonic() < deadline:
    time.sleep(0.1)
logger.close()
print(logger.stats())
""")
    assert "'replayed': 700" in result.stdout, result.stdout + result.stderr
    assert not spool_files(spool) and not journal_files(spool)
    assert_exactly(server, range(701))


def test_two_processes_share_a_spool_dir(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    spool = str(tmp_path)
    server.kill()
    leave = """
import sys
import querybook_eventlog as qe
base = int(sys.argv[1])
logger = qe.DBEventLogger({url!r}, spool_dir={spool!r}, exit_timeout=0.3, connect_timeout=1,
                          backoff_max=0.2, max_queue_bytes=8192)
for seq in range(base, base + 1200):
    logger.log(uid=1, event_type="VIEW", event_data={{"seq": seq, "pad": "q" * 30}})
""".format(url=server.url, spool=spool)
    workers = [subprocess.Popen([sys.executable, "-c", leave, str(base)], cwd=REPO, env=ENV)
               for base in (0, 10000)]
    assert [worker.wait(120) for worker in workers] == [0, 0]
    assert len(spool_files(spool)) >= 2
    server.start()
    drain = """
import glob, os, sys, time
import querybook_eventlog as qe
seq = int(sys.argv[1])
logger = qe.DBEventLogger({url!r}, spool_dir={spool!r})
logger.log(uid=1, event_type="VIEW", event_data={{"seq": seq}})
assert logger.flush(timeout=60)
deadline = time.monotonic() + 60
while glob.glob(os.path.join({spool!r}, "qbel-*.spool")) and time.monotonic() < deadline:
    time.sleep(0.05)
""".format(url=server.url, spool=spool)
    drainers = [subprocess.Popen([sys.executable, "-c", drain, str(seq)], cwd=REPO, env=ENV)
                for seq in (50000, 50001)]
    assert [drainer.wait(120) for drainer in drainers] == [0, 0]
    assert not spool_files(spool)
    assert_exactly(server, [*range(1200), *range(10000, 11200), 50000, 50001])


def test_poison_rows_go_to_the_dead_letter_file(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    spool = str(tmp_path)
    logger = DBEventLogger(server.url, spool_dir=spool, batch_size=100, flush_interval=0.05)
    good, bad = [], []
    for seq in range(1000):
        poisoned = seq % 97 == 13
        logger.log(uid=999 if poisoned else seq % 100 + 1, event_type="CLICK",
                   event_data={"seq": seq})
        (bad if poisoned else good).append(seq)
    assert logger.flush(timeout=60)
    stats = logger.stats()
    assert stats["dead_lettered"] == len(bad) and stats["written"] == len(good)
    assert_exactly(server, good)
    dead = glob.glob(os.path.join(spool, "qbel-dead-*.jsonl"))
    assert len(dead) == 1
    letters = [json.loads(line) for line in open(dead[0])]
    assert sorted(letter["event_data"]["seq"] for letter in letters) == bad
    for letter in letters:
        assert letter["uid"] == 999 and "foreign key constraint fails" in letter["reason"]
        assert letter["event_type"] == "CLICK" and letter["created_at"].endswith("+00:00")
    logger.close()


def test_torn_and_garbage_spool_lines_are_dead_lettered(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    spool = str(tmp_path)
    name = os.path.join(spool, "qbel-20200101000000-1-00deadbeef00cafe.spool")
    good = ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":5,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n')
    with open(name, "w") as spool_file:
        spool_file.write(good % 0)
        spool_file.write("this is not json\n")
        spool_file.write(good % 1)
        spool_file.write(good[:40])  # torn: the writer died mid-line
    result = subprocess.run([sys.executable, "-m", "querybook_eventlog", "replay", "--url",
                             server.url, "--spool-dir", spool], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert_exactly(server, [0, 1])
    assert server.sql("SELECT created_at, uid FROM event_log LIMIT 1") == [
        ["2023-11-14 22:13:20", "5"]]
    dead = glob.glob(os.path.join(spool, "qbel-dead-*.jsonl"))
    letters = [json.loads(line) for path in dead for line in open(path)]
    reasons = sorted(letter["reason"].split(" ")[0] for letter in letters)
    assert reasons == ["not", "torn"]
    assert {letter["raw"] for letter in letters} == {"this is not json", good[:40]}
    assert not spool_files(spool)


def test_hung_server_never_blocks_log(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    logger = DBEventLogger(server.url, spool_dir=str(tmp_path), batch_size=100,
                           flush_interval=0.02, read_timeout=2, write_timeout=2,
                           connect_timeout=1, backoff_initial=0.05, backoff_max=0.5,
                           max_queue_bytes=16384)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    assert logger.flush(timeout=30)
    server.pause()
    finished = threading.Event()
    durations = []  # (seconds, seq) of every log() call

    def produce():
        clock = time.perf_counter
        for seq in range(1, 3001):
            started = clock()
            logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
            durations.append((clock() - started, seq))
        finished.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        # a bound for the whole run only so that a blocked log() cannot hang the test
        assert finished.wait(30), "log() blocked on a hung server"
        stats = logger.stats()
        assert logger.flush(timeout=0.2) is False
    finally:
        server.resume()
    # the queue overflowed into the spool while the server hung (the slow path ran)
    assert stats["spooled"] > 0, stats
    # no single call waited on the server: its timeouts are 1-2 s, and one call
    # stuck behind the writer's lock for a round trip would take that long
    slowest, seq = max(durations)
    print(f"slowest log(): {slowest * 1000:.1f} ms (seq {seq}); "
          f"median {sorted(durations)[len(durations) // 2][0] * 1e6:.0f} us")
    assert slowest < MAX_LOG_CALL_S, f"log() #{seq} took {slowest * 1000:.0f} ms on a hung server"
    assert logger.flush(timeout=60)
    logger.close()
    assert_exactly(server, range(3001))


@FORKS_A_THREADED_PROCESS
def test_fork_child_writes_its_own_parent_writes_its_queue(fresh_mariadb, tmp_path):
    server = fresh_mariadb
    logger = DBEventLogger(server.url, spool_dir=str(tmp_path), flush_interval=3600,
                           batch_size=100000)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": -1})
    assert logger.flush(timeout=30)  # the thread is running, connected
    for seq in range(500):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    assert logger.stats()["queue_bytes"] > 0  # still queued at fork time
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            assert logger.stats()["queue_bytes"] == 0
            for seq in range(1000, 1200):
                logger.log(uid=2, event_type="VIEW", event_data={"seq": seq})
            code = 0 if logger.flush(timeout=60) and logger.stats()["written"] == 200 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert logger.flush(timeout=60)
    assert logger.stats()["written"] == 501
    logger.close()
    assert_exactly(server, [-1, *range(500), *range(1000, 1200)])


def test_spooled_in_flight_batch_is_not_written_twice(db, tmp_path):
    """What close() spools of a batch that was in flight carries its batch id:
    if that commit landed after all, replay skips the batch; if not, it is
    written once."""
    spool = str(tmp_path)
    logger = DBEventLogger(db.url, spool_dir=spool, batch_size=10, flush_interval=60)
    for seq in range(10):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    assert logger.flush(timeout=30)
    logger.close()
    (committed_batch,), = db.sql("SELECT batch_id FROM event_log_qbel_batches")
    line = ('{"created_at":"2023-11-14T22:13:20.000000+00:00","uid":1,"event_type":"CLICK",'
            '"batch":"%s","event_data":{"seq":%d}}\n')
    with open(os.path.join(spool, "qbel-20200101000000-1-0123456789abcdef.spool"), "w") as out:
        out.writelines(line % (committed_batch, seq) for seq in range(10))
        out.writelines(line % ("never-committed-1", seq) for seq in range(10, 13))
    result = subprocess.run([sys.executable, "-m", "querybook_eventlog", "replay", "--url",
                             db.url, "--spool-dir", spool], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "replayed 3 events" in result.stdout
    assert_exactly(db, range(13))


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_close_while_the_server_hangs_spools_the_in_flight_batch(fresh_mariadb, tmp_path, durability):
    """close() does not wait for a writer stuck in a DB call: it spools the
    queue and the in-flight batch (with its batch id) and leaves the thread.
    ("process": they are in the journal chunk already, the batch marked
    with its id; close() leaves them there.)"""
    server = fresh_mariadb
    spool = str(tmp_path)
    # a batch leaves the queue only when batch_size events are queued (or on flush)
    logger = DBEventLogger(server.url, spool_dir=spool, batch_size=50, flush_interval=3600,
                           read_timeout=30, write_timeout=30, connect_timeout=30,
                           durability=durability)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    assert logger.flush(timeout=30)
    pause_fully(server)
    try:
        for seq in range(1, 51):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})

        def batch_in_flight(logger=logger):  # taken from the queue, neither written nor retried
            stats = logger.stats()
            return (stats["queue_bytes"], stats["enqueued"], stats["written"],
                    stats["retries"]) == (0, 51, 1, 0)

        assert wait_for(batch_in_flight, timeout=30, interval=0.01), logger.stats()
        for seq in range(51, 301):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": seq})
        assert logger.stats()["queue_bytes"] > 0  # the writer is stuck: the rest stays queued
        started = time.monotonic()
        logger.close(timeout=0.5)
        assert time.monotonic() - started < 10  # not the 30 s read timeout
        stats = logger.stats()
        assert stats["spooled"] == 300 and stats["dropped"] == 0, stats
        if durability == "memory":
            lines = [json.loads(line) for path in spool_files(spool) for line in open(path)]
            assert sorted(line["event_data"]["seq"] for line in lines) == list(range(1, 301))
            # the in-flight batch kept its id; what was still queued has none
            in_flight = {line["event_data"]["seq"] for line in lines if line["batch"]}
            assert in_flight == set(range(1, 51))
            assert len({line["batch"] for line in lines if line["batch"]}) == 1
        else:
            from test_durable_journal import entries

            assert not spool_files(spool)
            # one chunk holds them (the other one made is the empty spare)
            [found] = [entries(path) for path in journal_files(spool) if entries(path)]
            # seq 0's batch (committed) first
            assert [entry[4]["seq"] for entry in found] == list(range(301))
            # the in-flight batch is marked (its id); what was still queued is not
            assert [entry[3] for entry in found[:2]] == [1, 50]
            assert not any(entry[3] for entry in found[2:51]) and not any(entry[3] for entry in found[51:])
    finally:
        server.resume()
    del logger
    if durability == "process":
        # the chunks stay locked by the thread close() left until its call
        # returns and it ends; a replay meanwhile would skip them
        assert wait_for(lambda: not any(map(is_locked, journal_files(spool))), timeout=60)
    result = subprocess.run([sys.executable, "-m", "querybook_eventlog", "replay", "--url",
                             server.url, "--spool-dir", spool], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # the stuck batch may have committed late (then replay skips it): either
    # way each event is in the table exactly once
    assert wait_for(lambda: not spool_files(spool) and not journal_files(spool), timeout=5), (
        os.listdir(spool), result.stdout, result.stderr)
    assert_exactly(server, range(301))


def test_sync_log_times_out_while_the_server_is_down_and_still_writes(fresh_mariadb, tmp_path):
    """sync=True waits at most sync_timeout: TimeoutError, but the event stays
    queued and is written once the server is back (not lost, not doubled)."""
    server = fresh_mariadb
    logger = DBEventLogger(server.url, spool_dir=str(tmp_path), sync=True, sync_timeout=3.0,
                           flush_interval=0.01, connect_timeout=1, read_timeout=2,
                           write_timeout=2, backoff_initial=0.05, backoff_max=0.5)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    assert_exactly(server, [0])
    server.pause()
    try:
        with pytest.raises(TimeoutError, match="queued but not yet committed.*still write"):
            logger.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    finally:
        server.resume()
    server.kill()
    with pytest.raises(TimeoutError, match="queued but not yet committed"):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": 2})
    server.restart()
    assert logger.flush(timeout=60)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 3})
    logger.close()
    assert logger.stats()["spooled"] == 0
    assert_exactly(server, range(4))


def test_sync_timeout_option(tmp_path):
    url = "mysql://u:p@127.0.0.1:1/db"
    DBEventLogger(url, spool_dir=str(tmp_path), sync_timeout=None).close(timeout=0)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="sync_timeout"):
            DBEventLogger(url, spool_dir=str(tmp_path), sync_timeout=bad)
    logger = DBEventLogger(url, spool_dir=str(tmp_path), sync=True, sync_timeout=0,
                           backoff_initial=5, backoff_max=5)
    with pytest.raises(TimeoutError):
        logger.log(uid=1, event_type="CLICK", event_data={})
    assert logger.stats()["enqueued"] == 1
    logger.close(timeout=0)
    assert logger.stats()["spooled"] == 1


def open_spool_fds(spool):
    """Descriptors of this process that point at spool files in `spool`."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(spool + "/") and target.endswith(".spool"):
            found.append(target)
    return found


@FORKS_A_THREADED_PROCESS
def test_fork_child_does_not_keep_a_claimed_spool_file(fresh_mariadb, tmp_path):
    """A child forked while the parent's writer replays an orphaned spool file
    closes its copy of the claimed descriptor (whose flock it would otherwise
    hold for as long as it lives)."""
    server = fresh_mariadb
    spool = str(tmp_path)
    line = ('{"created_at":"2023-11-14T22:13:20.000000+00:00","uid":null,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n')
    total = 200000
    with open(os.path.join(spool, "qbel-20200101000000-1-00112233aabbccdd.spool"), "w") as out:
        out.writelines(line % seq for seq in range(total))
    logger = DBEventLogger(server.url, spool_dir=spool, flush_interval=0.01, read_timeout=60,
                           write_timeout=60)
    logger.log(uid=None, event_type="CLICK", event_data={"seq": -1})  # starts the writer
    assert wait_for(lambda: open_spool_fds(spool), timeout=30, interval=0.001), \
        "the writer never claimed the orphan"
    server.pause()  # the replay now waits in a DB call, the file claimed
    try:
        assert open_spool_fds(spool)
        pid = os.fork()
        if pid == 0:
            os._exit(min(len(open_spool_fds(spool)), 100))
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child kept a spool descriptor"
    finally:
        server.resume()
    assert logger.flush(timeout=120)
    logger.close()
    assert_exactly(server, range(-1, total))
    assert not spool_files(spool)


def test_unreadable_lines_are_dead_lettered_once_across_retries(fresh_mariadb, tmp_path):
    """A replay that fails after reading a bad line, then succeeds, leaves one
    dead letter for it, not one per attempt."""
    from querybook_eventlog import _core
    from querybook_eventlog._url import parse_database_url

    server = fresh_mariadb
    spool = str(tmp_path)
    good = ('{"created_at":"2023-11-14T22:13:20.123456+00:00","uid":null,"event_type":"CLICK",'
            '"batch":"","event_data":{"seq":%d}}\n')
    with open(os.path.join(spool, "qbel-20200101000000-1-0badbadbadbad000.spool"), "w") as out:
        out.write(good % 0)
        out.write("garbage line\n")
        out.writelines(good % seq for seq in range(1, 2500))
    parts = parse_database_url(server.url)
    # the table does not exist yet: the first group fails after the bad line was read
    for _ in range(2):
        with pytest.raises(RuntimeError, match="replay failed"):
            _core._replay_spool(parts, spool, "later_table")
    assert not glob.glob(os.path.join(spool, "qbel-dead-*.jsonl"))
    server.sql("CREATE TABLE later_table LIKE event_log")
    assert _core._replay_spool(parts, spool, "later_table") == 2500
    assert_exactly(server, range(2500), table="later_table")
    letters = [json.loads(line) for path in glob.glob(os.path.join(spool, "qbel-dead-*.jsonl"))
               for line in open(path)]
    assert [(letter["raw"], letter["line"]) for letter in letters] == [("garbage line", 2)]
    assert not spool_files(spool)


def test_flush_is_not_satisfied_by_a_later_dropped_event(tmp_path):
    """A dropped overflow event settles at once; it must not stand in for an
    earlier event that is still queued (the server is unreachable)."""
    logger = DBEventLogger("mysql://u:p@127.0.0.1:1/db", spool_dir=None,
                           max_queue_bytes=4096, connect_timeout=1, backoff_initial=0.05,
                           backoff_max=0.2)
    logger.log(uid=1, event_type="CLICK", event_data={"seq": 0})  # queued, never committed
    results = []
    waiter = threading.Thread(target=lambda: results.append(logger.flush(timeout=3)))
    waiter.start()
    time.sleep(0.3)  # let flush take its target first (if not, the test only gets weaker)
    seq = 1
    while logger.stats()["dropped"] == 0:  # overflow without a spool_dir: dropped
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "p" * 500})
        seq += 1
    waiter.join(30)
    assert results == [False]
    stats = logger.stats()
    assert stats["written"] == 0 and stats["dropped"] >= 1
    logger.close()


@FORKS_A_THREADED_PROCESS
def test_fork_while_close_spools_a_full_queue(fresh_mariadb, tmp_path):
    """close() writes the queue to the spool without holding the locks
    fork() waits for; forks during it must leave the spool whole: every
    event replayed exactly once, and the children exit cleanly."""
    server = fresh_mariadb
    spool = str(tmp_path)
    total = 20000
    # the server is down while the logger runs: its spool lines name this
    # server, the one the replay below writes to
    server.kill()
    # "memory": close() spools the queue (with "process" it is in the
    # journal already; test_durable_journal forks beside its chunks)
    logger = DBEventLogger(server.url, spool_dir=spool, connect_timeout=1,
                           backoff_initial=0.05, backoff_max=0.2, durability="memory")
    for seq in range(total):
        logger.log(uid=1, event_type="CLICK", event_data={"seq": seq, "pad": "p" * 200})
    assert spool_bytes(spool) == 0  # the queue fits in memory: only close() spools
    close_returned = threading.Event()

    def close():
        logger.close(timeout=0.5)  # waits for the (never connecting) writer, then spools
        close_returned.set()

    closer = threading.Thread(target=close)
    closer.start()
    statuses, running = [], []
    during_close = []  # spool bytes at each fork that close() had begun and not finished
    while closer.is_alive() or not statuses:
        written_before = spool_bytes(spool)  # > 0: close() is writing (or syncing) the spool
        pid = os.fork()
        if pid == 0:
            # the logger is closed for Python here; its writer starts empty
            os._exit(0 if logger.stats()["queue_bytes"] == 0 else 3)
        returned = close_returned.is_set()  # False: close() still ran after the fork
        if written_before > 0 and not returned:
            during_close.append(written_before)
        running.append(pid)
        for child in list(running):  # reap without waiting: fork again at once
            done, status = os.waitpid(child, os.WNOHANG)
            if done:
                running.remove(child)
                statuses.append(status)
    statuses += [os.waitpid(child, 0)[1] for child in running]
    closer.join(60)
    assert close_returned.is_set()
    assert set(statuses) == {0}
    complete = spool_bytes(spool)
    # forks came while close() was writing and syncing the spool, the part it
    # does with no lock held that fork() waits for
    print(f"{len(statuses)} forks, {len(during_close)} while close() wrote the spool "
          f"({complete} bytes): {during_close[:10]}")
    assert during_close, f"no fork overlapped close()'s spooling ({len(statuses)} forks)"
    stats = logger.stats()
    assert (stats["spooled"], stats["dropped"]) == (total, 0)
    server.start()
    replay = [sys.executable, "-m", "querybook_eventlog", "replay", "--url", server.url,
              "--spool-dir", spool]
    done = subprocess.run(replay, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not spool_files(spool)
    assert_exactly(server, range(total))
