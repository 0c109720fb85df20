"""Build and run the C checks of the event queue (tests/c/test_event_queue.c):
the byte bound with the allocator's overhead, the overflow's chunked takes,
take-all order, pop order, the trim check, and every block given back.  Built
with -Wall -Wextra -Werror and the test build's allocator, plain and with
AddressSanitizer and UndefinedBehaviorSanitizer."""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [
    "tests/c/test_event_queue.c", "csrc/event_queue.c", "csrc/event_record.c",
    "csrc/byte_buffer.c", "csrc/qbel_alloc.c",
]
# gcc and the checks are not Python: the sanitizer pass's preloaded runtime
# and its options are not for them (the sanitized check builds its own).
SANITIZER_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


@pytest.mark.parametrize("flags", [[], ["-fsanitize=address,undefined",
                                        "-fno-sanitize-recover=all"]],
                         ids=["plain", "sanitized"])
def test_event_queue_internals(tmp_path, flags):
    binary = tmp_path / "test_event_queue"
    command = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
               "-DQBEL_TEST_HOOKS", *flags, *SOURCES, "-o", str(binary), "-pthread", "-lm"]
    env = {k: v for k, v in os.environ.items() if k not in SANITIZER_ENV}
    build = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
