"""Build and run the C checks of the internals Python cannot reach
(tests/c/): allocation failure, size overflow, calendar arithmetic, and
every block given back.  Built with -Wall -Wextra -Werror and the test
build's allocator (csrc/qbel_alloc.c: fails the Nth allocation, counts live
blocks) and, where the toolchain has them, AddressSanitizer and
UndefinedBehaviorSanitizer."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [
    "tests/c/test_internals.c", "csrc/byte_buffer.c", "csrc/event_record.c", "csrc/qbel_alloc.c",
    "csrc/sink.c",
]
# gcc and the checks are not Python: the sanitizer pass's preloaded runtime
# and its options are not for them (the sanitized check builds its own).
SANITIZER_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


def build_and_run(tmp_path, extra_flags):
    binary = tmp_path / "test_internals"
    command = ["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
               "-DQBEL_TEST_HOOKS", *extra_flags, *SOURCES, "-o", str(binary)]
    env = {k: v for k, v in os.environ.items() if k not in SANITIZER_ENV}
    build = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout


def test_c_internals(tmp_path):
    build_and_run(tmp_path, [])


def test_c_internals_sanitized(tmp_path):
    build_and_run(tmp_path, ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
