"""The sanitizer pass proves itself (scripts/test.sh sets QBEL_SANITIZED=1):
the module imported is the AddressSanitizer build of the pass's own tree,
and a memory bug planted on purpose (test builds only: _core._plant_fault)
produces a report and a failing exit.  Elsewhere these skip, except the
check that the suppression file never hides our own code."""

import glob
import os
import re
import subprocess
import sys

import pytest

from querybook_eventlog import _core

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANITIZED = os.environ.get("QBEL_SANITIZED") == "1"
in_the_pass = pytest.mark.skipif(not SANITIZED, reason="the sanitizer pass's own checks "
                                 "(scripts/test.sh sets QBEL_SANITIZED=1)")


@in_the_pass
def test_the_sanitized_build_is_the_one_imported():
    with open("/proc/self/maps") as maps:
        mapped = maps.read()
    assert "libasan" in mapped, "QBEL_SANITIZED=1 but the ASan runtime is not loaded"
    tree = os.environ.get("QBEL_SANITIZED_TREE")
    assert tree, "QBEL_SANITIZED=1 needs QBEL_SANITIZED_TREE (the sanitized build's tree)"
    core = os.path.realpath(_core.__file__)
    assert core.startswith(os.path.realpath(tree) + os.sep), \
        f"imported {core}, not the sanitized build in {tree}"
    assert core in mapped
    assert hasattr(_core, "_build_flags"), f"{core} is not a test build (QBEL_TEST_BUILD=1)"
    flags = _core._build_flags()
    assert flags["address_sanitizer"] is True, flags
    assert re.search(r"-fsanitize=\S*address", flags["cflags"]), flags
    assert re.search(r"-fsanitize=\S*undefined", flags["cflags"]), flags


@in_the_pass
def test_leak_detection_is_on_and_reports_go_to_files():
    options = dict(item.split("=", 1) for item in os.environ["ASAN_OPTIONS"].split(":") if item)
    assert options.get("detect_leaks") == "1"
    assert options.get("log_path")
    assert "suppressions=" in os.environ.get("LSAN_OPTIONS", "")


def options_with_log_path(variable, log_path):
    kept = [item for item in os.environ.get(variable, "").split(":")
            if item and not item.startswith("log_path=")]
    return ":".join(kept + [f"log_path={log_path}"])


@in_the_pass
@pytest.mark.parametrize("fault, expected", [
    ("leak", ["ERROR: LeakSanitizer: detected memory leaks",
              "Direct leak of 65536 byte(s) in 1 object(s)", "plant_leak"]),
    ("heap-overflow", ["ERROR: AddressSanitizer: heap-buffer-overflow", "WRITE of size 1",
                       "plant_heap_overflow"]),
    ("use-after-free", ["ERROR: AddressSanitizer: heap-use-after-free", "plant_use_after_free"]),
])
def test_a_planted_fault_is_reported_and_fails_the_process(tmp_path, fault, expected):
    """The same runtime, options and suppressions as the pass, reports to a
    folder of the test's own (the pass fails on any report in its folder)."""
    env = dict(os.environ,
               ASAN_OPTIONS=options_with_log_path("ASAN_OPTIONS", tmp_path / "asan"),
               UBSAN_OPTIONS=options_with_log_path("UBSAN_OPTIONS", tmp_path / "ubsan"))
    code = f"from querybook_eventlog import _core\n_core._plant_fault({fault!r})\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    reports = ""
    for path in sorted(glob.glob(str(tmp_path / "*"))):
        with open(path, errors="replace") as report:
            reports += report.read()
    assert result.returncode != 0, f"{fault}: exit 0\n{result.stderr}\n{reports}"
    for text in expected:
        assert text in reports, f"{fault}: no {text!r} in the report:\n{reports}\n{result.stderr}"


def test_the_suppressions_never_name_our_code():
    """tests/lsan.supp may silence CPython's, gevent's and Connector/C's own
    allocations, never the C core's."""
    with open(os.path.join(REPO, "tests", "lsan.supp")) as supp:
        patterns = [line.split(":", 1)[1].strip() for line in supp
                    if line.strip() and not line.startswith("#")]
    assert patterns
    ours = re.compile(r"qbel|querybook|_core|csrc|byte_buffer|event_|writer|spool|mysql_sink|json_"
                      r"|plant_", re.IGNORECASE)
    assert not [pattern for pattern in patterns if ours.search(pattern)]
