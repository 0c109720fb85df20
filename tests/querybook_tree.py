"""A fake Querybook checkout for the drop-in tests, and how to run its processes.

`build_tree(root)` copies tests/querybook_fixture/ (Querybook's layout, with
upstream's original lib/event_logger/) into `root`.  `QuerybookTree` runs
Querybook processes in it as Querybook runs them: a separate Python (the
Querybook venv, scripts/querybook_venv.sh), PYTHONPATH = querybook/server and
the plugins folder, settings from the environment and querybook/config/*.yaml.
`tree.adopt()` applies the package's documented adoption edit
(`querybook_eventlog.querybook.adopt`) to the tree.

    tree = QuerybookTree(build_tree(tmp / "qb"), python)
    tree.write_config({"EVENT_LOGGER_NAME": "db", "DATABASE_CONN": url})
    result = tree.run_python("print(1)", cwd="/")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Iterable, List, Optional

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "querybook_fixture")

# Variables of the test run that must not leak into a Querybook process: the
# sanitizer runtime (the Querybook venv's build is not sanitized), another
# Python's path, and every setting the tests set on purpose per process.
_STRIPPED_ENV = {
    "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
    "VIRTUAL_ENV", "EVENT_LOGGER_NAME", "DATABASE_CONN", "LOG_LOCATION", "FLASK_SECRET_KEY",
    "QUERYBOOK_ROOT", "QUERYBOOK_CONFIG_PATH", "QUERYBOOK_PLUGIN", "production",
    "QB_PLUGIN_EVENTS", "PYTEST_CURRENT_TEST",
}

ORIGINAL_EVENT_LOGGER_FILES = [
    "querybook/server/lib/event_logger/__init__.py",
    "querybook/server/lib/event_logger/all_event_loggers.py",
    "querybook/server/lib/event_logger/base_event_logger.py",
    "querybook/server/lib/event_logger/loggers/__init__.py",
    "querybook/server/lib/event_logger/loggers/console_event_logger.py",
    "querybook/server/lib/event_logger/loggers/db_event_logger.py",
    "querybook/server/lib/event_logger/loggers/null_event_logger.py",
]


def build_tree(root: str) -> str:
    """Write the fake Querybook (upstream's original event logging) at `root`."""
    shutil.copytree(FIXTURE_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    dirs_exist_ok=False)
    return root


def snapshot(root: str) -> Dict[str, bytes]:
    """Every file under root (relative path -> content), caches left out."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        for name in names:
            if name.endswith(".pyc"):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as content:
                files[os.path.relpath(path, root)] = content.read()
    return files


def dump_yaml(values: Dict[str, Any]) -> str:
    """A flat Querybook config yaml (JSON values are YAML; None is ~)."""
    return "".join(f"{key}: {'~' if value is None else json.dumps(value)}\n"
                   for key, value in values.items())


class ProcessFailed(AssertionError):
    pass


class QuerybookTree:
    def __init__(self, root: str, python: str, spool_dir: Optional[str] = None):
        self.root = os.path.abspath(root)
        self.python = python
        self.spool_dir = spool_dir or tempfile.mkdtemp(prefix="qbel-qb-spool-")
        self.server_dir = os.path.join(self.root, "querybook", "server")
        self.config_dir = os.path.join(self.root, "querybook", "config")
        self.migrations_dir = os.path.join(self.root, "querybook", "migrations")
        self.versions_dir = os.path.join(self.migrations_dir, "versions")
        self.alembic_ini = os.path.join(self.root, "querybook", "alembic.ini")
        self.drivers_dir = os.path.join(self.root, "drivers")

    # -- configuration ----------------------------------------------------

    @property
    def config_path(self) -> str:
        return os.path.join(self.config_dir, "querybook_config.yaml")

    def write_config(self, values: Optional[Dict[str, Any]]) -> None:
        """querybook/config/querybook_config.yaml with `values`; None removes it."""
        if values is None:
            if os.path.exists(self.config_path):
                os.remove(self.config_path)
            return
        with open(self.config_path, "w") as config:
            config.write(dump_yaml(values))

    def env(self, extra: Optional[Dict[str, Optional[str]]] = None,
            plugins: str = "plugins") -> Dict[str, str]:
        """The environment of a Querybook process: PYTHONPATH as Querybook sets it."""
        env = {key: value for key, value in os.environ.items() if key not in _STRIPPED_ENV}
        env["PYTHONPATH"] = os.pathsep.join([self.server_dir, os.path.join(self.root, plugins)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["QBEL_SPOOL_DIR"] = self.spool_dir
        for key, value in (extra or {}).items():  # None: unset
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    # -- processes ----------------------------------------------------------

    def run(self, args: List[str], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None,
            plugins: str = "plugins", timeout: float = 60, check: bool = True,
            stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run `python ARGS` as a Querybook process; cwd defaults to /."""
        result = subprocess.run(
            [self.python, *args], cwd=cwd or "/", env=self.env(env, plugins=plugins),
            capture_output=True, text=True, timeout=timeout, input=stdin,
        )
        if check and result.returncode != 0:
            raise ProcessFailed(
                f"{' '.join(args)[:200]} exited {result.returncode} (cwd {cwd or '/'})\n"
                f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def run_python(self, code: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(["-c", code], **kwargs)

    def drive(self, steps: Iterable[dict], flush: Optional[float] = None, pause: float = 0,
              count_rows: bool = False, **kwargs) -> "tuple[dict, subprocess.CompletedProcess]":
        """Requests through the app (drivers/drive_app.py) in a new process:
        (what the driver reports, the finished process)."""
        work = tempfile.mkdtemp(prefix="qbel-qb-drive-")
        try:
            plan_path = os.path.join(work, "plan.json")
            result_path = os.path.join(work, "result.json")
            with open(plan_path, "w") as plan:
                json.dump({"steps": list(steps), "flush": flush, "pause": pause,
                           "count_rows": count_rows}, plan)
            process = self.run([os.path.join(self.drivers_dir, "drive_app.py"), plan_path, result_path],
                               **kwargs)
            with open(result_path) as result:
                return json.load(result), process
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def alembic(self, *args: str, database_conn: str, cwd: Optional[str] = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
        """`alembic -c querybook/alembic.ini ARGS` with DATABASE_CONN from the environment."""
        return self.run(["-m", "alembic", "-c", self.alembic_ini, *args],
                        cwd=cwd or os.path.join(self.root, "querybook"),
                        env={"DATABASE_CONN": database_conn, "FLASK_SECRET_KEY": "alembic"},
                        timeout=timeout)

    # -- the adoption edit ----------------------------------------------------

    def adopt(self) -> List[str]:
        """querybook_eventlog.querybook.adopt(root) in a Querybook-venv process
        (outside the tree's PYTHONPATH, as an operator would run it): the
        paths it reports as written, relative to root."""
        code = (
            "import json, sys\n"
            "from querybook_eventlog.querybook import adopt\n"
            "print(json.dumps([str(path) for path in adopt(sys.argv[1])]))\n"
        )
        result = self.run(["-c", code, self.root], env={"PYTHONPATH": None})
        written = json.loads(result.stdout.strip().splitlines()[-1])
        return [os.path.relpath(os.path.join(self.root, path), self.root) for path in written]

    def adopt_cli(self) -> subprocess.CompletedProcess:
        """`python -m querybook_eventlog adopt ROOT`, as the README documents it."""
        return self.run(["-m", "querybook_eventlog", "adopt", self.root], env={"PYTHONPATH": None})
