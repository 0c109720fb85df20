"""Many threads appending to one overflow spool file at once (issue 7,
finding 12).  Callers whose events find the queue full append to the
spool file themselves, each into a byte range of its own and without
waiting for one another, while the writer thread appends the in-memory
overflow, fdatasyncs the file and, once the server is back, takes the file
over for replay (callers then create the next file).  Every event must end
up in the spool files, then in the table, exactly once: no line lost,
doubled, interleaved with another or torn."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from querybook_eventlog import DBEventLogger
from test_db_faults import assert_exactly, spool_files  # noqa: E402 - tests/ is on sys.path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO}
THREADS = 16
PER_THREAD = 400


def start_threads(logger, pause_every=0):
    """THREADS threads, started together, each logging PER_THREAD events
    with seqs of its own (varied sizes, so ranges differ in length).
    Returns join(), which asserts that none of them raised."""
    start = threading.Barrier(THREADS)
    errors = []

    def produce(index):
        try:
            start.wait()
            for i in range(PER_THREAD):
                seq = index * PER_THREAD + i
                logger.log(uid=index + 1, event_type="VIEW",
                           event_data={"seq": seq, "pad": "p" * (seq % 97)})
                if pause_every and i % pause_every == 0:
                    time.sleep(0.001)
        except BaseException as error:  # reported by join()
            errors.append(error)

    threads = [threading.Thread(target=produce, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()

    def join():
        for thread in threads:
            thread.join()
        assert errors == []

    return join


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_sixteen_threads_fill_the_spool_file_line_by_line(fresh_mariadb, tmp_path, durability):
    server = fresh_mariadb
    server.kill()
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(server.url, spool_dir=spool, durability=durability,
                           max_queue_bytes=32768, connect_timeout=1, backoff_initial=0.05,
                           backoff_max=0.2)
    start_threads(logger)()
    logger.close(timeout=5)
    stats = logger.stats()
    total = THREADS * PER_THREAD
    assert stats["dropped"] == 0 and stats["spooled"] > 0, stats
    # every line whole and parseable, every event in exactly one line
    seqs = []
    for path in spool_files(spool):
        with open(path, "rb") as spool_file:
            for line in spool_file:
                assert line.endswith(b"\n"), (path, line[-80:])
                seqs.append(json.loads(line)["event_data"]["seq"])
    if durability == "process":
        # what the journal chunks held is replayed from them, not the spool files
        assert len(seqs) == len(set(seqs)) and set(seqs) <= set(range(total))
    else:
        assert sorted(seqs) == list(range(total))
    server.start()
    replay = [sys.executable, "-m", "querybook_eventlog", "replay", "--url", server.url,
              "--spool-dir", spool]
    result = subprocess.run(replay, cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert not spool_files(spool)
    assert_exactly(server, range(total))


@pytest.mark.parametrize("durability", ["memory", "process"])
def test_appends_go_on_while_the_writer_takes_the_file_over(fresh_mariadb, tmp_path,
                                                            durability):
    server = fresh_mariadb
    server.kill()
    spool = str(tmp_path / "spool")
    logger = DBEventLogger(server.url, spool_dir=spool, durability=durability,
                           max_queue_bytes=32768, connect_timeout=1, backoff_initial=0.05,
                           backoff_max=0.2)
    # the server comes back while the threads still log: the writer drains
    # the queue, takes the spool file over and replays it while callers
    # keep overflowing into the files they create next
    join = start_threads(logger, pause_every=25)
    deadline = time.monotonic() + 60
    while logger.stats()["spooled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.start()
    join()
    flushed = logger.flush(timeout=120)
    stats = logger.stats()
    assert flushed, repr(stats)
    logger.close(timeout=10)
    total = THREADS * PER_THREAD
    assert stats["dropped"] == 0 and stats["replayed"] > 0, stats
    assert stats["written"] + stats["replayed"] == total, stats
    assert not spool_files(spool)
    assert_exactly(server, range(total))
