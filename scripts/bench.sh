#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: every benchmark, side by side, in one run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
"$PY" -m pip install -q orjson mysqlclient "SQLAlchemy>=2" PyMySQL || echo "bench: some baselines unavailable"
for script in bench/bench_dumps.py bench/bench_loggers.py bench/bench_db.py; do
    echo "== $script"
    "$PY" "$script"
done
