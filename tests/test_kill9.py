"""durability="process": a logging process killed with SIGKILL at random
moments loses no event log() accepted, and the next process (or the replay
command) writes each exactly once.  Real MariaDB, real processes, real
SIGKILL; rows are counted per event id at the end."""

import json
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO}

KILLS = 22

# Logs seq = start, start+1, ... forever; after each log() returns it
# stores seq+1 in the shared counter (a MAP_SHARED store: it survives the
# kill), so every seq below the counter was accepted.  Half the children
# keep events queued for up to half a second (flush_interval=0.5), so that a
# kill finds hundreds of them in memory only.
CHILD = r"""
import mmap, os, struct, sys, time
import querybook_eventlog as qe
url, spool, counter_path, start, flush_interval = sys.argv[1:6]
seq = int(start)
fd = os.open(counter_path, os.O_RDWR)
counter = mmap.mmap(fd, 8)
logger = qe.DBEventLogger(url, spool_dir=spool, durability="process", batch_size=300,
                          flush_interval=float(flush_interval), connect_timeout=5)
while True:
    logger.log(uid=1, event_type="CLICK",
               event_data={"seq": seq, "route": "/ds/query_execution/", "pad": "x" * (seq % 97)})
    seq += 1
    counter[:8] = struct.pack("<q", seq)
    if seq % 20 == 0:
        time.sleep(0.002)  # a busy web process, not a flood: ~5-10k events/s
"""


def read_counter(counter):
    return struct.unpack("<q", counter[:8])[0]


def test_kill_9_at_random_moments_loses_and_doubles_nothing(db, tmp_path):
    spool = str(tmp_path / "spool")
    counter_path = str(tmp_path / "counter")
    with open(counter_path, "wb") as file:
        file.write(b"\0" * 8)
    fd = os.open(counter_path, os.O_RDWR)
    counter = mmap.mmap(fd, 8)
    os.close(fd)
    rng = random.Random(os.environ.get("QBEL_KILL9_SEED", "kill9"))
    accepted = set()   # log() returned
    uncertain = set()  # log() was running when the kill came: in at most once
    start = 0
    for round_number in range(KILLS):
        counter[:8] = struct.pack("<q", start)
        flush_interval = "0.5" if round_number % 2 else "0.02"
        child = subprocess.Popen([sys.executable, "-c", CHILD, db.url, spool, counter_path,
                                  str(start), flush_interval], cwd=REPO, env=ENV)
        deadline = time.monotonic() + 60
        while read_counter(counter) == start and child.poll() is None:
            assert time.monotonic() < deadline, "the child never logged"
            time.sleep(0.005)
        assert child.poll() is None, f"the child exited with {child.returncode}"
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        end = read_counter(counter)
        accepted.update(range(start, end))
        uncertain.add(end)
        start = end + 1
    counter.close()

    # the last child's leftovers: the replay command, as an operator would run it
    replay = subprocess.run(
        [sys.executable, "-m", "querybook_eventlog", "replay", "--spool-dir", spool],
        cwd=REPO, env={**ENV, "DATABASE_CONN": db.url}, capture_output=True, text=True,
        timeout=120)
    assert replay.returncode == 0, replay.stderr
    # (a ".tmp-" chunk is one a kill interrupted while it was being made: it
    # never held an event, and is removed once stale, as spool temporaries are)
    assert not [name for name in os.listdir(spool)
                if name.endswith((".journal", ".spool")) and not name.startswith(".tmp-")], (
        os.listdir(spool))

    rows = [json.loads(row[0])["seq"] for row in db.sql("SELECT event_data FROM event_log")]
    counts = {}
    for seq in rows:
        counts[seq] = counts.get(seq, 0) + 1
    lost = sorted(accepted - set(counts))
    doubled = sorted(seq for seq, count in counts.items() if count > 1)
    unknown = sorted(set(counts) - accepted - uncertain)
    assert len(accepted) > KILLS * 100, len(accepted)
    assert (lost[:10], doubled[:10], unknown[:10]) == ([], [], [])
