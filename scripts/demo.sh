#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: build, then show the loggers at work
# (null, console text and jsonl, a plugin, and the DB logger against a
# private MariaDB started for the demo).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
exec "$PY" -m querybook_eventlog demo "$@"
