#!/usr/bin/env bash
# scripts/querybook_venv.sh — the Python a Querybook process runs on, for the
# Querybook drop-in tests (tests/test_querybook_dropin.py): Python 3.10 (the
# version of Querybook's image) with Querybook's pinned packages and this
# checkout installed as a regular (non-editable) package.
#
# Creates or reuses $QBEL_QUERYBOOK_VENV (default: <checkout>/.venv-querybook);
# reinstalls the package only when its sources changed.  Prints the venv's
# python path as the last line of stdout; all other output goes to stderr.
# Usage: bash scripts/querybook_venv.sh [CHECKOUT]   (default: this script's checkout)
set -euo pipefail
ROOT="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
VENV="${QBEL_QUERYBOOK_VENV:-$ROOT/.venv-querybook}"

# Querybook's pins (requirements/base.txt of pinterest/querybook).
PINS="flask==2.2.2 Werkzeug==2.2.3 Flask-Login==0.6.2 sqlalchemy==1.4.39 pymysql==1.0.2 alembic==1.8.1 PyYAML"
BUILD_TOOLS="pip setuptools>=61 wheel"

base_python() {
    local root candidate
    if [ -n "${QBEL_QUERYBOOK_PYTHON:-}" ]; then
        echo "$QBEL_QUERYBOOK_PYTHON"; return
    fi
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
        for candidate in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
            if [ -x "$candidate/bin/python" ]; then echo "$candidate/bin/python"; return; fi
        done
    fi
    command -v python3.10 2>/dev/null || command -v python3
}

# Sanitizer runs preload libasan into every child: pip and the compiler must not get it.
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS

PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
    BASE="$(base_python)"
    echo "querybook_venv: creating $VENV from $BASE ($("$BASE" --version 2>&1))" >&2
    rm -rf "$VENV"
    "$BASE" -m venv "$VENV" >&2
fi

STAMP="$VENV/.qbel-querybook-pins"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$BUILD_TOOLS $PINS" ]; then
    echo "querybook_venv: installing $PINS" >&2
    "$PY" -m pip install -q --upgrade $BUILD_TOOLS >&2
    "$PY" -m pip install -q $PINS >&2
    echo "$BUILD_TOOLS $PINS" > "$STAMP"
fi

# The package, rebuilt when anything it is built from changed.
SOURCE_HASH="$(cd "$ROOT" && find querybook_eventlog csrc setup.py pyproject.toml -type f \
    \( -name '*.py' -o -name '*.c' -o -name '*.h' -o -name '*.pyi' -o -name '*.toml' -o -name 'py.typed' \) \
    -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
PKG_STAMP="$VENV/.qbel-package"
if [ "$(cat "$PKG_STAMP" 2>/dev/null)" != "$SOURCE_HASH" ]; then
    echo "querybook_venv: installing querybook_eventlog from $ROOT" >&2
    BUILD_DIR="$(mktemp -d)"
    trap 'rm -rf "$BUILD_DIR"' EXIT
    # Build from a clean copy: an in-place build (.so, build/) of another
    # Python must not leak into this one.
    (cd "$ROOT" && tar cf - --exclude='*.so' --exclude=__pycache__ --exclude='*.egg-info' \
        querybook_eventlog csrc setup.py pyproject.toml README.md) | (cd "$BUILD_DIR" && tar xf -)
    "$PY" -m pip install -q --no-build-isolation --no-deps --force-reinstall "$BUILD_DIR" >&2
    echo "$SOURCE_HASH" > "$PKG_STAMP"
fi

# Must import from the venv, not from a checkout on the path.
(cd / && "$PY" -c 'import querybook_eventlog, flask, flask_login, sqlalchemy, pymysql, alembic, yaml') >&2
echo "$PY"
