"""Ctrl-C while the database is down (issue 7, item 9): flush() without a
timeout and log() with sync=True, sync_timeout=None wake for signals and
raise KeyboardInterrupt, leaving the events queued (then spooled at exit)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import signal, sys, time
    import querybook_eventlog as qe
    # Python leaves SIGINT ignored when it starts with it ignored, as in a
    # test run started in the background (`pytest &` in a script): undo that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logger = qe.DBEventLogger("mysql://u:pw@127.0.0.1:1/db", spool_dir=sys.argv[2],
                              connect_timeout=1, sync={sync}, sync_timeout=None,
                              exit_timeout=0.5)
    if not {sync}:
        logger.log(uid=1, event_type="VIEW", event_data={{"n": 1}})
    print("waiting", flush=True)
    started = time.monotonic()
    try:
        if {sync}:
            logger.log(uid=1, event_type="VIEW", event_data={{"n": 1}})
        else:
            logger.flush()
    except KeyboardInterrupt:
        stats = logger.stats()
        print("interrupted after %.2f s; enqueued=%d written=%d"
              % (time.monotonic() - started, stats["enqueued"], stats["written"]), flush=True)
        logger.close()
        print("spooled=%d" % logger.stats()["spooled"], flush=True)
""")


@pytest.mark.parametrize("sync", [False, True])
def test_ctrl_c_interrupts_a_wait_on_a_dead_server(tmp_path, sync):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN"}
    env["PYTHONPATH"] = REPO
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(sync=sync), "x", str(tmp_path)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        time.sleep(1.0)  # well inside the wait, which would otherwise never end
        assert child.poll() is None, child.stderr.read()
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        reaction = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("interrupted after ") and lines[0].endswith("enqueued=1 written=0")
    assert lines[1] == "spooled=1"  # the event was kept, not lost
    assert reaction < 3.0, reaction
