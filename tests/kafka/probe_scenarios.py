"""What the system librdkafka (Debian's librdkafka-dev, through
scripts/kafka_probe.c) does against the test broker, scenario by scenario:
the findings behind docs/kafka-groundwork.md.  Run by hand, not collected by
pytest (it tests no product code):

    .venv/bin/python tests/kafka/probe_scenarios.py [SCENARIO ...]

Each scenario gets a fresh broker; the probe's JSON lines are printed as they
come, then one line of verdict.  Needs gcc, pkg-config and librdkafka-dev.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from kafka_broker import KafkaBroker  # noqa: E402

PROBE_SOURCE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "kafka_probe.c")
STRICT_SCHEMA = {"type": "object", "properties": {
    "value": {"type": "object", "properties": {"uid": {"type": "integer", "maximum": 1000}}}}}


def build_probe(out_dir: str) -> str:
    """Compile scripts/kafka_probe.c with -Werror against pkg-config rdkafka
    (plus env KAFKA_PROBE_CFLAGS, e.g. "-fsanitize=address,undefined")."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "rdkafka"], capture_output=True,
                           text=True, check=True).stdout.split()
    flags += os.environ.get("KAFKA_PROBE_CFLAGS", "").split()
    binary = os.path.join(out_dir, "kafka_probe")
    subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-O2", PROBE_SOURCE, *flags,
                    "-o", binary], check=True)
    return binary


class Probe:
    """The probe as a subprocess: send a command, get its JSON events."""

    def __init__(self, binary: str, broker: KafkaBroker):
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            text=True, env={**os.environ, "KAFKA_PROBE_BOOTSTRAP": broker.bootstrap})
        self.broker = broker
        self.version = self._events()[0]["librdkafka"]

    def _events(self) -> list:
        events = []
        for line in self.process.stdout:
            event = json.loads(line)
            if event["event"] == "done":
                return events
            print("   ", line.rstrip())
            events.append(event)
            if event["event"] == "ready":
                return events
        raise RuntimeError("the probe exited")

    def __call__(self, command: str) -> list:
        print(f"  > {command}")
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._events()

    def producer(self, *settings: str) -> list:
        return self(f"producer bootstrap.servers={self.broker.bootstrap} " + " ".join(settings))

    def log_lines(self, word: str) -> int:
        """How many of librdkafka's log lines (stderr) contain `word`."""
        self.stderr.seek(0)
        return sum(word.encode() in line for line in self.stderr.read().splitlines())

    def close(self):
        """Quit the probe; a non-zero exit (a sanitizer report) raises."""
        self.process.stdin.close()
        code = self.process.wait(60)
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace").splitlines()[-30:]
        self.stderr.close()
        if code != 0:
            raise RuntimeError(f"kafka_probe exited {code}:\n" + "\n".join(tail))


def only(events, kind):
    return [e for e in events if e["event"] == kind]


def tx(probe, command):
    """The result event of a tx_* command (error callbacks may come first)."""
    return only(probe(command), command.split()[0])[0]


def restart_empty(broker, topic, partitions=1):
    """Kill and start the broker (empty again), then recreate `topic`."""
    broker.kill()
    broker.start()
    broker.create_topic(topic, partitions=partitions)


def topic_values(probe, topic, isolation="read_committed"):
    return [m.get("value") for m in only(probe(f"consume {topic} {isolation} 10000"), "msg")]


def errors_of(events, kind="dr"):
    return [e["err"] for e in only(events, kind)]


# ---- scenarios: each returns its verdict line ----------------------------------


def scenario_basics(probe, broker):
    broker.create_topic("events", partitions=3)
    probe.producer("acks=all", "enable.idempotence=true", "linger.ms=5")
    for i in range(6):
        probe(f"produce events user{i % 2} {{\"n\":{i}}} event_id=id{i}")
    reports = probe("flush 10000")
    consumed = probe("consume events read_committed 10000")
    messages = only(consumed, "msg")
    ok = errors_of(reports) == ["NO_ERROR"] * 6 and len(messages) == 6 and all(
        m["headers"].get("event_id") for m in messages)
    return ok, "acks=all + idempotence: 6 delivered, keys and event_id headers read back"


def scenario_oversize(probe, broker):
    broker.create_topic("events", partitions=1)
    probe.producer("acks=all", "enable.idempotence=true")
    local = probe("produce events - @2000000")[0]["err"]
    probe.producer("acks=all", "enable.idempotence=true", "message.max.bytes=100000000")
    probe("produce events - @50000000")
    remote = errors_of(probe("flush 30000"))
    ok = local == "MSG_SIZE_TOO_LARGE" and remote == ["NO_ERROR"]
    return ok, (f"2 MB with default message.max.bytes: produce() returns {local} at once "
                f"(no delivery report); 50 MB with the client limit raised: broker says "
                f"{remote} (Tansu has no size limit)")


def scenario_rejected_record(probe, broker):
    broker.create_topic("strict", partitions=1)
    probe.producer("acks=all", "enable.idempotence=true", "linger.ms=100")
    for uid in (1, 5000, 2):
        probe(f"produce strict k {{\"uid\":{uid}}}")
    batch = errors_of(probe("flush 10000"))
    probe("produce strict k {\"uid\":3}")
    after = errors_of(probe("flush 10000"))
    fatal = probe("fatal")[0]["err"]
    probe.producer("acks=all", "enable.idempotence=false", "linger.ms=100")
    for uid in (4, 5001):
        probe(f"produce strict k {{\"uid\":{uid}}}")
    plain_batch = errors_of(probe("flush 10000"))
    probe("produce strict k {\"uid\":5}")
    plain_after = errors_of(probe("flush 10000"))
    ok = batch and all(e == "INVALID_RECORD" for e in batch)
    return ok, (f"one invalid record fails its whole batch {batch}; the idempotent producer "
                f"then reports {after} (fatal: {fatal}); without idempotence: batch "
                f"{plain_batch}, next {plain_after}")


def scenario_broker_down(probe, broker):
    broker.create_topic("events", partitions=1)
    probe.producer("acks=all", "enable.idempotence=true", "message.timeout.ms=4000",
                   "queue.buffering.max.messages=3")
    broker.kill()
    produced = [probe(f"produce events k m{i}")[0]["err"] for i in range(4)]
    began = time.monotonic()
    waited = probe("flush 8000")
    elapsed = time.monotonic() - began
    reports = only(waited, "dr")
    broker.start()
    ok = produced[-1] == "_QUEUE_FULL" and all(r["err"] == "_MSG_TIMED_OUT" for r in reports)
    statuses = sorted({r["status"] for r in reports})
    return ok, (f"broker down: produce() {produced} (local queue of 3), errors "
                f"{sorted(set(errors_of(waited, 'error')))}, after message.timeout.ms the "
                f"reports say {sorted(set(r['err'] for r in reports))} {statuses} "
                f"({elapsed:.1f} s)")


def _old_handle_after_restart(probe, broker, queue_during_outage):
    """Produce one message, restart the broker empty (producing 3 more while
    it is down, or 1 after), and see what the old idempotent handle reports."""
    broker.create_topic("events", partitions=1)
    probe.producer("acks=all", "enable.idempotence=true", "message.timeout.ms=6000", "debug=eos")
    probe("produce events k before")
    before = errors_of(probe("flush 10000"))
    broker.kill()
    for i in range(3 if queue_during_outage else 0):
        probe(f"produce events k queued{i}")
    restart_empty(broker, "events")
    if not queue_during_outage:
        probe("produce events k after")
    after = [(r["err"], r["status"]) for r in only(probe("flush 10000"), "dr")]
    return before, after, probe("fatal")[0]["err"], probe.log_lines("UNKPID")


def scenario_restart(probe, broker):
    before, after, fatal, unknown_pid = _old_handle_after_restart(probe, broker, False)
    probe.producer("acks=all", "enable.idempotence=true")
    probe("produce events k new-handle")
    fresh = errors_of(probe("flush 10000"))
    values = topic_values(probe, "events")
    ok = before == ["NO_ERROR"] and fresh == ["NO_ERROR"] and "new-handle" in values
    return ok, (f"restart (empty broker): the old idempotent handle retries UNKNOWN_PRODUCER_ID "
                f"{unknown_pid} times (epoch bumped locally, never a new id), then its "
                f"reports say {after}, fatal={fatal}; a new handle delivers {fresh}; "
                f"topic now holds {values}")


def scenario_queued_over_restart(probe, broker):
    _, after, fatal, unknown_pid = _old_handle_after_restart(probe, broker, True)
    return True, (f"messages queued while the broker was down, after its restart: {after} "
                  f"fatal={fatal} (UNKNOWN_PRODUCER_ID retried {unknown_pid} times); "
                  f"topic holds {topic_values(probe, 'events')}")


def scenario_kill_mid_stream(probe, broker):
    broker.create_topic("events", partitions=1)
    probe.producer("acks=all", "enable.idempotence=true", "linger.ms=20",
                   "message.timeout.ms=8000", "debug=eos")
    queued = only(probe("burst events k 200000"), "burst")[0]["queued"]  # up to the queue limit
    restart_empty(broker, "events")
    reports = only(probe("flush 30000"), "dr")
    fatal = probe("fatal")[0]
    outcome: dict = {}
    for report in reports:
        name = f"{report['err']}/{report['status']}"
        outcome[name] = outcome.get(name, 0) + 1
    values = topic_values(probe, "events")
    return True, (f"{queued} queued, broker killed mid-stream and restarted: reports {outcome}, "
                  f"fatal={fatal['err']} {fatal['reason'][:120]!r}, UNKNOWN_PRODUCER_ID "
                  f"seen {probe.log_lines('UNKPID')} times; the new broker holds {len(values)}")


def scenario_transactions(probe, broker):
    broker.create_topic("tx", partitions=1)
    probe.producer("transactional.id=qbel-probe-1")
    steps = [tx(probe, "tx_init 10000")["err"], tx(probe, "tx_begin")["err"]]
    probe("produce tx k committed")
    steps.append(tx(probe, "tx_commit 10000")["err"])
    probe("tx_begin")
    probe("produce tx k aborted")
    probe("flush 5000")
    steps.append(tx(probe, "tx_abort 10000")["err"])
    probe("tx_begin")
    probe("produce tx k open")
    probe("flush 5000")
    during = [m["value"] for m in only(probe("consume tx read_committed 5000"), "msg")]
    steps.append(tx(probe, "tx_commit 10000")["err"])
    committed = [m["value"] for m in only(probe("consume tx read_committed 5000"), "msg")]
    uncommitted = [m["value"] for m in only(probe("consume tx read_uncommitted 5000"), "msg")]
    restart_empty(broker, "tx")
    probe("tx_begin")
    probe("produce tx k after-restart")
    after_restart = tx(probe, "tx_commit 15000")
    recovery = [tx(probe, "tx_abort 15000")["err"], tx(probe, "tx_begin")["err"]]
    probe("produce tx k retried")
    recovery.append(tx(probe, "tx_commit 15000")["err"])
    kept = [m["value"] for m in only(probe("consume tx read_committed 5000"), "msg")]
    ok = steps == ["NO_ERROR"] * 5
    return ok, (f"init/begin/commit/abort/commit {steps}; read_committed while a transaction "
                f"is open sees {during} (LSO honoured); after commit {committed} - the "
                f"ABORTED record is visible to read_committed (no aborted-transaction index); "
                f"read_uncommitted {uncommitted}; commit after a broker restart: "
                f"{after_restart['err']} fatal={after_restart.get('fatal')} "
                f"abortable={after_restart.get('txn_requires_abort')}; then abort/begin/commit "
                f"{recovery}, topic then holds {kept}")


def scenario_no_shim(probe, broker):
    probe.producer("acks=all", "message.timeout.ms=3000")
    probe("produce events k x")
    reports = probe("flush 5000")
    errors = sorted(set(errors_of(reports, "error")))
    details = {e.get("detail", "")[:90] for e in only(reports, "error")}
    return True, (f"librdkafka {probe.version} straight to Tansu (no shim): {errors_of(reports)} "
                  f"errors {errors} {sorted(details)[:1]}")


SCENARIOS = {
    "basics": scenario_basics,
    "oversize": scenario_oversize,
    "rejected_record": scenario_rejected_record,
    "broker_down": scenario_broker_down,
    "restart": scenario_restart,
    "queued_over_restart": scenario_queued_over_restart,
    "kill_mid_stream": scenario_kill_mid_stream,
    "transactions": scenario_transactions,
    "no_shim": scenario_no_shim,
}


def main(names) -> int:
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="qbel-kafka-probe-") as build_dir:
        binary = build_probe(build_dir)
        for name in names or SCENARIOS:
            print(f"== {name}")
            broker = KafkaBroker(compat_shim=name != "no_shim", schemas={"strict": STRICT_SCHEMA})
            broker.start()
            probe = Probe(binary, broker)
            try:
                ok, verdict = SCENARIOS[name](probe, broker)
            finally:
                probe.close()
                broker.cleanup()
            verdicts.append((name, ok, verdict))
    print("\n== findings (librdkafka %s)" % probe.version)
    for name, ok, verdict in verdicts:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {verdict}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
