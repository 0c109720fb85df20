#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: build, then show the loggers at work
# (null, console text and jsonl, a plugin), then a synthetic Querybook day
# written through the DB logger into a throwaway MariaDB and its report
# (text on stdout, event_log_demo_report.html).  Arguments go to `demo`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
exec "$PY" -m querybook_eventlog demo "$@"
