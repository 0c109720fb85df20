"""The build without librdkafka still works: setup.py leaves the Kafka sink
out when `pkg-config rdkafka` finds nothing (QBEL_WITHOUT_RDKAFKA=1 builds as
if so), and KafkaEventLogger then raises at construction naming the Debian
package.  Built from a copy of the sources in a temp dir, unoptimised (the
point is the build and the error, not speed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_without_librdkafka_the_logger_names_the_debian_package(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(os.path.join(ROOT, name), tree / name)
    for name in ("csrc", "querybook_eventlog"):
        shutil.copytree(os.path.join(ROOT, name), tree / name,
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("LD_PRELOAD", "ASAN_OPTIONS", "QBEL_TEST_BUILD")}
    environment.update(QBEL_WITHOUT_RDKAFKA="1", QBEL_CFLAGS="-O0 -Wall -Wextra -Werror",
                       QBEL_LDFLAGS="")
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace",
                            "--parallel", "2"], cwd=tree, env=environment,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    assert "librdkafka-dev" in build.stderr  # the build says what it left out
    check = subprocess.run([sys.executable, "-c", """
import querybook_eventlog as qe
try:
    qe.KafkaEventLogger("127.0.0.1:9092")
except RuntimeError as error:
    print("RuntimeError:", error)
print(qe.get_event_logger_class("db").logger_name)
try:
    qe.get_event_logger_class("kafka")
except ValueError as error:
    print("ValueError:", error)
"""], cwd=tree, env=environment, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    lines = check.stdout.splitlines()
    assert lines[0].startswith("RuntimeError: KafkaEventLogger needs librdkafka")
    assert "librdkafka-dev" in lines[0]
    assert lines[1] == "db"  # everything else works
    assert lines[2] == "ValueError: Unknown event logger name kafka"
    with open(next((tree / "querybook_eventlog").glob("_core*.so")), "rb") as library:
        assert b"rd_kafka_new" not in library.read()  # not linked at all
