"""qe.dumps when malloc fails: MemoryError, nothing partial, no crash.

The encoder's buffer comes from malloc, which Python cannot make fail from
inside.  A test build (the sanitizer pass's) has the chaos allocator: it
fails the 1st, 2nd, ... allocation of a call, and the live-allocation
counter must come back each time.  Elsewhere a child process lowers its own
address-space limit instead, so the failure is real."""

import os
import subprocess
import sys
import textwrap

import pytest

from querybook_eventlog import _core

HOOKS = hasattr(_core, "_fail_allocation_at")

RLIMIT_CHILD = textwrap.dedent(
    """
    import resource
    import querybook_eventlog as qe

    chunk = "x" * (32 << 20)
    document = [chunk] * 16          # 512 MiB of output, 32 MiB of input
    with open("/proc/self/status") as status:
        vm_size = next(int(line.split()[1]) for line in status if line.startswith("VmSize"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, ((vm_size << 10) + (160 << 20), hard))
    try:
        for _ in range(3):
            try:
                qe.dumps(document)
            except MemoryError:
                pass
            else:
                raise SystemExit("no MemoryError")
            try:
                qe.dumps({"deep": [{"k": chunk}] * 8})
            except MemoryError:
                pass
            else:
                raise SystemExit("no MemoryError (nested)")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert qe.dumps({"still": ["fine", 1]}) == b'{"still":["fine",1]}'
    print("ok")
    """
)

# dumps writes a large result straight into the bytes object it returns; a
# test build lets the chaos allocator fail each growth of that object too.
# The C core's own blocks are counted by _live_allocations, the bytes
# objects (Python's allocator) by tracemalloc: neither may grow.
CHAOS_CHILD = textwrap.dedent(
    """
    import gc
    import tracemalloc
    import querybook_eventlog as qe
    from querybook_eventlog import _core

    chunk = "x" * (1 << 20)
    documents = [[chunk] * 16, {"deep": [{"k": chunk}] * 8}, {"n": list(range(50_000))},
                 {"error": [chunk, 1j]}]
    tracemalloc.start()
    for document in documents:
        try:
            expected = qe.dumps(document)
        except TypeError:
            expected = TypeError
        gc.collect()
        start = _core._live_allocations()
        traced_start = tracemalloc.get_traced_memory()[0]
        failures = 0
        for n in range(1, 1000):
            _core._fail_allocation_at(n)
            try:
                result = qe.dumps(document)
            except MemoryError:
                failures += 1
                assert _core._live_allocations() == start, (n, _core._live_allocations(), start)
                traced = tracemalloc.get_traced_memory()[0]
                assert traced - traced_start < (256 << 10), (n, traced - traced_start)
                continue
            except TypeError:
                result = TypeError
            finally:
                _core._fail_allocation_at(0)
            assert result == expected  # nothing partial
            break
        else:
            raise SystemExit("still failing after 1000 allocations")
        if failures == 0:
            raise SystemExit("no MemoryError: the chaos allocator never failed an allocation")
        del result
        gc.collect()
        assert _core._live_allocations() == start
        traced = tracemalloc.get_traced_memory()[0]
        assert traced - traced_start < (256 << 10), ("after", traced - traced_start)
    assert qe.dumps({"still": ["fine", 1]}) == b'{"still":["fine",1]}'
    print("ok")
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux")
def test_out_of_memory_raises_memory_error():
    if HOOKS:
        child = CHAOS_CHILD
    elif "asan" in os.environ.get("LD_PRELOAD", ""):
        if os.environ.get("QBEL_REQUIRE_TEST_HOOKS") == "1":
            pytest.fail("ASan reserves terabytes of shadow memory, so RLIMIT_AS cannot fail "
                        "malloc here, and this build has no chaos allocator (QBEL_TEST_BUILD=1)")
        pytest.skip("ASan reserves terabytes of shadow memory (RLIMIT_AS) and this is no test "
                    "build (QBEL_TEST_BUILD=1 has the chaos allocator)")
    else:
        child = RLIMIT_CHILD
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
