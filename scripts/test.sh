#!/usr/bin/env bash
# scripts/test.sh — `make test`: install what is missing, build with -Werror,
# run every test; then rebuild a copy with AddressSanitizer +
# UndefinedBehaviorSanitizer (a test build: allocation counter, planted
# faults) and run every test again under it, LeakSanitizer on; then the
# whole suite on CPython 3.10 (Querybook's) and on the newest CPython this
# machine has, and an import-and-smoke run on every other CPython 3.9+ it has.
# The tests start their own private MariaDB servers (tests/mariadb_server.py).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
MAIN_PY="$PY"
# Querybook's own Python (3.10) with its pinned packages, for the drop-in
# suite; one venv shared by every pass below.  Built first so that a failure
# shows before the tests start.
export QBEL_QUERYBOOK_VENV="$ROOT/.venv-querybook"
bash scripts/querybook_venv.sh "$ROOT" >/dev/null

# Arguments go to pytest.  When they name test files or node ids, only those
# run (in every pass); otherwise (none, or only options such as -x or -k)
# the whole tests/ directory does.
PYTEST_TARGETS=(tests "$@")
for argument in "$@"; do
    case "$argument" in
        -*) ;;
        *) if [ -e "${argument%%::*}" ]; then PYTEST_TARGETS=("$@"); break; fi ;;
    esac
done

echo "== lint (ruff)"
"$(dirname "$PY")/ruff" check querybook_eventlog tests bench scripts

echo "== tests ($("$PY" -V), -Wall -Wextra -Werror)"
"$PY" -m pytest -q -p no:cacheprovider "${PYTEST_TARGETS[@]}"

if [ "${QBEL_SKIP_SANITIZERS:-0}" = 1 ]; then
    echo "== sanitizer run skipped (QBEL_SKIP_SANITIZERS=1)"
else
    echo "== tests (ASan + UBSan + LeakSanitizer, test build)"
    ASAN_TREE="$ROOT/build/asan-tree"
    mkdir -p "$ASAN_TREE"
    rsync -a --delete --exclude .git --exclude '.venv*' --exclude build --exclude '*.so' \
        --exclude __pycache__ --exclude .hypothesis "$ROOT/" "$ASAN_TREE/"
    SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    # A test build too (QBEL_TEST_BUILD=1): the C core's allocations are
    # counted (tests/test_c_leaks.py) and the planted faults exist
    # (tests/test_sanitizer_pass.py); the pass above stays a release build.
    (cd "$ASAN_TREE" && QBEL_TEST_BUILD=1 QBEL_CFLAGS="-Wall -Wextra -Werror -O1 -g $SANITIZE" \
        QBEL_LDFLAGS="$SANITIZE" "$PY" setup.py -q build_ext --inplace --force >build-asan.log 2>&1) \
        || { cat "$ASAN_TREE/build-asan.log" >&2; exit 1; }
    # The ASan runtime must come first in a Python that was not built with it.
    # LeakSanitizer checks every process at exit; tests/lsan.supp silences
    # CPython's, gevent's and Connector/C's own allocations, never ours.
    # Reports go to files: pytest captures stderr, and an abort would lose them.
    PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    REPORTS="$ASAN_TREE/sanitizer-reports"
    rm -rf "$REPORTS" && mkdir -p "$REPORTS"
    status=0
    sanitizer_start=$SECONDS
    (cd "$ASAN_TREE" && LD_PRELOAD="$PRELOAD" \
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:log_path=$REPORTS/asan" \
        LSAN_OPTIONS="suppressions=$ASAN_TREE/tests/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan" \
        QBEL_SANITIZED=1 QBEL_SANITIZED_TREE="$ASAN_TREE" QBEL_REQUIRE_TEST_HOOKS=1 \
        "$PY" -m pytest -q -p no:cacheprovider "${PYTEST_TARGETS[@]}") || status=$?
    echo "== sanitizer pass took $((SECONDS - sanitizer_start)) s"
    if compgen -G "$REPORTS/*" >/dev/null; then
        echo "== sanitizer reports" >&2
        cat "$REPORTS"/* >&2
        status=1
    fi
    [ $status = 0 ] || exit $status
fi

# Other CPythons: pyenv's, where this machine has them (Debian's python3 alone
# is enough for everything above).
other_pythons=()
if command -v pyenv >/dev/null && [ -d "$(pyenv root)/versions" ]; then
    for candidate in "$(pyenv root)"/versions/3.*/bin/python3; do
        [ -x "$candidate" ] || continue
        "$candidate" -c 'import sys; raise SystemExit(sys.version_info < (3, 9))' 2>/dev/null \
            && other_pythons+=("$candidate")
    done
fi
main_version="$("$MAIN_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
minor_of() { "$1" -c 'import sys; print(sys.version_info[1])'; }
newest=""
for candidate in "${other_pythons[@]}"; do
    if [ -z "$newest" ] || [ "$(minor_of "$candidate")" -gt "$(minor_of "$newest")" ]; then
        newest="$candidate"
    fi
done
for candidate in "${other_pythons[@]}"; do
    version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ -z "$newest" ] || [ "$("$candidate" -c 'import sys; print(sys.version_info[1])')" -gt \
        "$("$newest" -c 'import sys; print(sys.version_info[1])')" ]; then
        newest="$candidate"
    fi
done
for candidate in "${other_pythons[@]}"; do
    version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [ "$version" = "$main_version" ] && continue
    PY=""
    QBEL_PYTHON="$candidate" QBEL_VENV=".venv-$version" source scripts/setup_env.sh
    if [ "$version" = 3.10 ] || [ "$candidate" = "$newest" ]; then
        echo "== tests (Python $version, the whole suite)"
        "$PY" -m pytest -q -p no:cacheprovider "${PYTEST_TARGETS[@]}"
    else
        echo "== import-and-smoke (Python $version)"
        PYTHONPATH="$ROOT" "$PY" scripts/smoke.py
    fi
done
# Leave the main interpreter's build in place for whoever runs next.
PY="$MAIN_PY"
