"""qe.dumps when malloc fails: MemoryError, nothing partial, no crash.

The encoder's buffer comes from malloc, which Python cannot make fail from
inside; a child process lowers its own address-space limit instead, so the
failure is real."""

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
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


@pytest.mark.skipif(
    "asan" in os.environ.get("LD_PRELOAD", "") or not sys.platform.startswith("linux"),
    reason="needs Linux RLIMIT_AS; ASan reserves terabytes of shadow memory",
)
def test_out_of_memory_raises_memory_error():
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=repo_root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
