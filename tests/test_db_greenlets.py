"""Querybook's web server runs uwsgi with gevent (a thousand greenlets in one
process, the standard library monkey-patched).  Many greenlets logging at
once lose, tear and interleave nothing, and log() never yields to the hub
(it does no I/O), so a greenlet's events keep their order."""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys
    import gevent
    import greenlet
    import querybook_eventlog as qe

    url, spool = sys.argv[1], sys.argv[2]
    logger = qe.DBEventLogger(url, spool_dir=spool, batch_size=500, flush_interval=0.01)
    GREENLETS, EACH = 200, 50

    # Every greenlet switch, counted by whether it left a log() call: a log()
    # that yielded to the hub (I/O, a patched lock, a sleep) would switch out
    # of the greenlet while inside it.
    switches = {"inside_log": 0, "elsewhere": 0}
    in_log = [False]

    def trace(event, args):
        if event in ("switch", "throw"):
            switches["inside_log" if in_log[0] else "elsewhere"] += 1

    greenlet.settrace(trace)

    def request(index):
        for n in range(EACH):
            in_log[0] = True
            logger.log(uid=index % 100 + 1, event_type="API",
                       event_data={"g": index, "n": n, "pad": "x" * (index % 7) * 40})
            in_log[0] = False
            gevent.sleep(0)  # let the other greenlets run between events

    gevent.joinall([gevent.spawn(request, i) for i in range(GREENLETS)], raise_error=True)
    greenlet.settrace(None)
    assert logger.flush(timeout=120)
    stats = logger.stats()
    logger.close()
    print(stats["enqueued"], stats["written"], stats["dropped"])
    print(switches["inside_log"], switches["elsewhere"])
""")


def test_many_greenlets_under_monkey_patching(db, tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-c", SCRIPT, db.url, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    counts, switches = result.stdout.splitlines()
    assert counts.split() == ["10000", "10000", "0"]
    inside_log, elsewhere = map(int, switches.split())
    assert inside_log == 0, f"log() yielded to the hub {inside_log} times"
    # the trace saw the switches there were: each gevent.sleep(0) goes to the
    # hub and back
    assert elsewhere >= 2 * 10000, elsewhere
    rows = db.sql("SELECT id, JSON_VALUE(event_data, '$.g'), JSON_VALUE(event_data, '$.n'), "
                  "JSON_LENGTH(event_data), LENGTH(JSON_VALUE(event_data, '$.pad')) "
                  "FROM event_log ORDER BY id")
    assert len(rows) == 10000
    seen = {}
    for _, greenlet, n, members, pad in rows:
        greenlet, n = int(greenlet), int(n)
        assert members == "3" and int(pad) == (greenlet % 7) * 40  # nothing torn
        seen.setdefault(greenlet, []).append(n)
    assert sorted(seen) == list(range(200))
    for greenlet, ns in seen.items():
        assert ns == list(range(50)), greenlet  # each greenlet's events in order, once
