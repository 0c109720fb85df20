"""Tail latency of DBEventLogger.log() beside encoding alone, in one run.
Run from the repo root: python3 bench/bench_tail.py [--quick]

What a request pays for logging is not the median but the tail: one slow
log() stalls a uwsgi worker's whole gevent loop.  Each row times every single
call (perf_counter_ns around it) on fresh, varied Querybook-shaped events
(bench/qb_events.py), and prints p50 / p99 / p99.9 / max in microseconds for

  dumps     qe.dumps(event_data), the result dropped: the encoding alone,
            the floor any logger that encodes in the caller pays
  orjson    orjson.dumps(event_data), for scale
  log       DBEventLogger(url).log(uid, event_type, event_data), server up,
            default options (the writer thread drains concurrently)
  log-process  the same with durability="process" (the queue mirrored in
            memory-mapped journal chunks: survives kill -9), beside `log`
  log-full  the same with the server unreachable, max_queue_bytes 1 MiB and
            durability="memory": once the queue is full every call goes to
            the spool: into the queue's in-memory overflow, which the writer
            thread appends to the spool file, or (overflow full) appended by
            the caller itself
  log-full-process  the same with durability="process" (no overflow in
            memory: once queue and journal are full, every call appends its
            event to the spool file itself)

(`--burst` instead: one thread logs BURST fresh events as fast as it can
into a queue that only grows, durability "memory" and "process"
alternating, three pairs (--pairs N: N); prints the median µs per log() of each and their
ratio: the sustained cost, chunk making included.  `--sides`, `--loads`,
`--rounds N`: a subset of the rows, each run N times, medians shown.
`--spool-base DIR`: the spool directories go there (e.g. /dev/shm, a tmpfs,
against the default temporary directory) to tell the filesystem's share of
the tail from ours.)

under three loads: one thread; THREADS threads (each its own events; a
thread's call may include waiting for the GIL, which the dumps row shows
too); and GREENLETS gevent greenlets in a monkey-patched subprocess (as under
uwsgi + gevent; each call's time is the event loop's stall, since log()
never yields).  The sides alternate within each load.
"""

import gc
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, HERE, os.path.join(REPO, "tests")]

QUICK = "--quick" in sys.argv
THREADS = 16
GREENLETS = 200
PER_WORKER = 1_000 if QUICK else 5_000
SINGLE = 20_000 if QUICK else 100_000
FULL_QUEUE_BYTES = 1 << 20
BURST = 50_000 if QUICK else 200_000
# --pairs N: rounds of the burst (each a "memory" and a "process" run)
PAIRS = int(sys.argv[sys.argv.index("--pairs") + 1]) if "--pairs" in sys.argv else 3


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


# --sides log,log-full: only these sides (dumps is always run: the baseline);
# --loads 1,16,g: only these loads; --rounds N: each row N times (the
# tables then show the median of each figure over the rounds)
ONLY_SIDES = option("--sides", "")
ONLY_LOADS = option("--loads", "1,16,g").split(",")
ROUNDS = int(option("--rounds", "1"))
SPOOL_BASE = option("--spool-base", None)


def fresh_rows(seed, count):
    import qb_events

    rng = random.Random(seed)
    return [(rng.randint(1, 100), event_type, data) for _, event_type, data in qb_events.mix(rng, count)]


def percentiles(samples_ns):
    ordered = sorted(samples_ns)
    count = len(ordered)

    def at(fraction):
        return ordered[min(count - 1, int(fraction * count))] / 1000.0

    return {"n": count, "mean": sum(ordered) / count / 1000.0, "p50": at(0.5), "p99": at(0.99),
            "p999": at(0.999), "max": ordered[-1] / 1000.0}


def make_call(side, url, spool):
    """(call(uid, event_type, data), close()) for a side."""
    import querybook_eventlog as qe

    if side == "dumps":
        return (lambda uid, event_type, data: qe.dumps(data)), (lambda: None)
    if side == "orjson":
        import orjson

        return (lambda uid, event_type, data: orjson.dumps(data)), (lambda: None)
    if side == "log":
        logger = qe.DBEventLogger(url, spool_dir=spool, durability="memory")
    elif side == "log-process":
        logger = qe.DBEventLogger(url, spool_dir=spool, durability="process")
    else:  # log-full, log-full-process: nobody listens on the URL's port
        durability = "process" if side == "log-full-process" else "memory"
        logger = qe.DBEventLogger(url, spool_dir=spool, max_queue_bytes=FULL_QUEUE_BYTES,
                                  durability=durability)
    logger.log(1, qe.EventType.CLICK, {"warm": 1})
    types = {name: qe.EventType[name] for name in ("API", "WEBSOCKET", "VIEW", "CLICK")}

    def call(uid, event_type, data):
        logger.log(uid, types[event_type], data)

    def close():
        logger.flush(timeout=0.1 if side.startswith("log-full") else 120)
        logger.close(timeout=5)

    return call, close


def timed_worker(call, rows, out):
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    for uid, event_type, data in rows:
        t0 = clock()
        call(uid, event_type, data)
        append(clock() - t0)
    out.extend(samples)


def run_threads(side, url, spool, threads, per_worker, seed):
    call, close = make_call(side, url, spool)
    work = [fresh_rows(seed + index, per_worker) for index in range(threads)]
    out = []
    gc.collect()
    if threads == 1:
        timed_worker(call, work[0], out)
    else:
        workers = [threading.Thread(target=timed_worker, args=(call, rows, out)) for rows in work]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    close()
    return percentiles(out)


def greenlet_child(side, url, spool, seed):
    from gevent import monkey

    monkey.patch_all()
    import gevent

    call, close = make_call(side, url, spool)
    work = [fresh_rows(seed + index, PER_WORKER) for index in range(GREENLETS)]
    out = []

    def worker(rows):
        clock = time.perf_counter_ns
        for uid, event_type, data in rows:
            t0 = clock()
            call(uid, event_type, data)
            out.append(clock() - t0)
            gevent.sleep(0)

    gc.collect()
    gevent.joinall([gevent.spawn(worker, rows) for rows in work])
    close()
    print(json.dumps(percentiles(out)))


def run_greenlets(side, url, spool, seed):
    result = subprocess.run(
        [sys.executable, __file__, "--greenlet-child", side, url, spool, str(seed)]
        + (["--quick"] if QUICK else []),
        capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"greenlet child ({side}) failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def burst_main():
    import statistics

    import querybook_eventlog as qe
    from mariadb_server import MariaDBServer

    server = MariaDBServer()
    server.start()
    workdir = tempfile.mkdtemp(prefix="qbel-bench-burst-")
    per_call = {"memory": [], "process": []}
    seed = 9_000_001
    try:
        for pair in range(PAIRS):
            for mode in (("memory", "process") if pair % 2 == 0 else ("process", "memory")):
                seed += 1
                rows = fresh_rows(seed, BURST)
                server.reset_events()
                logger = qe.DBEventLogger(server.url, spool_dir=os.path.join(workdir, str(seed)),
                                          durability=mode)
                logger.log(1, "CLICK", {"warm": 1})
                gc.collect()
                started = time.perf_counter()
                for uid, event_type, data in rows:
                    logger.log(uid, event_type, data)
                elapsed = time.perf_counter() - started
                assert logger.flush(timeout=600)
                stats = logger.stats()
                logger.close()
                assert stats["spooled"] == 0 and stats["dropped"] == 0, stats
                per_call[mode].append(elapsed / len(rows) * 1e6)
                print(f"  {mode:<8} {per_call[mode][-1]:.2f} us/log", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    memory, process = (statistics.median(per_call[m]) for m in ("memory", "process"))
    print()
    print('| burst (1 thread, queue growing) | "memory" µs/log | "process" µs/log | ratio |')
    print("|---|---:|---:|---:|")
    ratios = sorted(p / m for m, p in zip(per_call["memory"], per_call["process"]))
    print(f"| {BURST} events × {PAIRS} pairs, medians | {memory:.2f} | {process:.2f} | "
          f"{process / memory:.2f}× |")
    print(f"\nper-pair ratios: {', '.join(f'{r:.2f}' for r in ratios)}; load {os.getloadavg()[0]:.2f}")
    return 0


def median_rows(rows):
    """One row per (load, side): each figure's median over its rounds."""
    import statistics

    merged = {}
    for load_name, side, figures in rows:
        merged.setdefault((load_name, side), []).append(figures)
    return [(load_name, side, {key: statistics.median(f[key] for f in runs) for key in runs[0]})
            for (load_name, side), runs in merged.items()]


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    if "--greenlet-child" in sys.argv:
        index = sys.argv.index("--greenlet-child")
        side, url, spool, seed = sys.argv[index + 1:index + 5]
        greenlet_child(side, url, spool, int(seed))
        return 0
    if "--burst" in sys.argv:
        return burst_main()
    try:
        import orjson  # noqa: F401
        sides = ["dumps", "orjson", "log", "log-process", "log-full", "log-full-process"]
    except ImportError:
        sides = ["dumps", "log", "log-process", "log-full", "log-full-process"]
    from mariadb_server import MariaDBServer

    server = MariaDBServer()
    server.start()
    workdir = tempfile.mkdtemp(prefix="qbel-bench-tail-", dir=SPOOL_BASE)
    down_url = f"mysql://qbel:x@127.0.0.1:{unused_port()}/querybook"
    if ONLY_SIDES:
        sides = [side for side in sides if side == "dumps" or side in ONLY_SIDES.split(",")]
    rows = []
    seed = 7_000_001
    try:
        loads = [("1 thread", None, "1"), (f"{THREADS} threads", THREADS, "16"),
                 (f"{GREENLETS} greenlets", "g", "g")]
        for load_name, load, _ in [entry for entry in loads if entry[2] in ONLY_LOADS]:
            order = sides if seed % 2 else list(reversed(sides))
            for side in [side for _ in range(ROUNDS) for side in order]:
                seed += 1000
                spool = os.path.join(workdir, f"spool-{seed}")
                url = down_url if side.startswith("log-full") else server.url
                server.reset_events()
                if load is None:
                    figures = run_threads(side, url, spool, 1, SINGLE, seed)
                elif load == "g":
                    figures = run_greenlets(side, url, spool, seed)
                else:
                    figures = run_threads(side, url, spool, THREADS, PER_WORKER, seed)
                rows.append((load_name, side, figures))
                print(f"  {load_name:<14} {side:<16} p50 {figures['p50']:8.2f}  p99 {figures['p99']:8.2f}"
                      f"  p99.9 {figures['p999']:9.2f}  max {figures['max']:10.1f} us  (n={figures['n']})",
                      flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = median_rows(rows)
    print(f"\n(medians over {ROUNDS} round(s); load {os.getloadavg()[0]:.2f})" if ROUNDS > 1 else "")
    print("| load | side | p50 µs | p99 µs | p99.9 µs | max µs | p99 vs dumps | p99.9 vs dumps |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for load_name, side, figures in sorted(rows, key=lambda row: ([r[0] for r in rows].index(row[0]),
                                                                 sides.index(row[1]))):
        base = next(f for name, s, f in rows if name == load_name and s == "dumps")
        ratio = figures["p999"] / base["p999"] if base["p999"] else float("nan")
        ratio99 = figures["p99"] / base["p99"] if base["p99"] else float("nan")
        print(f"| {load_name} | {side} | {figures['p50']:.2f} | {figures['p99']:.2f} | "
              f"{figures['p999']:.2f} | {figures['max']:.1f} | {ratio99:.2f}× | {ratio:.2f}× |")
    print()
    print('| load | durability="process" ÷ "memory": mean | p50 | p99 | p99.9 |')
    print("|---|---:|---:|---:|---:|")
    for load_name in dict.fromkeys(row[0] for row in rows):
        memory = next((f for name, s, f in rows if name == load_name and s == "log"), None)
        process = next((f for name, s, f in rows if name == load_name and s == "log-process"), None)
        if memory is None or process is None:
            continue
        print(f"| {load_name} | " + " | ".join(
            f"{process[key] / memory[key]:.2f}×" for key in ("mean", "p50", "p99", "p999")) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
