#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: every benchmark, side by side, in one run.
# Installs the baselines (each on its own, so one unavailable package does not
# block the others; a missing one prints n/a in its table), then runs the
# four benches one after the other.  Run it on an otherwise quiet machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
for package in orjson msgspec mysqlclient "SQLAlchemy>=2" PyMySQL mariadb; do
    "$PY" -m pip install -q --disable-pip-version-check "$package" 2>/dev/null \
        || echo "bench: baseline $package unavailable"
done
"$PY" - <<'PY'
import importlib.metadata as md, platform, subprocess
names = ["orjson", "msgspec", "mysqlclient", "SQLAlchemy", "PyMySQL", "mariadb"]
found = []
for name in names:
    try:
        found.append(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        found.append(f"{name} n/a")
server = subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.split()
print(f"Python {platform.python_version()}; " + ", ".join(found)
      + f"; {' '.join(server[1:3]) if server else 'mariadbd n/a'}; {__import__('os').cpu_count()} CPUs")
PY
for script in bench/bench_dumps.py bench/bench_loggers.py bench/bench_db.py bench/bench_tail.py; do
    echo
    echo "== $script (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$PY" "$script" "$@"
    echo "(load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
