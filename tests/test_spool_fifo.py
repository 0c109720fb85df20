"""No lock is held across I/O that can block: with a FIFO named like a
spool file and another named like a dead-letter file in the spool dir,
close(timeout=1) returns, an overflowing log() returns, and os.fork() in
another thread does not freeze.  (Each wait below is a hang detector with
a generous bound, not a timing assertion.)"""

import os
import threading

import pytest

from querybook_eventlog import DBEventLogger

UNREACHABLE = "mysql://u:hunter2@127.0.0.1:1/db"
HANG_S = 60.0

FORKS_A_THREADED_PROCESS = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")


def spool_dir_with_fifos(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    os.chmod(spool, 0o700)
    os.mkfifo(spool / "qbel-20200101000000-1-00000000000000f1.spool")
    os.mkfifo(spool / "qbel-dead-20200101000000-1-00000000000000f2.jsonl")
    os.mkfifo(spool / ".tmp-qbel-20200101000000-1-00000000000000f3.spool")
    return str(spool)


def finishes(function, *args):
    """Run `function` in a thread; True when it returned within HANG_S."""
    done = threading.Event()
    errors = []

    def run():
        try:
            function(*args)
        except BaseException as error:  # reported below
            errors.append(error)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(HANG_S)
    assert not errors, errors
    return finished


def test_fifos_in_the_spool_dir_block_nothing(db, tmp_path):
    spool = spool_dir_with_fifos(tmp_path)
    # a live logger: its writer scans the directory (and meets the FIFOs)
    live = DBEventLogger(db.url, spool_dir=spool, flush_interval=0.01, backoff_max=0.2)
    live.log(uid=1, event_type="CLICK", event_data={"seq": 1})
    assert finishes(live.flush, 30)
    # an overflowing logger: every log() past the queue appends to its spool file
    dead = DBEventLogger(UNREACHABLE, spool_dir=spool, max_queue_bytes=4096, connect_timeout=1,
                         backoff_max=0.2)

    def overflow():
        for seq in range(2000):
            dead.log(uid=1, event_type="VIEW", event_data={"seq": seq, "pad": "p" * 40})

    assert finishes(overflow)
    assert dead.stats()["spooled"] > 0 and dead.stats()["dropped"] == 0
    assert finishes(dead.close, 1)
    assert finishes(live.close, 1)
    assert int(db.sql("SELECT COUNT(*) FROM event_log")[0][0]) == 1
    names = sorted(os.listdir(spool))
    assert "qbel-20200101000000-1-00000000000000f1.spool" in names  # left where it is
    assert "qbel-dead-20200101000000-1-00000000000000f2.jsonl" in names


@FORKS_A_THREADED_PROCESS
def test_fork_in_another_thread_while_the_writer_meets_fifos(tmp_path):
    spool = spool_dir_with_fifos(tmp_path)
    logger = DBEventLogger(UNREACHABLE, spool_dir=spool, max_queue_bytes=4096,
                           connect_timeout=1, backoff_max=0.2)
    stop = threading.Event()

    def overflow():
        seq = 0
        while not stop.is_set():
            logger.log(uid=1, event_type="VIEW", event_data={"seq": seq, "pad": "p" * 40})
            seq += 1

    producer = threading.Thread(target=overflow, daemon=True)
    producer.start()
    statuses = []

    def fork_a_few():
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            statuses.append(os.waitpid(pid, 0)[1])

    try:
        assert finishes(fork_a_few)
    finally:
        stop.set()
        producer.join(HANG_S)
    assert statuses == [0] * 20
    assert finishes(logger.close, 1)
    assert logger.stats()["dropped"] == 0
