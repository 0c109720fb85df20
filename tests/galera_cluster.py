"""A throwaway 3-node MariaDB Galera cluster on loopback, for the tests and
the benchmark: Debian's ``mariadbd`` with ``galera-4``'s provider, each node
started with ``--no-defaults`` from a temporary folder (like
querybook_eventlog.testing.MariaDBServer), running as user ``mysql`` (the
rsync state transfer fails with code 23 as root), the first node with
``--wsrep-new-cluster`` and the others joining it by a state transfer.

    cluster = GaleraCluster(3).start()
    cluster.url()            # mysql+pymysql://qbel:...@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/querybook
    cluster.nodes[1].kill()  # SIGKILL
    cluster.nodes[1].start(); cluster.wait_synced()
    cluster.cleanup()

Every node holds Querybook's schema and the marker table (copied from the
template datadir the single-server tests use, then sent by the SST).
Failure detection is tightened (evs timeouts of 1-3 s instead of 5-15 s) so
a killed node leaves the component within a few seconds on a loaded machine.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

from querybook_eventlog import testing
from querybook_eventlog.testing import DATABASE, PASSWORD, USER, MariaDBServerError

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
RUN_AS = "mysql"
START_TIMEOUT_S = 120.0
SYNC_TIMEOUT_S = 120.0
# keepalive <= inactive_check <= suspect <= inactive (Galera's own rule)
EVS_OPTIONS = ("evs.keepalive_period=PT0.5S;evs.inactive_check_period=PT0.5S;"
               "evs.suspect_timeout=PT1.5S;evs.inactive_timeout=PT3S;"
               "evs.install_timeout=PT3S;evs.join_retrans_period=PT0.5S;"
               "gcache.size=64M;pc.recovery=FALSE")


def galera_available() -> str | None:
    """Why a cluster cannot start here, or None."""
    if not os.path.exists(PROVIDER):
        return f"{PROVIDER} is missing: install the Debian package galera-4"
    for tool in ("rsync", "wsrep_sst_rsync", "mariadbd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is missing (Debian packages galera-4, mariadb-server, rsync)"
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        return f"no user {RUN_AS!r} to run the nodes as (Debian's mariadb-server creates it)"
    if os.geteuid() != 0:
        return "the nodes are started as root and drop to user mysql: run the tests as root"
    return None


class GaleraNode:
    """One mariadbd of the cluster."""

    def __init__(self, cluster: "GaleraCluster", index: int):
        self.cluster = cluster
        self.index = index
        self.name = f"node{index + 1}"
        self.base_dir = os.path.join(cluster.base_dir, self.name)
        self.datadir = os.path.join(self.base_dir, "data")
        self.socket = os.path.join(self.base_dir, "mysql.sock")
        self.pid_file = os.path.join(self.base_dir, "mariadbd.pid")
        self.error_log = os.path.join(self.base_dir, "error.log")
        self.host = "127.0.0.1"
        self.port = testing._free_port()
        self.group_port = testing._free_port()
        self.ist_port = testing._free_port()
        self.sst_port = testing._free_port()
        self.process: subprocess.Popen | None = None

    def __repr__(self):
        return f"<GaleraNode {self.name} :{self.port} running={self.is_running()}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self) -> str:
        return self.cluster.url([self])

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, new_cluster: bool = False,
              donor: "GaleraNode | None" = None) -> "GaleraNode":
        """Launch (not waiting): the first node of a cluster with new_cluster;
        a joiner takes its state from `donor` when given (and it can)."""
        if self.is_running():
            return self
        os.makedirs(os.path.join(self.base_dir, "tmp"), exist_ok=True)
        if not os.path.isdir(self.datadir):
            shutil.copytree(testing._template_datadir(), self.datadir, symlinks=True)
        _chown_tree(self.base_dir)
        others = ",".join(f"127.0.0.1:{node.group_port}" for node in self.cluster.nodes)
        command = [
            testing._binary("mariadbd"), "--no-defaults",
            f"--datadir={self.datadir}", f"--tmpdir={os.path.join(self.base_dir, 'tmp')}",
            f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--user={RUN_AS}", f"--pid-file={self.pid_file}", f"--log-error={self.error_log}",
            "--skip-name-resolve", "--skip-log-bin", "--max-connections=200",
            "--innodb-buffer-pool-size=128M", "--innodb-log-file-size=64M",
            "--innodb-flush-log-at-trx-commit=2", "--innodb-autoinc-lock-mode=2",
            "--binlog-format=ROW", "--default-storage-engine=InnoDB",
            "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}",
            f"--wsrep-cluster-name=qbel-{os.path.basename(self.cluster.base_dir)}",
            f"--wsrep-cluster-address=gcomm://{'' if new_cluster else others}",
            f"--wsrep-node-name={self.name}", f"--wsrep-node-address=127.0.0.1:{self.group_port}",
            f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
            "--wsrep-sst-method=rsync", "--wsrep-slave-threads=2",
            f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{self.group_port};"
            f"ist.recv_addr=127.0.0.1:{self.ist_port};{EVS_OPTIONS}",
            *self.cluster.extra_args,
        ]
        if new_cluster:
            command.append("--wsrep-new-cluster")
        if donor is not None:  # the trailing comma: any other node if that one cannot
            command.append(f"--wsrep-sst-donor={donor.name},")
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=testing.tool_environment(), start_new_session=True,
            preexec_fn=_become_run_as_user)
        return self

    def kill(self) -> None:
        """SIGKILL and reap: a crash as the cluster and clients see it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(testing.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def sql(self, statement: str, database: str | None = DATABASE, timeout: float = 60.0):
        """Rows of `statement` run as root over the socket (MariaDBServer.sql)."""
        command = [testing._binary("mariadb"), "--no-defaults", "-N", "-B",
                   "--connect-timeout=10", "-S", self.socket, "-u", "root"]
        if database is not None:
            command.append(f"--database={database}")
        result = subprocess.run(command + ["-e", statement], capture_output=True, text=True,
                                env=testing.tool_environment(), timeout=timeout, check=False)
        if result.returncode != 0:
            raise MariaDBServerError(result.stderr.strip() or f"mariadb exited {result.returncode}")
        return [[testing._unescape_batch_value(value) for value in line.split("\t")]
                for line in result.stdout.splitlines()]

    def status(self, name: str) -> str | None:
        rows = self.sql(f"SHOW GLOBAL STATUS LIKE '{name}'", database=None, timeout=10)
        return rows[0][1] if rows else None

    def is_synced(self) -> bool:
        if not self.is_running() or not os.path.exists(self.socket):
            return False
        try:
            return (self.status("wsrep_local_state_comment") == "Synced"
                    and self.status("wsrep_ready") == "ON")
        except (MariaDBServerError, subprocess.TimeoutExpired):
            return False

    def wait_synced(self, timeout: float = SYNC_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; "
                                   f"error log:\n{testing._tail(self.error_log, 40)}")
            if self.is_synced():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not Synced within {timeout:.0f} s; error log:\n"
                           f"{testing._tail(self.error_log, 40)}")

    def cluster_size(self) -> int:
        return int(self.status("wsrep_cluster_size") or 0)

    def count_ids(self, table: str = "event_log", key: str = "$.n", run: str | None = None):
        """{event id: rows holding it} of the events in `table` (the id at JSON
        path `key`; only events whose $.run is `run`, when given)."""
        where = f" WHERE JSON_VALUE(event_data, '$.run') = '{run}'" if run else ""
        rows = self.sql(f"SET SESSION wsrep_sync_wait = 1; "
                        f"SELECT JSON_VALUE(event_data, '{key}'), COUNT(*) FROM `{table}`"
                        f"{where} GROUP BY 1", timeout=120)
        return {int(row[0]): int(row[1]) for row in rows if row[0] is not None}


class GaleraCluster:
    """`size` nodes on loopback; start() brings them all to Synced."""

    def __init__(self, size: int = 3, extra_args: list | None = None):
        self.base_dir = tempfile.mkdtemp(prefix="qbel-galera-", dir="/tmp")
        _live_clusters.add(self)
        self.extra_args = list(extra_args or [])
        self.nodes = []
        self.nodes = [GaleraNode(self, index) for index in range(size)]
        self.start_seconds: float | None = None

    def start(self) -> "GaleraCluster":
        began = time.monotonic()
        try:
            self.nodes[0].start(new_cluster=True)
            self.nodes[0].wait_synced(START_TIMEOUT_S)
            for node in self.nodes[1:]:
                # one joiner at a time: two SSTs from one donor on two cores
                # take longer than two in a row
                node.start()
                node.wait_synced(START_TIMEOUT_S)
        except BaseException:
            self.cleanup()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def restart(self, node: GaleraNode, donor: GaleraNode | None = None) -> None:
        """Start a killed or stopped node again (joining the others) and wait
        until it is Synced.  A kill -9 leaves no saved position, so it comes
        back by a full state transfer, from `donor` when given: the rsync
        transfer holds a read lock on the donor while it copies, so a test
        names a donor that no logger writes to."""
        node.stop()
        node.start(donor=donor)
        node.wait_synced()

    def ensure_all_synced(self) -> None:
        for node in self.nodes:
            if not node.is_running():
                node.stop()
                node.start()
        for node in self.nodes:
            node.wait_synced()

    def wait_synced(self) -> None:
        for node in self.nodes:
            node.wait_synced()

    def live_node(self) -> GaleraNode:
        for node in self.nodes:
            if node.is_synced():
                return node
        raise RuntimeError("no node of the cluster is Synced")

    def url(self, nodes: list | None = None, table_options: str = "charset=utf8mb4") -> str:
        hosts = ",".join(node.address for node in (nodes or self.nodes))
        return (f"mysql+pymysql://{urllib.parse.quote(USER, safe='')}:"
                f"{urllib.parse.quote(PASSWORD, safe='')}@{hosts}/{DATABASE}?{table_options}")

    def reset_events(self, table: str = "event_log") -> None:
        """Empty the event and marker tables (TRUNCATE replicates as DDL)."""
        self.live_node().sql(f"TRUNCATE TABLE `{table}`; TRUNCATE TABLE `{table}_qbel_batches`")

    def cleanup(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)
        _live_clusters.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()


_LIBC = ctypes.CDLL(None, use_errno=True)

# Clusters not cleaned up by their fixture (a run that dies half-way) are
# removed at exit; the nodes themselves die with this process (PDEATHSIG).
_live_clusters: "set[GaleraCluster]" = set()


@atexit.register
def _remove_live_clusters() -> None:
    for cluster in list(_live_clusters):
        cluster.cleanup()


def _become_run_as_user() -> None:
    """In the forked child before exec: become user mysql, then ask to die
    with the test process.  mariadbd --user=mysql would switch users itself,
    and a switch of credentials clears the parent-death signal."""
    entry = pwd.getpwnam(RUN_AS)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    # libc was loaded before: user mysql may not read this Python's files
    _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _chown_tree(path: str) -> None:
    entry = pwd.getpwnam(RUN_AS)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
    # the parents must be searchable by the node's user
    parent = os.path.dirname(path)
    os.chmod(parent, 0o755)
