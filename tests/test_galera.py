"""The DB logger on a real 3-node MariaDB Galera cluster on loopback
(tests/galera_cluster.py, one cluster for the module): failover of a
three-host URL when the node in use is killed with SIGKILL (each node in
turn, the host list walked round) or refuses queries, no reconnect at all
when a node not in use is killed, a single host spooling until its node is back, batches larger
than wsrep_max_ws_rows, and a logger per node with worker restarts.

Every test ends by counting its events by id on every node: none lost, none
doubled.  No timed assertions: waits are bounded, never measured.
"""

import os
import sys
import threading
import time
import uuid

import pytest

from querybook_eventlog import DBEventLogger
from querybook_eventlog._sqlclient import Connection
from querybook_eventlog.testing import USER

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from galera_cluster import GaleraCluster, galera_available  # noqa: E402

WAIT_S = 120.0


@pytest.fixture(scope="module")
def cluster():
    why = galera_available()
    if why is not None:
        pytest.skip(why)
    made = GaleraCluster(3).start()
    print(f"\n3-node Galera cluster Synced in {made.start_seconds:.1f} s")
    yield made
    made.cleanup()


@pytest.fixture
def galera(cluster):
    """The cluster with every node running and Synced."""
    cluster.ensure_all_synced()
    yield cluster
    cluster.ensure_all_synced()


def new_run():
    return uuid.uuid4().hex[:12]


def log_range(logger, run, numbers):
    for n in numbers:
        logger.log(uid=n % 100 + 1, event_type="CLICK", event_data={"run": run, "n": n})


def wait_for(predicate, what, timeout=WAIT_S, detail=None):
    """Until predicate() is true; past `timeout` an AssertionError naming
    `what` (and what detail() says then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}"
                         + (f" ({detail()})" if detail else ""))


def assert_exactly_once_everywhere(cluster, run, total):
    """Each id 0..total-1 exactly once, on every node (after all are Synced;
    the reads wait for the cluster with wsrep_sync_wait)."""
    cluster.wait_synced()
    for node in cluster.nodes:
        counts = node.count_ids(run=run)
        missing = sorted(set(range(total)) - set(counts))
        doubled = sorted(n for n, seen in counts.items() if seen > 1)
        extra = sorted(set(counts) - set(range(total)))
        assert (missing, doubled, extra) == ([], [], []), (
            f"{node.name}: missing {missing[:10]} ({len(missing)}), doubled {doubled[:10]} "
            f"({len(doubled)}), unexpected {extra[:10]}")


def landed(node, run):
    try:
        return sum(node.count_ids(run=run).values())
    except Exception:  # noqa: BLE001 - a node that is down counts nothing
        return -1


def test_kill_9_of_the_node_in_use_fails_over_to_another(galera, tmp_path):
    first = galera.nodes[0]
    run, spooled, most = new_run(), 500, 100_000
    # ids: the spooled lines 0..spooled-1, the replayer's one event `spooled`,
    # then the producer's, which logs until told to stop (so events are still
    # coming after the kill however fast or slow this machine is)
    # lines spooled by a process that used the first node (closed before
    # writing them) are replayed through another node after the kill: the
    # target they are tagged with is the whole host list
    shared = tmp_path / "shared"
    spooler = DBEventLogger(galera.url(), spool_dir=str(shared), flush_interval=600,
                            batch_size=100000)
    log_range(spooler, run, range(0, spooled))
    spooler.close(timeout=0)
    assert spooler.stats()["spooled"] > 0
    logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path / "main"), batch_size=200,
                           flush_interval=0.02, connect_timeout=2, read_timeout=5,
                           write_timeout=5)
    stop = threading.Event()
    produced = []

    def produce():
        start = spooled + 1
        while not stop.is_set() and start < spooled + 1 + most:
            log_range(logger, run, range(start, start + 100))
            start += 100
            time.sleep(0.01)
        produced.append(start - (spooled + 1))

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        # the logger writes to the first host of its list
        wait_for(lambda: landed(first, run) > 0, "events on the first node")
        first.kill()
        # the CLI's connection (report, cleanup) takes the first host that answers
        assert Connection(galera.url()).query("SELECT 1") == [(1,)]
        survivor = galera.nodes[1]
        before = landed(survivor, run)
        # events keep landing on another node while the first is down
        wait_for(lambda: landed(survivor, run) > before + 200, "events on a surviving node")
        replayer = DBEventLogger(galera.url(), spool_dir=str(shared), connect_timeout=2)
        log_range(replayer, run, [spooled])  # starts its writer, which scans the spool
        wait_for(lambda: replayer.stats()["replayed"] == spooler.stats()["spooled"],
                 "the spooled lines replayed through a surviving node")
        replayer.close()
    finally:
        stop.set()
        producer.join()
    assert logger.flush(timeout=WAIT_S)
    stats = logger.stats()
    assert stats["written"] + stats["replayed"] == produced[0]
    assert stats["reconnects"] >= 1
    logger.close()
    galera.restart(first)
    assert_exactly_once_everywhere(galera, run, spooled + 1 + produced[0])


class Producer:
    """A thread logging ids first, first+1, ... in groups of 20 every 20 ms
    (at most ~1,000 a second, so that minutes of kills and rejoins stay a
    small table to count) until stop(): events keep coming after a kill,
    however fast or slow this machine is.  stop() returns how many it
    logged.  `most` only bounds the loop: it is far past any wait here."""

    GROUP, PAUSE_S = 20, 0.02

    def __init__(self, logger, run, first=0, most=2_000_000):
        self.logger, self.run, self.first, self.most = logger, run, first, most
        self.next = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce)
        self._thread.start()

    def _produce(self):
        while not self._stop.is_set() and self.next < self.first + self.most:
            log_range(self.logger, self.run, range(self.next, self.next + self.GROUP))
            self.next += self.GROUP
            time.sleep(self.PAUSE_S)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.next - self.first


def nodes_in_use(cluster):
    """The running nodes holding a connection of the logger's user (the
    tests' own reads connect as root)."""
    return [node for node in cluster.nodes if node.is_running() and node.sql(
        f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{USER}'",
        database=None) != [["0"]]]


def wait_for_writes_on(cluster, logger, node, run, what):
    """Until the logger is connected to `node` alone and 200 more of its
    events are committed there."""
    def detail():
        return f"connected to {nodes_in_use(cluster)}, stats {logger.stats()}"
    wait_for(lambda: nodes_in_use(cluster) == [node], f"the logger connected to {what}",
             detail=detail)
    before = landed(node, run)
    wait_for(lambda: landed(node, run) > before + 200, f"events committed through {what}",
             detail=detail)


def test_kill_9_of_a_node_not_in_use_needs_no_reconnect(galera, tmp_path):
    """The second host dies while the logger writes to the first: its
    commits wait until Galera drops the dead node (the default 30 s read
    timeout outlasts that), and the connection is never dropped."""
    writing, killed = galera.nodes[0], galera.nodes[1]
    run = new_run()
    logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path), batch_size=200,
                           flush_interval=0.02, connect_timeout=2)
    producer = Producer(logger, run)
    try:
        wait_for_writes_on(galera, logger, writing, run, "the first host")
        killed.kill()
        wait_for(lambda: writing.cluster_size() == 2, "Galera to drop the killed node")
        wait_for_writes_on(galera, logger, writing, run, "the first host, after the drop")
    finally:
        produced = producer.stop()
    assert logger.flush(timeout=WAIT_S)
    stats = logger.stats()
    logger.close()
    assert (stats["written"], stats["reconnects"], stats["spooled"]) == (produced, 0, 0)
    assert stats["last_error"] is None
    galera.restart(killed)
    assert_exactly_once_everywhere(galera, run, produced)


def test_successive_kills_walk_the_host_list_round(galera, tmp_path):
    """kill -9 of the node in use, three times: node 1 → node 2 → node 3 →
    node 1 again.  Each killed node rejoins before the next kill (two of
    three must stay for a primary component).  After node 2 dies the logger
    goes on to node 3 although node 1 is back and first in the list: a lost
    connection moves on from the host last used, and past the end of the
    list it wraps round."""
    nodes = galera.nodes
    run = new_run()
    logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path), batch_size=200,
                           flush_interval=0.02, connect_timeout=2)
    producer = Producer(logger, run)
    try:
        wait_for_writes_on(galera, logger, nodes[0], run, nodes[0].name)
        for step in range(3):
            killed, onto, idle = nodes[step], nodes[(step + 1) % 3], nodes[(step + 2) % 3]
            killed.kill()
            wait_for_writes_on(galera, logger, onto, run,
                               f"{onto.name} after {killed.name} died")
            # the state comes from the node not in use: the rsync transfer
            # read-locks its donor, which would hold the logger's commits
            galera.restart(killed, donor=idle)
    finally:
        produced = producer.stop()
    assert logger.flush(timeout=WAIT_S)
    stats = logger.stats()
    logger.close()
    assert stats["written"] + stats["replayed"] == produced
    assert stats["reconnects"] == 3
    assert_exactly_once_everywhere(galera, run, produced)


def test_a_single_host_spools_while_its_node_is_down_then_replays(galera, tmp_path):
    node = galera.nodes[2]
    logger = DBEventLogger(node.url(), spool_dir=str(tmp_path), batch_size=100,
                           flush_interval=0.02, connect_timeout=1, max_queue_bytes=16384)
    run, total = new_run(), 1500
    log_range(logger, run, range(500))
    assert logger.flush(timeout=WAIT_S)
    node.kill()
    log_range(logger, run, range(500, total))  # past the queue's bound: spooled
    assert not logger.flush(timeout=1)
    assert logger.stats()["spooled"] > 0
    galera.restart(node)
    assert logger.flush(timeout=WAIT_S)
    stats = logger.stats()
    assert stats["written"] + stats["replayed"] == total
    logger.close()
    assert_exactly_once_everywhere(galera, run, total)


def test_a_node_rejecting_queries_is_passed_over(galera, tmp_path):
    rejecting = galera.nodes[0]
    rejecting.sql("SET GLOBAL wsrep_reject_queries = ALL", database=None)
    try:
        # a fresh logger whose first host is up but not ready (1047) moves on
        logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path), batch_size=100,
                               flush_interval=0.02, connect_timeout=2)
        run, total = new_run(), 1000
        log_range(logger, run, range(total))
        assert logger.flush(timeout=WAIT_S)
        assert logger.stats()["written"] == total
        logger.close()
    finally:
        rejecting.sql("SET GLOBAL wsrep_reject_queries = NONE", database=None)
    # and a logger connected to a node that starts refusing: ALL_KILL drops it
    logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path), batch_size=100,
                           flush_interval=0.02, connect_timeout=2)
    log_range(logger, run, range(total, total + 300))
    assert logger.flush(timeout=WAIT_S)
    rejecting.sql("SET GLOBAL wsrep_reject_queries = ALL_KILL", database=None)
    try:
        log_range(logger, run, range(total + 300, total + 1000))
        assert logger.flush(timeout=WAIT_S)
    finally:
        rejecting.sql("SET GLOBAL wsrep_reject_queries = NONE", database=None)
    logger.close()
    assert_exactly_once_everywhere(galera, run, total + 1000)


def set_max_ws_rows(cluster, rows):
    for node in cluster.nodes:
        node.sql(f"SET GLOBAL wsrep_max_ws_rows = {rows}", database=None)


def test_batches_larger_than_wsrep_max_ws_rows_are_written_in_parts(galera, tmp_path):
    run, total = new_run(), 2300
    # connected before the limit is set: the first large batch is refused
    # (1180) and split; a logger connected after reads the limit up front
    early = DBEventLogger(galera.url(), spool_dir=str(tmp_path / "a"), batch_size=1000,
                          flush_interval=0.5)
    log_range(early, run, range(10))
    assert early.flush(timeout=WAIT_S)
    set_max_ws_rows(galera, 150)
    try:
        log_range(early, run, range(10, 1200))
        assert early.flush(timeout=WAIT_S)
        late = DBEventLogger(galera.url(), spool_dir=str(tmp_path / "b"), batch_size=1000,
                             flush_interval=0.5)
        log_range(late, run, range(1200, total))
        assert late.flush(timeout=WAIT_S)
        for logger in (early, late):
            stats = logger.stats()
            assert stats["dropped"] == 0 and stats["dead_lettered"] == 0
            logger.close()
        assert early.stats()["written"] + late.stats()["written"] == total
    finally:
        set_max_ws_rows(galera, 0)
    parts = galera.nodes[0].sql(
        "SELECT COUNT(*) FROM event_log_qbel_batches WHERE batch_id LIKE '%/%-%'")
    assert int(parts[0][0]) >= 8  # 2290 rows in parts of at most 149
    assert_exactly_once_everywhere(galera, run, total)


def test_batches_larger_than_wsrep_max_ws_size_are_written_in_parts(galera, tmp_path):
    run, total = new_run(), 1500
    for node in galera.nodes:
        node.sql("SET GLOBAL wsrep_max_ws_size = 65536", database=None)
    try:
        logger = DBEventLogger(galera.url(), spool_dir=str(tmp_path), batch_size=1000,
                               flush_interval=0.5)
        for n in range(total):  # ~300 bytes each: a 1000-event batch is ~300 KB
            logger.log(uid=n % 100 + 1, event_type="VIEW",
                       event_data={"run": run, "n": n, "pad": uuid.uuid4().hex * 8})
        assert logger.flush(timeout=WAIT_S)
        stats = logger.stats()
        logger.close()
        assert (stats["written"], stats["dropped"], stats["dead_lettered"]) == (total, 0, 0)
    finally:
        for node in galera.nodes:
            node.sql("SET GLOBAL wsrep_max_ws_size = 2147483647", database=None)
    parts = galera.nodes[2].sql(
        "SELECT COUNT(*) FROM event_log_qbel_batches WHERE batch_id LIKE '%/%-%'")
    assert int(parts[0][0]) >= 10  # ~450 KB in write sets of at most 32 KiB of rows
    assert_exactly_once_everywhere(galera, run, total)


def cluster_counters(cluster):
    names = ("wsrep_local_cert_failures", "wsrep_local_bf_aborts", "Com_create_table")
    return {(node.name, name): int(node.status(name)) for node in cluster.nodes for name in names}


def test_a_logger_per_node_with_worker_restarts_causes_no_certification_failures(
        galera, tmp_path):
    run, per_round, rounds = new_run(), 300, 4
    # old markers (past the 7 days kept) for the start-up cleanup, which runs
    # on one node (wsrep_local_index 0), one process at a time
    galera.nodes[0].sql(
        "INSERT INTO event_log_qbel_batches (batch_id, committed_at) VALUES "
        + ", ".join(f"('old-{run}-{i}', UTC_TIMESTAMP() - INTERVAL 7 DAY - INTERVAL {i} MINUTE"
                    " - INTERVAL 1 HOUR)" for i in range(50)))
    galera.wait_synced()
    before = cluster_counters(galera)
    loggers = []
    n = 0
    for _ in range(rounds):
        # a worker restart: every node's logger replaced by a new process's
        for logger in loggers:
            logger.close()
        loggers = [DBEventLogger(node.url(), spool_dir=str(tmp_path / f"{node.name}"),
                                 batch_size=50, flush_interval=0.01)
                   for node in galera.nodes]
        threads = []
        for index, logger in enumerate(loggers):
            numbers = range(n + index * per_round, n + (index + 1) * per_round)
            threads.append(threading.Thread(target=log_range, args=(logger, run, numbers)))
        n += per_round * len(loggers)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for logger in loggers:
            assert logger.flush(timeout=WAIT_S)
            assert logger.stats()["last_error"] is None
    for logger in loggers:
        logger.close()
    galera.wait_synced()
    after = cluster_counters(galera)
    changed = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    assert changed == {}  # no certification failure, no brute-force abort, no DDL
    old = galera.nodes[1].sql(
        f"SELECT COUNT(*) FROM event_log_qbel_batches WHERE batch_id LIKE 'old-{run}-%'")
    assert old == [["0"]]  # the cleanup ran
    assert_exactly_once_everywhere(galera, run, n)


def test_marker_cleanup_is_not_aborted_by_markers_other_nodes_commit(galera, tmp_path):
    """The start-up marker cleanup DELETEs old markers on the node of
    wsrep_local_index 0 while the other nodes' loggers commit new markers.
    At REPEATABLE READ that DELETE (a full scan on a small table) holds gap
    locks across the marker table, so every marker applied from another
    node meanwhile brute-force aborts it (the flake seen in CI).  Here the
    DELETE is held mid-scan by a row lock on the old marker that sorts last,
    while a logger on another node commits batches: at READ COMMITTED the
    applied markers go in, nothing is aborted, and the cleanup finishes."""
    import pymysql

    run = new_run()
    pruner = next(node for node in galera.nodes if node.status("wsrep_local_index") == "0")
    other = next(node for node in galera.nodes if node is not pruner)
    held_id = f"zzzz-old-{run}"  # sorts after every batch id: the scan's last row
    # past the 7 days kept but not a day past it: only the node of index 0 prunes
    pruner.sql("INSERT INTO event_log_qbel_batches (batch_id, committed_at) VALUES "
               + ", ".join(f"('{batch_id}', UTC_TIMESTAMP() - INTERVAL 7 DAY - INTERVAL 1 HOUR)"
                           for batch_id in [f"old-{run}-{i}" for i in range(20)] + [held_id]))
    galera.wait_synced()
    before = int(pruner.status("wsrep_local_bf_aborts"))

    holder = pymysql.connect(unix_socket=pruner.socket, user="root", database="querybook")
    pruning_logger = other_logger = None
    try:
        with holder.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute("BEGIN")
            cursor.execute("SELECT batch_id FROM event_log_qbel_batches WHERE batch_id = %s "
                           "FOR UPDATE", (held_id,))
        pruning_logger = DBEventLogger(pruner.url(), spool_dir=str(tmp_path / "pruner"))
        pruning_logger.log(uid=1, event_type="CLICK", event_data={"run": run, "n": 0})

        def cleanup_waits_on_the_held_row():
            return pruner.sql("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                              "WHERE trx_state = 'LOCK WAIT' "
                              "AND trx_query LIKE 'DELETE FROM %qbel_batches%'") != [["0"]]
        wait_for(cleanup_waits_on_the_held_row, "the cleanup DELETE waiting on the held row",
                 timeout=30)

        other_logger = DBEventLogger(other.url(), spool_dir=str(tmp_path / "other"),
                                     batch_size=10, flush_interval=0.01)
        log_range(other_logger, run, range(1, 201))
        assert other_logger.flush(timeout=WAIT_S)
        galera.wait_synced()
        assert cleanup_waits_on_the_held_row()  # still waiting: not aborted meanwhile
    finally:
        try:
            holder.rollback()
        except pymysql.err.OperationalError:
            pass  # aborted along with the cleanup (the failure this test is about)
        holder.close()
    assert pruning_logger.flush(timeout=WAIT_S)
    wait_for(lambda: pruner.sql("SELECT COUNT(*) FROM event_log_qbel_batches "
                                f"WHERE batch_id LIKE '%old-{run}%'") == [["0"]],
             "the cleanup to delete the old markers", timeout=60)
    for logger in (pruning_logger, other_logger):
        assert logger.stats()["last_error"] is None
        logger.close()
    assert int(pruner.status("wsrep_local_bf_aborts")) == before
    assert_exactly_once_everywhere(galera, run, 201)


def test_certification_failures_are_retried_at_once(galera, tmp_path):
    """Another node keeps updating user 1, the parent row of every batch's
    events (a foreign key: Galera certifies it as a shared key), so the
    logger's transactions on node 1 lose certification or are aborted by the
    replicated update now and then (1213).
    Each is retried at once inside the sink: never a failed batch, never the
    connection backoff, nothing lost or doubled."""
    import pymysql

    writer_node, other = galera.nodes[0], galera.nodes[1]

    def aborts():  # lost certification, or aborted by a conflicting replicated write
        return sum(int(writer_node.status(name))
                   for name in ("wsrep_local_cert_failures", "wsrep_local_bf_aborts"))

    before = aborts()
    stop = threading.Event()

    def update_parent_rows():
        connection = pymysql.connect(unix_socket=other.socket, user="root",
                                     database="querybook", autocommit=True)
        with connection.cursor() as cursor:
            while not stop.is_set():
                try:
                    cursor.execute("UPDATE user SET fullname = UUID() WHERE id = 1")
                except pymysql.err.OperationalError as error:
                    if error.args[0] != 1213:  # the logger's commit won: ours lost
                        raise
                time.sleep(0.01)
        connection.close()

    updater = threading.Thread(target=update_parent_rows)
    updater.start()
    logger = DBEventLogger(writer_node.url(), spool_dir=str(tmp_path), batch_size=50,
                           flush_interval=0.01)
    # conflicts depend on timing: log rounds of 4000 until one happened (a
    # round almost always has several; a slow machine may need more rounds)
    run, total, round_size = new_run(), 0, 4000
    try:
        for _ in range(8):
            for start in range(total, total + round_size, 50):
                logger.log(uid=1, event_type="CLICK", event_data={"run": run, "n": start})
                log_range(logger, run, range(start + 1, start + 50))
                time.sleep(0.01)
            total += round_size
            assert logger.flush(timeout=WAIT_S)
            if aborts() > before:
                break
    finally:
        stop.set()
        updater.join()
    stats = logger.stats()
    logger.close()
    conflicts = aborts() - before
    print(f"\n{conflicts} of the logger's transactions lost to the updates")
    assert conflicts > 0  # the updates did conflict with the logger's commits
    assert stats["retries"] == 0 and stats["last_error"] is None  # all retried inside the sink
    assert_exactly_once_everywhere(galera, run, total)
