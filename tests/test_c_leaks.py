"""The C core gives back every byte it takes from malloc.

tracemalloc sees only Python's allocator; the encoder's buffer past its
4 KiB stack block, the event records, the writer, the sink's arrays and the
spool's paths come from malloc.  A test build (setup.py's QBEL_TEST_BUILD=1;
scripts/test.sh builds the sanitizer pass's copy that way) routes them all
through csrc/qbel_alloc.h, which counts live blocks and bytes:
`_core._live_allocations()`.  Each test runs a workload once to warm up
(process-lifetime blocks such as the spool's descriptor list), then again
and again, and the count must come back to exactly where it was.

With QBEL_REQUIRE_TEST_HOOKS=1 (the test command's sanitizer pass) a build
without the counter fails these tests; elsewhere they skip.  The grep of
csrc/ at the bottom runs everywhere."""

import dataclasses
import datetime
import decimal
import enum
import gc
import glob
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid

import pytest

import querybook_eventlog as qe
from querybook_eventlog import _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOKS = hasattr(_core, "_live_allocations")
REQUIRED = os.environ.get("QBEL_REQUIRE_TEST_HOOKS") == "1"
BIG = 100 * 1024  # well past the encoder's 4 KiB stack block


@pytest.fixture
def live():
    """_core._live_allocations, or fail (required) / skip (not a test build)."""
    if not HOOKS:
        message = (f"{_core.__file__} is not a test build (no _core._live_allocations); "
                   "build it with QBEL_TEST_BUILD=1")
        if REQUIRED:
            pytest.fail("QBEL_REQUIRE_TEST_HOOKS=1 but " + message, pytrace=False)
        pytest.skip(message)
    _core._fail_allocation_at(0)
    yield _core._live_allocations
    _core._fail_allocation_at(0)


def assert_balanced(live, workload, repeat=5, settle=10.0):
    """Run `workload` once to warm up, then `repeat` times; the live count
    must return to its value after the warm-up (waiting up to `settle`
    seconds for a writer thread to free what it still holds)."""
    workload()
    gc.collect()
    before = live()
    for _ in range(repeat):
        workload()
    gc.collect()
    deadline = time.monotonic() + settle
    after = live()
    while after != before and time.monotonic() < deadline:
        time.sleep(0.05)
        gc.collect()
        after = live()
    assert after == before, (
        f"{workload.__name__}: {after[0] - before[0]} block(s), {after[1] - before[1]} byte(s) "
        f"of C memory not given back after {repeat} runs (before {before}, after {after})")


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: str


def small_event(seed):
    return {"seq": seed, "path": f"/datadoc/{seed}/", "ok": seed % 2 == 0, "f": seed / 7}


def large_event(seed):
    """Fresh every call, of every type the encoder knows, past the stack block."""
    return {
        "seq": seed,
        "text": "é" * (BIG // 2) + str(seed),                    # 100 KiB of UTF-8
        "escapes": ("\n\"\\\x01" * 2000) + str(seed),
        "list": list(range(seed, seed + 10_000)),                 # 10k elements
        "nested": [{"k": i, "v": [i, str(i), None, True]} for i in range(500)],
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, seed % 1000),
        "day": datetime.date(2024, 1, 1 + seed % 28),
        "uuid": uuid.UUID(int=seed),
        "decimal": decimal.Decimal(seed) / 3,
        "enum": Colour.RED,
        "point": Point(seed, "y" * 5000),
        "tuple": (1.5, float("nan"), -0.0),
        "set": frozenset({seed}),
    }


def unencodable_deep_inside(seed):
    """A large dict whose last value, deep down, cannot be encoded."""
    event = large_event(seed)
    event["deep"] = {"a": [{"b": [1, 2, {"c": object()}]}]}
    return event


class DevNull:
    """A text stream that drops everything (the console logger's target)."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


# ---- the encoder ---------------------------------------------------------


def test_dumps_small_and_large(live):
    seeds = iter(range(10**9))

    def dumps_small_and_large():
        for _ in range(20):
            qe.dumps(small_event(next(seeds)))
        for _ in range(3):
            seed = next(seeds)
            assert len(qe.dumps(large_event(seed))) > BIG
            assert len(qe.dumps(["x" * BIG + str(seed)])) > BIG
            assert len(qe.dumps(list(range(seed, seed + 10_000)))) > 10_000
            assert len(qe.dumps({str(i): "v" * 100 for i in range(2000)})) > BIG

    assert_balanced(live, dumps_small_and_large)


def test_dumps_errors_half_way(live):
    seeds = iter(range(10**9))

    def dumps_errors_half_way():
        seed = next(seeds)
        with pytest.raises(TypeError, match=r"object.*\$\[\"deep\"\]"):
            qe.dumps(unencodable_deep_inside(seed))
        cycle = ["x" * BIG]
        cycle.append(cycle)
        with pytest.raises(ValueError):
            qe.dumps(cycle)
        deep = ["y" * 5000]
        for _ in range(qe.MAX_JSON_DEPTH + 5):
            deep = [deep]
        with pytest.raises(ValueError):
            qe.dumps(deep)
        with pytest.raises(TypeError):
            qe.dumps({("k" * 300) + str(i): i for i in range(100)} | {object(): 1})

    assert_balanced(live, dumps_errors_half_way)


def test_dumps_out_of_memory_at_every_allocation(live):
    """The chaos allocator fails the 1st, 2nd, ... allocation of one call:
    MemoryError each time, and nothing left behind."""
    document = {"a": "x" * BIG, "b": list(range(20_000)), "c": [{"d": "y" * 3000}] * 40}
    expected = qe.dumps(document)

    def dumps_failing_each_allocation():
        for n in range(1, 200):
            _core._fail_allocation_at(n)
            try:
                result = qe.dumps(document)
            except MemoryError:
                continue
            finally:
                _core._fail_allocation_at(0)
            assert result == expected
            return
        raise AssertionError("dumps still failing after 200 allocations")

    assert_balanced(live, dumps_failing_each_allocation, repeat=2)


# ---- the in-process loggers ---------------------------------------------


def test_null_logger(live):
    logger = qe.NullEventLogger()
    seeds = iter(range(10**9))

    def null_logger_log():
        for _ in range(3):
            seed = next(seeds)
            logger.log(uid=seed, event_type="CLICK", event_data=large_event(seed))
            logger.log(seed, qe.EventType.VIEW, small_event(seed), 1700000000000 + seed)
            logger.log_api_request(seed, "/datadoc/1/", "GET", {"q": "z" * BIG})
            logger.log_websocket_event(seed, "/datadoc/subscribe", ["a" * BIG], {"k": "b" * BIG})
            logger.log(uid=seed, event_type="CLICK", event_data=unencodable_deep_inside(seed))

    assert_balanced(live, null_logger_log)


@pytest.mark.parametrize("options", [
    {"format": "text"}, {"format": "jsonl"}, {"format": "text", "color": True},
    {"format": "upstream"},
], ids=["text", "jsonl", "text-color", "upstream"])
def test_console_logger(live, options):
    options = dict(options)
    if options["format"] == "upstream":
        python_logger = logging.getLogger("qbel-leak-test")
        python_logger.propagate = False
        python_logger.handlers[:] = [logging.StreamHandler(DevNull())]
        python_logger.setLevel(logging.INFO)
        options["logger"] = python_logger
    else:
        options["stream"] = DevNull()
    logger = qe.ConsoleEventLogger(**options)
    seeds = iter(range(10**9))

    def console_logger_log():
        for _ in range(3):
            seed = next(seeds)
            logger.log(uid=seed, event_type="CLICK", event_data=large_event(seed))
            logger.log(seed, "VIEW", small_event(seed), 1700000000000 + seed)
            logger.log_api_request(seed, "/datadoc/1/", "POST", {"q": "z" * BIG})
            if options["format"] == "upstream":  # repr(), never JSON: anything goes
                logger.log(uid=seed, event_type="CLICK", event_data=unencodable_deep_inside(seed))
            else:
                with pytest.raises(TypeError):
                    logger.log(uid=seed, event_type="CLICK",
                               event_data=unencodable_deep_inside(seed))

    assert_balanced(live, console_logger_log)


def test_log_client_events(live):
    console = qe.ConsoleEventLogger(DevNull(), format="jsonl")
    seeds = iter(range(10**9))

    def log_client_events():
        seed = next(seeds)
        body = json.dumps(
            [{"type": "VIEW", "data": {"path": "p" * BIG}, "timestamp": 1700000000000 + seed}]
            + [{"type": "CLICK", "data": {"i": i, "s": "s" * 50}} for i in range(2000)]
            + [{"type": "NOPE"}, {"data": 1}, 7]
        ).encode()
        for logger in (qe.NullEventLogger(), console):
            logged, rejected = qe.log_client_events(logger, seed, body)
            assert logged == 2001 and len(rejected) == 3
        with pytest.raises(ValueError):
            qe.log_client_events(console, seed, b'[{"type": "VIEW", "data": ' + b"1" * BIG)

    assert_balanced(live, log_client_events)


# ---- the DB logger: writer thread, sink, spool ---------------------------


def uid(seed):
    """One of the test schema's users (1..100: event_log.uid is a foreign key)."""
    return 1 + seed % 100


POISON_UID = 10**6  # no such user: the server rejects the row, it is dead-lettered


def db_options(tmp_path, **options):
    options.setdefault("spool_dir", str(tmp_path / "spool"))
    options.setdefault("flush_interval", 0.05)
    return options


def close_and_drop(logger, timeout=30):
    logger.close(timeout=timeout)
    del logger
    gc.collect()


def test_db_logger_log_flush_close(live, db, tmp_path):
    seeds = iter(range(10**9))

    def db_logger_round_trip():
        logger = qe.DBEventLogger(db.url, **db_options(tmp_path, batch_size=50))
        for _ in range(3):
            seed = next(seeds)
            logger.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
            for i in range(120):
                logger.log(uid(i), "VIEW", small_event(seed * 1000 + i))
            logger.log_api_request(uid(seed), "/datadoc/1/", "GET", {"q": "z" * 200})
            logger.log(uid=POISON_UID, event_type="CLICK", event_data=small_event(seed))
            with pytest.raises(TypeError):
                logger.log(uid=1, event_type="CLICK", event_data=unencodable_deep_inside(seed))
            assert logger.flush(timeout=60)
        stats = logger.stats()
        assert (stats["written"], stats["dead_lettered"]) == (3 * 122, 3), stats
        close_and_drop(logger)

    assert_balanced(live, db_logger_round_trip, repeat=3)


def test_db_logger_sync(live, db, tmp_path):
    seeds = iter(range(10**9))

    def db_logger_sync():
        logger = qe.DBEventLogger(db.url, **db_options(tmp_path, sync=True))
        seed = next(seeds)
        logger.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
        logger.log(uid=None, event_type="VIEW", event_data=small_event(seed))
        close_and_drop(logger)

    assert_balanced(live, db_logger_sync, repeat=3)


def test_spool_then_replay(live, db, tmp_path):
    """Server unreachable: close() spools; a logger on the live server
    replays the file (and dead-letters a garbage line in it).  "memory":
    with "process" close() leaves the queue in the journal (see
    test_durable_journal_left_at_close_then_replayed)."""
    seeds = iter(range(10**9))
    spool = tmp_path / "spool"

    def spool_then_replay():
        dead = qe.DBEventLogger("mysql://u:p@127.0.0.1:1/qb", **db_options(
            tmp_path, connect_timeout=1, backoff_max=0.2, durability="memory"))
        for _ in range(2):
            seed = next(seeds)
            dead.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
            for i in range(100):
                dead.log(uid(i), "VIEW", small_event(seed * 1000 + i))
        dead.close(timeout=0)
        assert dead.stats()["spooled"] == 202
        close_and_drop(dead)
        files = glob.glob(str(spool / "qbel-*.spool"))
        assert len(files) == 1
        with open(files[0]) as spooled:  # lines for the dead server: make them untargeted,
            text = spooled.read().replace(  # as before targets, so the live logger takes them
                '"target":"mysql://u@127.0.0.1:1/qb#event_log",', "")
        with open(files[0], "w") as spooled:
            spooled.write(text + '{"not": "an event"}\n' + "x" * 5000 + "\n")
        live_logger = qe.DBEventLogger(db.url, **db_options(tmp_path))
        live_logger.log(uid=1, event_type="CLICK", event_data={"after": "replay"})
        assert live_logger.flush(timeout=60)
        deadline = time.monotonic() + 60
        while glob.glob(str(spool / "qbel-*.spool")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not glob.glob(str(spool / "qbel-*.spool"))
        stats = live_logger.stats()
        close_and_drop(live_logger)
        assert stats["replayed"] == 202, stats

    assert_balanced(live, spool_then_replay, repeat=2)


def test_replay_cli_entry_point(live, db, tmp_path):
    seeds = iter(range(10**9))
    spool = tmp_path / "spool"
    from querybook_eventlog._url import parse_database_url

    def replay_spool():
        dead = qe.DBEventLogger("mysql://u:p@127.0.0.1:1/qb", **db_options(
            tmp_path, connect_timeout=1, backoff_max=0.2))
        seed = next(seeds)
        dead.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
        dead.log(uid=None, event_type="VIEW", event_data=small_event(seed))
        close_and_drop(dead, timeout=0)
        # written for the dead server, replayed into `db` on purpose: adopt_all
        assert _core._replay_spool(parse_database_url(db.url), str(spool), "event_log",
                                   True) == 2

    assert_balanced(live, replay_spool, repeat=2)


def test_durable_journal_log_reuse_close(live, db, tmp_path):
    """durability="process": chunks made, filled, reused and released."""
    seeds = iter(range(10**9))

    def durable_round_trip():
        logger = qe.DBEventLogger(db.url, **db_options(
            tmp_path, durability="process", batch_size=50, max_queue_bytes=65536))
        for _ in range(3):
            seed = next(seeds)
            logger.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
            for i in range(300):
                logger.log(uid(i), "VIEW", small_event(seed * 1000 + i))
            assert logger.flush(timeout=60)
        assert logger.stats()["dropped"] == 0
        close_and_drop(logger)
        assert not glob.glob(str(tmp_path / "spool" / "qbel-*.journal"))

    assert_balanced(live, durable_round_trip, repeat=3)


def test_durable_journal_left_at_close_then_replayed(live, db, tmp_path):
    """Unsent events stay in the journal at close; the replay takes them."""
    seeds = iter(range(10**9))
    spool = tmp_path / "spool"
    from querybook_eventlog._url import parse_database_url

    def journal_then_replay():
        dead = qe.DBEventLogger("mysql://u:p@127.0.0.1:1/qb", **db_options(
            tmp_path, durability="process", connect_timeout=1, backoff_max=0.2))
        seed = next(seeds)
        dead.log(uid=uid(seed), event_type="CLICK", event_data=large_event(seed))
        for i in range(50):
            dead.log(uid(i), "VIEW", small_event(seed * 1000 + i))
        close_and_drop(dead, timeout=0)
        assert glob.glob(str(spool / "qbel-*.journal"))
        # written for the dead server, replayed into `db` on purpose: adopt_all
        assert _core._replay_spool(parse_database_url(db.url), str(spool), "event_log",
                                   True) == 51
        assert not glob.glob(str(spool / "qbel-*.journal"))

    assert_balanced(live, journal_then_replay, repeat=2)


# ---- every allocation goes through the counted door ------------------------

RAW_ALLOCATION = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|free|strdup|strndup)\s*\(")


def test_csrc_allocates_only_through_qbel_alloc():
    """A raw malloc/free in csrc/ would escape the counter (and a block
    freed by the wrong door would corrupt it).  The exceptions say why on the
    same line: getline's block is libc's."""
    offenders = []
    for path in sorted(glob.glob(os.path.join(REPO, "csrc", "*.[ch]"))):
        if os.path.basename(path) in ("qbel_alloc.h", "qbel_alloc.c"):
            continue
        with open(path) as source:
            for number, line in enumerate(source, 1):
                if line.lstrip().startswith(("*", "/*")):
                    continue
                code = re.sub(r'"(\\.|[^"\\])*"', '""', line)  # not inside strings
                if RAW_ALLOCATION.search(code) and "not counted" not in line:
                    offenders.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not offenders, "allocate through csrc/qbel_alloc.h:\n" + "\n".join(offenders)


# ---- the process as a whole: RSS over a million calls ---------------------

RSS_BOUND_MIB = 20
RSS_CHILD = r"""
import os, sys
import querybook_eventlog as qe

PAGE = os.sysconf("SC_PAGE_SIZE")
BOUND = int(sys.argv[1]) << 20
BASE = "".join(chr(0x20 + (i * 7919) % 0x5f) for i in range(8192)) + "é✓"


def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def event(i):
    # fresh and varied, and past the encoder's 4 KiB stack block every time
    start = i % 1024
    return {"i": i, "s": BASE[start:start + 4500 + i % 1500], "n": [i, -i, i / 3, None, True],
            "k": {"path": f"/datadoc/{i}/", "tag": str(i % 97)}}


class DevNull:
    def write(self, text):
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def check(stage, baseline, done):
    growth = rss() - baseline
    if growth > BOUND:
        # stop at once: a leaking build would otherwise take the machine's memory
        sys.exit(f"{stage}: RSS grew {growth / 2**20:.1f} MiB after {done} calls "
                 f"(bound {BOUND >> 20} MiB)")


for i in range(50_000):  # warm-up: allocator pools, type caches, interned strings
    qe.dumps(event(i))
baseline = rss()
for i in range(1_000_000):
    assert len(qe.dumps(event(i))) > 4096
    if i % 10_000 == 0:
        check("dumps", baseline, i)
check("dumps", baseline, 1_000_000)
null, console = qe.NullEventLogger(), qe.ConsoleEventLogger(DevNull(), format="text")
for logger in (null, console):
    for i in range(200_000):
        logger.log(1 + i % 100, "CLICK", event(i))
        if i % 10_000 == 0:
            check(type(logger).__name__, baseline, i)
check("loggers", baseline, 400_000)
print(f"ok {(rss() - baseline) / 2**20:.1f} MiB")
"""


@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine holds freed memory by design; the live-allocation "
                           "counter and LeakSanitizer cover this pass")
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_rss_flat_over_a_million_calls_past_the_stack_buffer():
    """A fresh process: a million dumps of fresh, varied events of 4.5-6 KiB
    of JSON (past the encoder's 4 KiB stack block, so every call takes and
    returns a heap buffer), then 200k NullEventLogger and 200k console
    (text) log calls; RSS after a warm-up grows less than RSS_BOUND_MIB.
    One leaked buffer per call would be ~8 GiB."""
    result = subprocess.run([sys.executable, "-c", RSS_CHILD, str(RSS_BOUND_MIB)], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok "), result.stdout
